"""What the fused kernels compile to on an H100 (sm_90a), read on a machine without a GPU.

    python -m lessons_lib.kernels.ptx_report              # print the table
    python -m lessons_lib.kernels.ptx_report --write      # also refresh compile_report_data.py

Triton compiles a kernel ahead of time for any target it has a backend for, and its wheel ships
NVIDIA's assembler, ptxas. So without a GPU we can still see what a GPU would run: how many
registers each thread uses, whether any spill to (slow, off-chip) local memory, how much shared
memory a program takes, how wide its global loads are, and from those how many programs fit on
one streaming multiprocessor (SM) at a time.

The kernels are compiled exactly as the launchers would launch them: `fused_add_norm_triton`'s
`forward` and `backward` run on "meta" tensors (shapes and dtypes, no memory) with `launch`
replaced by Triton's `warmup`, which specializes the arguments the way the JIT does (16-byte
aligned pointers and multiples of 16 marked divisible) and compiles without running. A stand-in
driver tells Triton the current device is an sm_90 GPU.

Compiled Triton and the interpreter cannot share a process (see `triton_support`): run this in a
fresh Python, or call `run_in_subprocess()`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

SIZES = [768, 1000, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
CAPABILITY = 90  # H100 / H200: sm_90a
M_ROWS = 4096  # rows of the launch (compiled code does not depend on it)
DATA_FILE = Path(__file__).with_name("compile_report_data.py")

# Per-SM resources of compute capability 9.0 (CUDA C Programming Guide, "Compute Capabilities";
# the occupancy rules of cuda_occupancy.h).
SM90 = {
    "registers": 65536,  # 32-bit registers per SM, in 4 partitions
    "partitions": 4,
    "register_unit": 256,  # registers are given to warps in units of 256
    "max_registers_per_thread": 255,
    "max_warps": 64,  # 2048 threads
    "max_programs": 32,  # thread blocks per SM
    "shared_bytes": 233472,  # 228 KiB per SM ...
    "shared_reserved": 1024,  # ... of which 1 KiB is reserved per resident block
}


@dataclass
class KernelReport:
    """One compiled kernel: its configuration and what ptxas says about it."""

    kernel: str  # "forward" or "backward"
    dtype: str
    n: int
    supported: bool  # False: N is above the 64 KiB row limit for this dtype (not compiled)
    block_m: int = 0
    block_n: int = 0
    num_warps: int = 0
    row_align: int = 0
    registers: int = 0  # per thread
    spill_stores: int = 0  # bytes per thread
    spill_loads: int = 0
    stack_frame: int = 0
    shared: int = 0  # bytes per program (Triton's scratch for reductions and layout changes)
    load_bytes: int = 0  # widest global load of one thread, bytes (16 = ld.global.v4.b32)
    store_bytes: int = 0
    loads: dict[int, int] = field(default_factory=dict)  # bytes -> number of ld.global
    programs_per_sm: int = 0  # resident at once: min over the register, thread, shared limits
    limited_by: str = ""
    launched_per_sm: int = 0  # the backward's grid: programs per SM it launches

    @property
    def warps_per_sm(self) -> int:
        return self.programs_per_sm * self.num_warps


def resident_programs(registers: int, num_warps: int, shared: int) -> tuple[int, str]:
    """Programs of `num_warps` warps that fit on one sm_90 SM at once, and what limits them."""
    regs_per_warp = math.ceil(registers * 32 / SM90["register_unit"]) * SM90["register_unit"]
    per_partition = SM90["registers"] // SM90["partitions"]
    warps_by_registers = (per_partition // regs_per_warp) * SM90["partitions"]
    limits = {
        "registers": warps_by_registers // num_warps,
        "threads": SM90["max_warps"] // num_warps,
        "blocks": SM90["max_programs"],
        "shared memory": SM90["shared_bytes"] // (shared + SM90["shared_reserved"]),
    }
    best = min(limits.values())
    return best, "/".join(name for name, value in limits.items() if value == best)


# ---------------------------------------------------------------------------------------------
# Compiling offline
# ---------------------------------------------------------------------------------------------


_PTXAS_LOGS: dict[str, str] = {}


class _OfflineDriver:
    """Enough of a Triton driver for `warmup`: says the current device is an sm_90 GPU."""

    def __init__(self, capability: int) -> None:
        from triton.backends.compiler import GPUTarget

        self.target = GPUTarget("cuda", capability, 32)

    def get_current_device(self) -> int:
        return 0

    def get_current_stream(self, device: int | None = None) -> int:
        return 0

    def get_current_target(self) -> Any:
        return self.target


def _check_compiled_mode() -> None:
    from lessons_lib.kernels.triton_support import interpreter_enabled

    if interpreter_enabled():
        raise RuntimeError(
            "ptx_report compiles for a GPU, which needs Triton imported without TRITON_INTERPRET; "
            "run `python -m lessons_lib.kernels.ptx_report` in a fresh process (run_in_subprocess)"
        )


@contextlib.contextmanager
def offline_compiler(capability: int = CAPABILITY) -> Iterator[list[tuple[str, Any, str]]]:
    """Within the block, the launchers compile for sm_<capability> instead of launching.

    Yields the list that collects (kernel name, CompiledKernel, ptxas log) for each launch. Uses
    a fresh Triton cache so that ptxas runs (and logs) every time.
    """
    _check_compiled_mode()
    import triton
    from triton.runtime.driver import driver

    from lessons_lib.kernels import fused_add_norm_triton as k

    compiled: list[tuple[str, object, str]] = []

    def warm_launch(kernel: Any, grid: Any, *args: Any, **kwargs: Any) -> None:
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            result = kernel.warmup(*args, grid=grid, **kwargs)
        # The JIT reuses a kernel it compiled before (N enters only through its divisibility),
        # and then ptxas does not run again: keep each kernel's log.
        text = _PTXAS_LOGS.setdefault(result.hash, log.getvalue())
        compiled.append((kernel.fn.__name__, result, text))

    saved = (k.launch, k.kernel_for, triton.knobs.nvidia.dump_ptxas_log, triton.knobs.cache.dir,
             os.environ.get(k.AUTOTUNE_ENV))
    with tempfile.TemporaryDirectory(prefix="triton-ptx-report-") as cache:
        driver.set_active(_OfflineDriver(capability))
        k.launch, k.kernel_for = warm_launch, lambda kernel, device: kernel
        triton.knobs.nvidia.dump_ptxas_log = True
        triton.knobs.cache.dir = cache
        try:
            yield compiled
        finally:
            driver.reset_active() if torch.cuda.is_available() else driver.set_active(None)
            k.launch, k.kernel_for = saved[0], saved[1]
            triton.knobs.nvidia.dump_ptxas_log = saved[2]
            triton.knobs.cache.dir = saved[3]


def _ptxas_numbers(log: str) -> dict[str, int]:
    def find(pattern: str) -> int:
        match = re.search(pattern, log)
        return int(match.group(1)) if match else 0

    if "Used" not in log:
        raise RuntimeError(f"no ptxas log was captured (cached compile?):\n{log[-2000:]}")
    return {
        "registers": find(r"Used (\d+) registers"),
        "spill_stores": find(r"(\d+) bytes spill stores"),
        "spill_loads": find(r"(\d+) bytes spill loads"),
        "stack_frame": find(r"(\d+) bytes stack frame"),
    }


_WIDTH = {"v4.b32": 16, "v4.b16": 8, "v2.b32": 8, "v2.b16": 4, "b32": 4, "b16": 2, "v4.b64": 32,
          "v2.b64": 16, "b64": 8, "b8": 1, "u8": 1}


def _access_bytes(ptx: str, op: str) -> list[int]:
    """Bytes moved by each `ld.global`/`st.global` instruction of the PTX (per thread)."""
    pattern = rf"{op}\.global(?:\.[a-z]+\d*(?:::\w+)?)*?\.((?:v\d\.)?[bfu]\d+)"
    widths = []
    for suffix in re.findall(pattern, ptx):
        widths.append(_WIDTH.get(suffix, int(re.sub(r"\D", "", suffix.split(".")[-1])) // 8))
    return widths


def _meta(*shape: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


def compile_forward(n: int, dtype: torch.dtype, *, norm: str = "layernorm",
                    residual_dtype: torch.dtype | None = None,
                    full: bool = True) -> tuple[str, Any, str]:
    """Compile the forward as `forward()` launches it for (M_ROWS, n) inputs of `dtype`."""
    from lessons_lib.kernels import fused_add_norm_triton as k

    residual_dtype = residual_dtype or dtype
    x = _meta(M_ROWS, n, dtype=dtype)
    opt = (lambda t: t) if full else (lambda t: None)
    with offline_compiler() as compiled:
        k.forward(x, opt(_meta(M_ROWS, n, dtype=residual_dtype)), opt(_meta(n, dtype=dtype)),
                  opt(_meta(n, dtype=dtype)) if norm == "layernorm" else None, 1e-5,
                  norm == "rmsnorm", residual_dtype, full or residual_dtype != dtype, True)
    return compiled[0]


def compile_backward(n: int, dtype: torch.dtype, *, norm: str = "layernorm",
                     residual_dtype: torch.dtype | None = None,
                     full: bool = True) -> tuple[str, Any, str]:
    """Compile the backward as `backward()` launches it: the Pre-LN case, a gradient coming into
    h, every parameter and input wanting its gradient (`full=False`: no dh, no weight)."""
    from lessons_lib.kernels import fused_add_norm_triton as k

    residual_dtype = residual_dtype or dtype
    rows = _meta(M_ROWS, n, dtype=dtype)
    stream = _meta(M_ROWS, n, dtype=residual_dtype)
    stats = _meta(M_ROWS, dtype=torch.float32)
    with offline_compiler() as compiled:
        k.backward(rows, stream if full else None, stream, _meta(n, dtype=dtype) if full else None,
                   stats if norm == "layernorm" else None, stats, dtype, residual_dtype,
                   want_dbias=norm == "layernorm")
    return compiled[0]


def kernel_report(kernel: str, dtype_name: str, n: int) -> KernelReport:
    """Compile one kernel (the full Pre-LN LayerNorm case) and read its resources."""
    from lessons_lib.kernels import fused_add_norm_triton as k

    dtype = DTYPES[dtype_name]
    if n > k.max_features(dtype):
        return KernelReport(kernel, dtype_name, n, supported=False)
    compile_fn = compile_forward if kernel == "forward" else compile_backward
    _, result, log = compile_fn(n, dtype)
    config = (k.forward_config if kernel == "forward" else k.backward_config)(n, dtype.itemsize)
    numbers = _ptxas_numbers(log)
    ptx = result.asm["ptx"]
    loads, stores = _access_bytes(ptx, "ld"), _access_bytes(ptx, "st")
    num_warps = result.metadata.num_warps
    shared = result.metadata.shared
    programs, limit = resident_programs(numbers["registers"], num_warps, shared)
    return KernelReport(
        kernel, dtype_name, n, True, config.block_m, config.block_n, num_warps,
        row_align=k.row_alignment(n), shared=shared,
        load_bytes=max(loads), store_bytes=max(stores),
        loads={b: loads.count(b) for b in sorted(set(loads))},
        programs_per_sm=programs, limited_by=limit,
        launched_per_sm=config.programs_per_sm if kernel == "backward" else 0, **numbers,
    )


def build_report(sizes: list[int] | None = None, dtypes: list[str] | None = None) -> dict:
    """Every (kernel, dtype, N): the rows of the compile report, as a JSON-able dict."""
    import triton

    rows = [asdict(kernel_report(kernel, d, n))
            for kernel in ("forward", "backward") for d in (dtypes or list(DTYPES))
            for n in (sizes or SIZES)]
    return {"target": f"sm_{CAPABILITY}a", "triton": triton.__version__, "torch": torch.__version__,
            "m_rows": M_ROWS, "rows": rows}


def run_in_subprocess(args: list[str] | None = None, timeout: float = 900) -> dict:
    """Build the report in a fresh Python (compiled Triton), e.g. from a notebook or a test that
    runs the interpreter. Returns the dict of `build_report`."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    cmd = [sys.executable, "-m", "lessons_lib.kernels.ptx_report", "--json", "-", *(args or [])]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"ptx_report failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------------------------

HEADER = ["kernel", "dtype", "N", "warps", "regs", "spill B", "smem B", "load B", "programs/SM",
          "limited by"]


def table_rows(report: dict) -> list[list]:
    """The report as table rows (HEADER); unsupported sizes say so."""
    rows = []
    for r in report["rows"]:
        if not r["supported"]:
            rows.append([r["kernel"], r["dtype"], r["n"], "–", "–", "–", "–", "–", "–",
                         "N above the 64 KiB row limit"])
            continue
        spill = r["spill_stores"] + r["spill_loads"]
        programs = str(r["programs_per_sm"])
        if r["kernel"] == "backward":
            programs += f" ({r['launched_per_sm']} launched)"
        rows.append([r["kernel"], r["dtype"], r["n"], r["num_warps"], r["registers"],
                     spill, r["shared"], r["load_bytes"], programs, r["limited_by"]])
    return rows


def format_table(report: dict) -> str:
    rows = [HEADER, *table_rows(report)]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(str(v).rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_data_file(report: dict, path: Path = DATA_FILE) -> None:
    """Store the report as a Python module, so lessons read it without Triton or a GPU."""
    head = {k: v for k, v in report.items() if k != "rows"}
    lines = [
        "# ruff: noqa: E501",
        '"""The compile report of the fused kernels for sm_90a (generated by',
        "`python -m lessons_lib.kernels.ptx_report --write`; do not edit).",
        "",
        "`tests/test_kernel_compile.py` recompiles the kernels and checks that this is up to date.",
        '"""',
        "",
        f"REPORT = {head!r}",
        "REPORT[\"rows\"] = [",
        *[f"    {row!r}," for row in report["rows"]],
        "]",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m lessons_lib.kernels.ptx_report",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON ('-': stdout)")
    parser.add_argument("--write", action="store_true",
                        help=f"store the report in {DATA_FILE.name} (for the lessons and tests)")
    args = parser.parse_args(argv)
    report = build_report(args.sizes, args.dtypes)
    if args.json == "-":
        print(json.dumps(report))
    else:
        print(f"sm_{CAPABILITY}a, Triton {report['triton']}, per thread unless noted")
        print(format_table(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if args.write:
        write_data_file(report)
    return report


if __name__ == "__main__":
    os.environ.pop("TRITON_INTERPRET", None)
    main()
