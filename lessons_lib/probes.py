"""Probes that look inside a network: per-layer gradient norms and activation statistics.

`gradient_norms` and `input_gradient_norms` (one backward pass), `ActivationRecorder` (mean,
std, RMS of chosen outputs), `ActivationDrift` (how far a layer's output moves per step) and
`MeanTap` (the same measurement as a layer, for ensembles).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from lessons_lib._checks import check_bool, check_int, check_module


def gradient_norms(model: nn.Module, *, weights_only: bool = True) -> dict[str, float]:
    """L2 norm of each parameter's current `.grad`, keyed by parameter name.

    With `weights_only`, 1-D parameters (biases, norm gains) are skipped: the per-layer
    profiles in the lessons are about weight matrices.
    """
    check_module("model", model)
    check_bool("weights_only", weights_only)
    norms = {}
    for name, p in model.named_parameters():
        if p.grad is None or (weights_only and p.dim() < 2):
            continue
        norms[name] = p.grad.detach().norm().item()
    return norms


def input_gradient_norms(
    layers: Iterable[nn.Module], forward: Callable[[], torch.Tensor]
) -> list[float]:
    """Norm of dLoss/d(input of each layer), in order, for the scalar `forward()` returns.

    Forward pre-hooks keep each layer's input in the graph; one backward pass fills them. An
    input that needs no gradient (the data, for the first layer) is replaced by a copy that
    does, so its gradient is measured too.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("layers must hold at least one module")
    for i, layer in enumerate(layers):
        check_module(f"layers[{i}]", layer)
    if not callable(forward):
        raise TypeError(f"forward must be a callable () -> scalar loss, got "
                        f"{type(forward).__name__}")
    inputs: list[torch.Tensor | None] = [None] * len(layers)

    def keep(i: int) -> Callable[[nn.Module, tuple[Any, ...]], tuple[Any, ...] | None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
            x = args[0]
            if not isinstance(x, torch.Tensor) or not x.is_floating_point():
                raise TypeError(f"the input of layers[{i}] must be a floating-point tensor, "
                                f"got {type(x).__name__}")
            replaced = None
            if not x.requires_grad:
                x = x.detach().requires_grad_()
                replaced = (x, *args[1:])
            x.retain_grad()
            inputs[i] = x
            return replaced

        return hook

    handles = [layer.register_forward_pre_hook(keep(i)) for i, layer in enumerate(layers)]
    try:
        loss = forward()
        if not isinstance(loss, torch.Tensor):
            raise TypeError(f"forward must return a scalar torch.Tensor, got "
                            f"{type(loss).__name__}")
        if loss.dim() != 0:
            raise ValueError(f"forward must return a scalar loss, got {tuple(loss.shape)}")
        if not loss.requires_grad:
            raise ValueError("the loss forward() returns does not require grad: was it "
                             "computed under torch.no_grad()?")
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    grads = [None if t is None else t.grad for t in inputs]
    missing = [i for i, g in enumerate(grads) if g is None]
    if missing:
        raise RuntimeError(f"layers {missing} were not reached by forward() or got no gradient")
    return [g.norm().item() for g in grads if g is not None]


@dataclass
class ActivationStats:
    """Per-call statistics of one module's output."""

    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)
    rms: list[float] = field(default_factory=list)


class ActivationRecorder:
    """Context manager recording mean/std/RMS of the outputs of named modules.

    >>> with ActivationRecorder({"block1": model[0]}) as rec:
    ...     model(x)
    >>> rec.stats["block1"].std

    Each `with` starts from empty statistics; a recorder cannot be entered twice at once.
    """

    def __init__(self, modules: dict[Any, nn.Module]) -> None:
        if not isinstance(modules, dict):
            raise TypeError(f"modules must be a dict name -> nn.Module, got "
                            f"{type(modules).__name__}")
        if not modules:
            raise ValueError("modules must name at least one module to record")
        for name, m in modules.items():
            if not isinstance(m, nn.Module):
                raise TypeError(f"modules[{name!r}] must be an nn.Module, got {type(m).__name__}")
        self.modules = dict(modules)
        self.stats = {name: ActivationStats() for name in modules}
        self._handles: list[RemovableHandle] = []

    def _hook(self, name: Any) -> Callable[[nn.Module, Any, Any], None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            out = output[0] if isinstance(output, tuple) else output
            out = out.detach().float()
            s = self.stats[name]
            s.mean.append(out.mean().item())
            s.std.append(out.std(correction=0).item())
            s.rms.append(out.pow(2).mean().sqrt().item())

        return hook

    def __enter__(self) -> ActivationRecorder:
        if self._handles:
            raise RuntimeError("this ActivationRecorder is already recording; use a new one "
                               "to record in a nested block")
        self.stats = {name: ActivationStats() for name in self.modules}
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class ActivationDrift:
    """Context manager: how far a module's output distribution moves from step to step.

    At every forward call in training mode it records the per-unit mean of the module's
    output (the mean over every axis but the last, i.e. over the batch). `drift` is the mean,
    over consecutive calls and over units, of |mean_t - mean_(t-1)|. That is a simple measure of
    what "internal covariate shift" names: the next layer's input distribution changing while
    it learns. Calls in eval mode (evaluation passes) are not recorded.

    >>> with ActivationDrift(model[5]) as drift:
    ...     train(model, batches, config=config)
    >>> drift.drift

    Each `with` starts a new record (a reused probe does not mix runs); it cannot be entered
    twice at once.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = check_module("module", module)
        self.means: list[torch.Tensor] = []
        self._handle: RemovableHandle | None = None

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if not module.training:
            return
        out = output[0] if isinstance(output, tuple) else output
        out = out.detach().float()
        self.means.append(out.reshape(-1, out.shape[-1]).mean(dim=0))

    def __enter__(self) -> ActivationDrift:
        if self._handle is not None:
            raise RuntimeError("this ActivationDrift is already recording; use a new one to "
                               "record in a nested block")
        self.means = []
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    @property
    def steps(self) -> list[float]:
        """Per-step drift: mean over units of |mean_t - mean_(t-1)|, for t = 1, 2, ..."""
        pairs = zip(self.means[:-1], self.means[1:], strict=True)
        return [(b - a).abs().mean().item() for a, b in pairs]

    @property
    def drift(self) -> float:
        """Mean per-step drift; needs at least two recorded calls."""
        steps = self.steps
        if not steps:
            raise ValueError(
                f"drift needs at least 2 recorded training-mode calls, got {len(self.means)}"
            )
        return sum(steps) / len(steps)


class MeanTap(nn.Module):
    """An identity layer that keeps the per-unit batch mean of its input in its buffer `mean`.

    At every training-mode call it stores the mean of x (..., features) over every axis but
    the last, the quantity `ActivationDrift` records; eval-mode calls store nothing. Being a
    layer with a buffer rather than a hook, it also works inside an `ensemble.Ensemble`, where
    the buffer holds one mean per member (`ens.stacked("...tap.mean")`, shape (K, features)).
    Insert it where the drift is measured, e.g. `model[5].add_module("tap", MeanTap(64))`.
    """

    mean: torch.Tensor

    def __init__(self, features: int) -> None:
        super().__init__()
        self.features = check_int("features", features, minimum=1)
        self.register_buffer("mean", torch.zeros(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return x unchanged; in training mode, first store its per-unit batch mean."""
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self.features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must have {self.features} features in its last dimension, "
                             f"got {shape}")
        if self.training:
            with torch.no_grad():
                self.mean.copy_(x.detach().reshape(-1, self.features).mean(dim=0))
        return x

    def extra_repr(self) -> str:
        return str(self.features)
