"""Many seeds of one small model, trained side by side in one batched pass.

A comparison over seeds needs ten or more runs, and for models as small as the lessons' a
training step costs mostly Python and autograd overhead, not arithmetic. `Ensemble` stacks the
parameters and buffers of K models of one architecture (one per seed) and runs them with
`torch.func.vmap`, so K members cost a few times one model instead of K times.

- `Ensemble(models)`: member k starts as an exact copy of `models[k]`; `ens(x)` maps inputs
  of shape (K, ...) (one batch per member) to outputs (K, ...); `ens.member(k)` gives member k
  back as an ordinary model, for every tool that takes one (`training.accuracy`, the probes);
- `ens.stacked(name)`: a parameter or buffer of every member, shape (K, ...);
- `train_ensemble(ens, batches, config)`: the loop of `training.train` for every member at
  once, with each member's own batches; a member whose loss stops being finite is marked
  diverged and leaves the sum, the others go on;
- `train_seeds(seeds, build, data, ...)`: the batched `training.train_seeded`, one member per
  seed, with the same initialization and the same batches as `train_seeded(seed, ...)`.

The members are independent: SGD and Adam update each entry on its own, and the loss is the
sum of the members' losses, so member k's gradient is that of its own loss. Batched matrix
products round differently from one model's, so a member matches its sequential run to
rounding at first, and a chaotic run (a high learning rate) may drift apart later.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from lessons_lib._checks import check_int, check_module, check_positive, check_tensor
from lessons_lib.progress import progress_bar
from lessons_lib.seeding import seed_everything
from lessons_lib.training import (
    History,
    Sampling,
    TrainConfig,
    lr_at,
    make_optimizer,
    minibatches,
)

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Ensemble(nn.Module):
    """K models of one architecture with stacked parameters, run in one batched pass.

    `models` must be K >= 1 modules of the same class with parameters and buffers of the
    same names and shapes (e.g. one `make_mlp(...)` per seed); each member starts as an exact
    copy of its model (the models themselves are not changed). `forward(x)` takes x of shape
    (K, ...), one input per member, and returns the members' outputs stacked, (K, ...).
    `train()` and `eval()` switch every member, as for one model (BatchNorm's running
    statistics are per member). Members must not draw random numbers in their forward pass
    (dropout): `vmap` refuses that.
    """

    template: nn.Module  # the architecture, on the meta device (no storage)

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if isinstance(models, nn.Module) or not isinstance(models, Sequence):
            raise TypeError(f"models must be a sequence of nn.Module, got "
                            f"{type(models).__name__}")
        models = list(models)
        if not models:
            raise ValueError("models must hold at least one model")
        for i, m in enumerate(models):
            check_module(f"models[{i}]", m)
            if type(m) is not type(models[0]):
                raise TypeError(f"models[{i}] must be a {type(models[0]).__name__} like "
                                f"models[0], got {type(m).__name__}")
        first = _shapes(models[0])
        for i, m in enumerate(models[1:], start=1):
            if _shapes(m) != first:
                raise ValueError(f"models[{i}] must have the parameters and buffers of "
                                 f"models[0] (names and shapes)")
        params, buffers = stack_module_state(models)
        self.param_names = list(params)
        self.buffer_names = list(buffers)
        self.stacked_params = nn.ParameterList(nn.Parameter(p.detach().clone())
                                               for p in params.values())
        for i, b in enumerate(buffers.values()):
            self.register_buffer(f"stacked_buffer_{i}", b.detach().clone())
        self.size = len(models)
        # The architecture without storage; kept out of the submodules, so that
        # `ens.parameters()` holds the stacked parameters only.
        self.__dict__["template"] = copy.deepcopy(models[0]).to("meta")
        self.template.train(self.training)
        self._parts: dict[int, nn.Module] = {}

    def train(self, mode: bool = True) -> Ensemble:
        """Training or evaluation mode for every member."""
        super().train(mode)
        self.template.train(mode)
        return self

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        # read the modules' own tables (not attribute access, which is slow per call), so that
        # .to() or .double() on the ensemble, which replace the tensors there, are followed
        stacked = self.stacked_params._parameters.values()
        params = dict(zip(self.param_names, stacked, strict=True))
        buffers = {name: self._buffers[f"stacked_buffer_{i}"]
                   for i, name in enumerate(self.buffer_names)}
        return params, buffers  # type: ignore[return-value]

    def stacked(self, name: str) -> torch.Tensor:
        """The parameter or buffer `name` of every member (a name of the models, e.g.
        "0.linear.weight"), shape (K, ...); the tensor the ensemble trains, not a copy."""
        params, buffers = self._state()
        if name in params:
            return params[name]
        if name in buffers:
            return buffers[name]
        raise ValueError(f"name must be a parameter or buffer of the models, got {name!r}; "
                         f"parameters: {self.param_names[:4]}...")

    def _part(self, upto: int | None) -> nn.Module:
        if upto is None:
            return self.template
        if not isinstance(self.template, nn.Sequential):
            raise TypeError(f"upto needs models that are an nn.Sequential, got "
                            f"{type(self.template).__name__}")
        upto = check_int("upto", upto, minimum=1)
        if upto > len(self.template):
            raise ValueError(f"upto must be <= {len(self.template)} (the models' length), "
                             f"got {upto}")
        if upto not in self._parts:
            self._parts[upto] = self.template[:upto]
        return self._parts[upto]

    def _check_input(self, name: str, x: object) -> torch.Tensor:
        x = check_tensor(name, x)
        if x.dim() < 1 or x.shape[0] != self.size:
            raise ValueError(f"{name} must have one entry per member in its first dimension, "
                             f"shape ({self.size}, ...), got {tuple(x.shape)}")
        return x

    def forward(self, x: torch.Tensor, *, upto: int | None = None) -> torch.Tensor:
        """Outputs (K, ...) of the members for inputs x (K, ...); with `upto` (models that are
        an nn.Sequential) the output of the first `upto` children, e.g. a hidden layer."""
        x = self._check_input("x", x)
        part = self._part(upto)
        params, buffers = self._state()
        if upto is not None:  # only the state of the first `upto` children
            names = {n for n, _ in part.named_parameters()} | {n for n, _ in part.named_buffers()}
            params = {n: t for n, t in params.items() if n in names}
            buffers = {n: t for n, t in buffers.items() if n in names}

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                xk: torch.Tensor) -> torch.Tensor:
            return functional_call(part, (p, b), (xk,))

        out: torch.Tensor = vmap(one)(params, buffers, x)
        return out

    def losses(self, x: torch.Tensor, y: torch.Tensor,
               loss_fn: LossFn = F.cross_entropy) -> torch.Tensor:
        """Each member's scalar loss `loss_fn(member(x[k]), y[k])`, shape (K,)."""
        x = self._check_input("x", x)
        y = self._check_input("y", y)
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be a callable (output, target) -> loss, got "
                            f"{type(loss_fn).__name__}")
        params, buffers = self._state()

        def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], xk: torch.Tensor,
                yk: torch.Tensor) -> torch.Tensor:
            return loss_fn(functional_call(self.template, (p, b), (xk,)), yk)

        out: torch.Tensor = vmap(one)(params, buffers, x, y)
        if out.shape != (self.size,):
            raise ValueError(f"loss_fn must return a scalar for each member, got shape "
                             f"{tuple(out.shape[1:])}")
        return out

    def member(self, k: int) -> nn.Module:
        """Member k as an ordinary model (a copy with its current parameters and buffers)."""
        k = check_int("k", k)
        if k >= self.size:
            raise ValueError(f"k must be < {self.size} (the number of members), got {k}")
        model = copy.deepcopy(self.template).to_empty(device="cpu")
        params, buffers = self._state()
        state = {name: t[k].detach().clone() for name, t in {**params, **buffers}.items()}
        model.load_state_dict(state)
        return model.train(self.training)

    def members(self) -> list[nn.Module]:
        """Every member as an ordinary model, in order."""
        return [self.member(k) for k in range(self.size)]

    def extra_repr(self) -> str:
        return f"{self.size} x {type(self.template).__name__}"


def _shapes(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    tensors = list(model.named_parameters()) + list(model.named_buffers())
    return [(name, tuple(t.shape)) for name, t in tensors]


def _optimizer(ens: Ensemble, config: TrainConfig) -> torch.optim.Optimizer:
    # training.make_optimizer's rules, one axis up: a member's weight matrix is (K, out, in)
    params = [p for p in ens.stacked_params if p.requires_grad]
    if not params:
        raise ValueError("ens has no trainable parameters (none requires grad)")
    return make_optimizer(params, config, stacked_dims=1)


def _member_grad_norms(params: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    total = torch.zeros(size)
    for p in params:
        if p.grad is not None:
            total += p.grad.detach().reshape(size, -1).pow(2).sum(1)
    return total.sqrt()


def _lr_scale(member_lr: Sequence[float] | None, size: int, lr: float) -> torch.Tensor | None:
    if member_lr is None:
        return None
    if isinstance(member_lr, (str, bytes)) or not isinstance(member_lr, Sequence):
        raise TypeError(f"member_lr must be a sequence of learning rates, one per member, got "
                        f"{type(member_lr).__name__}")
    if len(member_lr) != size:
        raise ValueError(f"member_lr must hold one learning rate per member ({size}), got "
                         f"{len(member_lr)}")
    for i, v in enumerate(member_lr):
        check_positive(f"member_lr[{i}]", v)
    return torch.tensor([float(v) / lr for v in member_lr])


def train_ensemble(
    ens: Ensemble,
    batches: Sequence[Callable[[int], tuple[torch.Tensor, torch.Tensor]]],
    config: TrainConfig | None = None,
    *,
    loss_fn: LossFn = F.cross_entropy,
    callbacks: Sequence[Callable[[int, Ensemble], None]] = (),
    member_lr: Sequence[float] | None = None,
) -> list[History]:
    """Train every member of `ens` in place, member k on `batches[k](step)` (an (inputs,
    targets) pair, as from `training.minibatches`); return one `History` per member.

    The loop is `training.train`'s: learning-rate schedule, optimizer (weight decay on weight
    matrices only), gradient clipping and the recorded loss, learning rate and gradient norm are
    per member. A member whose loss stops being finite is marked diverged (its history ends
    with NaN, as in `train`) and no longer trains; the loop stops when every member has.
    `callbacks` are called as `cb(step, ens)` after each optimizer step.

    `member_lr` gives each member its own peak learning rate in place of `config.lr` (the
    schedule keeps its shape). The optimizer's step is then scaled per member by
    `member_lr[k] / config.lr`: exact for SGD (with momentum and weight decay), Adam and
    AdamW, whose steps are proportional to the learning rate.
    """
    if not isinstance(ens, Ensemble):
        raise TypeError(f"ens must be an Ensemble, got {type(ens).__name__}")
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
        raise TypeError(f"batches must be a sequence with one batches function per member, "
                        f"got {type(batches).__name__}")
    if len(batches) != ens.size:
        raise ValueError(f"batches must hold one batches function per member ({ens.size}), "
                         f"got {len(batches)}")
    for i, b in enumerate(batches):
        if not callable(b):
            raise TypeError(f"batches[{i}] must be a callable step -> (inputs, targets), got "
                            f"{type(b).__name__}")
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    callbacks = tuple(callbacks)
    for i, callback in enumerate(callbacks):
        if not callable(callback):
            raise TypeError(f"callbacks[{i}] must be a callable (step, ens), got "
                            f"{type(callback).__name__}")
    scale = _lr_scale(member_lr, ens.size, config.lr)
    optimizer = _optimizer(ens, config)
    params = [p for p in ens.stacked_params if p.requires_grad]
    histories = [History() for _ in range(ens.size)]
    alive = torch.ones(ens.size, dtype=torch.bool)
    ens.train()
    with progress_bar(config.steps, config.desc, config.progress) as bar:
        for step in range(config.steps):
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            pairs = [b(step) for b in batches]
            x = torch.stack([p[0] for p in pairs])
            y = torch.stack([p[1] for p in pairs])
            losses = ens.losses(x, y, loss_fn)
            values = losses.detach()
            for k in torch.nonzero(alive & ~torch.isfinite(values)).flatten().tolist():
                histories[k].loss.append(math.nan)
                histories[k].diverged = True
                alive[k] = False
            if not alive.any():
                bar.total = bar.n  # every member diverged: close the bar as finished
                break
            optimizer.zero_grad(set_to_none=True)
            losses[alive].sum().backward()
            norms = _member_grad_norms(params, ens.size)
            if config.grad_clip is not None:
                clip = (config.grad_clip / (norms + 1e-6)).clamp(max=1.0)
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(clip.reshape(-1, *[1] * (p.dim() - 1)))
            if scale is None:
                optimizer.step()
            else:
                before = [p.detach().clone() for p in params]
                optimizer.step()
                with torch.no_grad():
                    for p, old in zip(params, before, strict=True):
                        p.sub_(old).mul_(scale.reshape(-1, *[1] * (p.dim() - 1))).add_(old)
            step_losses, step_norms = values.tolist(), norms.tolist()
            for k in torch.nonzero(alive).flatten().tolist():
                histories[k].loss.append(step_losses[k])
                histories[k].lr.append(lr if scale is None else lr * float(scale[k]))
                histories[k].grad_norm.append(step_norms[k])
            for callback in callbacks:
                callback(step, ens)
            bar.update(1)
    return histories


def train_seeds(
    seeds: Sequence[int],
    build: Callable[[], nn.Module] | Sequence[Callable[[], nn.Module]],
    data: Sequence[torch.Tensor],
    *,
    batch_size: int,
    config: TrainConfig,
    loss_fn: LossFn = F.cross_entropy,
    callbacks: Sequence[Callable[[int, Ensemble], None]] = (),
    sampling: Sampling = "iid",
    member_lr: Sequence[float] | None = None,
) -> tuple[Ensemble, list[History]]:
    """`training.train_seeded` for every seed at once: one member per seed.

    For each seed: `seed_everything(seed)`, `build()`, and `minibatches(*data, ...)` drawn with
    the generator that seed returns, exactly as `train_seeded(seed, build, data, ...)` does;
    then `train_ensemble` trains the members together. `data` is (inputs, targets). Returns
    `(ensemble, histories)`, the histories in the order of `seeds`.

    Several settings of one architecture can share an ensemble: `build` may be a sequence, one
    builder per member (e.g. different weight scales; a seed may then repeat), and `member_lr`
    gives each member its own learning rate (see `train_ensemble`).
    """
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a sequence of ints, got {type(seeds).__name__}")
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    one_per_seed = isinstance(build, Sequence) and not isinstance(build, (str, bytes))
    if one_per_seed:
        builds = list(build)  # type: ignore[arg-type]
        if len(builds) != len(seeds):
            raise ValueError(f"build must hold one builder per seed ({len(seeds)}), got "
                             f"{len(builds)}")
    else:
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {list(seeds)}")
        builds = [build] * len(seeds)  # type: ignore[list-item]
    for i, b in enumerate(builds):
        if not callable(b) or isinstance(b, nn.Module):
            where = f"build[{i}]" if one_per_seed else "build"
            raise TypeError(f"{where} must be a callable that returns a new model, got "
                            f"{type(b).__name__}")
    models: list[nn.Module] = []
    batches: list[Callable[[int], tuple[torch.Tensor, torch.Tensor]]] = []
    for seed, make in zip(seeds, builds, strict=True):
        gen = seed_everything(seed)
        models.append(check_module("build()", make()))
        pair = minibatches(*data, batch_size=batch_size, generator=gen, sampling=sampling)
        batches.append(pair)  # type: ignore[arg-type]  # two tensors in, pairs out
    ens = Ensemble(models)
    return ens, train_ensemble(ens, batches, config, loss_fn=loss_fn, callbacks=callbacks,
                               member_lr=member_lr)


def member_outputs(ens: Ensemble, x: torch.Tensor, *, upto: int | None = None
                   ) -> torch.Tensor:
    """Every member's output on the same inputs x (N, ...): shape (K, N, ...), no gradient."""
    if not isinstance(ens, Ensemble):
        raise TypeError(f"ens must be an Ensemble, got {type(ens).__name__}")
    x = check_tensor("x", x)
    with torch.no_grad():
        return ens(x.expand(ens.size, *x.shape), upto=upto)


def evaluate_members(ens: Ensemble, batch: Sequence[torch.Tensor],
                     loss_fn: LossFn = F.cross_entropy) -> list[float]:
    """Every member's loss on the same full batch (inputs, targets), in eval mode, as
    `training.evaluate` gives for one model; restores the previous mode."""
    if not isinstance(ens, Ensemble):
        raise TypeError(f"ens must be an Ensemble, got {type(ens).__name__}")
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError("batch must be a pair of tensors (inputs, targets)")
    x, y = check_tensor("batch[0]", batch[0]), check_tensor("batch[1]", batch[1])
    was_training = ens.training
    ens.eval()
    try:
        with torch.no_grad():
            losses = ens.losses(x.expand(ens.size, *x.shape), y.expand(ens.size, *y.shape),
                                loss_fn)
    finally:
        ens.train(was_training)
    return losses.tolist()


def member_accuracy(ens: Ensemble, inputs: torch.Tensor, targets: torch.Tensor) -> list[float]:
    """Every member's share of `targets` (class indices) hit by the argmax of its logits on
    `inputs`, in eval mode, as `training.accuracy` gives for one model."""
    if not isinstance(ens, Ensemble):
        raise TypeError(f"ens must be an Ensemble, got {type(ens).__name__}")
    inputs, targets = check_tensor("inputs", inputs), check_tensor("targets", targets)
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise TypeError(f"targets must hold integer class indices, got dtype {targets.dtype}")
    was_training = ens.training
    ens.eval()
    try:
        logits = member_outputs(ens, inputs)
    finally:
        ens.train(was_training)
    if tuple(targets.shape) != tuple(logits.shape[1:-1]):
        raise ValueError(f"targets must have shape {tuple(logits.shape[1:-1])}, got "
                         f"{tuple(targets.shape)}")
    return (logits.argmax(-1) == targets).float().mean(dim=tuple(range(1, logits.dim() - 1))
                                                       ).tolist()
