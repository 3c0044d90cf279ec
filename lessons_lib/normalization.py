"""LayerNorm, RMSNorm and BatchNorm written out, with an explicit LN/RMS backward.

Conventions (the ones `torch.nn.LayerNorm` documents):
- statistics are taken over the last dimension (the features of one token);
- the variance is the biased one (divide by N, not N - 1);
- eps goes inside the square root: x_hat = (x - mean) / sqrt(var + eps);
- float16/bfloat16 inputs are computed in float32 and the output is cast back.

Forward functions return `(out, cache)` and backward functions take `(dout, cache)` and
return `(dx, dweight, dbias)`, with `None` for a parameter that was not given.
"""

from __future__ import annotations

from dataclasses import dataclass
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

NormKind = Literal["layernorm", "rmsnorm"]
NORM_KINDS: tuple[str, ...] = ("layernorm", "rmsnorm")


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
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _check_inputs(x, weight, bias, eps):
    check_float_tensor("x", x)
    n = x.shape[-1]
    check_optional_param("weight", weight, x, n)
    check_optional_param("bias", bias, x, n)
    check_positive("eps", eps, allow_zero=True)


def _affine(x_hat, weight, bias, out_dtype):
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


layer_norm_backward = norm_backward
rms_norm_backward = norm_backward

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
    def forward(ctx, x, weight, bias, eps, kind):
        out, cache = _FORWARDS[kind](x, weight, bias, eps)
        ctx.cache = cache
        return out

    @staticmethod
    def backward(ctx, dout):
        dx, dweight, dbias = norm_backward(dout, ctx.cache)
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
    return _ExplicitNorm.apply(x, weight, bias, eps, kind)


class LayerNorm(nn.Module):
    """From-scratch `nn.LayerNorm` over the last dimension (size `normalized_shape`)."""

    def __init__(
        self, normalized_shape: int, eps: float = 1e-5, elementwise_affine: bool = True,
        bias: bool = True, explicit_backward: bool = False,
    ) -> None:
        super().__init__()
        self.eps = check_positive("eps", eps, allow_zero=True)
        self.explicit_backward = explicit_backward
        affine = elementwise_affine
        self.weight = nn.Parameter(torch.ones(normalized_shape)) if affine else None
        self.bias = nn.Parameter(torch.zeros(normalized_shape)) if affine and bias else None

    kind: NormKind = "layernorm"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = normalize_explicit if self.explicit_backward else normalize
        return fn(x, self.kind, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        n = None if self.weight is None else self.weight.shape[0]
        return f"{n}, eps={self.eps}, bias={self.bias is not None}"


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
    """
    check_float_tensor("x", x, min_ndim=2)
    c = x.shape[-1]
    check_optional_param("running_mean", running_mean, x, c)
    check_optional_param("running_var", running_var, x, c)
    _check_inputs(x, weight, bias, eps)
    check_positive("momentum", momentum, allow_zero=True)
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


class BatchNorm(nn.Module):
    """BatchNorm over all but the last dim, with running statistics for eval mode."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps = check_positive("eps", eps, allow_zero=True)
        self.momentum = check_positive("momentum", momentum, allow_zero=True)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return batch_norm_forward(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=self.training, momentum=self.momentum, eps=self.eps,
        )
