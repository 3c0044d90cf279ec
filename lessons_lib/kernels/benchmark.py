"""Benchmark the fused residual add + norm and write the results as JSON.

    python -m lessons_lib.kernels.benchmark --out benchmarks/results.json     # or: make bench

With a CUDA GPU (and Triton): forward, backward and forward+backward times of the fused Triton
kernel, PyTorch eager (add, then F.layer_norm or F.rms_norm) and torch.compile of the same
(compiled for each shape on its own: `dynamic=False` and a reset between shapes, so no shape
inherits another's dynamic-shape kernel), each timed twice: launched from Python
(`triton.testing.do_bench`) and replayed from a CUDA graph (`do_bench_cudagraph`, which takes
the launch overhead out). M = 4096 rows for every hidden size N and dtype, and M = 32768 (32k
tokens) for a few. The fused kernel's values and gradients are checked against eager PyTorch's
under the tests' rule (at most twice eager's own error against an fp32 computation, plus a
small tolerance). The device's copy bandwidth, measured in the same run, is the ceiling.

Bandwidth is reported two ways: "effective", the bytes the fused kernel must move
(`bytes_model`, partial sums included) divided by the time, the same numerator for every
implementation, so higher is faster; and "achieved", each implementation's own modelled bytes
(eager's backward reads dy and h twice) divided by its time, where a model exists.

The whole GPU run is sized to finish in under 5 minutes on one H100/H200 (`--budget-s`, default
270 s: shapes left when it is spent are listed as skipped, not silently dropped).

Without a GPU: the bytes-moved model and CPU timings of the PyTorch reference, labelled as such.
No GPU figure is ever estimated.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from lessons_lib.kernels import bytes_model
from lessons_lib.kernels.api import fused_add_norm
from lessons_lib.kernels.triton_support import triton_available
from lessons_lib.normalization import NormKind

SCHEMA = "lessons_lib.kernels.benchmark/2"
HIDDEN_SIZES = [768, 1024, 2048, 4096, 8192, 16384]
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
PASSES = ("forward", "backward", "forward+backward")
LARGE_M = 32768  # 32k tokens
LARGE_M_SIZES = [1024, 4096, 8192]
EPS = 1e-5
TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}
OUTPUTS = ("y", "h", "dx", "dresidual", "dweight", "dbias")


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def model_bytes(m: int, n: int, dtype: torch.dtype, norm: str, pass_: str, impl: str = "fused",
                programs: int = 0) -> int:
    """Bytes one pass over M rows moves (residual present, h in x's dtype, dh coming in)."""
    directions = ("forward", "backward") if pass_ == "forward+backward" else (pass_,)
    return sum(bytes_model.total_bytes(m, n, x_dtype=dtype, norm=norm, impl=impl, direction=d,
                                       programs=programs if d == "backward" else 0)
               for d in directions)


def bytes_model_results(
    hidden_sizes: list[int], dtypes: list[torch.dtype], norm: NormKind = "layernorm"
) -> list[dict]:
    """The bytes-moved model for every (dtype, N), with h in x's dtype and in float32."""
    rows = bytes_model.table(hidden_sizes, dtypes, norm=norm)
    rows += bytes_model.table(hidden_sizes, [d for d in dtypes if d != torch.float32], norm=norm,
                              residual_in_fp32=True)
    return rows


def unfused(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor | None,
            bias: torch.Tensor | None, norm: NormKind = "layernorm",
            eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """PyTorch eager: the add and the norm as two separate operations."""
    h = x + residual
    n = h.shape[-1]
    if norm == "layernorm":
        return F.layer_norm(h, (n,), weight, bias, eps), h
    return F.rms_norm(h, (n,), weight, eps), h


def _inputs(m: int, n: int, dtype: torch.dtype, device: str, norm: str) -> tuple[Any, Any, Any]:
    gen = torch.Generator(device=device).manual_seed(0)

    def randn(*shape: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        t = shift + scale * torch.randn(shape, generator=gen, device=device)
        return t.to(dtype).requires_grad_()

    x, residual = randn(m, n, shift=1.0), randn(m, n, scale=0.5)
    weight = randn(n, scale=0.3, shift=1.0)
    bias = randn(n, scale=0.3) if norm == "layernorm" else None
    leaves = [t for t in (x, residual, weight, bias) if t is not None]
    grads = (torch.randn(m, n, generator=gen, device=device).to(dtype),
             torch.randn(m, n, generator=gen, device=device).to(dtype))  # dy and dh
    return (x, residual, weight, bias), leaves, grads


def _passes(fn: Callable, args: Any, leaves: Any, grads: Any) -> dict[str, Callable[[], object]]:
    """Three closures to time: forward only (no graph), backward only, and both."""

    def forward() -> object:
        with torch.no_grad():
            return fn(*args)

    outputs = fn(*args)

    def backward() -> object:
        return torch.autograd.grad(outputs, leaves, grads, retain_graph=True)

    def both() -> object:
        return torch.autograd.grad(fn(*args), leaves, grads)

    return {"forward": forward, "backward": backward, "forward+backward": both}


Bench = Callable[[Callable[[], object]], float]  # closure -> median milliseconds


def _do_bench(closure: Callable[[], object]) -> float:
    from triton.testing import do_bench

    return do_bench(closure, return_mode="median")


def _do_bench_cudagraph(closure: Callable[[], object]) -> float:
    from triton.testing import do_bench_cudagraph

    return do_bench_cudagraph(closure, return_mode="median")


def copy_bandwidth_gbps(
    device: str = "cuda", nbytes: int = 1 << 30, bench: Bench = _do_bench
) -> float:
    """Read + write bandwidth of a large device-to-device copy (the ceiling for our kernels)."""
    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src))
    return 2 * nbytes / (ms * 1e-3) / 1e9


def _fused_programs(n: int, dtype: torch.dtype, device: str, m: int) -> int:
    """The backward's grid (for the partial sums in the bytes model)."""
    if device != "cuda":
        return 0
    from lessons_lib.kernels import fused_add_norm_triton as k

    config = k.backward_config(n, dtype.itemsize)
    tiles = -(-m // config.block_m)
    return min(tiles, k.num_programs(torch.device(device), config.programs_per_sm))


def check_against_eager(args: Any, grads: Any, norm: NormKind) -> dict:
    """The fused kernel's six outputs against eager PyTorch's, each measured against an fp32
    computation from the same inputs: ok if fused error <= 2 x eager's + tolerance."""
    x, residual, weight, bias = args
    dtype = x.dtype

    def outputs(fn: Callable, tensors: Any) -> list[torch.Tensor]:
        leaves = [t.detach().clone().requires_grad_() for t in tensors if t is not None]
        it = iter(leaves)
        call = [next(it) if t is not None else None for t in tensors]
        y, h = fn(*call)
        dy, dh = (g.to(y.dtype) for g in grads)
        return [y, h, *torch.autograd.grad((y, h), leaves, (dy, dh))]

    def fused(x: Any, r: Any, w: Any, b: Any) -> Any:
        return fused_add_norm(x, r, w, b, eps=EPS, norm=norm, backend="triton")

    def eager(x: Any, r: Any, w: Any, b: Any) -> Any:
        return unfused(x, r, w, b, norm)

    got = outputs(fused, args)
    own = outputs(eager, args)
    ref = outputs(eager, [None if t is None else t.detach().float() for t in args])
    result: dict[str, Any] = {"ok": True}
    for name, g, e, r in zip(OUTPUTS, got, own, ref, strict=False):
        err = (g.float() - r).abs().max().item()
        err_eager = (e.float() - r).abs().max().item()
        peak = r.abs().max().item()
        tol = 2 * err_eager + TOLERANCE[dtype] * max(1.0, peak)
        if dtype == torch.bfloat16 and peak > 0:
            tol += 2.0 ** (math.floor(math.log2(peak)) - 7)  # one bf16 ulp
        result[name] = {"max_abs_err": err, "eager_max_abs_err": err_eager}
        result["ok"] = result["ok"] and err <= tol
    return result


def _shapes(hidden_sizes: list[int], dtypes: list[torch.dtype], m: int, large_m: int,
            large_m_sizes: list[int]) -> list[tuple[int, torch.dtype, int]]:
    """(M, dtype, N) in the order they are measured: every N at M rows, then the large M."""
    shapes = [(m, dtype, n) for dtype in dtypes for n in hidden_sizes]
    if large_m:
        shapes += [(large_m, dtype, n) for dtype in dtypes[:1] for n in large_m_sizes]
    return shapes


def gpu_results(
    m: int, hidden_sizes: list[int], dtypes: list[torch.dtype], norm: NormKind, compile_: bool,
    device: str = "cuda", bench: Bench = _do_bench, bench_graph: Bench | None = _do_bench_cudagraph,
    copy_bytes: int = 1 << 30, large_m: int = LARGE_M, large_m_sizes: list[int] | None = None,
    budget_s: float = 270.0,
) -> dict:
    """Time every implementation on `device`; medians from `bench` (and `bench_graph`, CUDA
    graphs; None skips it).

    The tests run it with device="cpu" (the Triton kernel in the interpreter) and a plain timer,
    so that the code path that fills the GPU table is exercised without a GPU.
    """
    start = time.perf_counter()
    results, errors, checks, skipped = [], [], [], []
    for i, shape in enumerate(_shapes(hidden_sizes, dtypes, m, large_m,
                                      large_m_sizes or LARGE_M_SIZES)):
        rows, dtype, n = shape
        if i > 0 and time.perf_counter() - start > budget_s:
            skipped.append({"m": rows, "dtype": _dtype_name(dtype), "n": n})
            continue
        impls: dict[str, Callable] = {
            "fused_triton": lambda x, r, w, b: fused_add_norm(
                x, r, w, b, eps=EPS, norm=norm, backend="triton"
            ),
            "torch_eager": lambda x, r, w, b: unfused(x, r, w, b, norm),
        }
        if compile_ and rows == m:
            torch._dynamo.reset()  # a fresh compile for this shape, not a dynamic one
            def eager_to_compile(x: Any, r: Any, w: Any, b: Any) -> Any:
                return unfused(x, r, w, b, norm)

            impls["torch_compile"] = torch.compile(eager_to_compile, dynamic=False)
        args, leaves, grads = _inputs(rows, n, dtype, device, norm)
        checks.append({"m": rows, "dtype": _dtype_name(dtype), "n": n,
                       **check_against_eager(args, grads, norm)})
        programs = _fused_programs(n, dtype, device, rows)
        timers = {"python": bench, "cuda_graph": bench_graph}
        for name, fn in impls.items():
            for timer_name, timer in timers.items():
                if timer is None:
                    continue
                try:
                    for pass_, closure in _passes(fn, args, leaves, grads).items():
                        ms = timer(closure)
                        fused_bytes = model_bytes(rows, n, dtype, norm, pass_, "fused", programs)
                        own = {"fused_triton": "fused", "torch_eager": "eager"}.get(name)
                        achieved = None
                        if own is not None:
                            own_bytes = model_bytes(rows, n, dtype, norm, pass_, own, programs)
                            achieved = own_bytes / (ms * 1e-3) / 1e9
                        results.append({
                            "impl": name, "timer": timer_name, "dtype": _dtype_name(dtype),
                            "n": n, "m": rows, "pass": pass_, "ms": ms,
                            "gbps": fused_bytes / (ms * 1e-3) / 1e9, "gbps_achieved": achieved,
                        })
                except Exception as err:  # record and go on: one failure must not lose the rest
                    message = f"{type(err).__name__}: {err}"[:500]
                    errors.append({"impl": name, "timer": timer_name, "dtype": _dtype_name(dtype),
                                   "n": n, "m": rows, "error": message})
        del args, leaves, grads, impls
        if device == "cuda":
            torch.cuda.empty_cache()
    return {
        "device": torch.cuda.get_device_name() if device == "cuda" else device,
        "copy_bandwidth_gbps": copy_bandwidth_gbps(device, copy_bytes, bench),
        "bandwidth_definition": "gbps: bytes the fused kernel moves (bytes_model, residual and "
                                "dh present, partial sums included) / median time, for every "
                                "implementation; gbps_achieved: the implementation's own "
                                "modelled bytes (eager: PyTorch's two-kernel LayerNorm "
                                "backward) / its time",
        "results": results,
        "errors": errors,
        "checks_vs_eager": checks,
        "skipped_for_time": skipped,
        "elapsed_s": time.perf_counter() - start,
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
    m: int, hidden_sizes: list[int], dtypes: list[torch.dtype], norm: NormKind, repeats: int
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
    dtypes: list[torch.dtype] | None = None, norm: NormKind = "layernorm", compile_: bool = True,
    repeats: int = 5, large_m: int = LARGE_M, budget_s: float = 270.0, cuda_graphs: bool = True,
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
        "config": {"m": m, "large_m": large_m, "cpu_m": cpu_m, "hidden_sizes": hidden_sizes,
                   "norm": norm, "dtypes": [_dtype_name(d) for d in dtypes]},
        "bytes_model": {
            "note": "bytes per row moved by the fused kernel, an ideal unfused add + norm and "
                    "PyTorch eager (whose LayerNorm backward reads dy and h twice) "
                    "(lessons_lib.kernels.bytes_model); a model, not a measurement",
            "rows": bytes_model_results(hidden_sizes, dtypes, norm),
        },
        "gpu": None,
        "cpu_reference": None,
    }
    if has_gpu and triton_version is not None:
        report["gpu"] = gpu_results(
            m, hidden_sizes, dtypes, norm, compile_, large_m=large_m, budget_s=budget_s,
            bench_graph=_do_bench_cudagraph if cuda_graphs else None,
        )
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
    parser.add_argument("--large-rows", type=int, default=LARGE_M,
                        help=f"the large M, measured for a few N (default {LARGE_M}; 0: skip)")
    parser.add_argument("--cpu-rows", type=int, default=256, help="M on the CPU (default 256)")
    parser.add_argument("--sizes", type=int, nargs="+", default=HIDDEN_SIZES, help="hidden sizes N")
    parser.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--norm", default="layernorm", choices=["layernorm", "rmsnorm"])
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="skip CUDA-graph timings")
    parser.add_argument("--budget-s", type=float, default=270.0,
                        help="stop starting new shapes after this many seconds (default 270)")
    parser.add_argument("--repeats", type=int, default=5, help="CPU timing repeats")
    args = parser.parse_args(argv)
    report = run(
        m=args.rows, cpu_m=args.cpu_rows, hidden_sizes=args.sizes,
        dtypes=[DTYPES[d] for d in args.dtypes], norm=cast(NormKind, args.norm),
        compile_=not args.no_compile,
        repeats=args.repeats, large_m=args.large_rows, budget_s=args.budget_s,
        cuda_graphs=not args.no_cuda_graphs,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    where = report["gpu"]["device"] if report["gpu"] else report["gpu_missing"]
    print(f"wrote {args.out} ({where})")
    return report


if __name__ == "__main__":
    main()
