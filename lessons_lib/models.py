"""Model utilities and the MLP of the normalization lessons (Part I).

- `he_linear`: a Linear layer with He initialization, what the library's hidden layers use;
- `default_linear`: a Linear layer with PyTorch's default initialization, from a generator;
- `make_mlp`: a plain MLP with a normalization layer in every hidden layer;
- `count_parameters`: what "adds N parameters" means.

The residual networks of Part II are in `lessons_lib.residual`.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from lessons_lib._checks import (
    check_bool,
    check_choice,
    check_generator,
    check_int,
    check_module,
    check_positive,
)
from lessons_lib.normalization import Norm, NormFactory, make_norm

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


def he_linear(
    in_features: int, out_features: int, *, bias: bool = True, gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> nn.Linear:
    """A Linear layer with He (Kaiming-normal, fan-in) weights and zero bias.

    Weights are N(0, std^2) with std = gain * sqrt(2 / in_features): the scale that keeps the
    size of ReLU activations constant from layer to layer (He et al. 2015) when `gain` is 1.
    `generator` draws the weights (None: PyTorch's global generator).
    """
    check_int("in_features", in_features, minimum=1)
    check_int("out_features", out_features, minimum=1)
    check_bool("bias", bias)
    check_positive("gain", gain, allow_zero=True)
    check_generator("generator", generator)
    layer = _linear(in_features, out_features, bias, generator)
    std = gain * math.sqrt(2.0) / math.sqrt(in_features)  # as nn.init.kaiming_normal_
    with torch.no_grad():
        layer.weight.copy_(torch.randn(out_features, in_features, generator=generator) * std)
        if layer.bias is not None:
            layer.bias.zero_()
    return layer


def _linear(fin: int, fout: int, bias: bool, generator: torch.Generator | None) -> nn.Linear:
    """An nn.Linear whose parameters the caller will draw. With a generator, it is built
    without touching the global generator; without one, PyTorch's own initialization runs
    (and advances the global generator) as in a plain `nn.Linear(fin, fout)`."""
    if generator is None:
        return nn.Linear(fin, fout, bias=bias)
    return nn.Linear(fin, fout, bias=bias, device="meta").to_empty(device="cpu")


def default_linear(
    in_features: int, out_features: int, *, bias: bool = True,
    generator: torch.Generator | None = None,
) -> nn.Linear:
    """`nn.Linear(in_features, out_features)` with PyTorch's default initialization
    (weights and bias uniform in ±1/sqrt(in_features)), drawn from `generator` if given."""
    check_int("in_features", in_features, minimum=1)
    check_int("out_features", out_features, minimum=1)
    check_bool("bias", bias)
    check_generator("generator", generator)
    layer = _linear(in_features, out_features, bias, generator)
    if generator is not None:
        bound = 1.0 / math.sqrt(in_features)
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=generator)
            if layer.bias is not None:
                layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def count_parameters(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter entries of `module`: what "adds N parameters" means."""
    check_module("module", module)
    check_bool("trainable_only", trainable_only)
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def make_mlp(
    in_features: int,
    width: int,
    out_features: int,
    depth: int,
    *,
    norm: Norm | NormFactory = "none",
    activation: str = "relu",
    weight_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A plain (no shortcut) MLP: `depth` hidden layers Linear -> norm -> activation, then a head.

    The norm sits where Ba et al. (2016) put it: on the summed inputs of each hidden layer,
    before the nonlinearity. `norm` is a name of `lessons_lib.normalization.NORMS` ("none",
    "layernorm", "rmsnorm", "batchnorm": PyTorch's layers, see `make_norm`) or a factory
    `width -> nn.Module` for a custom layer (e.g. a noisy BatchNorm).

    Every Linear is `he_linear` with gain `weight_scale`, so `weight_scale` != 1 makes the
    plain net's activations grow or shrink geometrically with depth; the head too. Hidden
    layer i is `model[i]`, an `nn.Sequential` with children `linear`, `norm`, `act` (hook
    `model[i]` to record its output); `model[-1]` is the head.
    """
    for name, value in (("in_features", in_features), ("width", width),
                        ("out_features", out_features), ("depth", depth)):
        check_int(name, value, minimum=1)
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_positive("weight_scale", weight_scale)
    check_generator("generator", generator)

    def linear(fin: int, fout: int) -> nn.Linear:
        return he_linear(fin, fout, gain=weight_scale, generator=generator)

    layers: list[nn.Module] = []
    fin = in_features
    for _ in range(depth):
        layers.append(nn.Sequential(OrderedDict(
            linear=linear(fin, width), norm=make_norm(norm, width), act=ACTIVATIONS[activation](),
        )))
        fin = width
    layers.append(linear(width, out_features))
    return nn.Sequential(*layers)
