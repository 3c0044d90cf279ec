"""A small, explicit training loop for the lessons' CPU-sized models.

`train(model, batches, loss_fn, config)` runs `config.steps` optimizer steps. `batches(step)`
returns the step's batch and `loss_fn(model, batch)` its scalar loss, so one loop serves
classification, language modelling and regression. The loop records a `History` and stops
early (marking `diverged`) if the loss stops being finite.
"""

from __future__ import annotations

import io
import math
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.std import tqdm as tqdm_std

from lessons_lib._checks import check_choice, check_int, check_positive

Batch = Any
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "linear", "cosine")


@dataclass
class TrainConfig:
    steps: int = 200
    lr: float = 1e-3
    optimizer: str = "adam"  # "sgd" | "adam" | "adamw"
    momentum: float = 0.9  # SGD only
    betas: tuple[float, float] = (0.9, 0.999)  # Adam/AdamW only
    weight_decay: float = 0.0
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps to lr
    schedule: str = "constant"  # decay after warm-up: "constant" | "linear" | "cosine"
    grad_clip: float | None = None  # max global gradient norm, None for no clipping
    progress: bool = True  # show a tqdm bar
    desc: str = "training"

    def __post_init__(self) -> None:
        check_int("steps", self.steps, minimum=1)
        check_positive("lr", self.lr)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_int("warmup_steps", self.warmup_steps)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        if self.grad_clip is not None:
            check_positive("grad_clip", self.grad_clip)
        check_positive("momentum", self.momentum, allow_zero=True)
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")


@dataclass
class History:
    """What one run recorded, step by step."""

    loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)  # global norm before clipping
    diverged: bool = False

    @property
    def final_loss(self) -> float:
        """Mean loss of the last 10% of steps (at least one): less noisy than the last step."""
        if not self.loss:
            raise ValueError("history is empty: no step was recorded")
        if self.diverged:
            return math.inf
        k = max(1, len(self.loss) // 10)
        return sum(self.loss[-k:]) / k

    def steps_to(self, threshold: float) -> int | None:
        """First step (1-based) whose loss is <= threshold, or None if never reached."""
        for i, value in enumerate(self.loss, start=1):
            if value <= threshold:
                return i
        return None


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for 0-based `step`: linear warm-up, then the configured decay."""
    check_int("step", step)
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    span = max(1, config.steps - config.warmup_steps)
    progress = (step - config.warmup_steps) / span
    if config.schedule == "linear":
        return config.lr * (1.0 - progress)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
            foreach=True,  # one batched update for all tensors: faster on CPU for small models
        )
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(
        params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, foreach=True
    )


PROGRESS_MODES = ("1", "static", "0")


class _StaticBar(tqdm_std):
    """Counts silently; on closing prints its final state once, as one line of text."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            file=io.StringIO(), mininterval=math.inf, leave=False, ascii=False, **kwargs
        )

    def close(self) -> None:
        if not self.disable:
            print(self.format_meter(**self.format_dict))
        super().close()  # sets disable, so a second close prints nothing


def progress_bar(total: int, desc: str, enabled: bool = True, leave: bool = False) -> tqdm_std:
    """A tqdm bar over `total` steps; `leave=True` keeps it on screen once done.

    The environment variable LESSONS_PROGRESS says how bars show:
    "1" (the default): live, a widget in Jupyter and text in a terminal;
    "static": silent while running, then each bar with `leave=True` prints its final state as
    one line of text. The book build uses it: a static page cannot show a live widget, but it
    can show how many runs a cell made and how long they took on the machine that built it;
    "0": no bars at all.
    """
    mode = check_choice("LESSONS_PROGRESS", os.environ.get("LESSONS_PROGRESS", "1"), PROGRESS_MODES)
    if mode == "static":
        return _StaticBar(total=total, desc=desc, disable=not (enabled and leave))
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled or mode == "0", leave=leave)


def cross_entropy_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    """Default loss: `batch = (inputs, class_targets)`; logits may be (..., classes)."""
    inputs, targets = batch
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def train(
    model: nn.Module,
    batches: Callable[[int], Batch],
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor] = cross_entropy_loss,
    config: TrainConfig | None = None,
    callbacks: Sequence[Callable[[int, nn.Module], None]] = (),
) -> History:
    """Train `model` in place; return the per-step history.

    `callbacks` are called as `cb(step, model)` after each optimizer step (probes use this).
    """
    config = config or TrainConfig()
    if not callable(batches):
        raise TypeError("batches must be a callable step -> batch, e.g. from minibatches()")
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], config)
    history = History()
    model.train()
    with progress_bar(config.steps, config.desc, config.progress) as bar:
        for step in range(config.steps):
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn(model, batches(step))
            if loss.dim() != 0:
                raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
            if not torch.isfinite(loss):
                history.loss.append(math.nan)
                history.diverged = True
                bar.total = bar.n  # close the bar as finished, not as an interrupted run
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = config.grad_clip if config.grad_clip is not None else math.inf
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            optimizer.step()
            history.loss.append(loss.item())
            history.lr.append(lr)
            history.grad_norm.append(norm.item())
            for callback in callbacks:
                callback(step, model)
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
    return history


def minibatches(
    *tensors: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Callable[[int], tuple[torch.Tensor, ...]]:
    """A `batches` function that samples a random minibatch (same rows of every tensor)."""
    if not tensors:
        raise ValueError("minibatches needs at least one tensor")
    n = tensors[0].shape[0]
    for i, t in enumerate(tensors):
        if t.shape[0] != n:
            raise ValueError(f"tensors[{i}] has {t.shape[0]} rows, expected {n} like tensors[0]")
    check_int("batch_size", batch_size, minimum=1)

    def batch(step: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, n, (min(batch_size, n),), generator=generator)
        return tuple(t[idx] for t in tensors)

    return batch


@torch.no_grad()
def evaluate(model: nn.Module, batch: Batch, loss_fn=cross_entropy_loss) -> float:
    """Loss of `model` on one (full) batch in eval mode; restores the previous mode."""
    was_training = model.training
    model.eval()
    try:
        return float(loss_fn(model, batch))
    finally:
        model.train(was_training)


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Classification accuracy in eval mode; restores the previous mode."""
    was_training = model.training
    model.eval()
    try:
        return (model(inputs).argmax(dim=-1) == targets).float().mean().item()
    finally:
        model.train(was_training)


# --- Model builder for the normalization experiments (Part I) --------------------------------

NORM_CHOICES = ("none", "layernorm", "rmsnorm", "batchnorm")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class FeaturesLastBatchNorm(nn.BatchNorm1d):
    """`nn.BatchNorm1d` over the last dim of (..., C): statistics over every other axis.

    `nn.BatchNorm1d` wants (N, C) or (N, C, L); this wrapper lets one MLP take (N, C) and
    (B, T, C) inputs alike, with the same layout as LayerNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def _make_norm(norm: str | Callable[[int], nn.Module] | None, width: int) -> nn.Module:
    if norm is None or norm == "none":
        return nn.Identity()
    if callable(norm) and not isinstance(norm, str):
        module = norm(width)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"norm(width) must return an nn.Module, got {type(module).__name__}"
            )
        return module
    check_choice("norm", norm, NORM_CHOICES)
    if norm == "layernorm":
        return nn.LayerNorm(width)
    if norm == "rmsnorm":
        return nn.RMSNorm(width, eps=1e-6)
    return FeaturesLastBatchNorm(width)


def make_mlp(
    in_features: int,
    width: int,
    out_features: int,
    depth: int,
    *,
    norm: str | Callable[[int], nn.Module] | None = None,
    activation: str = "relu",
    weight_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A plain (no shortcut) MLP: `depth` hidden layers Linear -> norm -> activation, then a head.

    The norm sits where Ba et al. (2016) put it: on the summed inputs of each hidden layer,
    before the nonlinearity. `norm` is "none" (or None), "layernorm", "rmsnorm", "batchnorm"
    (PyTorch's modules; the lessons check elsewhere that `lessons_lib.normalization` matches
    them), or a factory `width -> nn.Module` for a custom layer (e.g. a noisy BatchNorm).

    Weights are He-normal (std sqrt(2 / fan_in)) times `weight_scale`, biases zero, so
    `weight_scale` != 1 makes the plain net's activations grow or shrink geometrically with
    depth; the head is He-normal too. Hidden layer i is `model[i]`, an `nn.Sequential` with
    children `linear`, `norm`, `act` (hook `model[i]` to record its output); `model[-1]` is the
    head.
    """
    for name, value in (("in_features", in_features), ("width", width),
                        ("out_features", out_features)):
        check_int(name, value, minimum=1)
    check_int("depth", depth, minimum=1)
    check_choice("activation", activation, tuple(ACTIVATIONS))
    check_positive("weight_scale", weight_scale)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")

    def linear(fin: int, fout: int) -> nn.Linear:
        layer = nn.Linear(fin, fout)
        with torch.no_grad():
            std = weight_scale * math.sqrt(2.0 / fin)
            layer.weight.copy_(torch.randn(fout, fin, generator=generator) * std)
            layer.bias.zero_()
        return layer

    layers: list[nn.Module] = []
    fin = in_features
    for _ in range(depth):
        layers.append(nn.Sequential(OrderedDict(
            linear=linear(fin, width), norm=_make_norm(norm, width), act=ACTIVATIONS[activation](),
        )))
        fin = width
    layers.append(linear(width, out_features))
    return nn.Sequential(*layers)
