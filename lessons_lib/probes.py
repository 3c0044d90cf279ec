"""Probes that look inside a network: per-layer gradient norms and activation statistics."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn


def gradient_norms(model: nn.Module, *, weights_only: bool = True) -> dict[str, float]:
    """L2 norm of each parameter's current `.grad`, keyed by parameter name.

    With `weights_only`, 1-D parameters (biases, norm gains) are skipped: the per-layer
    profiles in the lessons are about weight matrices.
    """
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

    Forward pre-hooks keep each layer's input in the graph; one backward pass fills them.
    """
    layers = list(layers)
    inputs: list[torch.Tensor | None] = [None] * len(layers)

    def keep(i):
        def hook(module, args):
            args[0].retain_grad()
            inputs[i] = args[0]

        return hook

    handles = [layer.register_forward_pre_hook(keep(i)) for i, layer in enumerate(layers)]
    try:
        loss = forward()
        if loss.dim() != 0:
            raise ValueError(f"forward must return a scalar loss, got {tuple(loss.shape)}")
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    missing = [i for i, t in enumerate(inputs) if t is None or t.grad is None]
    if missing:
        raise RuntimeError(f"layers {missing} were not reached by forward() or got no gradient")
    return [t.grad.norm().item() for t in inputs]  # type: ignore[union-attr]


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
    """

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        if not modules:
            raise ValueError("modules must name at least one module to record")
        for name, m in modules.items():
            if not isinstance(m, nn.Module):
                raise TypeError(f"modules[{name!r}] must be an nn.Module, got {type(m).__name__}")
        self.modules = modules
        self.stats = {name: ActivationStats() for name in modules}
        self._handles: list = []

    def _hook(self, name: str):
        def hook(module, args, output):
            out = output[0] if isinstance(output, tuple) else output
            out = out.detach().float()
            s = self.stats[name]
            s.mean.append(out.mean().item())
            s.std.append(out.std(correction=0).item())
            s.rms.append(out.pow(2).mean().sqrt().item())

        return hook

    def __enter__(self) -> ActivationRecorder:
        self._handles = [m.register_forward_hook(self._hook(n)) for n, m in self.modules.items()]
        return self

    def __exit__(self, *exc) -> None:
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
    """

    def __init__(self, module: nn.Module) -> None:
        if not isinstance(module, nn.Module):
            raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
        self.module = module
        self.means: list[torch.Tensor] = []
        self._handle = None

    def _hook(self, module, args, output) -> None:
        if not module.training:
            return
        out = output[0] if isinstance(output, tuple) else output
        out = out.detach().float()
        self.means.append(out.reshape(-1, out.shape[-1]).mean(dim=0))

    def __enter__(self) -> ActivationDrift:
        self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc) -> None:
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
