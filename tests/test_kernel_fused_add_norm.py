"""The fused add + LayerNorm/RMSNorm Triton kernel, run on CPU tensors by Triton's interpreter.

The accuracy rule and the cases are in kernel_cases.py. Shapes are small: the interpreter costs
milliseconds per program.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from lessons_lib.kernels import use_interpreter

use_interpreter()  # before Triton is imported: CPU tensors run in the interpreter
pytest.importorskip("triton")

from kernel_cases import (  # noqa: E402
    DTYPES,
    EPS,
    Case,
    check_case,
    kernel_impl,
    make_inputs,
    max_abs,
    run,
    torch_impl,
)

from lessons_lib.kernels import api, fused_add_norm  # noqa: E402
from lessons_lib.kernels import fused_add_norm_triton as kernels  # noqa: E402

N_VALUES = [1, 3, 17, 64, 1000, 1023, 1500, 3000, 4096, 8192]
M_VALUES = [0, 1, 7, 33, 128]

# --- Sizes: each N with each dtype once; M, layout, data and norm rotate (a covering design) ---


def _size_cases() -> list[Case]:
    cases = []
    layouts, datas = ("2d", "3d", "strided"), ("randn", "shift", "zero_var")
    for i, n in enumerate(N_VALUES):
        for j, dtype in enumerate(DTYPES.values()):
            k = 3 * i + j
            ms = M_VALUES if n <= 1500 else M_VALUES[:4]  # keep the interpreter's time down
            cases.append(Case(
                m=ms[k % len(ms)], n=n, dtype=dtype,
                norm=("layernorm", "rmsnorm")[k % 2],
                residual_fp32=dtype != torch.float32 and k % 4 == 1,
                params_fp32=dtype != torch.float32 and k % 5 == 2,
                layout=layouts[k % 3], data=datas[(k // 3) % 3],
            ))
    return cases


SIZE_CASES = _size_cases()


def test_size_cases_cover_every_n_m_dtype_layout_and_data():
    seen = {(c.n, c.dtype) for c in SIZE_CASES}
    assert seen == set(itertools.product(N_VALUES, DTYPES.values()))
    assert {c.m for c in SIZE_CASES} == set(M_VALUES)
    assert {(c.layout, c.data) for c in SIZE_CASES} >= set(
        itertools.product(("2d", "3d", "strided"), ("randn", "shift", "zero_var"))
    )
    assert {c.norm for c in SIZE_CASES if c.n <= 64} == {"layernorm", "rmsnorm"}
    assert {c.norm for c in SIZE_CASES if c.n >= 3000} == {"layernorm", "rmsnorm"}


@pytest.mark.parametrize("case", SIZE_CASES, ids=str)
def test_sizes_against_float64(case):
    check_case(case)


# --- Flags: every combination of residual, weight, bias, norm and fp32 residual stream ---


def _flag_cases() -> list[Case]:
    cases = []
    for i, (dtype, res, w, b, norm, res32) in enumerate(itertools.product(
        DTYPES.values(), (True, False), (True, False), (True, False),
        ("layernorm", "rmsnorm"), (False, True),
    )):
        if dtype == torch.float32 and res32:
            continue  # an fp32 stream is x's own dtype: already covered
        m, n = ((7, 45), (12, 200))[i % 2]
        cases.append(Case(m=m, n=n, dtype=dtype, norm=norm, residual=res, weight=w, bias=b,
                          residual_fp32=res32, residual_in_x_dtype=res32 and i % 3 == 0,
                          layout=("2d", "3d", "strided")[i % 3]))
    return cases


@pytest.mark.parametrize("case", _flag_cases(), ids=str)
def test_flags_against_float64(case):
    check_case(case)


# --- Layouts: every tensor its own row stride, and h's stride differs from dx's ---


@pytest.mark.parametrize("case", [
    # PAD gives x, residual, dy and dh four different row strides
    Case(m=9, n=40, dtype=torch.float32, layout="strided"),
    Case(m=9, n=40, dtype=torch.bfloat16, residual_fp32=True, layout="strided"),
    # no residual, same dtype: the kernel saves x itself as h, with x's row stride (45), while
    # dx is allocated with stride 40
    Case(m=9, n=40, dtype=torch.float16, residual=False, layout="strided"),
    Case(m=9, n=40, dtype=torch.float32, residual=False, norm="rmsnorm", layout="strided"),
], ids=str)
def test_each_tensor_has_its_own_row_stride(case):
    inputs = make_inputs(case)
    strides = {name: inputs[name].stride(0) for name in ("x", "residual", "dy", "dh")
               if inputs[name] is not None}
    assert len(set(strides.values())) == len(strides), strides
    check_case(case)


# --- Which inputs want a gradient ---


@pytest.mark.parametrize("grads", ["x", "r", "w", "b", "xr", "rwb", "xwb", "wb"])
@pytest.mark.parametrize("residual_fp32", [False, True], ids=["same-dtype", "fp32-stream"])
def test_requires_grad_combinations(grads, residual_fp32):
    """Only the inputs that require grad get one (the others None), and each is right: x only,
    residual only (its gradient must not depend on whether x wants one), frozen weight..."""
    check_case(Case(m=7, n=48, dtype=torch.bfloat16, residual_fp32=residual_fp32, grads=grads))


def test_frozen_parameters_are_not_reduced(monkeypatch):
    """Frozen weight and bias: the backward asks the kernel for neither (no partial sums)."""
    asked = []
    real = kernels.backward

    def spy(*args, **kwargs):
        asked.append((kwargs["want_dweight"], kwargs["want_dbias"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels, "backward", spy)
    x = torch.randn(5, 16, requires_grad=True)
    w, b = torch.randn(16), torch.randn(16, requires_grad=True)
    y, _ = fused_add_norm(x, None, w, b, backend="triton")
    y.sum().backward()
    assert asked == [(False, True)], asked
    assert w.grad is None and b.grad is not None


def test_statistics_are_not_stored_without_grad(monkeypatch):
    """Inference (no_grad, or nothing requires grad): mean and rstd are not written."""
    flags = []
    real = kernels.forward

    def spy(*args, **kwargs):
        flags.append(args[8] if len(args) > 8 else kwargs.get("store_stats", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(kernels, "forward", spy)
    x = torch.randn(4, 32)
    fused_add_norm(x, x, backend="triton")
    with torch.no_grad():
        fused_add_norm(x.requires_grad_(), x, backend="triton")
    fused_add_norm(x, x, backend="triton")  # x requires grad now
    assert flags == [False, False, True], flags


# --- Parameters with any strides ---


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_strided_and_expanded_parameters(norm):
    """weight a strided view, bias an expanded scalar (stride 0): both read correctly, and their
    gradients reach the tensors they view."""
    gen = torch.Generator().manual_seed(11)
    n = 24
    base_w = torch.randn(2 * n, generator=gen, requires_grad=True)
    scalar_b = torch.tensor(2.0, requires_grad=True)
    x = torch.randn(6, n, generator=gen)
    r = torch.randn(6, n, generator=gen)
    outs, grads = {}, {}
    for backend in ("triton", "reference"):
        y, _ = fused_add_norm(x, r, base_w[::2], scalar_b.expand(n), norm=norm, backend=backend)
        outs[backend] = y
        grads[backend] = torch.autograd.grad((y * torch.arange(n)).sum(), (base_w, scalar_b))
    err = max_abs(outs["triton"] - outs["reference"])
    assert err < 1e-5, f"strided weight / expanded bias: max error {err:.3g}"
    for got, want in zip(grads["triton"], grads["reference"], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert torch.all(grads["triton"][0][1::2] == 0), "odd weight entries are not used"


# --- Double backward ---


def test_double_backward_raises_instead_of_dropping_terms():
    x = torch.randn(4, 16, requires_grad=True)
    r = torch.randn(4, 16, requires_grad=True)
    w = torch.randn(16, requires_grad=True)
    y, h = fused_add_norm(x, r, w, backend="triton")
    (gx,) = torch.autograd.grad((y.square().sum() + h.sum()), x, create_graph=True)
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.grad(gx.square().sum(), w)
    # first derivatives under create_graph=True are still right
    y_ref, h_ref = fused_add_norm(x, r, w, backend="reference")
    (gx_ref,) = torch.autograd.grad((y_ref.square().sum() + h_ref.sum()), x)
    torch.testing.assert_close(gx.detach(), gx_ref, rtol=1e-5, atol=1e-5)


def test_reference_backend_has_second_derivatives():
    """The reference is plain autograd: a gradient penalty matches PyTorch's own norm."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(3, 10, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(10, generator=gen, dtype=torch.float64, requires_grad=True)
    y, _ = fused_add_norm(x, None, w, backend="reference")
    y_t = F.layer_norm(x, (10,), w, None, EPS)
    penalties = []
    for out in (y, y_t):
        (g,) = torch.autograd.grad(out.sin().sum(), x, create_graph=True)
        penalties.append(torch.autograd.grad(g.square().sum(), w)[0])
    torch.testing.assert_close(penalties[0], penalties[1])


# --- Aliasing: dresidual is dx when their dtypes match ---


def test_dresidual_is_dx_when_dtypes_match_and_separate_otherwise():
    x = torch.randn(5, 32, dtype=torch.bfloat16, requires_grad=True)
    r16 = torch.randn(5, 32, dtype=torch.bfloat16, requires_grad=True)
    r32 = torch.randn(5, 32, requires_grad=True)
    y, h = fused_add_norm(x, r16, backend="triton")
    dx, dr = torch.autograd.grad((y, h), (x, r16), (torch.ones_like(y), torch.ones_like(h)))
    assert dx.data_ptr() == dr.data_ptr(), "same dtype: one tensor, written once"
    y, h = fused_add_norm(x, r32, backend="triton")
    dx, dr = torch.autograd.grad((y, h), (x, r32), (torch.ones_like(y), torch.ones_like(h)))
    assert dr.dtype == torch.float32 and dx.dtype == torch.bfloat16
    torch.testing.assert_close(dx.float(), dr, rtol=0, atol=2**-7 * max_abs(dr))


def test_aliased_gradients_land_in_separate_grad_tensors():
    """With dx handed to both inputs, x.grad and residual.grad must still be independent."""
    x = torch.randn(4, 8, requires_grad=True)
    r = torch.randn(4, 8, requires_grad=True)
    y, h = fused_add_norm(x, r, backend="triton")
    (y.sum() + h.square().sum()).backward()
    assert x.grad.data_ptr() != r.grad.data_ptr()
    before = r.grad.clone()
    x.grad.zero_()
    assert torch.equal(r.grad, before), "zeroing x.grad changed residual.grad"


# --- Determinism, statistics, partial sums, offsets ---


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_two_runs_are_bitwise_equal(dtype):
    case = Case(m=33, n=1000, dtype=dtype, layout="3d" if dtype == torch.float32 else "2d")
    inputs = make_inputs(case, seed=3)
    first = run(kernel_impl(case), inputs)
    second = run(kernel_impl(case), inputs)
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_statistics_are_fp32_and_accurate():
    case = Case(m=9, n=300, dtype=torch.bfloat16, data="shift")
    inputs = make_inputs(case)
    x, res = inputs["x"], inputs["residual"]
    y, h, mean, rstd = kernels.forward(x, res, None, None, EPS, False, torch.bfloat16, True)
    assert mean.dtype == torch.float32 and rstd.dtype == torch.float32
    h64 = h.double()  # the kernel normalizes the stored (rounded) h
    ref_mean = h64.mean(-1)
    ref_rstd = 1 / torch.sqrt(h64.var(-1, unbiased=False) + EPS)
    torch.testing.assert_close(mean.double(), ref_mean, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(rstd.double(), ref_rstd, rtol=1e-5, atol=0)


def _idle_shape(n: int, elt: int) -> int:
    """An M that leaves the last of CPU_PROGRAMS programs without rows, for rows of n."""
    config = kernels.config_for(kernels.backward_config(n, elt), torch.device("cpu"))
    for m in range(1, 2000):
        tiles = -(-m // config.block_m)
        programs = min(tiles, kernels.CPU_PROGRAMS)
        per_program = -(-tiles // programs) * config.block_m
        if programs == kernels.CPU_PROGRAMS and (programs - 1) * per_program >= m:
            return m
    raise AssertionError("no shape leaves a program idle")


@pytest.mark.parametrize("n", [40, 1000])
def test_partial_sums_are_written_by_every_program(monkeypatch, n):
    """The partial-dweight buffer is poisoned with NaN: programs without rows must overwrite it."""
    case = Case(m=_idle_shape(n, 4), n=n, dtype=torch.float32)

    def poisoned(programs, n, device):
        return torch.full((programs, n), float("nan"), device=device)

    monkeypatch.setattr(kernels, "new_partials", poisoned)
    check_case(case)


@pytest.mark.parametrize(("n", "dtype"), [(48, torch.float16), (1000, torch.float32)])
def test_gpu_configuration_in_the_interpreter(monkeypatch, n, dtype):
    """On the CPU a program takes more rows (config_for); the configuration a GPU launches
    (one row per step for N >= 1024) must be right too."""
    monkeypatch.setattr(kernels, "config_for", lambda config, device: config)
    check_case(Case(m=_idle_shape(n, dtype.itemsize) + 2, n=n, dtype=dtype, layout="strided"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_widest_row_64_kib(dtype):
    """The widest rows: the backward keeps its dweight/dbias sums in memory (not registers)."""
    n = kernels.max_features(dtype)
    assert n * torch.empty((), dtype=dtype).element_size() == 65536
    assert not kernels.backward_config(n, dtype.itemsize).acc_in_registers
    check_case(Case(m=3, n=n, dtype=dtype, norm="layernorm", residual_fp32=dtype != torch.float32))


def test_accumulators_in_memory_for_a_narrow_row(monkeypatch):
    """The in-memory accumulators, on a shape with several programs and rows each (and one
    idle program), so that their read-add-write across tiles is exercised."""
    real = kernels.backward_config

    def in_memory(n, elt_size=2):
        c = real(n, elt_size)
        return kernels.Config(c.block_m, c.block_n, c.num_warps, c.programs_per_sm, False)

    monkeypatch.setattr(kernels, "backward_config", in_memory)
    check_case(Case(m=_idle_shape(64, 4), n=64, dtype=torch.float32))
    check_case(Case(m=13, n=200, dtype=torch.bfloat16, norm="rmsnorm", residual_fp32=True))


def test_m_and_the_grid_are_runtime_arguments():
    """A new batch size must not recompile: M and programs_per_sm are not constexpr, and the
    backward computes its rows per program from M and the grid inside the kernel (the compiled
    JIT's do_not_specialize list is checked in test_kernel_compile.py)."""
    import inspect

    for kernel, names in ((kernels.fused_add_norm_bwd_kernel, ("M", "programs_per_sm")),
                          (kernels.fused_add_norm_fwd_kernel, ("M",))):
        params = inspect.signature(kernel.fn).parameters
        for name in names:
            assert "constexpr" not in str(params[name].annotation), name


def test_row_strided_views_are_not_copied():
    big = torch.randn(6, 50)
    view = big[:, 10:40]  # row stride 50
    assert api._as_rows(view).data_ptr() == view.data_ptr()
    view3d = torch.randn(2, 3, 50)[..., :40]
    assert api._as_rows(view3d).data_ptr() == view3d.data_ptr()
    column_strided = big.t()[:40]  # stride 50 along the last dimension: must be copied
    assert api._as_rows(column_strided).stride(-1) == 1


def test_row_alignment():
    assert kernels.row_alignment(1024, 1024, 2048) == 16
    assert kernels.row_alignment(1000, 1000) == 8  # 16-byte vectors for fp16 still
    assert kernels.row_alignment(1000, 1005) == 1
    assert kernels.row_alignment(48, 52) == 4


def test_rows_past_2_31_elements_use_64_bit_offsets():
    """Row 2 of a view with row stride 2**30 + 64 starts past element 2**31: an int32 offset
    would wrap around (and crash), so this runs in a subprocess. The storage is never touched
    beyond the three rows, so it costs no memory."""
    script = textwrap.dedent("""
        import torch, torch.nn.functional as F
        from lessons_lib.kernels import fused_add_norm, use_interpreter
        use_interpreter()
        n, stride = 64, 2**30 + 64
        big = torch.empty(2 * stride + n, dtype=torch.float16)
        x = big.as_strided((3, n), (stride, 1))
        x.copy_(torch.randn(3, n))
        x.requires_grad_()
        y, h = fused_add_norm(x, None, None, None, backend="triton")
        ref = F.layer_norm(x.detach().float(), (n,))
        assert (y.float() - ref).abs().max() < 1e-2, "forward"
        (dx,) = torch.autograd.grad(y, x, torch.ones_like(y))
        assert dx.abs().max() < 1e-2, "backward: d(sum of LN)/dx is zero"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_empty_input_returns_empty_outputs_and_zero_parameter_grads():
    for norm in ("layernorm", "rmsnorm"):
        case = Case(m=0, n=17, dtype=torch.float16, norm=norm, layout="3d")
        got = run(kernel_impl(case), make_inputs(case))
        assert got["y"].shape == (2, 0, 17) and got["h"].shape == (2, 0, 17)
        assert torch.equal(got["dweight"], torch.zeros(17, dtype=torch.float16))
        assert torch.equal(got["dbias"], torch.zeros(17, dtype=torch.float16))


def test_h_is_x_without_residual_and_gradient_into_h_reaches_x():
    x = torch.randn(5, 40, requires_grad=True)
    y, h = fused_add_norm(x, backend="triton")
    assert h is x
    (dx,) = torch.autograd.grad(y.sum() * 0 + h.sum(), x)
    torch.testing.assert_close(dx, torch.ones_like(x))


def test_missing_dy_or_dh_is_treated_as_zero():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 30, generator=gen, requires_grad=True)
    r = torch.randn(6, 30, generator=gen, requires_grad=True)
    for use_y in (True, False):
        y, h = fused_add_norm(x, r, backend="triton")
        y_ref, h_ref = fused_add_norm(x, r, backend="reference")
        out, out_ref = (y, y_ref) if use_y else (h, h_ref)
        got = torch.autograd.grad(out.square().sum(), (x, r))
        want = torch.autograd.grad(out_ref.square().sum(), (x, r))
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# --- The launch: device guard, autotuning choices ---


def test_launches_go_through_the_device_guard(monkeypatch):
    devices = []
    real = kernels.device_guard

    def spy(device):
        devices.append(device)
        return real(device)

    monkeypatch.setattr(kernels, "device_guard", spy)
    x = torch.randn(3, 8, requires_grad=True)
    fused_add_norm(x, x, backend="triton")[0].sum().backward()
    assert devices == [torch.device("cpu")] * 2, devices


def test_device_guard_selects_the_tensors_gpu():
    """cuda:1 tensors launch under torch.cuda.device(cuda:1), whatever the current device
    (constructing the guard needs no GPU; entering it does)."""
    guard = kernels.device_guard(torch.device("cuda", 1))
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    with kernels.device_guard(torch.device("cpu")):
        pass


def test_autotuning_candidates():
    """On CUDA the autotuner tries half, the same and twice the heuristic's warps (and programs
    per SM for the backward), never more than 64 warps per SM; LESSONS_KERNEL_AUTOTUNE=0 off."""
    import triton

    configs = [triton.Config({"programs_per_sm": p}, num_warps=w)
               for w in kernels.WARPS for p in kernels.PROGRAMS_PER_SM]
    for n in (64, 1000, 4096, 16384):
        heuristic = kernels.backward_config(n, 2)
        kept = kernels._near(configs, heuristic)
        assert kept and {c.num_warps for c in kept} <= {
            heuristic.num_warps // 2, heuristic.num_warps, 2 * heuristic.num_warps}
        assert all(c.num_warps * c.kwargs["programs_per_sm"] <= 64 for c in kept)
        assert any(c.num_warps == heuristic.num_warps for c in kept)


def test_autotune_switch(monkeypatch):
    monkeypatch.delenv(kernels.AUTOTUNE_ENV, raising=False)
    assert kernels.autotune_enabled()
    monkeypatch.setenv(kernels.AUTOTUNE_ENV, "0")
    assert not kernels.autotune_enabled()


# --- Backends ---


def test_auto_backend_on_cpu_is_the_reference(monkeypatch):
    def no_kernel():
        raise AssertionError("backend='auto' must not run the Triton kernel on CPU tensors")

    monkeypatch.setattr(api, "_triton_impl", no_kernel)
    x, r = torch.randn(4, 8), torch.randn(4, 8)
    y, h = fused_add_norm(x, r)
    torch.testing.assert_close(h, x + r)
    torch.testing.assert_close(y, F.layer_norm(x + r, (8,), eps=1e-5))


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_reference_backend_matches_pytorch(norm):
    gen = torch.Generator().manual_seed(2)
    x, r = torch.randn(3, 4, 50, generator=gen), torch.randn(3, 4, 50, generator=gen)
    w, b = torch.randn(50, generator=gen), torch.randn(50, generator=gen)
    y, h = fused_add_norm(x, r, w, b, eps=1e-6, norm=norm, backend="reference")
    y_ref, h_ref = torch_impl(Case(m=12, n=50, dtype=torch.float32, norm=norm))(x, r, w, b)
    torch.testing.assert_close(h, h_ref)
    y_ref = (F.layer_norm(x + r, (50,), w, b, 1e-6) if norm == "layernorm"
             else F.rms_norm(x + r, (50,), w, 1e-6) + b)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)


def test_reference_rounds_the_sum_once():
    """The reference forms x + residual in fp32 and rounds once to the stream's dtype: fp16 +
    fp16 -> fp16 is the correctly rounded sum (fp64 sums of fp16 values are exact), and an fp32
    stream is the exact fp32 sum of a bf16 x and an fp32 residual (no bf16 rounding between)."""
    gen = torch.Generator().manual_seed(9)
    x16 = (8 * torch.randn(64, 40, generator=gen)).half()
    r16 = (8 * torch.randn(64, 40, generator=gen)).half()
    _, h = fused_add_norm(x16, r16, backend="reference")
    assert torch.equal(h, (x16.double() + r16.double()).half())
    xb = torch.randn(64, 40, generator=gen).bfloat16()
    r32 = torch.randn(64, 40, generator=gen) * 1e-3
    for backend in ("reference", "triton"):
        _, h = fused_add_norm(xb, r32, backend=backend)
        assert h.dtype == torch.float32
        assert torch.equal(h, xb.float() + r32), backend


def test_case_helpers_can_fail():
    """The tolerance check rejects a kernel that is off by a little (here: a wrong eps), and an
    fp32 stream rounded through bf16 (an fp32 output is held to fp32's tolerance)."""
    case = Case(m=7, n=64, dtype=torch.float32)

    def wrong_eps(x, residual, weight, bias):
        return fused_add_norm(x, residual, weight, bias, eps=1e-2, backend="triton")

    with pytest.raises(AssertionError, match="max error"):
        check_case(case, wrong_eps)

    stream = Case(m=7, n=64, dtype=torch.bfloat16, residual_fp32=True)

    def rounded_stream(x, residual, weight, bias):
        y, h = kernel_impl(stream)(x, residual, weight, bias)
        return y, h.bfloat16().float()

    with pytest.raises(AssertionError, match="h .torch.float32. max error"):
        check_case(stream, rounded_stream)
