"""LayerNorm, RMSNorm and BatchNorm written out, with an explicit LN/RMS backward, and the one
factory that builds a normalization layer for a model.

Conventions (the ones `torch.nn.LayerNorm` documents):
- statistics are taken over the last dimension (the features of one token);
- the variance is the biased one (divide by N, not N - 1);
- eps goes inside the square root: x_hat = (x - mean) / sqrt(var + eps);
- float16/bfloat16 inputs are computed in float32 and the output is cast back.

From scratch: `layer_norm_forward`, `rms_norm_forward` and `batch_norm_forward` return
`(out, cache)` (BatchNorm: `out`); `norm_backward(dout, cache)` returns `(dx, dweight, dbias)`,
with `None` for a parameter that was not given. `normalize` differentiates the forward with
autograd, `normalize_explicit` with `norm_backward`; the modules `LayerNorm` and `RMSNorm` wrap
them.

For models: `make_norm(norm, features)` builds PyTorch's fast layer for one of the names in
`NORMS`, the course's single vocabulary: "layernorm" (`nn.LayerNorm`), "rmsnorm"
(`nn.RMSNorm`), "batchnorm" (`BatchNorm`, which is `nn.BatchNorm1d` for features-last inputs)
or "none" (`nn.Identity`). The tests check the from-scratch code against those layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lessons_lib._checks import (
    check_bool,
    check_choice,
    check_float_tensor,
    check_in_range,
    check_int,
    check_optional_param,
    check_positive,
    check_same_shape,
)

# The course's vocabulary of normalization layers: what `make_norm` builds.
Norm = Literal["layernorm", "rmsnorm", "batchnorm", "none"]
NORMS: tuple[Norm, ...] = ("layernorm", "rmsnorm", "batchnorm", "none")
# The two that normalize each token on its own: from scratch here, fused in lessons_lib.kernels.
NormKind = Literal["layernorm", "rmsnorm"]
NORM_KINDS: tuple[NormKind, ...] = ("layernorm", "rmsnorm")
# Default eps of each layer (PyTorch's for LayerNorm and BatchNorm; 1e-6 for RMSNorm, as in
# Zhang & Sennrich 2019 and most released models).
DEFAULT_EPS: dict[str, float] = {"layernorm": 1e-5, "rmsnorm": 1e-6, "batchnorm": 1e-5}


@dataclass(frozen=True)
class NormCache:
    """What the backward pass needs. `mean` is None for RMSNorm."""

    x: torch.Tensor  # (..., N), in the compute dtype
    weight: torch.Tensor | None  # (N,)
    has_bias: bool
    mean: torch.Tensor | None  # (...,)
    rstd: torch.Tensor  # (...,)  1 / sqrt(var + eps), or 1 / sqrt(mean(x^2) + eps)
    kind: NormKind

    def x_hat(self) -> torch.Tensor:
        """The normalized input, recomputed (cheap) rather than stored."""
        centered = self.x if self.mean is None else self.x - self.mean.unsqueeze(-1)
        return centered * self.rstd.unsqueeze(-1)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Half-precision inputs are normalized in float32; float32/float64 in their own dtype."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_inputs(
    x: object, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: object
) -> torch.Tensor:
    x = check_float_tensor("x", x)
    n = x.shape[-1]
    if n == 0:
        raise ValueError(f"x must have at least one feature in its last dimension, got shape "
                         f"{tuple(x.shape)}")
    check_optional_param("weight", weight, x, n)
    check_optional_param("bias", bias, x, n)
    check_positive("eps", eps, allow_zero=True)
    return x


def _affine(
    x_hat: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    out = x_hat
    if weight is not None:
        out = out * weight.to(x_hat.dtype)
    if bias is not None:
        out = out + bias.to(x_hat.dtype)
    return out.to(out_dtype)


def layer_norm_forward(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> tuple[torch.Tensor, NormCache]:
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim of x (..., N)."""
    _check_inputs(x, weight, bias, eps)
    xc = x.to(compute_dtype(x.dtype))
    mean = xc.mean(dim=-1)  # (...,)
    centered = xc - mean.unsqueeze(-1)  # (..., N)
    var = (centered * centered).mean(dim=-1)  # biased: divide by N
    rstd = torch.rsqrt(var + eps)  # eps inside the root
    out = _affine(centered * rstd.unsqueeze(-1), weight, bias, x.dtype)
    return out, NormCache(xc, weight, bias is not None, mean, rstd, "layernorm")


def rms_norm_forward(
    x: torch.Tensor,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, NormCache]:
    """y = x / sqrt(mean(x^2) + eps) * weight (+ bias): LayerNorm without the centering."""
    _check_inputs(x, weight, bias, eps)
    xc = x.to(compute_dtype(x.dtype))
    rstd = torch.rsqrt((xc * xc).mean(dim=-1) + eps)  # (...,)
    out = _affine(xc * rstd.unsqueeze(-1), weight, bias, x.dtype)
    return out, NormCache(xc, weight, bias is not None, None, rstd, "rmsnorm")


def norm_backward(
    dout: torch.Tensor, cache: NormCache
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Explicit gradients of LayerNorm or RMSNorm, from the cache of the forward.

    With g = dout * weight and x_hat the normalized input (all means over the last dim):
      LayerNorm: dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))
      RMSNorm:   dx = rstd * (g - x_hat * mean(g * x_hat))
      dweight = sum over rows of dout * x_hat,  dbias = sum over rows of dout.
    """
    check_float_tensor("dout", dout)
    if not isinstance(cache, NormCache):
        raise TypeError(f"cache must be the NormCache of a forward, got {type(cache).__name__}")
    check_same_shape("dout", dout, cache.x.shape)
    d = dout.to(cache.x.dtype)
    x_hat = cache.x_hat()
    g = d if cache.weight is None else d * cache.weight.to(d.dtype)
    proj = (g * x_hat).mean(dim=-1, keepdim=True)
    inner = g - x_hat * proj
    if cache.kind == "layernorm":
        inner = inner - g.mean(dim=-1, keepdim=True)
    dx = (cache.rstd.unsqueeze(-1) * inner).to(dout.dtype)
    rows = tuple(range(d.dim() - 1))
    dweight = None
    if cache.weight is not None:
        dweight = (d * x_hat).sum(dim=rows).to(cache.weight.dtype)
    dbias = d.sum(dim=rows) if cache.has_bias else None
    return dx, dweight, dbias


_FORWARDS = {"layernorm": layer_norm_forward, "rmsnorm": rms_norm_forward}


def normalize(
    x: torch.Tensor,
    kind: NormKind = "layernorm",
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """LayerNorm or RMSNorm through plain tensor ops, so autograd differentiates it."""
    check_choice("kind", kind, NORM_KINDS)
    return _FORWARDS[kind](x, weight, bias, eps)[0]


class _ExplicitNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None,
                bias: torch.Tensor | None, eps: float, kind: NormKind) -> torch.Tensor:
        out, cache = _FORWARDS[kind](x, weight, bias, eps)
        # Through save_for_backward, not as attributes of ctx: PyTorch then checks that x and
        # weight were not modified in place before backward, instead of differentiating at
        # the modified values without a word.
        ctx.save_for_backward(x, weight, cache.mean, cache.rstd)
        ctx.kind, ctx.has_bias = kind, bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, mean, rstd = ctx.saved_tensors
        cache = NormCache(x.to(compute_dtype(x.dtype)), weight, ctx.has_bias, mean, rstd,
                          ctx.kind)
        dx, dweight, dbias = norm_backward(grads[0], cache)
        return dx, dweight, dbias, None, None


def normalize_explicit(
    x: torch.Tensor,
    kind: NormKind = "layernorm",
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Same output as `normalize`, but autograd calls `norm_backward` for the gradients."""
    check_choice("kind", kind, NORM_KINDS)
    out: torch.Tensor = _ExplicitNorm.apply(x, weight, bias, eps, kind)
    return out


class LayerNorm(nn.Module):
    """From-scratch `nn.LayerNorm` over the last dimension (size `normalized_shape`).

    `explicit_backward=True` differentiates with `norm_backward` instead of autograd.
    """

    kind: NormKind = "layernorm"

    def __init__(
        self, normalized_shape: int, eps: float = 1e-5, elementwise_affine: bool = True,
        bias: bool = True, explicit_backward: bool = False,
    ) -> None:
        super().__init__()
        self.normalized_shape = check_int("normalized_shape", normalized_shape, minimum=1)
        self.eps = check_positive("eps", eps, allow_zero=True)
        self.explicit_backward = check_bool("explicit_backward", explicit_backward)
        affine = check_bool("elementwise_affine", elementwise_affine)
        check_bool("bias", bias)
        n = self.normalized_shape
        self.weight: nn.Parameter | None = nn.Parameter(torch.ones(n)) if affine else None
        self.bias: nn.Parameter | None = (
            nn.Parameter(torch.zeros(n)) if affine and bias else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize each row of x (..., normalized_shape)."""
        check_float_tensor("x", x)
        if x.shape[-1] != self.normalized_shape:
            raise ValueError(f"x must have {self.normalized_shape} features in its last "
                             f"dimension, got shape {tuple(x.shape)}")
        fn = normalize_explicit if self.explicit_backward else normalize
        return fn(x, self.kind, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.weight is not None}, bias={self.bias is not None}")


class RMSNorm(LayerNorm):
    """From-scratch RMSNorm (Zhang & Sennrich 2019): no centering and, by default, no bias."""

    kind: NormKind = "rmsnorm"

    def __init__(
        self, normalized_shape: int, eps: float = 1e-6, elementwise_affine: bool = True,
        bias: bool = False, explicit_backward: bool = False,
    ) -> None:
        super().__init__(normalized_shape, eps, elementwise_affine, bias, explicit_backward)


def batch_norm_forward(
    x: torch.Tensor,
    running_mean: torch.Tensor | None = None,
    running_var: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> torch.Tensor:
    """BatchNorm with features in the last dim of x (..., C): statistics over all other dims.

    Training: normalize with the batch's biased variance and, if running buffers are given,
    update them in place with the unbiased variance (as PyTorch does). Eval: use the buffers.
    The two buffers go together: give both or neither.
    """
    check_float_tensor("x", x, min_ndim=2)
    c = x.shape[-1]
    if (running_mean is None) != (running_var is None):
        missing = "running_var" if running_var is None else "running_mean"
        raise ValueError(f"{missing} is None but the other running buffer is given: pass both "
                         "(to update or use them) or neither")
    check_optional_param("running_mean", running_mean, x, c)
    check_optional_param("running_var", running_var, x, c)
    _check_inputs(x, weight, bias, eps)
    check_bool("training", training)
    check_in_range("momentum", momentum, 0.0, 1.0)
    rows = x.reshape(-1, c).to(compute_dtype(x.dtype))  # (M, C)
    if training:
        m = rows.shape[0]
        if m < 2:
            raise ValueError(
                f"x must hold more than one value per feature in training mode, got shape "
                f"{tuple(x.shape)}: batch statistics of a single sample are undefined"
            )
        mean = rows.mean(dim=0)
        var = ((rows - mean) ** 2).mean(dim=0)
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                running_mean.mul_(1 - momentum).add_(momentum * mean.to(running_mean.dtype))
                unbiased = var * m / (m - 1)
                running_var.mul_(1 - momentum).add_(momentum * unbiased.to(running_var.dtype))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean and running_var are required when training=False")
        mean, var = running_mean.to(rows.dtype), running_var.to(rows.dtype)
    x_hat = (rows - mean) * torch.rsqrt(var + eps)
    return _affine(x_hat, weight, bias, x.dtype).reshape(x.shape)


class BatchNorm(nn.BatchNorm1d):
    """BatchNorm over every axis but the last: `nn.BatchNorm1d` for (..., C) inputs.

    `nn.BatchNorm1d` wants (N, C) or (N, C, L); this layer takes (N, C) and (B, T, C) alike,
    with the layout of LayerNorm, so one model can swap the two. Parameters, buffers, state
    dict and arithmetic are PyTorch's (`batch_norm_forward` is the same computation written
    out). Training mode normalizes with batch statistics and updates the running ones; eval
    mode uses the running ones.
    """

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *,
        affine: bool = True, bias: bool = True,
    ) -> None:
        check_int("num_features", num_features, minimum=1)
        check_positive("eps", eps, allow_zero=True)
        check_in_range("momentum", momentum, 0.0, 1.0)
        check_bool("affine", affine)
        check_bool("bias", bias)
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize x (..., num_features) with statistics over every other axis."""
        check_float_tensor("x", x, min_ndim=2)
        c = self.num_features
        if x.shape[-1] != c:
            raise ValueError(f"x must have {c} features in its last dimension, got shape "
                             f"{tuple(x.shape)}")
        if self.training and x.numel() < 2 * c:
            raise ValueError(
                f"x must hold more than one value per feature in training mode, got shape "
                f"{tuple(x.shape)}: batch statistics of a single sample are undefined"
            )
        return super().forward(x.reshape(-1, c)).reshape(x.shape)


NormFactory = Callable[[int], nn.Module]


def make_norm(
    norm: Norm | NormFactory, features: int, *, eps: float | None = None, bias: bool = True
) -> nn.Module:
    """The normalization layer named `norm` for `features` features (the last dimension).

    `norm` is one of `NORMS`: "layernorm" (`nn.LayerNorm`), "rmsnorm" (`nn.RMSNorm`, which has
    no bias), "batchnorm" (`BatchNorm`, features-last) or "none" (`nn.Identity`); or a factory
    `features -> nn.Module` for a custom layer. `eps=None` takes `DEFAULT_EPS`; `bias=False`
    drops the shift of LayerNorm and BatchNorm.
    """
    features = check_int("features", features, minimum=1)
    if callable(norm) and not isinstance(norm, str):
        module = norm(features)
        if not isinstance(module, nn.Module):
            raise TypeError(f"norm(features) must return an nn.Module, got "
                            f"{type(module).__name__}")
        return module
    kind = check_choice("norm", norm, NORMS)
    check_bool("bias", bias)
    if kind == "none":
        return nn.Identity()
    e = DEFAULT_EPS[kind] if eps is None else check_positive("eps", eps, allow_zero=True)
    if kind == "layernorm":
        return nn.LayerNorm(features, eps=e, bias=bias)
    if kind == "rmsnorm":
        return nn.RMSNorm(features, eps=e)
    return BatchNorm(features, eps=e, bias=bias)
