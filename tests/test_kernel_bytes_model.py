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
