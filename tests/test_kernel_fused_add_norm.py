"""The fused add + LayerNorm/RMSNorm Triton kernel, run on CPU tensors by Triton's interpreter.

Every value is compared with a float64 reference computed by plain PyTorch from the same inputs,
under the rule "max error <= 2 x PyTorch's own error in the same dtypes + atol" (PyTorch's own
= the unfused add then F.layer_norm / F.rms_norm, run in the low dtype). bfloat16 outputs are
allowed one more bf16 ulp: the interpreter truncates when it stores to bfloat16, where a GPU
rounds to nearest. Shapes are small: the interpreter costs milliseconds per program.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from lessons_lib.kernels import use_interpreter

use_interpreter()  # before Triton is imported: CPU tensors run in the interpreter
pytest.importorskip("triton")

from lessons_lib.kernels import FusedAddNorm, fused_add_norm  # noqa: E402
from lessons_lib.kernels import fused_add_norm_triton as kernels  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# atol is relative to the size of the reference (max(1, max|ref|)).
ATOL = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}
N_VALUES = [1, 3, 17, 64, 1000, 1023, 1500, 3000, 4096, 8192]
M_VALUES = [0, 1, 7, 33, 128]
EPS = 1e-5


@dataclass(frozen=True)
class Case:
    m: int
    n: int
    dtype: torch.dtype
    norm: str = "layernorm"
    residual: bool = True
    weight: bool = True
    bias: bool = True
    residual_fp32: bool = False  # keep the residual stream h in float32
    residual_in_x_dtype: bool = False  # with residual_fp32: the residual arrives in x's dtype
    params_fp32: bool = False  # float32 weight/bias with low-precision x
    layout: str = "2d"  # "2d", "3d", or "strided" (row-strided views of wider tensors)
    data: str = "randn"  # "randn", "shift" (large mean) or "zero_var" (constant rows)

    def __str__(self) -> str:
        dt = str(self.dtype).removeprefix("torch.")
        flags = "".join(
            c if on else "-"
            for c, on in zip(
                "RWBF", (self.residual, self.weight, self.bias, self.residual_fp32), strict=True
            )
        )
        return f"M{self.m}-N{self.n}-{dt}-{self.norm}-{flags}-{self.layout}-{self.data}"

    @property
    def h_dtype(self) -> torch.dtype:
        return torch.float32 if self.residual_fp32 else self.dtype


def _shape(case: Case) -> tuple[int, ...]:
    if case.layout == "3d":
        return (2, case.m // 2, case.n) if case.m % 2 == 0 else (1, case.m, case.n)
    return (case.m, case.n)


def _tensor(shape, dtype, gen, layout, scale=1.0, shift=0.0) -> torch.Tensor:
    """A leaf's view: for "strided", the first N columns of a wider tensor (no copy)."""
    wide = (*shape[:-1], shape[-1] + 5) if layout == "strided" else shape
    base = (shift + scale * torch.randn(wide, generator=gen)).to(dtype)
    return base[..., : shape[-1]] if layout == "strided" else base


def make_inputs(case: Case, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    shape = _shape(case)
    shift = 0.0
    if case.data == "shift":
        shift = 1e3 if case.dtype == torch.float32 else 8.0
    x = _tensor(shape, case.dtype, gen, case.layout, shift=shift)
    res = None
    if case.residual:
        in_x_dtype = case.residual_in_x_dtype or not case.residual_fp32
        res_dtype = case.dtype if in_x_dtype else torch.float32
        res = _tensor(shape, res_dtype, gen, case.layout, scale=0.5)
    if case.data == "zero_var" and case.m > 0:
        # every third row of h constant (LayerNorm) or zero (RMSNorm)
        value = 0.0 if case.norm == "rmsnorm" else 0.75
        with torch.no_grad():
            x.view(-1, case.n)[::3] = value if res is None else value - 0.25
            if res is not None:
                res.view(-1, case.n)[::3] = 0.25 if value else 0.0
    p_dtype = torch.float32 if case.params_fp32 else case.dtype
    w = (1 + 0.5 * torch.randn(case.n, generator=gen)).to(p_dtype) if case.weight else None
    b = (0.5 * torch.randn(case.n, generator=gen)).to(p_dtype) if case.bias else None
    dy = _tensor(shape, case.dtype, gen, case.layout)
    dh = _tensor(shape, case.h_dtype, gen, case.layout, scale=0.5)
    return {"x": x, "residual": res, "weight": w, "bias": b, "dy": dy, "dh": dh}


def torch_unfused(x, residual, weight, bias, *, norm, h_dtype, eps=EPS):
    """PyTorch's own: add, then F.layer_norm / F.rms_norm, in the dtypes it is given."""
    h = x.to(h_dtype) if residual is None else x.to(h_dtype) + residual.to(h_dtype)
    w = None if weight is None else weight.to(h.dtype)
    b = None if bias is None else bias.to(h.dtype)
    if norm == "layernorm":
        y = F.layer_norm(h, (h.shape[-1],), w, b, eps)
    else:
        y = F.rms_norm(h, (h.shape[-1],), w, eps)
        y = y if b is None else y + b
    return y.to(x.dtype), h


def run(impl, inputs: dict, *, wide: torch.dtype | None = None) -> dict:
    """Forward and backward of one implementation; `wide` recasts every input (float64 ref)."""
    names = ("x", "residual", "weight", "bias")
    leaves = {}
    for name in names:
        t = inputs[name]
        if t is not None:
            t = t.detach().to(wide) if wide is not None else t.detach()
            leaves[name] = t.requires_grad_()
    # detach() keeps the strides: layout "strided" reaches the implementation as a view.
    y, h = impl(**{name: leaves.get(name) for name in names})
    dy, dh = inputs["dy"], inputs["dh"]
    if wide is not None:
        dy, dh = dy.to(wide), dh.to(wide)
    outs = [y, h] if h.requires_grad else [y]
    grads_in = [dy, dh][: len(outs)]
    wrt = [leaves[n] for n in names if n in leaves]
    grads = torch.autograd.grad(outs, wrt, grads_in, allow_unused=True) if wrt else []
    result = {"y": y.detach(), "h": h.detach()}
    for name, g in zip([n for n in names if n in leaves], grads, strict=True):
        result["d" + name] = None if g is None else g.detach()
    return result


def kernel_impl(case: Case):
    h_dtype = case.h_dtype

    def impl(x, residual, weight, bias):
        return fused_add_norm(
            x, residual, weight, bias, eps=EPS, norm=case.norm, residual_dtype=h_dtype,
            backend="triton",
        )

    return impl


def torch_impl(case: Case, *, wide: bool = False):
    def impl(x, residual, weight, bias):
        h_dtype = torch.float64 if wide else case.h_dtype
        return torch_unfused(x, residual, weight, bias, norm=case.norm, h_dtype=h_dtype)

    return impl


def _max_abs(t: torch.Tensor) -> float:
    return t.abs().max().item() if t.numel() else 0.0


def _bf16_ulp(value: float) -> float:
    return 0.0 if value == 0 else 2.0 ** (math.floor(math.log2(value)) - 7)


def check_case(case: Case) -> None:
    inputs = make_inputs(case)
    got = run(kernel_impl(case), inputs)
    own = run(torch_impl(case), inputs)
    ref = run(torch_impl(case, wide=True), inputs, wide=torch.float64)
    # dtypes and shapes first
    shape = _shape(case)
    assert got["y"].dtype == case.dtype and got["y"].shape == shape
    assert got["h"].dtype == case.h_dtype and got["h"].shape == shape
    for name, src in (("dx", "x"), ("dresidual", "residual"), ("dweight", "weight"),
                      ("dbias", "bias")):
        if inputs[src] is not None:
            assert got[name] is not None, f"{case}: no {name}"
            assert got[name].dtype == inputs[src].dtype and got[name].shape == inputs[src].shape
    for name, ref_value in ref.items():
        if ref_value is None:
            continue
        value, torch_value = got[name].double(), own[name].double()
        err = _max_abs(value - ref_value)
        err_torch = _max_abs(torch_value - ref_value)
        scale = max(1.0, _max_abs(ref_value))
        tol = 2 * err_torch + ATOL[case.dtype] * scale
        if got[name].dtype == torch.bfloat16:
            tol += _bf16_ulp(_max_abs(ref_value))
        assert math.isfinite(err) and err <= tol, (
            f"{case}: {name} max error {err:.3g} > tolerance {tol:.3g} "
            f"(PyTorch's own error {err_torch:.3g})"
        )


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
                          layout=("2d", "3d")[i % 2]))
    return cases


@pytest.mark.parametrize("case", _flag_cases(), ids=str)
def test_flags_against_float64(case):
    check_case(case)


# --- Widest rows: 64 KiB of input per row, forward and backward ---


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_widest_row_64_kib(dtype):
    n = kernels.max_features(dtype)
    assert n * torch.empty((), dtype=dtype).element_size() == 65536
    check_case(Case(m=2, n=n, dtype=dtype, norm="layernorm"))


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


def test_partial_sums_are_written_by_every_program(monkeypatch):
    """The partial-dweight buffer is poisoned with NaN: programs without rows must overwrite it."""
    case = Case(m=33, n=1000, dtype=torch.float32)
    block_m, _, _ = kernels.block_sizes(case.n)
    tiles = -(-case.m // block_m)
    programs = min(tiles, kernels.CPU_PROGRAMS)
    rows_per_program = -(-tiles // programs) * block_m
    assert (programs - 1) * rows_per_program >= case.m, "this shape must leave a program idle"

    def poisoned(programs, n, device):
        return torch.full((programs, n), float("nan"), device=device)

    monkeypatch.setattr(kernels, "new_partials", poisoned)
    check_case(case)


def test_rows_per_program_and_m_are_runtime_arguments():
    """A new batch size must not recompile: M and rows_per_program are not constexpr."""
    import inspect

    for kernel, names in ((kernels.fused_add_norm_bwd_kernel, ("M", "rows_per_program")),
                          (kernels.fused_add_norm_fwd_kernel, ("M",))):
        params = inspect.signature(kernel.fn).parameters
        for name in names:
            assert "constexpr" not in str(params[name].annotation), name


def test_row_strided_views_are_not_copied():
    from lessons_lib.kernels import api

    big = torch.randn(6, 50)
    view = big[:, 10:40]  # row stride 50
    assert api._as_rows(view).data_ptr() == view.data_ptr()
    view3d = torch.randn(2, 3, 50)[..., :40]
    assert api._as_rows(view3d).data_ptr() == view3d.data_ptr()
    column_strided = big.t()[:40]  # stride 50 along the last dimension: must be copied
    assert api._as_rows(column_strided).stride(-1) == 1


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


# --- Backends and the module ---


def test_auto_backend_on_cpu_is_the_reference(monkeypatch):
    from lessons_lib.kernels import api

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
    y_ref, h_ref = torch_unfused(x, r, w, b, norm=norm, h_dtype=torch.float32, eps=1e-6)
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_module_is_a_drop_in_for_torch_norms(norm):
    gen = torch.Generator().manual_seed(7)
    n = 48
    theirs = torch.nn.LayerNorm(n) if norm == "layernorm" else torch.nn.RMSNorm(n, eps=1e-5)
    ours = FusedAddNorm(n, eps=1e-5, norm=norm, backend="triton")
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 5, n, generator=gen)
    y_ours, h = ours(x)
    y_theirs = theirs(x)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
    dy = torch.randn(y_ours.shape, generator=gen)
    (y_ours * dy).sum().backward()
    (y_theirs * dy).sum().backward()
    for (name, p), q in zip(theirs.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-5, msg=name)


def test_case_helpers_can_fail():
    """The tolerance check rejects a kernel that is off by a little (here: a wrong eps)."""
    case = Case(m=7, n=64, dtype=torch.float32)
    inputs = make_inputs(case)

    def wrong(x, residual, weight, bias):
        return fused_add_norm(x, residual, weight, bias, eps=1e-2, backend="triton")

    got = run(wrong, inputs)
    ref = run(torch_impl(case, wide=True), inputs, wide=torch.float64)
    assert _max_abs(got["y"].double() - ref["y"]) > 1e-3
