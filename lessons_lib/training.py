"""A small, explicit training loop for the lessons' CPU-sized models.

`train(model, batches, loss_fn, config)` runs `config.steps` optimizer steps. `batches(step)`
returns the step's batch and `loss_fn(model, batch)` its scalar loss, so one loop serves
classification, language modelling and regression. The loop records a `History` and stops
early (marking `diverged`) if the loss stops being finite.

`minibatches` makes `batches` from tensors, `evaluate` and `accuracy` measure a model in eval
mode, and `train_seeded` is the recipe every experiment repeats: seed, build, train.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib._checks import (
    check_bool,
    check_choice,
    check_generator,
    check_in_range,
    check_int,
    check_module,
    check_positive,
    check_tensor,
)
from lessons_lib.progress import progress_bar
from lessons_lib.seeding import seed_everything

Batch = Any
Optimizer = Literal["sgd", "adam", "adamw"]
Schedule = Literal["constant", "linear", "cosine"]
OPTIMIZERS: tuple[Optimizer, ...] = ("sgd", "adam", "adamw")
SCHEDULES: tuple[Schedule, ...] = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; frozen, so a run cannot be changed by accident.

    Make a variant with `dataclasses.replace(config, lr=...)`.
    """

    steps: int = 200
    lr: float = 1e-3
    optimizer: Optimizer = "adam"
    momentum: float = 0.9  # SGD only, in [0, 1)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam/AdamW only, each in [0, 1)
    weight_decay: float = 0.0  # on weight matrices only, not on biases and norm gains
    warmup_steps: int = 0  # linear warm-up from lr/warmup_steps to lr
    schedule: Schedule = "constant"  # decay after warm-up
    grad_clip: float | None = None  # max global gradient norm, None for no clipping
    progress: bool = True  # show a tqdm bar
    desc: str = "training"

    def __post_init__(self) -> None:
        check_int("steps", self.steps, minimum=1)
        check_positive("lr", self.lr)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_in_range("momentum", self.momentum, 0.0, 1.0, include_high=False)
        betas = self.betas
        if isinstance(betas, str) or not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of numbers (beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            check_in_range(f"betas[{i}]", b, 0.0, 1.0, include_high=False)
        object.__setattr__(self, "betas", (float(betas[0]), float(betas[1])))
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_int("warmup_steps", self.warmup_steps)
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps must be <= steps ({self.steps}), got "
                             f"{self.warmup_steps}")
        check_choice("schedule", self.schedule, SCHEDULES)
        if self.grad_clip is not None:
            check_positive("grad_clip", self.grad_clip)
        check_bool("progress", self.progress)
        if not isinstance(self.desc, str):
            raise TypeError(f"desc must be a str, got {type(self.desc).__name__}")


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


def _check_config(config: object) -> TrainConfig:
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    return config


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate for 0-based `step`: linear warm-up, then the configured decay."""
    check_int("step", step)
    _check_config(config)
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    span = max(1, config.steps - config.warmup_steps)
    progress = (step - config.warmup_steps) / span
    if config.schedule == "linear":
        return config.lr * (1.0 - progress)
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(params: Iterable[nn.Parameter], config: TrainConfig, *,
                   stacked_dims: int = 0) -> torch.optim.Optimizer:
    """The optimizer of `config` over `params`, with weight decay on weight matrices only.

    As in nanoGPT: parameters with two or more dimensions (Linear weights, embeddings) decay;
    biases and normalization gains (one dimension) do not, since shrinking a gain toward 0
    undoes the normalization rather than regularizing the model. `stacked_dims` leading axes
    stack several models' parameters (`lessons_lib.ensemble`: a weight matrix is (K, out, in))
    and do not count.
    """
    _check_config(config)
    check_int("stacked_dims", stacked_dims, minimum=0)
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params[{i}] must be a tensor (a parameter), got "
                            f"{type(p).__name__}")
    if not params:
        raise ValueError("params is empty: the model has no trainable parameters")
    groups = [
        {"params": [p for p in params if p.dim() - stacked_dims >= 2],
         "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() - stacked_dims < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=config.lr, momentum=config.momentum,
            foreach=True,  # one batched update for all tensors: faster on CPU for small models
        )
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=config.lr, betas=config.betas, foreach=True)


def cross_entropy_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Default loss: `batch = (inputs, class_targets)`; logits may be (..., classes)."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"batch must be a pair (inputs, class_targets) for the cross-entropy "
                        f"loss, got {type(batch).__name__}")
    inputs, targets = batch
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def _scalar_loss(name: str, loss: object) -> torch.Tensor:
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"{name} must return a scalar torch.Tensor (so it can be "
                        f"differentiated), got {type(loss).__name__}")
    if loss.dim() != 0:
        raise ValueError(f"{name} must return a scalar, got shape {tuple(loss.shape)}")
    return loss


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
    check_module("model", model)
    if not callable(batches):
        raise TypeError("batches must be a callable step -> batch, e.g. from minibatches()")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable (model, batch) -> loss, got "
                        f"{type(loss_fn).__name__}")
    config = TrainConfig() if config is None else _check_config(config)
    callbacks = tuple(callbacks)
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be a callable (step, model), got "
                            f"{type(callback).__name__}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters (none requires grad)")
    optimizer = make_optimizer(params, config)
    history = History()
    model.train()
    with progress_bar(config.steps, config.desc, config.progress) as bar:
        for step in range(config.steps):
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = _scalar_loss("loss_fn", loss_fn(model, batches(step)))
            if not torch.isfinite(loss):
                history.loss.append(math.nan)
                history.diverged = True
                bar.total = bar.n  # close the bar as finished, not as an interrupted run
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            max_norm = config.grad_clip if config.grad_clip is not None else math.inf
            norm = nn.utils.clip_grad_norm_(params, max_norm)
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


Sampling = Literal["iid", "epochs"]
SAMPLINGS: tuple[Sampling, ...] = ("iid", "epochs")


def minibatches(
    *tensors: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
    sampling: Sampling = "iid",
) -> Callable[[int], tuple[torch.Tensor, ...]]:
    """A `batches` function: step -> that step's minibatch, the same rows of every tensor.

    `sampling="iid"`: every batch is `batch_size` rows drawn uniformly with replacement,
    independently of the others (a row can appear twice in a batch, or not for a while).
    `sampling="epochs"`: as a shuffling `DataLoader` with `drop_last=True`, each epoch is a
    fresh random permutation of the n rows cut into n // batch_size batches, so every row is
    seen once per epoch. Either way a batch never has more than n rows, and it depends only
    on `step` and on the state of `generator` (None: the global generator) when
    `minibatches` is called: asking for a step twice gives the same rows. ("iid" draws the
    batches in step order, so a run that asks for steps 0, 1, 2, ... gets the stream of
    `torch.randint` calls on the generator.)
    """
    if not tensors:
        raise ValueError("minibatches needs at least one tensor")
    for i, t in enumerate(tensors):
        check_tensor(f"tensors[{i}]", t)
        if t.dim() == 0:
            raise ValueError(f"tensors[{i}] must have a first (row) dimension, got a scalar")
    n = tensors[0].shape[0]
    if n == 0:
        raise ValueError(f"tensors[0] has no rows (shape {tuple(tensors[0].shape)}): there is "
                         "nothing to sample")
    for i, t in enumerate(tensors):
        if t.shape[0] != n:
            raise ValueError(f"tensors[{i}] has {t.shape[0]} rows, expected {n} like tensors[0]")
    check_int("batch_size", batch_size, minimum=1)
    check_generator("generator", generator)
    check_choice("sampling", sampling, SAMPLINGS)
    size = min(batch_size, n)
    rows_of = _iid_rows(n, size, generator) if sampling == "iid" else _epoch_rows(
        n, size, generator)

    def batch(step: int) -> tuple[torch.Tensor, ...]:
        idx = rows_of(check_int("step", step))
        return tuple(t[idx] for t in tensors)

    return batch


def _iid_rows(n: int, size: int, generator: torch.Generator | None
              ) -> Callable[[int], torch.Tensor]:
    drawn: list[torch.Tensor] = []  # the rows of steps 0, 1, ..., drawn in order

    def rows(step: int) -> torch.Tensor:
        while len(drawn) <= step:
            drawn.append(torch.randint(0, n, (size,), generator=generator))
        return drawn[step]

    return rows


def _epoch_rows(n: int, size: int, generator: torch.Generator | None
                ) -> Callable[[int], torch.Tensor]:
    per_epoch = n // size
    base_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    current: dict[int, torch.Tensor] = {}  # one epoch's permutation at a time

    def rows(step: int) -> torch.Tensor:
        epoch, k = divmod(step, per_epoch)
        if epoch not in current:
            current.clear()
            current[epoch] = torch.randperm(
                n, generator=torch.Generator().manual_seed(base_seed + epoch))
        return current[epoch][k * size:(k + 1) * size]

    return rows


@torch.no_grad()
def evaluate(
    model: nn.Module, batch: Batch,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor] = cross_entropy_loss,
) -> float:
    """Loss of `model` on one (full) batch in eval mode; restores the previous mode.

    Eval mode matters: BatchNorm uses (and does not update) its running statistics, and
    dropout is off.
    """
    check_module("model", model)
    was_training = model.training
    model.eval()
    try:
        return float(_scalar_loss("loss_fn", loss_fn(model, batch)))
    finally:
        model.train(was_training)


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Share of `targets` (class indices) that the argmax of `model(inputs)` hits, in eval mode.

    `model(inputs)` gives logits (..., classes) and `targets` must have their shape without
    the class axis, e.g. (N,) for (N, classes). Restores the previous mode.
    """
    check_module("model", model)
    check_tensor("inputs", inputs)
    check_tensor("targets", targets)
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    was_training = model.training
    model.eval()
    try:
        logits = model(inputs)
    finally:
        model.train(was_training)
    if tuple(targets.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"targets must have shape {tuple(logits.shape[:-1])} (the logits' "
                         f"shape {tuple(logits.shape)} without the class axis), got "
                         f"{tuple(targets.shape)}")
    if targets.numel() == 0:
        raise ValueError("targets is empty: the accuracy of no prediction is undefined")
    return (logits.argmax(dim=-1) == targets).float().mean().item()


def train_seeded(
    seed: int,
    build: Callable[[], nn.Module],
    data: Sequence[torch.Tensor],
    *,
    batch_size: int,
    config: TrainConfig,
    loss_fn: Callable[[nn.Module, Batch], torch.Tensor] = cross_entropy_loss,
    callbacks: Sequence[Callable[[int, nn.Module], None]] = (),
    sampling: Sampling = "iid",
) -> tuple[nn.Module, History]:
    """One seeded run: `seed_everything(seed)`, `model = build()`, then `train` on
    `minibatches(*data, batch_size=batch_size, sampling=sampling)` drawn with the generator
    the seed returns.

    Returns `(model, history)`. The same seed gives the same model, the same batches and (on
    the same machine) the same history; different seeds differ in both the initialization and
    the order of the data.
    """
    gen = seed_everything(seed)
    if not callable(build) or isinstance(build, nn.Module):
        raise TypeError(f"build must be a callable that returns a new model, e.g. "
                        f"lambda: make_net(...), got {type(build).__name__}")
    if not isinstance(data, (tuple, list)):
        raise TypeError(f"data must be a tuple of tensors, e.g. (inputs, targets), got "
                        f"{type(data).__name__}")
    model = check_module("build()", build())
    batches = minibatches(*data, batch_size=batch_size, generator=gen, sampling=sampling)
    return model, train(model, batches, loss_fn, config, callbacks)
