"""Fused residual add + LayerNorm/RMSNorm: the function, the module, the autograd glue, the checks.

    h = x + residual                 # the new residual stream, kept in `residual_dtype`
    y = norm(h) * weight + bias      # norm = LayerNorm or RMSNorm over the last dimension

`fused_add_norm` returns `(y, h)`. Gradients flow to x, residual, weight and bias, including the
gradient that later layers send into h (a Pre-LN block uses h as the next residual).

Backends: "triton" runs `fused_add_norm_triton` (compiled on CUDA tensors; on CPU tensors in
Triton's interpreter, see `lessons_lib.kernels`); "reference" is plain PyTorch built on
`lessons_lib.normalization.normalize`; "auto" picks "triton" for CUDA tensors when Triton is
installed, and "reference" otherwise.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from lessons_lib._checks import (
    check_choice,
    check_float_tensor,
    check_optional_param,
    check_positive,
    check_same_shape,
)
from lessons_lib.kernels.triton_support import require_triton, triton_available
from lessons_lib.normalization import NORM_KINDS, NormKind, normalize

Backend = Literal["auto", "triton", "reference"]
BACKENDS: tuple[str, ...] = ("auto", "triton", "reference")
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
# Default eps per norm, the same as lessons_lib.normalization's LayerNorm and RMSNorm.
DEFAULT_EPS = {"layernorm": 1e-5, "rmsnorm": 1e-6}


def _triton_impl():
    """The kernel module, imported on first use (it needs Triton)."""
    require_triton()
    from lessons_lib.kernels import fused_add_norm_triton

    return fused_add_norm_triton


def _check_inputs(x, residual, weight, bias, eps, norm, residual_dtype, backend):
    """Validate the arguments; return (eps, residual_dtype) with their defaults filled in."""
    check_choice("norm", norm, NORM_KINDS)
    check_choice("backend", backend, BACKENDS)
    check_float_tensor("x", x)
    n = x.shape[-1]
    if n == 0:
        raise ValueError(
            f"x must have at least one feature in its last dimension, got {tuple(x.shape)}"
        )
    if residual is not None:
        check_float_tensor("residual", residual)
        check_same_shape("residual", residual, x.shape)
        if residual.device != x.device:
            raise ValueError(f"residual is on {residual.device} but x is on {x.device}")
    if residual is not None and residual.dtype not in (x.dtype, torch.float32):
        raise TypeError(
            f"residual must have x's dtype ({x.dtype}) or torch.float32, got {residual.dtype}"
        )
    if residual_dtype is None:
        residual_dtype = x.dtype if residual is None else residual.dtype
    if residual_dtype not in (x.dtype, torch.float32):
        raise TypeError(
            f"residual_dtype must be x's dtype ({x.dtype}) or torch.float32, got {residual_dtype}"
        )
    if residual is not None and residual.dtype not in (x.dtype, residual_dtype):
        raise TypeError(
            f"residual must have x's dtype ({x.dtype}) or the residual stream's dtype "
            f"({residual_dtype}), got {residual.dtype}"
        )
    for name, param in (("weight", weight), ("bias", bias)):
        check_optional_param(name, param, x, n)
        if param is not None and param.dtype not in (x.dtype, torch.float32):
            raise TypeError(
                f"{name} must have x's dtype ({x.dtype}) or torch.float32, got {param.dtype}"
            )
    if eps is None:
        eps = DEFAULT_EPS[norm]
    eps = check_positive("eps", eps, allow_zero=True)
    return eps, residual_dtype


def _resolve_backend(backend: str, x: torch.Tensor) -> str:
    if backend == "auto":
        return "triton" if x.is_cuda and triton_available() else "reference"
    return backend


def _check_triton_inputs(x: torch.Tensor, residual_dtype: torch.dtype) -> None:
    impl = _triton_impl()
    for name, dtype in (("x", x.dtype), ("residual_dtype", residual_dtype)):
        if dtype not in TRITON_DTYPES:
            raise TypeError(
                f"{name}: backend='triton' supports float16, bfloat16 and float32, got {dtype}; "
                "use backend='reference' for float64"
            )
    if x.device.type not in ("cuda", "cpu"):
        raise ValueError(f"x: backend='triton' runs on 'cuda' or 'cpu' tensors, got {x.device}")
    n, limit = x.shape[-1], impl.max_features(x.dtype)
    if n > limit:
        raise ValueError(
            f"N = {n} (the last dimension of x) is too large for the Triton kernel: a row must fit "
            f"in {impl.MAX_ROW_BYTES // 1024} KiB, so N <= {limit} for {x.dtype}; "
            "use backend='reference'"
        )


def _as_rows(t: torch.Tensor) -> torch.Tensor:
    """(..., N) -> (M, N) without a copy where possible; copy only if the last dim is strided."""
    rows = t.reshape(-1, t.shape[-1])
    return rows if rows.stride(-1) == 1 else rows.contiguous()


class _FusedAddNormFunction(torch.autograd.Function):
    """autograd glue around the two launchers. Returns (y, h), or y alone when h is x itself."""

    @staticmethod
    def forward(ctx, x, residual, weight, bias, eps, is_rms_norm, residual_dtype):
        impl = _triton_impl()
        x_rows = _as_rows(x)
        res_rows = None if residual is None else _as_rows(residual)
        # Without a residual and with an unchanged dtype, h == x: nothing to store.
        store_h = residual is not None or residual_dtype != x.dtype
        y, h, mean, rstd = impl.forward(
            x_rows, res_rows, weight, bias, eps, is_rms_norm, residual_dtype, store_h
        )
        ctx.save_for_backward(h if store_h else x_rows, weight, mean, rstd)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = None if bias is None else bias.dtype
        ctx.x_dtype = x.dtype
        ctx.residual_dtype = None if residual is None else residual.dtype
        ctx.shape = x.shape
        ctx.set_materialize_grads(False)  # a missing dh is skipped, not read as zeros
        if store_h:
            return y.view(x.shape), h.view(x.shape)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, dy, dh=None):
        impl = _triton_impl()
        h, weight, mean, rstd = ctx.saved_tensors
        dy_rows = torch.zeros_like(h, dtype=ctx.x_dtype) if dy is None else _as_rows(dy)
        dh_rows = None if dh is None else _as_rows(dh)
        wants_dres = ctx.residual_dtype is not None and ctx.needs_input_grad[1]
        dx, dres, dw, db = impl.backward(
            dy_rows, dh_rows, h, weight, ctx.has_bias, mean, rstd,
            ctx.x_dtype, ctx.residual_dtype if wants_dres else None,
        )
        dx = dx.view(ctx.shape)
        dres = None if dres is None else dres.view(ctx.shape)
        if dw is not None:
            dw = dw.to(weight.dtype)
        if db is not None:
            db = db.to(ctx.bias_dtype)
        return dx, dres, dw, db, None, None, None


def _reference(x, residual, weight, bias, eps, norm, residual_dtype):
    """Plain PyTorch, differentiable by autograd, with the kernel's rounding: the sum is formed in
    float32 (float64 for float64 tensors), rounded once to the residual dtype, and normalized."""
    if residual is None:
        h = x.to(residual_dtype)  # x itself when the dtype does not change, as in the kernel
    else:
        wide = torch.float64 if torch.float64 in (x.dtype, residual_dtype) else torch.float32
        h = (x.to(wide) + residual.to(wide)).to(residual_dtype)
    y = normalize(h, norm, weight, bias, eps).to(x.dtype)
    return y, h


def fused_add_norm(
    x: torch.Tensor,
    residual: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    eps: float | None = None,
    norm: NormKind = "layernorm",
    residual_dtype: torch.dtype | None = None,
    backend: Backend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """h = x + residual; y = norm(h) * weight + bias. Returns (y, h).

    Args:
        x: (..., N) float16, bfloat16 or float32 (float64 with backend="reference").
        residual: optional, same shape and device as x; dtype x's or `residual_dtype`.
        weight, bias: optional (N,) tensors, in x's dtype or float32.
        eps: added to the variance inside the square root; default 1e-5 for LayerNorm and
            1e-6 for RMSNorm.
        norm: "layernorm" or "rmsnorm".
        residual_dtype: dtype of h, x's dtype or float32 (default: residual's dtype, or x's).
            float32 keeps the residual stream exact-er while activations are fp16/bf16.
        backend: "triton", "reference" or "auto" (Triton on CUDA, the reference elsewhere).

    Returns:
        y in x's dtype and h in `residual_dtype`, both of x's shape. Statistics are fp32 for any
        input dtype. Without a residual, and with h's dtype equal to x's, h is x itself.
    """
    eps, residual_dtype = _check_inputs(
        x, residual, weight, bias, eps, norm, residual_dtype, backend
    )
    backend = _resolve_backend(backend, x)
    if backend == "reference":
        return _reference(x, residual, weight, bias, eps, norm, residual_dtype)
    _check_triton_inputs(x, residual_dtype)
    out = _FusedAddNormFunction.apply(
        x, residual, weight, bias, eps, norm == "rmsnorm", residual_dtype
    )
    if isinstance(out, tuple):
        return out
    return out, x


class FusedAddNorm(nn.Module):
    """Drop-in for a Pre-LN block's norm that also does the residual add before it.

    `forward(x, residual=None) -> (y, h)` with h = x + residual and y = norm(h) * weight + bias.
    Parameter names (`weight`, `bias`) match `nn.LayerNorm`/`nn.RMSNorm`, so their state dicts
    load into it.
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int],
        eps: float | None = None,
        norm: NormKind = "layernorm",
        *,
        elementwise_affine: bool = True,
        bias: bool | None = None,
        residual_dtype: torch.dtype | None = None,
        backend: Backend = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        check_choice("norm", norm, NORM_KINDS)
        check_choice("backend", backend, BACKENDS)
        if isinstance(normalized_shape, tuple | list):
            if len(normalized_shape) != 1:
                raise ValueError(
                    "normalized_shape must be an int or a 1-tuple (the last dimension only), "
                    f"got {tuple(normalized_shape)}"
                )
            (normalized_shape,) = normalized_shape
        if isinstance(normalized_shape, bool) or not isinstance(normalized_shape, int):
            raise TypeError(
                f"normalized_shape must be an int, got {type(normalized_shape).__name__}"
            )
        if normalized_shape < 1:
            raise ValueError(f"normalized_shape must be >= 1, got {normalized_shape}")
        self.normalized_shape = (normalized_shape,)
        self.norm = norm
        self.eps = check_positive("eps", DEFAULT_EPS[norm] if eps is None else eps, allow_zero=True)
        self.residual_dtype = residual_dtype
        self.backend = backend
        use_bias = (norm == "layernorm") if bias is None else bias
        factory = {"device": device, "dtype": dtype}
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(normalized_shape, **factory))
            self.bias = nn.Parameter(torch.zeros(normalized_shape, **factory)) if use_bias else None
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return fused_add_norm(
            x, residual, self.weight, self.bias, eps=self.eps, norm=self.norm,
            residual_dtype=self.residual_dtype, backend=self.backend,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape[0]}, eps={self.eps}, norm={self.norm!r}, "
            f"bias={self.bias is not None}, residual_dtype={self.residual_dtype}, "
            f"backend={self.backend!r}"
        )
