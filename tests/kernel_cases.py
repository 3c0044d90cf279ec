"""Cases and the accuracy rule shared by the kernel tests (test_kernel_*.py).

Every value is compared with a float64 reference computed by plain PyTorch from the same inputs,
under the rule "max error <= 2 x PyTorch's own error in the same dtypes + atol", where PyTorch's
own is the unfused add then F.layer_norm / F.rms_norm run in the low dtype, and atol is keyed
on the dtype of the output being checked (an fp32 residual stream or an fp32 dresidual is held
to fp32's tolerance even when x is bf16). bfloat16 outputs are allowed one more bf16 ulp: the
interpreter truncates when it stores to bfloat16, where a GPU rounds to nearest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lessons_lib.kernels import fused_add_norm

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# atol is relative to the size of the reference (max(1, max|ref|)), per output dtype.
ATOL = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 8e-3}
EPS = 1e-5
# "strided" layout: each tensor is the first N columns of a wider one, each with its own
# padding, so that every tensor has its own row stride (a swapped stride reads wrong rows).
PAD = {"x": 5, "residual": 3, "dy": 7, "dh": 2}
NAMES = ("x", "residual", "weight", "bias")


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
    grads: str = "xrwb"  # which of x, residual, weight, bias require grad

    def __str__(self) -> str:
        dt = str(self.dtype).removeprefix("torch.")
        flags = "".join(
            c if on else "-"
            for c, on in zip(
                "RWBF", (self.residual, self.weight, self.bias, self.residual_fp32), strict=True
            )
        )
        text = f"M{self.m}-N{self.n}-{dt}-{self.norm}-{flags}-{self.layout}-{self.data}"
        return text if self.grads == "xrwb" else f"{text}-grad:{self.grads}"

    @property
    def h_dtype(self) -> torch.dtype:
        return torch.float32 if self.residual_fp32 else self.dtype

    @property
    def residual_dtype(self) -> torch.dtype:
        in_x_dtype = self.residual_in_x_dtype or not self.residual_fp32
        return self.dtype if in_x_dtype else torch.float32


def shape_of(case: Case) -> tuple[int, ...]:
    if case.layout == "3d":
        return (2, case.m // 2, case.n) if case.m % 2 == 0 else (1, case.m, case.n)
    return (case.m, case.n)


def _tensor(name, shape, dtype, gen, layout, scale=1.0, shift=0.0) -> torch.Tensor:
    """A leaf's view: for "strided", the first N columns of a wider tensor (no copy)."""
    pad = PAD[name] if layout == "strided" else 0
    base = (shift + scale * torch.randn((*shape[:-1], shape[-1] + pad), generator=gen)).to(dtype)
    return base[..., : shape[-1]] if pad else base


def make_inputs(case: Case, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    shape = shape_of(case)
    shift = 0.0
    if case.data == "shift":
        shift = 1e3 if case.dtype == torch.float32 else 8.0
    x = _tensor("x", shape, case.dtype, gen, case.layout, shift=shift)
    res = None
    if case.residual:
        res = _tensor("residual", shape, case.residual_dtype, gen, case.layout, scale=0.5)
    if case.data == "zero_var" and case.m > 0:
        # every third row of h constant (LayerNorm) or zero (RMSNorm)
        value = 0.0 if case.norm == "rmsnorm" else 0.75
        with torch.no_grad():
            x.reshape(-1, case.n)[::3] = value if res is None else value - 0.25
            if res is not None:
                res.reshape(-1, case.n)[::3] = 0.25 if value else 0.0
    p_dtype = torch.float32 if case.params_fp32 else case.dtype
    w = (1 + 0.5 * torch.randn(case.n, generator=gen)).to(p_dtype) if case.weight else None
    b = (0.5 * torch.randn(case.n, generator=gen)).to(p_dtype) if case.bias else None
    dy = _tensor("dy", shape, case.dtype, gen, case.layout)
    dh = _tensor("dh", shape, case.h_dtype, gen, case.layout, scale=0.5)
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


def run(impl, inputs: dict, *, wide: torch.dtype | None = None, grads: str = "xrwb") -> dict:
    """Forward and backward of one implementation; `wide` recasts every input (float64 ref).
    Only the leaves named in `grads` (x, r, w, b) require grad."""
    leaves = {}
    for name, letter in zip(NAMES, "xrwb", strict=True):
        t = inputs[name]
        if t is not None:
            t = t.detach().to(wide) if wide is not None else t.detach()
            leaves[name] = t.requires_grad_(letter in grads)
    # detach() keeps the strides: layout "strided" reaches the implementation as a view.
    y, h = impl(**{name: leaves.get(name) for name in NAMES})
    dy, dh = inputs["dy"], inputs["dh"]
    if wide is not None:
        dy, dh = dy.to(wide), dh.to(wide)
    outs = [y, h] if h.requires_grad else [y]  # (h may be x itself: dh then reaches x)
    grads_in = [dy, dh][: len(outs)]
    wrt = [n for n in NAMES if n in leaves and leaves[n].requires_grad]
    got = torch.autograd.grad(outs, [leaves[n] for n in wrt], grads_in) if wrt else []
    result = {"y": y.detach(), "h": h.detach()}
    for name, g in zip(wrt, got, strict=True):
        result["d" + name] = g.detach()
    return result


def kernel_impl(case: Case, backend: str = "triton"):
    def impl(x, residual, weight, bias):
        return fused_add_norm(
            x, residual, weight, bias, eps=EPS, norm=case.norm, residual_dtype=case.h_dtype,
            backend=backend,
        )

    return impl


def torch_impl(case: Case, *, wide: bool = False):
    def impl(x, residual, weight, bias):
        h_dtype = torch.float64 if wide else case.h_dtype
        return torch_unfused(x, residual, weight, bias, norm=case.norm, h_dtype=h_dtype)

    return impl


def max_abs(t: torch.Tensor) -> float:
    return t.abs().max().item() if t.numel() else 0.0


def bf16_ulp(value: float) -> float:
    return 0.0 if value == 0 else 2.0 ** (math.floor(math.log2(value)) - 7)


def tolerance(out: torch.Tensor, ref: torch.Tensor, err_torch: float) -> float:
    """The course's rule for one output, keyed on that output's dtype."""
    peak = max_abs(ref)
    tol = 2 * err_torch + ATOL[out.dtype] * max(1.0, peak)
    if out.dtype == torch.bfloat16:
        tol += bf16_ulp(peak)
    return tol


def check_case(case: Case, impl=None, seed: int = 0) -> None:
    """Kernel (or `impl`) against float64, next to PyTorch's own error; raises AssertionError."""
    inputs = make_inputs(case, seed)
    got = run(impl or kernel_impl(case), inputs, grads=case.grads)
    own = run(torch_impl(case), inputs, grads=case.grads)
    ref = run(torch_impl(case, wide=True), inputs, wide=torch.float64, grads=case.grads)
    shape = shape_of(case)
    assert got["y"].dtype == case.dtype and got["y"].shape == shape, f"{case}: y"
    assert got["h"].dtype == case.h_dtype and got["h"].shape == shape, f"{case}: h"
    assert set(got) == set(ref), f"{case}: gradients {sorted(got)}, expected {sorted(ref)}"
    for name, src in (("dx", "x"), ("dresidual", "residual"), ("dweight", "weight"),
                      ("dbias", "bias")):
        if name in got:
            assert got[name].dtype == inputs[src].dtype, f"{case}: {name} dtype"
            assert got[name].shape == inputs[src].shape, f"{case}: {name} shape"
    for name, ref_value in ref.items():
        value, torch_value = got[name].double(), own[name].double()
        err = max_abs(value - ref_value)
        err_torch = max_abs(torch_value - ref_value)
        tol = tolerance(got[name], ref_value, err_torch)
        assert math.isfinite(err) and err <= tol, (
            f"{case}: {name} ({got[name].dtype}) max error {err:.3g} > tolerance {tol:.3g} "
            f"(PyTorch's own error {err_torch:.3g})"
        )
