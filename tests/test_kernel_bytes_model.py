"""The bytes-moved model and the benchmark command (its CPU path, and its GPU path driven through
Triton's interpreter with a plain timer: no GPU here)."""

from __future__ import annotations

import json

import pytest
import torch

from lessons_lib.kernels import benchmark, bytes_model


def test_fused_forward_moves_each_tensor_once():
    # x, residual read; h, y written (2 bytes each in fp16); mean and rstd 4 bytes each
    n = 1024
    assert bytes_model.bytes_per_row(n, x_dtype=torch.float16) == 4 * 2 * n + 8
    # unfused: the add writes h and the norm reads it back; eager's forward is the same
    for impl in ("unfused", "eager"):
        assert bytes_model.bytes_per_row(n, x_dtype=torch.float16, impl=impl) == 5 * 2 * n + 8
    # RMSNorm has no mean
    assert bytes_model.bytes_per_row(n, x_dtype=torch.float16, norm="rmsnorm") == 8 * n + 4


def test_backward_counts():
    n = 256
    kw = {"x_dtype": torch.bfloat16, "direction": "backward"}
    # fused: read dy, h, dh; write dx, which is also dresidual (same dtype); read mean and rstd
    assert bytes_model.bytes_per_row(n, **kw) == 4 * 2 * n + 8
    # ideal unfused: norm bwd reads dy, h and writes dh_norm; accumulate reads 2 and writes 1
    assert bytes_model.bytes_per_row(n, impl="unfused", **kw) == 6 * 2 * n + 8
    # eager: PyTorch's weight/bias-gradient kernel reads dy and h (and the stats) again
    assert bytes_model.bytes_per_row(n, impl="eager", **kw) == 8 * 2 * n + 16
    # fp32 stream: h, dh and a separate dresidual are 4 bytes; unfused needs a cast for dx
    fp32 = bytes_model.bytes_per_row(n, residual_dtype=torch.float32, **kw)
    assert fp32 == (2 + 4 + 4 + 2 + 4) * n + 8


def test_eager_makes_more_passes_than_the_ideal_unfused_kernel():
    """fp16, forward + backward, relative to the fused kernel: the ideal unfused add + norm
    moves 22/16 = 1.375x the bytes, PyTorch eager 26/16 = 1.625x (at equal bandwidth)."""
    (row,) = bytes_model.table([4096], [torch.float16])
    assert row["ratio_unfused"] == pytest.approx(22 / 16, rel=1e-3)
    assert row["ratio_eager"] == pytest.approx(26 / 16, rel=1e-3)


def test_partial_sums_are_counted_per_call():
    """The backward's fp32 partials: programs x N x 4 bytes per parameter, written and read. At
    M = 4096, fp16, N = 4096 and 264 programs (2 per SM of an H100) that is 12.9 % of the
    backward's row traffic (4224 N against 4096 x 8 N bytes); the kernel launches 132."""
    n, m, programs = 4096, 4096, 264
    kw = {"x_dtype": torch.float16, "direction": "backward"}
    per_call = bytes_model.per_call_bytes(n, programs=programs, **kw)
    params = 2 * n * 2 * 2  # weight and bias read, their gradients written
    assert per_call == params + 2 * programs * n * 4 * 2
    rows = m * bytes_model.bytes_per_row(n, **kw)
    assert 0.128 < (per_call - params) / rows < 0.130
    assert bytes_model.total_bytes(m, n, programs=programs, **kw) == rows + per_call
    assert bytes_model.per_call_bytes(n, impl="eager", **kw) == params  # no partial buffer


def test_without_residual_fusion_saves_nothing():
    for direction in ("forward", "backward"):
        kw = {"x_dtype": torch.float32, "has_residual": False, "direction": direction,
              "has_dresidual": False}
        fused = bytes_model.bytes_per_row(64, **kw)
        assert fused == bytes_model.bytes_per_row(64, impl="unfused", **kw)


def test_table_and_errors():
    rows = bytes_model.table([768, 4096], [torch.float16, torch.float32])
    assert len(rows) == 4
    for row in rows:
        assert row["forward_fused"] < row["forward_unfused"] <= row["forward_eager"]
        assert row["backward_fused"] < row["backward_unfused"] < row["backward_eager"]
        assert 0.25 < row["saving_total"] < 0.3
    with pytest.raises(ValueError, match="n"):
        bytes_model.bytes_per_row(0)
    with pytest.raises(TypeError, match="dtype"):
        bytes_model.bytes_per_row(8, x_dtype=torch.int32)
    with pytest.raises(ValueError, match="direction"):
        bytes_model.bytes_per_row(8, direction="sideways")
    with pytest.raises(ValueError, match="impl"):
        bytes_model.bytes_per_row(8, impl="magic")


def test_benchmark_command_writes_json_without_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "sub" / "results.json"
    benchmark.main(["--out", str(out), "--sizes", "64", "128", "--dtypes", "fp32", "bf16",
                    "--cpu-rows", "8", "--repeats", "1"])
    report = json.loads(out.read_text())
    assert report["schema"] == benchmark.SCHEMA
    assert report["gpu"] is None and "no GPU figures" in report["gpu_missing"]
    assert {r["n"] for r in report["bytes_model"]["rows"]} == {64, 128}
    cpu = report["cpu_reference"]
    assert "not the Triton kernel, not a GPU" in cpu["note"]
    assert len(cpu["results"]) == 2 * 2 * 2 * 3  # sizes x dtypes x impls x passes
    assert all(r["ms"] > 0 for r in cpu["results"])


def _plain(closure):
    return benchmark._time_cpu(closure, repeats=1)


def test_gpu_table_code_path_runs_in_the_interpreter():
    """The code that fills the GPU table, driven on the CPU: the Triton kernel in the interpreter,
    a plain timer for both timers, a small "large M". Catches a broken GPU path before anyone
    has a GPU."""
    pytest.importorskip("triton")
    sizes, dtypes = [16, 33], [torch.float32, torch.bfloat16]
    gpu = benchmark.gpu_results(
        4, sizes, dtypes, "layernorm", compile_=False, device="cpu", bench=_plain,
        bench_graph=_plain, copy_bytes=1 << 20, large_m=8, large_m_sizes=[16],
    )
    assert gpu["errors"] == [] and gpu["skipped_for_time"] == []
    assert gpu["device"] == "cpu" and gpu["copy_bandwidth_gbps"] > 0
    shapes = 2 * 2 + 1  # dtypes x sizes, and one large-M shape
    assert len(gpu["results"]) == shapes * 2 * 2 * 3  # impls x timers x passes
    assert {r["impl"] for r in gpu["results"]} == {"fused_triton", "torch_eager"}
    assert {r["timer"] for r in gpu["results"]} == {"python", "cuda_graph"}
    assert {r["m"] for r in gpu["results"]} == {4, 8}
    assert all(r["ms"] > 0 and r["gbps"] > 0 and r["gbps_achieved"] > 0 for r in gpu["results"])
    for r in gpu["results"]:  # effective bandwidth = the fused kernel's modelled bytes / time
        nbytes = benchmark.model_bytes(r["m"], r["n"], getattr(torch, r["dtype"]), "layernorm",
                                       r["pass"])
        assert r["gbps"] == pytest.approx(nbytes / (r["ms"] * 1e-3) / 1e9)
    assert len(gpu["checks_vs_eager"]) == shapes
    for c in gpu["checks_vs_eager"]:
        assert c["ok"], c
        assert set(c) >= {"y", "h", "dx", "dresidual", "dweight", "dbias"}


def test_check_against_eager_can_fail(monkeypatch):
    pytest.importorskip("triton")
    args, _, grads = benchmark._inputs(8, 32, torch.float32, "cpu", "layernorm")
    assert benchmark.check_against_eager(args, grads, "layernorm")["ok"]
    real = benchmark.fused_add_norm

    def off_by_a_little(*a, **kw):
        y, h = real(*a, **kw)
        return y * 1.001, h

    monkeypatch.setattr(benchmark, "fused_add_norm", off_by_a_little)
    assert not benchmark.check_against_eager(args, grads, "layernorm")["ok"]


def test_torch_compile_baseline_is_compiled_per_shape(monkeypatch):
    """Each shape gets its own torch.compile (dynamic=False, after a reset): no recompile limit,
    no dynamic-shape kernel shared between sizes."""
    pytest.importorskip("triton")
    resets, compiles = [], []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: resets.append(1))

    def fake_compile(fn, **kwargs):
        compiles.append(kwargs)
        return fn  # eager stands in for the compiled function: the bookkeeping is what's tested

    monkeypatch.setattr(torch, "compile", fake_compile)
    gpu = benchmark.gpu_results(
        2, [8, 16], [torch.float32], "rmsnorm", compile_=True, device="cpu", bench=_plain,
        bench_graph=None, copy_bytes=1 << 16, large_m=0,
    )
    assert len(resets) == len(compiles) == 2
    assert all(kw == {"dynamic": False} for kw in compiles)
    assert {r["impl"] for r in gpu["results"]} == {"fused_triton", "torch_eager", "torch_compile"}


def test_time_budget_skips_and_lists_the_rest():
    pytest.importorskip("triton")
    gpu = benchmark.gpu_results(
        2, [8, 16, 24], [torch.float32], "layernorm", compile_=False, device="cpu", bench=_plain,
        bench_graph=None, copy_bytes=1 << 16, large_m=0, budget_s=0.0,
    )
    assert len(gpu["skipped_for_time"]) == 2  # the first shape always runs
    assert {s["n"] for s in gpu["skipped_for_time"]} == {16, 24}


def test_a_failing_implementation_is_recorded_not_fatal(monkeypatch):
    pytest.importorskip("triton")

    real = benchmark.fused_add_norm
    calls = {"n": 0}

    def fused_then_broken(*args, **kwargs):
        calls["n"] += 1  # the correctness check runs first; the timed passes then fail
        if calls["n"] > 1:
            raise RuntimeError("out of registers")
        return real(*args, **kwargs)

    monkeypatch.setattr(benchmark, "fused_add_norm", fused_then_broken)
    gpu = benchmark.gpu_results(
        2, [8], [torch.float32], "rmsnorm", compile_=False, device="cpu", bench=_plain,
        bench_graph=None, copy_bytes=1 << 16, large_m=0,
    )
    assert [e["impl"] for e in gpu["errors"]] == ["fused_triton"]
    assert "RuntimeError: out of registers" in gpu["errors"][0]["error"]
    assert {r["impl"] for r in gpu["results"]} == {"torch_eager"}
