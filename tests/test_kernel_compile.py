"""The kernels compile for an H100 (sm_90a) without a GPU, and the compile report holds.

Triton compiles ahead of time here, with the specialization its JIT gives the launchers'
arguments (`ptx_report`). The interpreter accepts some code the compiler rejects (and the other
way round), so this catches what the interpreter tests cannot: type errors in compiled mode,
None pointers, 64-bit loop bounds; and it reads what ptxas reports: no register spills, 16-byte
vector loads, programs per SM. Compiled Triton cannot share a process with the interpreter the
other kernel tests use, so everything runs in one subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from lessons_lib.kernels import triton_available
from lessons_lib.kernels.compile_report_data import REPORT

# Not pytest.importorskip: importing Triton here, in compiled mode, would stop the other kernel
# test modules from switching the interpreter on.
pytestmark = pytest.mark.skipif(not triton_available(), reason="Triton is not installed")

SCRIPT = textwrap.dedent("""
    import json, os
    os.environ.pop("TRITON_INTERPRET", None)
    import torch
    from lessons_lib.kernels import ptx_report as R
    from lessons_lib.kernels import fused_add_norm_triton as k

    assert not hasattr(k.fused_add_norm_fwd_kernel, "rewrite"), "interpreter is on"
    out = {"report": R.build_report(),
           "do_not_specialize": {kern.fn.__name__: sorted(map(str, kern.do_not_specialize))
                                 for kern in (k.fused_add_norm_fwd_kernel,
                                              k.fused_add_norm_bwd_kernel)},
           "variants": []}
    # Other specializations: no optional tensor, RMSNorm, an fp32 stream, N = 1000
    for n, dtype, norm, res, full in ((1000, torch.float16, "rmsnorm", None, False),
                                      (768, torch.bfloat16, "layernorm", torch.float32, True),
                                      (4096, torch.float32, "rmsnorm", None, False),
                                      (200, torch.bfloat16, "rmsnorm", torch.float32, False)):
        for fn in (R.compile_forward, R.compile_backward):
            _, compiled, log = fn(n, dtype, norm=norm, residual_dtype=res, full=full)
            ptx = compiled.asm["ptx"]
            out["variants"].append({"kernel": fn.__name__, "n": n, "atomics": "atom." in ptx,
                                    "target": ".target sm_90a" in ptx,
                                    **R._ptxas_numbers(log)})
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    env = {**os.environ, "TRITON_CACHE_DIR": str(tmp_path_factory.mktemp("triton-cache"))}
    env.pop("TRITON_INTERPRET", None)
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=env, timeout=900)
    if result.returncode != 0 and "No module named 'triton.backends.nvidia" in result.stderr:
        pytest.skip("this Triton build has no NVIDIA backend")
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _rows(report, kernel):
    return [r for r in report["rows"] if r["kernel"] == kernel and r["supported"]]


def test_every_specialization_compiles_without_atomics(compiled):
    assert len(compiled["variants"]) == 8
    for v in compiled["variants"]:
        assert v["target"] and not v["atomics"], v
        assert v["spill_stores"] == 0, v


def test_batch_size_does_not_recompile(compiled):
    assert compiled["do_not_specialize"]["fused_add_norm_fwd_kernel"] == ["M"]
    assert compiled["do_not_specialize"]["fused_add_norm_bwd_kernel"] == ["M", "programs_per_sm"]


def test_forward_never_spills(compiled):
    rows = _rows(compiled["report"], "forward")
    assert len(rows) == 3 * 8 - 1  # fp32 up to 16384, fp16/bf16 up to 32768
    for r in rows:
        assert r["spill_stores"] == r["spill_loads"] == 0, r


def test_backward_does_not_spill_up_to_16384(compiled):
    """...in every dtype. Above (fp16/bf16 at N = 32768) the row itself no longer fits next to
    its gradient: the report states the spills there."""
    for r in _rows(compiled["report"], "backward"):
        if r["n"] <= 16384:
            assert r["spill_stores"] == r["spill_loads"] == 0, r
        else:
            assert r["dtype"] in ("fp16", "bf16") and r["n"] == 32768, r
            assert r["spill_stores"] > 0, "N = 32768 spills: the lesson and README say so"


def test_rows_that_are_multiples_of_8_get_16_byte_loads(compiled):
    """Every load of a row tensor is one 16-byte vector (ld.global.v4.b32) when N % 8 == 0,
    N = 1000 included; the only narrower loads are the backward's per-row mean and rstd."""
    for r in _rows(compiled["report"], "forward") + _rows(compiled["report"], "backward"):
        if r["n"] % 8:
            continue
        loads = {int(k): v for k, v in r["loads"].items()}
        assert r["load_bytes"] == 16 and r["store_bytes"] == 16, r
        narrow = {b: c for b, c in loads.items() if b < 16}
        expected = {} if r["kernel"] == "forward" else {4: 2}
        assert narrow == expected, r


def test_backward_grid_fits_on_an_sm(compiled):
    """The heuristic launches no more programs per SM than can be resident at once."""
    for r in _rows(compiled["report"], "backward"):
        assert 1 <= r["launched_per_sm"] <= r["programs_per_sm"], r


def test_committed_report_is_up_to_date(compiled):
    """compile_report_data.py (what lesson 08 shows) is what this Triton compiles today;
    regenerate with `make ptx-report`. Another Triton version may allocate registers
    differently: then only the properties above are checked."""
    fresh = compiled["report"]
    if fresh["triton"] != REPORT["triton"]:
        pytest.skip(f"report made with Triton {REPORT['triton']}, this is {fresh['triton']}")
    fresh_rows = [{**r, "loads": {int(k): v for k, v in r["loads"].items()}}
                  for r in fresh["rows"]]
    assert fresh_rows == REPORT["rows"], "run `make ptx-report` and commit the result"


def test_occupancy_arithmetic():
    from lessons_lib.kernels.ptx_report import resident_programs

    # 99 registers x 512 threads (the old backward at bf16 N = 8192): one program per SM
    assert resident_programs(99, 16, 16384)[0] == 1
    # 64 registers x 1024 threads: the whole register file, one program
    assert resident_programs(64, 32, 128) == (1, "registers")
    # 32 registers x 128 threads: 16 programs by threads (64 warps), shared memory no limit
    assert resident_programs(32, 4, 16)[0] == 16
    # 100 KiB of shared memory per program: two fit in 228 KiB
    assert resident_programs(32, 4, 100 * 1024) == (2, "shared memory")
