"""Benchmark the fused residual add + norm and write the results as JSON.

    python -m lessons_lib.kernels.benchmark --out benchmarks/results.json

With a CUDA GPU (and Triton): forward, backward and forward+backward times of the fused Triton
kernel, PyTorch eager (add, then F.layer_norm or F.rms_norm) and torch.compile of the same, for
M rows and each hidden size N and dtype; and the device's copy bandwidth, measured in the same
run, as the ceiling. Bandwidth is "effective": the bytes a fused kernel must move (the model in
`bytes_model`) divided by the time, for every implementation, so a higher number is faster.

Without a GPU: the bytes-moved model (fused vs unfused, bytes per row, per dtype) and CPU timings
of the PyTorch reference, labelled as such. No GPU figure is ever estimated.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.nn.functional as F

from lessons_lib.kernels import bytes_model
from lessons_lib.kernels.api import fused_add_norm
from lessons_lib.kernels.triton_support import triton_available

SCHEMA = "lessons_lib.kernels.benchmark/1"
HIDDEN_SIZES = [768, 1024, 2048, 4096, 8192, 16384]
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
PASSES = ("forward", "backward", "forward+backward")
EPS = 1e-5


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def model_bytes_per_row(n: int, dtype: torch.dtype, norm: str, pass_: str) -> int:
    """Bytes per row a fused kernel moves (residual present, h in x's dtype, dh coming in)."""
    fwd = bytes_model.bytes_per_row(n, x_dtype=dtype, norm=norm, direction="forward")
    bwd = bytes_model.bytes_per_row(n, x_dtype=dtype, norm=norm, direction="backward")
    return {"forward": fwd, "backward": bwd, "forward+backward": fwd + bwd}[pass_]


def bytes_model_results(
    hidden_sizes: list[int], dtypes: list[torch.dtype], norm: str = "layernorm"
) -> list[dict]:
    """The bytes-moved model for every (dtype, N), with h in x's dtype and in float32."""
    rows = bytes_model.table(hidden_sizes, dtypes, norm=norm)
    rows += bytes_model.table(hidden_sizes, [d for d in dtypes if d != torch.float32], norm=norm,
                              residual_in_fp32=True)
    return rows


def unfused(x, residual, weight, bias, norm: str = "layernorm", eps: float = 1e-5):
    """PyTorch eager: the add and the norm as two separate operations."""
    h = x + residual
    n = h.shape[-1]
    if norm == "layernorm":
        return F.layer_norm(h, (n,), weight, bias, eps), h
    return F.rms_norm(h, (n,), weight, eps), h


def _inputs(m: int, n: int, dtype: torch.dtype, device: str, norm: str):
    gen = torch.Generator(device=device).manual_seed(0)

    def randn(*shape):
        return torch.randn(shape, generator=gen, device=device, dtype=dtype, requires_grad=True)

    x, residual = randn(m, n), randn(m, n)
    weight = randn(n)
    bias = randn(n) if norm == "layernorm" else None
    leaves = [t for t in (x, residual, weight, bias) if t is not None]
    grads = (torch.randn_like(x), torch.randn_like(x))  # dy and dh
    return (x, residual, weight, bias), leaves, grads


def _passes(fn: Callable, args, leaves, grads) -> dict[str, Callable[[], object]]:
    """Three closures to time: forward only (no graph), backward only, and both."""

    def forward():
        with torch.no_grad():
            return fn(*args)

    outputs = fn(*args)

    def backward():
        return torch.autograd.grad(outputs, leaves, grads, retain_graph=True)

    def both():
        return torch.autograd.grad(fn(*args), leaves, grads)

    return {"forward": forward, "backward": backward, "forward+backward": both}


Bench = Callable[[Callable[[], object]], float]  # closure -> median milliseconds


def _do_bench(closure: Callable[[], object]) -> float:
    from triton.testing import do_bench

    return do_bench(closure, return_mode="median")


def copy_bandwidth_gbps(
    device: str = "cuda", nbytes: int = 1 << 30, bench: Bench = _do_bench
) -> float:
    """Read + write bandwidth of a large device-to-device copy (the ceiling for our kernels)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src))
    return 2 * nbytes / (ms * 1e-3) / 1e9


def gpu_results(
    m: int, hidden_sizes: list[int], dtypes: list[torch.dtype], norm: str, compile_: bool,
    device: str = "cuda", bench: Bench = _do_bench, copy_bytes: int = 1 << 30,
) -> dict:
    """Time every implementation on `device`; medians from `bench` (Triton's do_bench).

    The tests run it with device="cpu" (the Triton kernel in the interpreter) and a plain timer,
    so that the code path that fills the GPU table is exercised without a GPU.
    """
    impls: dict[str, Callable] = {
        "fused_triton": lambda x, r, w, b: fused_add_norm(
            x, r, w, b, eps=EPS, norm=norm, backend="triton"
        ),
        "torch_eager": lambda x, r, w, b: unfused(x, r, w, b, norm),
    }
    if compile_:
        impls["torch_compile"] = torch.compile(lambda x, r, w, b: unfused(x, r, w, b, norm))
    results, errors, checks = [], [], []
    for dtype in dtypes:
        for n in hidden_sizes:
            args, leaves, grads = _inputs(m, n, dtype, device, norm)
            with torch.no_grad():  # the Triton kernel's answer, next to eager PyTorch's
                (y, h), (y_ref, h_ref) = impls["fused_triton"](*args), unfused(*args, norm)
                checks.append({"dtype": _dtype_name(dtype), "n": n,
                               "max_abs_diff_y": (y.float() - y_ref.float()).abs().max().item(),
                               "max_abs_diff_h": (h.float() - h_ref.float()).abs().max().item()})
            for name, fn in impls.items():
                try:
                    for pass_, closure in _passes(fn, args, leaves, grads).items():
                        ms = bench(closure)
                        nbytes = m * model_bytes_per_row(n, dtype, norm, pass_)
                        results.append({
                            "impl": name, "dtype": _dtype_name(dtype), "n": n, "m": m,
                            "pass": pass_, "ms": ms, "gbps": nbytes / (ms * 1e-3) / 1e9,
                        })
                except Exception as err:  # record and go on: one failure must not lose the rest
                    errors.append({"impl": name, "dtype": _dtype_name(dtype), "n": n,
                                   "error": f"{type(err).__name__}: {err}"[:500]})
            del args, leaves, grads
            if device == "cuda":
                torch.cuda.empty_cache()
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else device,
        "copy_bandwidth_gbps": copy_bandwidth_gbps(device, copy_bytes, bench),
        "bandwidth_definition": "bytes a fused kernel moves (bytes_model, residual present, "
                                "dh present) / median time, for every implementation",
        "results": results,
        "errors": errors,
        "checks_vs_eager": checks,
    }


def _time_cpu(closure: Callable[[], object], repeats: int) -> float:
    closure()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        closure()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def cpu_results(
    m: int, hidden_sizes: list[int], dtypes: list[torch.dtype], norm: str, repeats: int
) -> dict:
    """Wall-clock times on the CPU of the reference backend and the unfused eager code."""
    impls: dict[str, Callable] = {
        "reference": lambda x, r, w, b: fused_add_norm(
            x, r, w, b, eps=EPS, norm=norm, backend="reference"
        ),
        "torch_eager": lambda x, r, w, b: unfused(x, r, w, b, norm),
    }
    results = []
    for dtype in dtypes:
        for n in hidden_sizes:
            args, leaves, grads = _inputs(m, n, dtype, "cpu", norm)
            for name, fn in impls.items():
                for pass_, closure in _passes(fn, args, leaves, grads).items():
                    ms = _time_cpu(closure, repeats)
                    results.append({"impl": name, "dtype": _dtype_name(dtype), "n": n, "m": m,
                                    "pass": pass_, "ms": ms})
    return {
        "note": "CPU wall-clock times of plain PyTorch code (not the Triton kernel, not a GPU); "
                f"{torch.get_num_threads()} threads; median of {repeats} runs",
        "processor": platform.processor() or platform.machine(),
        "results": results,
    }


def run(
    *, m: int = 4096, cpu_m: int = 256, hidden_sizes: list[int] | None = None,
    dtypes: list[torch.dtype] | None = None, norm: str = "layernorm", compile_: bool = True,
    repeats: int = 5,
) -> dict:
    """Everything the JSON file holds, as a dict."""
    hidden_sizes = hidden_sizes or HIDDEN_SIZES
    dtypes = dtypes or list(DTYPES.values())
    has_gpu = torch.cuda.is_available()
    triton_version = None
    if triton_available():
        import triton

        triton_version = triton.__version__
    report = {
        "schema": SCHEMA,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "environment": {
            "python": platform.python_version(), "torch": torch.__version__,
            "triton": triton_version, "platform": platform.platform(), "cuda_gpu": has_gpu,
        },
        "config": {"m": m, "cpu_m": cpu_m, "hidden_sizes": hidden_sizes, "norm": norm,
                   "dtypes": [_dtype_name(d) for d in dtypes]},
        "bytes_model": {
            "note": "bytes per row moved by an ideal fused kernel and by the unfused add + norm "
                    "(lessons_lib.kernels.bytes_model); a model, not a measurement",
            "rows": bytes_model_results(hidden_sizes, dtypes, norm),
        },
        "gpu": None,
        "cpu_reference": None,
    }
    if has_gpu and triton_version is not None:
        report["gpu"] = gpu_results(m, hidden_sizes, dtypes, norm, compile_)
    else:
        report["gpu_missing"] = ("no CUDA GPU" if not has_gpu else "Triton is not installed") + (
            ": no GPU figures were measured"
        )
    report["cpu_reference"] = cpu_results(cpu_m, hidden_sizes, dtypes, norm, repeats)
    return report


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m lessons_lib.kernels.benchmark", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--rows", type=int, default=4096, help="M on the GPU (default 4096)")
    parser.add_argument("--cpu-rows", type=int, default=256, help="M on the CPU (default 256)")
    parser.add_argument("--sizes", type=int, nargs="+", default=HIDDEN_SIZES, help="hidden sizes N")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--norm", default="layernorm", choices=["layernorm", "rmsnorm"])
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--repeats", type=int, default=5, help="CPU timing repeats")
    args = parser.parse_args(argv)
    report = run(
        m=args.rows, cpu_m=args.cpu_rows, hidden_sizes=args.sizes,
        dtypes=[DTYPES[d] for d in args.dtypes], norm=args.norm, compile_=not args.no_compile,
        repeats=args.repeats,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    where = report["gpu"]["device"] if report["gpu"] else report["gpu_missing"]
    print(f"wrote {args.out} ({where})")
    return report


if __name__ == "__main__":
    main()
