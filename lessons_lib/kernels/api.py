"""Fused residual add + LayerNorm/RMSNorm: the function, the module, the PyTorch op, the checks.

    h = x + residual                 # the new residual stream, kept in `residual_dtype`
    y = norm(h) * weight + bias      # norm = LayerNorm or RMSNorm over the last dimension

`fused_add_norm` returns `(y, h)`. Gradients flow to x, residual, weight and bias, including the
gradient that later layers send into h (a Pre-LN block uses h as the next residual).

Backends: "triton" runs `fused_add_norm_triton` (compiled on CUDA tensors; on CPU tensors in
Triton's interpreter, see `lessons_lib.kernels`); "reference" is plain PyTorch built on
`lessons_lib.normalization.normalize`; "auto" picks "triton" for CUDA tensors when Triton is
installed, and "reference" otherwise.

The Triton backend is registered with PyTorch as two custom operators,
`torch.ops.lessons_lib.fused_add_norm_fwd` and `..._bwd`, each with a "fake" implementation
(output shapes and dtypes without running) and the backward registered as the forward's
autograd formula. So `torch.compile` sees one opaque op (no graph break; it never traces into
Triton, which is why the interpreter works under it too) and `torch.export` records it.

Autocast: the ops have no autocast rule, so under `torch.autocast` they run in the dtypes they
are given and y has x's dtype. `nn.LayerNorm` under CUDA autocast runs in float32 (layer_norm is
on autocast's float32 list) and returns float32; under CPU autocast it keeps a bf16 input's
dtype, as the fused op does. Cast the output if the next layer needs another dtype.

The backward is not differentiable again: a double backward (`create_graph=True`, a gradient
penalty) raises RuntimeError when the second derivative is asked for. The reference backend
supports it.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn

from lessons_lib._checks import (
    check_choice,
    check_float_tensor,
    check_optional_param,
    check_positive,
    check_same_shape,
)
from lessons_lib.kernels.limits import MAX_ROW_BYTES, TRITON_DTYPES, max_features
from lessons_lib.kernels.triton_support import require_triton, triton_available
from lessons_lib.normalization import NORM_KINDS, NormKind, normalize

Backend = Literal["auto", "triton", "reference"]
BACKENDS: tuple[str, ...] = ("auto", "triton", "reference")
# Default eps per norm, as torch.nn.LayerNorm and torch.nn.RMSNorm have them: 1e-5, and None
# for RMSNorm, which means the machine epsilon of the dtype the norm computes in (F.rms_norm's
# rule: float32's, 1.19e-7, for fp16/bf16/fp32 inputs; float64's for float64).
DEFAULT_EPS: dict[str, float | None] = {"layernorm": 1e-5, "rmsnorm": None}
DOUBLE_BACKWARD_ERROR = (
    "fused_add_norm (backend='triton') has no second derivative: its backward is not "
    "differentiable (double backward, create_graph=True, gradient penalties). Use "
    "backend='reference' for that"
)


def _triton_impl() -> Any:
    """The kernel module, imported on first use (it needs Triton)."""
    require_triton()
    from lessons_lib.kernels import fused_add_norm_triton

    return fused_add_norm_triton


def resolve_eps(eps: float | None, norm: str, dtype: torch.dtype) -> float:
    """eps, or the default of `norm` for a residual stream of `dtype`."""
    if eps is None:
        eps = DEFAULT_EPS[norm]
    if eps is None:
        return float(torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32).eps)
    return check_positive("eps", eps, allow_zero=True)


def _check_inputs(
    x: Tensor, residual: Tensor | None, weight: Tensor | None, bias: Tensor | None,
    eps: float | None, norm: str, residual_dtype: torch.dtype | None, backend: str,
) -> tuple[float, torch.dtype]:
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
        if residual.dtype not in (x.dtype, torch.float32):
            raise TypeError(
                f"residual must have x's dtype ({x.dtype}) or torch.float32, got {residual.dtype}"
            )
    if residual_dtype is None:
        residual_dtype = x.dtype if residual is None else residual.dtype
    if residual_dtype not in (x.dtype, torch.float32):
        raise TypeError(
            f"residual_dtype must be x's dtype ({x.dtype}) or torch.float32, got {residual_dtype}"
        )
    if residual is not None and residual.dtype != residual_dtype and residual.dtype != x.dtype:
        raise TypeError(
            f"residual is {residual.dtype} but residual_dtype is {residual_dtype}: the stream "
            f"would be rounded down. Pass residual_dtype={residual.dtype} (or None), or give the "
            f"residual in {residual_dtype}"
        )
    for name, param in (("weight", weight), ("bias", bias)):
        check_optional_param(name, param, x, n)
        if param is not None and param.dtype not in (x.dtype, torch.float32):
            raise TypeError(
                f"{name} must have x's dtype ({x.dtype}) or torch.float32, got {param.dtype}"
            )
    return resolve_eps(eps, norm, residual_dtype), residual_dtype


def _resolve_backend(backend: str, x: torch.Tensor) -> str:
    if backend == "auto":
        # Under torch.compile on CUDA, Triton is there (Inductor needs it): no import machinery
        # in the traced code.
        has_triton = torch.compiler.is_compiling() or triton_available()
        return "triton" if x.is_cuda and has_triton else "reference"
    return backend


def _check_triton_inputs(x: torch.Tensor, residual_dtype: torch.dtype) -> None:
    """What the Triton kernel cannot do; and Triton itself, imported on first use.

    The import happens here, before the op runs, because PyTorch's op dispatch imports Triton
    (in compiled mode) on its way to the kernel; `require_triton` must come first to switch the
    interpreter on by itself on a machine without a GPU. Under torch.compile Triton is imported
    already, and the check is left out of the graph.
    """
    if not torch.compiler.is_compiling():
        require_triton()  # ImportError saying how to install it
    for name, dtype in (("x", x.dtype), ("residual_dtype", residual_dtype)):
        if dtype not in TRITON_DTYPES:
            raise TypeError(
                f"{name}: backend='triton' supports float16, bfloat16 and float32, got {dtype}; "
                "use backend='reference' for float64"
            )
    if x.device.type not in ("cuda", "cpu"):
        raise ValueError(f"x: backend='triton' runs on 'cuda' or 'cpu' tensors, got {x.device}")
    n, limit = x.shape[-1], max_features(x.dtype)
    if n > limit:
        raise ValueError(
            f"N = {n} (the last dimension of x) is too large for the Triton kernel: a row must fit "
            f"in {MAX_ROW_BYTES // 1024} KiB, so N <= {limit} for {x.dtype}; "
            "use backend='reference'"
        )


def _as_rows(t: torch.Tensor) -> torch.Tensor:
    """(..., N) -> (M, N) without a copy where possible; copy only if the last dim is strided."""
    rows = t.reshape(-1, t.shape[-1])
    return rows if rows.stride(-1) == 1 else rows.contiguous()


def _empty(like: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Placeholder for an output an op does not produce (custom ops return tensors only)."""
    return like.new_empty((0,), dtype=dtype or like.dtype)


# ---------------------------------------------------------------------------------------------
# The PyTorch operators
# ---------------------------------------------------------------------------------------------


@torch.library.custom_op("lessons_lib::fused_add_norm_fwd", mutates_args=())
def _fwd_op(
    x: Tensor, residual: Tensor | None, weight: Tensor | None, bias: Tensor | None,
    eps: float, is_rms_norm: bool, residual_dtype: torch.dtype, store_h: bool, store_stats: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(y, h, mean, rstd); h, mean and rstd are empty when not stored (h is then x)."""
    impl = _triton_impl()
    rows = _as_rows(x)
    res_rows = None if residual is None else _as_rows(residual)
    y, h, mean, rstd = impl.forward(rows, res_rows, weight, bias, eps, is_rms_norm,
                                    residual_dtype, store_h, store_stats)
    return (
        y.view(x.shape),
        _empty(x, residual_dtype) if h is None else h.view(x.shape),
        _empty(x, torch.float32) if mean is None else mean,
        _empty(x, torch.float32) if rstd is None else rstd,
    )


@_fwd_op.register_fake
def _fwd_fake(
    x: Tensor, residual: Tensor | None, weight: Tensor | None, bias: Tensor | None, eps: float,
    is_rms_norm: bool, residual_dtype: torch.dtype, store_h: bool, store_stats: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    m = x.numel() // x.shape[-1]
    stats = x.new_empty((m,), dtype=torch.float32)
    return (
        x.new_empty(x.shape),
        x.new_empty(x.shape, dtype=residual_dtype) if store_h else _empty(x, residual_dtype),
        stats if store_stats and not is_rms_norm else _empty(x, torch.float32),
        stats.new_empty((m,)) if store_stats else _empty(x, torch.float32),
    )


@torch.library.custom_op("lessons_lib::fused_add_norm_bwd", mutates_args=())
def _bwd_op(
    dy: Tensor, dh: Tensor | None, h: Tensor, weight: Tensor | None, mean: Tensor | None,
    rstd: Tensor, x_dtype: torch.dtype, residual_dtype: torch.dtype | None,
    want_dx: bool, want_dresidual: bool, want_dweight: bool, want_dbias: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(dx, dresidual, dweight, dbias), empty where not wanted. dresidual is empty, too, when the
    kernel hands dx to both (same dtype: it writes the gradient once); `_backward` then uses dx.
    """
    impl = _triton_impl()
    shape = h.shape
    dx, dres, dw, db = impl.backward(
        _as_rows(dy), None if dh is None else _as_rows(dh), _as_rows(h), weight, mean, rstd,
        x_dtype, residual_dtype, want_dx=want_dx, want_dresidual=want_dresidual,
        want_dweight=want_dweight, want_dbias=want_dbias,
    )
    if dx is None and dres is not None and dres.dtype == x_dtype:
        dx, dres = dres, None  # the residual alone wanted its gradient: one tensor, returned once
    return (
        _empty(h, x_dtype) if dx is None else dx.view(shape),
        _empty(h, residual_dtype) if dres is None or dres is dx else dres.view(shape),
        _empty(h, torch.float32) if dw is None else dw,
        _empty(h, torch.float32) if db is None else db,
    )


@_bwd_op.register_fake
def _bwd_fake(
    dy: Tensor, dh: Tensor | None, h: Tensor, weight: Tensor | None, mean: Tensor | None,
    rstd: Tensor, x_dtype: torch.dtype, residual_dtype: torch.dtype | None, want_dx: bool,
    want_dresidual: bool, want_dweight: bool, want_dbias: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    n = h.shape[-1]
    want_dresidual = want_dresidual and residual_dtype is not None
    separate = want_dresidual and residual_dtype != x_dtype
    full_dx = want_dx or (want_dresidual and residual_dtype == x_dtype)
    return (
        h.new_empty(h.shape, dtype=x_dtype) if full_dx else _empty(h, x_dtype),
        h.new_empty(h.shape, dtype=residual_dtype) if separate else _empty(h, residual_dtype),
        h.new_empty((n,), dtype=torch.float32) if want_dweight and weight is not None
        else _empty(h, torch.float32),
        h.new_empty((n,), dtype=torch.float32) if want_dbias else _empty(h, torch.float32),
    )


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
    x, residual, weight, bias, _eps, is_rms_norm, residual_dtype, store_h, _store_stats = inputs
    _y, h, mean, rstd = output
    ctx.save_for_backward(h if store_h else x, weight, mean, rstd)
    ctx.is_rms_norm = is_rms_norm
    ctx.store_h = store_h
    ctx.x_dtype = x.dtype
    ctx.residual_dtype = None if residual is None else residual.dtype
    ctx.weight_dtype = None if weight is None else weight.dtype
    ctx.bias_dtype = None if bias is None else bias.dtype
    ctx.set_materialize_grads(False)  # a gradient nobody sends (dh of an unused h) is not read


def _backward(
    ctx: Any, dy: Tensor | None, dh: Tensor | None, _dmean: Tensor | None, _drstd: Tensor | None
) -> tuple[Tensor | None, ...]:
    h, weight, mean, rstd = ctx.saved_tensors
    wants_x, wants_res, wants_w, wants_b = ctx.needs_input_grad[:4]
    if dy is None:  # only h was used downstream
        dy = torch.zeros(h.shape, dtype=ctx.x_dtype, device=h.device)
    with torch.no_grad():
        dx, dres, dw, db = torch.ops.lessons_lib.fused_add_norm_bwd(
            dy, dh if ctx.store_h else None, h, weight,
            None if ctx.is_rms_norm else mean, rstd, ctx.x_dtype, ctx.residual_dtype,
            wants_x, wants_res and ctx.residual_dtype is not None, wants_w,
            wants_b and ctx.bias_dtype is not None,
        )
    shared = dres.shape == (0,)  # the kernel wrote dh once, into dx, for both inputs
    grads = (
        dx if wants_x else None,
        (dx if shared else dres) if wants_res and ctx.residual_dtype else None,
        dw.to(ctx.weight_dtype) if wants_w and ctx.weight_dtype else None,
        db.to(ctx.bias_dtype) if wants_b and ctx.bias_dtype else None,
    )
    return (*_once_differentiable(grads, (dy, dh, h, weight)), None, None, None, None, None)


class _NotDifferentiableAgain(torch.autograd.Function):
    """Identity on the gradients; differentiating through it raises. Its inputs include what
    the gradients really depend on (dy, dh, h, weight), so every path of a second derivative
    passes through it: none can come out silently short of terms."""

    @staticmethod
    def forward(ctx: Any, grads: list[Tensor], *anchors: Tensor) -> tuple[Tensor, ...]:
        return tuple(g.view_as(g) for g in grads)

    @staticmethod
    def backward(ctx: Any, *_: Any) -> Any:
        raise RuntimeError(DOUBLE_BACKWARD_ERROR)


def _once_differentiable(
    grads: tuple[Tensor | None, ...], anchors: tuple[Tensor | None, ...]
) -> tuple[Tensor | None, ...]:
    """Under create_graph=True, make a second derivative through these gradients raise."""
    connected = [t for t in anchors if t is not None and t.requires_grad]
    if not torch.is_grad_enabled() or not connected:
        return grads
    present = [g for g in grads if g is not None]
    marked = iter(_NotDifferentiableAgain.apply(present, *connected))
    return tuple(None if g is None else next(marked) for g in grads)


# Looked up at call time (tests replace `_backward` to check that they catch its bugs).
_fwd_op.register_autograd(lambda ctx, *grads: _backward(ctx, *grads),
                         setup_context=_setup_context)


# ---------------------------------------------------------------------------------------------
# The function and the module
# ---------------------------------------------------------------------------------------------


def _reference(
    x: Tensor, residual: Tensor | None, weight: Tensor | None, bias: Tensor | None, eps: float,
    norm: NormKind, residual_dtype: torch.dtype,
) -> tuple[Tensor, Tensor]:
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
        weight, bias: optional (N,) tensors, in x's dtype or float32 (any strides).
        eps: added to the variance inside the square root; default 1e-5 for LayerNorm and, for
            RMSNorm, the machine epsilon of the compute dtype (float32's for fp16/bf16/fp32),
            as torch.nn.RMSNorm and F.rms_norm have it.
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
    if _resolve_backend(backend, x) == "reference":
        return _reference(x, residual, weight, bias, eps, norm, residual_dtype)
    _check_triton_inputs(x, residual_dtype)
    # The kernel indexes weight and bias as W + column: make strided ones (a view, an expanded
    # scalar) contiguous. N values: cheap, and autograd maps the gradient back.
    weight = None if weight is None else weight.contiguous()
    bias = None if bias is None else bias.contiguous()
    # Statistics are stored only if a backward can follow.
    needs_grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, residual, weight, bias)
    )
    store_h = residual is not None or residual_dtype != x.dtype
    y, h, _, _ = torch.ops.lessons_lib.fused_add_norm_fwd(
        x, residual, weight, bias, eps, norm == "rmsnorm", residual_dtype, store_h, needs_grad
    )
    return y, (h if store_h else x)


class FusedAddNorm(nn.Module):
    """`nn.LayerNorm` / `nn.RMSNorm` that also does the residual add before it (Pre-LN blocks).

    `forward(hidden, residual=None) -> (y, h)` with h = hidden + residual (the new residual
    stream) and y = norm(h) * weight + bias. The constructor takes `nn.LayerNorm`'s arguments
    (`normalized_shape`, `eps`, `elementwise_affine`, `bias`, `device`, `dtype`) with the same
    defaults for each norm (RMSNorm: eps None, the compute dtype's epsilon; no bias), and the
    parameters have the same names and shapes, so a state dict of either loads into it.

    Keyword options: `norm` ("layernorm" or "rmsnorm"), `residual_dtype` (dtype of h, e.g.
    torch.float32 for an fp32 stream under bf16 activations) and `backend` (see
    `fused_add_norm`). Under `torch.autocast`, y keeps its input's dtype (see `api`).
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int] | list[int],
        eps: float | None = None,
        *,
        norm: NormKind = "layernorm",
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
        if eps is None and norm == "layernorm":
            eps = DEFAULT_EPS["layernorm"]
        self.normalized_shape = (normalized_shape,)
        self.norm = norm
        self.eps = None if eps is None else check_positive("eps", eps, allow_zero=True)
        self.elementwise_affine = elementwise_affine
        self.residual_dtype = residual_dtype
        self.backend = backend
        use_bias = (norm == "layernorm") if bias is None else bias
        if elementwise_affine:
            self.weight = nn.Parameter(torch.empty(normalized_shape, device=device, dtype=dtype))
            if use_bias:
                self.bias = nn.Parameter(torch.empty(normalized_shape, device=device, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight = 1, bias = 0 (also after `to_empty()` from the meta device, as FSDP does)."""
        if self.weight is not None:
            nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, hidden: torch.Tensor, residual: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return fused_add_norm(
            hidden, residual, self.weight, self.bias, eps=self.eps, norm=self.norm,
            residual_dtype=self.residual_dtype, backend=self.backend,
        )

    def extra_repr(self) -> str:
        text = (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, norm={self.norm!r}")
        if self.elementwise_affine:
            text += f", bias={self.bias is not None}"
        if self.residual_dtype is not None:
            text += f", residual_dtype={self.residual_dtype}"
        return text + f", backend={self.backend!r}"
