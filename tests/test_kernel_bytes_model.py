"""The bytes-moved model and the benchmark command (its CPU path: no GPU here)."""

from __future__ import annotations

import json

import pytest
import torch

from lessons_lib.kernels import benchmark, bytes_model


def test_fused_forward_moves_each_tensor_once():
    # x, residual read; h, y written (2 bytes each in fp16); mean and rstd 4 bytes each
    n = 1024
    assert bytes_model.bytes_per_row(n, x_dtype=torch.float16) == 4 * 2 * n + 8
    # unfused: the add writes h and the norm reads it back
    assert bytes_model.bytes_per_row(n, x_dtype=torch.float16, fused=False) == 5 * 2 * n + 8
    # RMSNorm has no mean
    assert bytes_model.bytes_per_row(n, x_dtype=torch.float16, norm="rmsnorm") == 8 * n + 4


def test_backward_counts():
    n = 256
    kw = {"x_dtype": torch.bfloat16, "direction": "backward"}
    # fused: read dy, h, dh; write dx and dresidual; read mean and rstd
    assert bytes_model.bytes_per_row(n, **kw) == 5 * 2 * n + 8
    # unfused: norm bwd reads dy, h and writes dh_norm; accumulate reads 2 and writes 1
    assert bytes_model.bytes_per_row(n, fused=False, **kw) == 6 * 2 * n + 8
    # fp32 stream: h, dh, dresidual are 4 bytes; unfused needs a cast for dx
    fp32 = bytes_model.bytes_per_row(n, residual_dtype=torch.float32, **kw)
    assert fp32 == (2 + 4 + 4 + 2 + 4) * n + 8


def test_without_residual_fusion_saves_nothing():
    for direction in ("forward", "backward"):
        kw = {"x_dtype": torch.float32, "has_residual": False, "direction": direction,
              "has_dresidual": False}
        fused = bytes_model.bytes_per_row(64, **kw)
        assert fused == bytes_model.bytes_per_row(64, fused=False, **kw)


def test_table_and_errors():
    rows = bytes_model.table([768, 4096], [torch.float16, torch.float32])
    assert len(rows) == 4
    for row in rows:
        assert row["forward_fused"] < row["forward_unfused"]
        assert 0.15 < row["saving_total"] < 0.25
    with pytest.raises(ValueError, match="n"):
        bytes_model.bytes_per_row(0)
    with pytest.raises(TypeError, match="dtype"):
        bytes_model.bytes_per_row(8, x_dtype=torch.int32)
    with pytest.raises(ValueError, match="direction"):
        bytes_model.bytes_per_row(8, direction="sideways")


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


def test_gpu_table_code_path_runs_in_the_interpreter():
    # The code that fills the GPU table, driven on the CPU: the Triton kernel in the interpreter,
    # a plain timer instead of do_bench. Catches a broken GPU path before anyone has a GPU.
    pytest.importorskip("triton")
    sizes, dtypes = [16, 33], [torch.float32, torch.bfloat16]
    gpu = benchmark.gpu_results(
        4, sizes, dtypes, "layernorm", compile_=False, device="cpu",
        bench=lambda closure: benchmark._time_cpu(closure, repeats=1), copy_bytes=1 << 20,
    )
    assert gpu["errors"] == []
    assert gpu["device"] == "cpu" and gpu["copy_bandwidth_gbps"] > 0
    assert len(gpu["results"]) == 2 * 2 * 2 * 3  # impls x dtypes x sizes x passes
    assert {r["impl"] for r in gpu["results"]} == {"fused_triton", "torch_eager"}
    assert all(r["ms"] > 0 and r["gbps"] > 0 for r in gpu["results"])
    for r in gpu["results"]:  # effective bandwidth = modelled bytes / time
        nbytes = 4 * benchmark.model_bytes_per_row(r["n"], getattr(torch, r["dtype"]),
                                                    "layernorm", r["pass"])
        assert r["gbps"] == pytest.approx(nbytes / (r["ms"] * 1e-3) / 1e9)
    assert len(gpu["checks_vs_eager"]) == 4
    for c in gpu["checks_vs_eager"]:
        # |y|, |h| < 16 here, where one bf16 ulp (8 significant bits) is at most 2**-4
        tol = 2.0**-4 if c["dtype"] == "bfloat16" else 1e-5
        assert c["max_abs_diff_y"] <= tol and c["max_abs_diff_h"] <= tol


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
        2, [8], [torch.float32], "rmsnorm", compile_=False, device="cpu",
        bench=lambda closure: benchmark._time_cpu(closure, repeats=1), copy_bytes=1 << 16,
    )
    assert [e["impl"] for e in gpu["errors"]] == ["fused_triton"]
    assert "RuntimeError: out of registers" in gpu["errors"][0]["error"]
    assert {r["impl"] for r in gpu["results"]} == {"torch_eager"}
