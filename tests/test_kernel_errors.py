"""Bad input to the fused kernel raises an error that names the argument; Triton is optional."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

from lessons_lib.kernels import FusedAddNorm, fused_add_norm, use_interpreter

use_interpreter()  # before Triton is imported: CPU tensors run in the interpreter

X = torch.randn(4, 8)


def _raises(exc, *words, **kwargs):
    """fused_add_norm(**kwargs) raises `exc` and its message contains every word."""
    args = {"x": X, "backend": "triton", **kwargs}
    with pytest.raises(exc) as info:
        fused_add_norm(**args)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


@pytest.mark.parametrize("backend", ["triton", "reference"])
def test_integer_inputs(backend):
    integers = torch.ones(4, 8, dtype=torch.int32)
    _raises(TypeError, "x", "floating-point", x=integers, backend=backend)
    _raises(TypeError, "residual", "floating-point", residual=torch.ones(4, 8, dtype=torch.int64),
            backend=backend)
    _raises(TypeError, "weight", weight=torch.ones(8, dtype=torch.int64), backend=backend)
    _raises(TypeError, "x", "torch.Tensor", x=[[1.0, 2.0]], backend=backend)


def test_mismatched_dtypes():
    half = X.half()
    _raises(TypeError, "residual", "float16", x=half, residual=X.bfloat16())
    _raises(TypeError, "residual_dtype", "float32", x=half, residual_dtype=torch.bfloat16)
    # an fp32 residual into an fp16 stream: the message names both dtypes, and the fix
    _raises(TypeError, "residual is torch.float32", "residual_dtype is torch.float16",
            "residual_dtype=torch.float32", x=half, residual=X, residual_dtype=torch.float16)
    _raises(TypeError, "weight", "float16", x=half, weight=torch.ones(8, dtype=torch.bfloat16))
    _raises(TypeError, "bias", "float16", x=half, bias=torch.ones(8, dtype=torch.float64))
    # fp32 residual stream and fp32 parameters with fp16 activations are allowed
    y, h = fused_add_norm(half, X, torch.ones(8), torch.zeros(8), backend="reference")
    assert y.dtype == torch.float16 and h.dtype == torch.float32


def test_float64_needs_the_reference_backend():
    _raises(TypeError, "x", "backend='reference'", x=X.double())
    y, h = fused_add_norm(X.double(), X.double(), backend="reference")
    assert y.dtype == torch.float64


def test_wrong_shapes():
    _raises(ValueError, "weight", "(8,)", weight=torch.ones(7))
    _raises(ValueError, "bias", "(8,)", bias=torch.ones(8, 1))
    _raises(ValueError, "residual", "(4, 8)", residual=torch.randn(4, 9))
    _raises(ValueError, "residual", "(4, 8)", residual=torch.randn(8))
    _raises(ValueError, "x", "dimension", x=torch.tensor(1.0))
    _raises(ValueError, "x", "feature", x=torch.randn(4, 0))


def test_tensors_on_different_devices():
    meta = torch.device("meta")
    _raises(ValueError, "residual", "meta", residual=torch.empty(4, 8, device=meta))
    _raises(ValueError, "weight", "meta", weight=torch.empty(8, device=meta))
    _raises(ValueError, "bias", "meta", bias=torch.empty(8, device=meta))


def test_unsupported_device_for_triton():
    _raises(ValueError, "x", "cuda", x=torch.empty(4, 8, device="meta"))


def test_bad_options():
    _raises(ValueError, "norm", "'layernorm'", norm="batchnorm")
    _raises(ValueError, "backend", "'triton'", backend="cuda")
    _raises(ValueError, "eps", ">= 0", eps=-1.0)
    _raises(TypeError, "eps", eps="small")


@pytest.mark.parametrize(("dtype", "limit"), [(torch.float32, 16384), (torch.bfloat16, 32768)])
def test_rows_wider_than_64_kib_are_refused(dtype, limit):
    x = torch.zeros(1, limit + 1, dtype=dtype)
    _raises(ValueError, f"N = {limit + 1}", f"N <= {limit}", "64 KiB", x=x)
    y, _ = fused_add_norm(x, backend="reference")  # the reference has no limit
    assert y.shape == x.shape


def test_module_arguments():
    with pytest.raises(ValueError, match="normalized_shape"):
        FusedAddNorm((4, 8))
    with pytest.raises(TypeError, match="normalized_shape"):
        FusedAddNorm(8.0)
    with pytest.raises(ValueError, match="norm"):
        FusedAddNorm(8, norm="groupnorm")
    with pytest.raises(ValueError, match="backend"):
        FusedAddNorm(8, backend="gpu")
    with pytest.raises(ValueError, match="eps"):
        FusedAddNorm(8, -1.0)
    with pytest.raises(TypeError, match="positional"):
        FusedAddNorm(8, 1e-5, "rmsnorm")  # options after eps are keyword-only
    module = FusedAddNorm(8, norm="rmsnorm")
    assert module.bias is None and module.eps is None  # nn.RMSNorm's defaults
    assert FusedAddNorm(8).eps == 1e-5  # nn.LayerNorm's
    assert FusedAddNorm((8,), elementwise_affine=False).weight is None


def _python(script: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=300)


def test_library_works_without_triton():
    """With `import triton` failing, the library imports, the reference runs, and asking for
    the Triton backend says how to install it."""
    result = _python("""
        import sys
        sys.modules["triton"] = None  # makes `import triton` raise ImportError
        import torch
        import lessons_lib.kernels as k
        import lessons_lib.transformer
        from lessons_lib.kernels.benchmark import bytes_model_results
        assert not k.triton_available()
        x = torch.randn(3, 5, requires_grad=True)
        y, h = k.fused_add_norm(x, torch.randn(3, 5))
        y.sum().backward()
        y, h = k.FusedAddNorm(5)(x)
        assert bytes_model_results([64], [torch.float16])
        from lessons_lib.kernels.compile_report_data import REPORT
        assert REPORT["rows"]
        assert "fused_add_norm_fwd" in str(torch.ops.lessons_lib.fused_add_norm_fwd)
        try:
            k.fused_add_norm(x, backend="triton")
        except ImportError as err:
            assert "pip install triton" in str(err), err
            print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_interpreter_switch():
    """use_interpreter() before Triton is imported makes a kernel you write run on the CPU;
    after Triton was imported in compiled mode it refuses, and so does the CPU backend."""
    before = _python("""
        import torch
        from lessons_lib.kernels import use_interpreter, interpreter_enabled
        use_interpreter()
        import triton
        import triton.language as tl

        @triton.jit
        def row_sum(X, Out, N, BLOCK: tl.constexpr):
            cols = tl.arange(0, BLOCK)
            x = tl.load(X + cols, mask=cols < N, other=0.0)
            tl.store(Out, tl.sum(x, axis=0))

        out = torch.empty(1)
        row_sum[(1,)](torch.arange(10.0), out, 10, BLOCK=16)
        assert out.item() == 45.0 and interpreter_enabled()
        print("ok")
    """)
    assert before.returncode == 0 and "ok" in before.stdout, before.stderr[-3000:]
    after = _python("""
        import os
        os.environ.pop("TRITON_INTERPRET", None)
        import torch, triton.language
        from lessons_lib.kernels import fused_add_norm, use_interpreter
        try:
            use_interpreter()
        except RuntimeError as err:
            assert "before the first `import triton`" in str(err), err
        else:
            raise AssertionError("use_interpreter() after import must fail")
        os.environ.pop("TRITON_INTERPRET")
        try:
            fused_add_norm(torch.randn(2, 4), backend="triton")
        except RuntimeError as err:
            assert "use_interpreter()" in str(err), err
            print("ok")
    """)
    assert after.returncode == 0 and "ok" in after.stdout, after.stderr[-3000:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the automatic switch is for CPU-only")
def test_interpreter_switches_on_by_itself_without_a_gpu():
    result = _python("""
        import os
        os.environ.pop("TRITON_INTERPRET", None)
        import torch
        from lessons_lib.kernels import fused_add_norm, interpreter_enabled
        assert not interpreter_enabled()
        x = torch.randn(3, 10)
        y, h = fused_add_norm(x, x, backend="triton")  # imports Triton for the first time
        assert interpreter_enabled()
        torch.testing.assert_close(y, torch.nn.functional.layer_norm(2 * x, (10,)))
        print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_undefined_masked_loads_show_a_missing_other():
    """With the switch, a masked load without other= reads NaN in the masked lanes (as garbage
    would on a GPU) and a sum over them is NaN; with other=0.0, or without the switch, it is
    the right sum. Lanes that are not masked off are untouched."""
    import triton
    import triton.language as tl

    from lessons_lib.kernels import undefined_masked_loads

    @triton.jit
    def row_sum(X, Out, N, BLOCK: tl.constexpr, USE_OTHER: tl.constexpr):
        cols = tl.arange(0, BLOCK)
        if USE_OTHER:
            x = tl.load(X + cols, mask=cols < N, other=0.0)
        else:
            x = tl.load(X + cols, mask=cols < N)
        tl.store(Out, tl.sum(x.to(tl.float32), axis=0))

    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x, out = torch.arange(10.0).to(dtype), torch.empty(1)
        row_sum[(1,)](x, out, 10, BLOCK=16, USE_OTHER=False)
        assert out.item() == 45.0, "the interpreter fills zeros by itself"
        with undefined_masked_loads():
            row_sum[(1,)](x, out, 10, BLOCK=16, USE_OTHER=False)
            assert out.isnan().all(), f"{dtype}: masked lanes must read NaN"
            row_sum[(1,)](x, out, 10, BLOCK=16, USE_OTHER=True)
            assert out.item() == 45.0
            full = torch.arange(16.0).to(dtype)
            row_sum[(1,)](full, out, 16, BLOCK=16, USE_OTHER=False)  # no lane masked off
            assert out.item() == 120.0
        row_sum[(1,)](x, out, 10, BLOCK=16, USE_OTHER=False)
        assert out.item() == 45.0, "the switch is off again after the block"


def test_stand_ins_without_triton():
    """Without Triton a lesson can still define (and read) a kernel; launching it says how to
    install Triton."""
    result = _python("""
        import sys
        sys.modules["triton"] = None
        from lessons_lib.kernels import import_triton
        triton, tl = import_triton()

        @triton.jit
        def copy_kernel(X, Y, N, BLOCK: tl.constexpr):
            pass

        assert triton.next_power_of_2(1000) == 1024 and triton.cdiv(10, 4) == 3
        try:
            copy_kernel[(1,)](None, None, 1, BLOCK=16)
        except ImportError as err:
            assert "pip install triton" in str(err), err
            print("ok")
    """)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]
