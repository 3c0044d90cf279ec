"""The kernels also compile for a GPU: Triton compiles them ahead of time for an H100 (sm_90)
here, without a GPU. The interpreter accepts some code the compiler rejects (and the other way
round), so this catches what the interpreter tests cannot: type errors in compiled mode, None
pointers, 64-bit loop bounds. It runs in a subprocess because compiled kernels need Triton
imported without TRITON_INTERPRET."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from lessons_lib.kernels import triton_available

# Not pytest.importorskip: importing Triton here, in compiled mode, would stop the other kernel
# test modules from switching the interpreter on.
pytestmark = pytest.mark.skipif(not triton_available(), reason="Triton is not installed")

SCRIPT = textwrap.dedent("""
    import os, sys
    os.environ.pop("TRITON_INTERPRET", None)
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from lessons_lib.kernels import fused_add_norm_triton as k

    assert not hasattr(k.fused_add_norm_fwd_kernel, "rewrite"), "interpreter is on"
    TARGET = GPUTarget("cuda", 90, 32)
    SCALARS = {"M": "i32", "N": "i32", "eps": "fp32", "rows_per_program": "i32"}

    def compile_kernel(kernel, n, pointers, flags):
        # pointers: name -> Triton pointer type, or None for an absent (None) argument
        block_m, block_n, num_warps = k.block_sizes(n)
        flags = {**flags, "BLOCK_M": block_m, "BLOCK_N": block_n}
        signature, constants = {}, {}
        for name in kernel.arg_names:
            if name in flags:
                signature[name], constants[name] = "constexpr", flags[name]
            elif name.startswith("stride") or name in SCALARS:
                signature[name] = SCALARS.get(name, "i32")
            elif pointers[name] is None:
                signature[name], constants[name] = "constexpr", None
            else:
                signature[name] = pointers[name]
        src = ASTSource(kernel, signature, constants)
        return triton.compile(src, target=TARGET, options={"num_warps": num_warps})

    cases = [  # (x dtype, stream dtype, every optional tensor present, RMSNorm, N)
        ("fp16", "fp16", True, False, 768),
        ("bf16", "fp32", True, True, 4096),
        ("fp32", "fp32", False, False, 16384),
        ("fp16", "fp16", False, True, 1000),
    ]
    for x, s, full, rms, n in cases:
        opt = lambda t: t if full else None
        compile_kernel(k.fused_add_norm_fwd_kernel, n, {
            "X": "*" + x, "Residual": opt("*" + s), "W": opt("*" + x), "B": opt("*" + x),
            "Y": "*" + x, "ResidualOut": opt("*" + s), "Mean": None if rms else "*fp32",
            "Rstd": "*fp32"}, {"HAS_RESIDUAL": full, "STORE_RESIDUAL_OUT": full,
            "HAS_WEIGHT": full, "HAS_BIAS": full, "IS_RMS_NORM": rms})
        bwd = compile_kernel(k.fused_add_norm_bwd_kernel, n, {
            "DY": "*" + x, "DResidualOut": opt("*" + s), "H": "*" + s, "W": opt("*" + x),
            "Mean": None if rms else "*fp32", "Rstd": "*fp32", "DX": "*" + x,
            "DResidualIn": opt("*" + s), "DW": opt("*fp32"), "DB": opt("*fp32")},
            {"HAS_DRESIDUAL_OUT": full, "STORE_DRESIDUAL_IN": full, "HAS_WEIGHT": full,
             "HAS_BIAS": full, "IS_RMS_NORM": rms})
        ptx = bwd.asm["ptx"]
        assert ".target sm_90" in ptx and "atom." not in ptx, "no atomics in the backward"
    print("compiled", len(cases) * 2)
""")


def test_kernels_compile_for_sm90_without_a_gpu(tmp_path):
    env = {**os.environ, "TRITON_CACHE_DIR": str(tmp_path / "cache")}  # compile for real
    env.pop("TRITON_INTERPRET", None)
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=env, timeout=600)
    if result.returncode != 0 and "No module named 'triton.backends.nvidia" in result.stderr:
        pytest.skip("this Triton build has no NVIDIA backend")
    assert result.returncode == 0 and "compiled 8" in result.stdout, result.stderr[-3000:]
