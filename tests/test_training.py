"""The training loop, its schedule and safeguards, minibatches, evaluation, the seeded run."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from lessons_lib.normalization import BatchNorm
from lessons_lib.training import (
    History,
    TrainConfig,
    accuracy,
    evaluate,
    lr_at,
    make_optimizer,
    minibatches,
    train,
    train_seeded,
)

QUIET = {"progress": False}

# --- TrainConfig -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"steps": 0}, ValueError),
        ({"steps": 2.5}, TypeError),
        ({"steps": True}, TypeError),
        ({"lr": 0.0}, ValueError),
        ({"lr": -1e-3}, ValueError),
        ({"lr": math.nan}, ValueError),
        ({"lr": math.inf}, ValueError),
        ({"lr": "1e-3"}, TypeError),
        ({"optimizer": "rmsprop"}, ValueError),
        ({"schedule": "step"}, ValueError),
        ({"warmup_steps": -1}, ValueError),
        ({"warmup_steps": 1.5}, TypeError),
        ({"warmup_steps": 300}, ValueError),  # longer than the run
        ({"weight_decay": -0.1}, ValueError),
        ({"grad_clip": 0.0}, ValueError),
        ({"grad_clip": -1.0}, ValueError),
        ({"grad_clip": math.inf}, ValueError),
        ({"momentum": -0.5}, ValueError),
        ({"momentum": 1.0}, ValueError),
        ({"betas": (1.5, 0.9)}, ValueError),
        ({"betas": (0.9,)}, TypeError),
        ({"betas": "ab"}, TypeError),
        ({"betas": ("a", 0.9)}, TypeError),
        ({"progress": 1}, TypeError),
        ({"desc": 3}, TypeError),
    ],
)
def test_config_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        TrainConfig(**kwargs)


def test_config_is_frozen_and_replace_validates():
    config = TrainConfig(optimizer="sgd")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.optimizer = "rmsprop"  # type: ignore[misc]
    assert config.optimizer == "sgd"
    assert dataclasses.replace(config, lr=0.5).lr == 0.5
    with pytest.raises(ValueError, match="optimizer must be one of"):
        dataclasses.replace(config, optimizer="rmsprop")
    assert TrainConfig(betas=[0.8, 0.9]).betas == (0.8, 0.9)  # a list is stored as a tuple


# --- learning-rate schedule ------------------------------------------------------------------


def test_warmup_is_linear_from_lr_over_warmup_steps():
    config = TrainConfig(steps=10, lr=0.1, warmup_steps=4)
    expected = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    got = [lr_at(step, config) for step in range(10)]
    assert got == pytest.approx(expected, abs=1e-12)


def test_linear_and_cosine_decay_after_warmup():
    linear = TrainConfig(steps=10, lr=0.1, warmup_steps=4, schedule="linear")
    cosine = TrainConfig(steps=10, lr=0.1, warmup_steps=4, schedule="cosine")
    # after warm-up, progress = (step - 4) / 6
    assert lr_at(4, linear) == pytest.approx(0.1)
    assert lr_at(7, linear) == pytest.approx(0.05)
    assert lr_at(9, linear) == pytest.approx(0.1 / 6)
    assert lr_at(4, cosine) == pytest.approx(0.1)
    assert lr_at(7, cosine) == pytest.approx(0.05)
    assert lr_at(9, cosine) == pytest.approx(0.05 * (1 + math.cos(math.pi * 5 / 6)))


def test_train_uses_the_schedule():
    torch.manual_seed(0)
    config = TrainConfig(steps=6, lr=0.2, warmup_steps=3, schedule="linear", **QUIET)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    hist = train(nn.Linear(3, 2), lambda step: (x, y), config=config)
    assert hist.lr == pytest.approx([lr_at(s, config) for s in range(6)])
    assert hist.lr[:3] == pytest.approx([0.2 / 3, 0.4 / 3, 0.2])


def test_lr_at_rejects_a_negative_step():
    with pytest.raises(ValueError, match="step must be >= 0"):
        lr_at(-1, TrainConfig())


# --- the update itself -----------------------------------------------------------------------


def _scalar_model(w0: float) -> nn.Linear:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(w0)
    return model


def test_two_sgd_steps_by_hand():
    # loss = (w - 3)^2 / 2, gradient w - 3; plain SGD with lr 0.1 from w = 1:
    #   step 1: g = -2   -> w = 1 + 0.2 = 1.2
    #   step 2: g = -1.8 -> w = 1.2 + 0.18 = 1.38
    # (a loop that forgot to zero the gradient would use -2 - 1.8 in step 2 and reach 1.58)
    model = _scalar_model(1.0)
    config = TrainConfig(steps=2, lr=0.1, optimizer="sgd", momentum=0.0, **QUIET)
    hist = train(model, lambda step: None, lambda m, b: 0.5 * (m.weight.sum() - 3.0) ** 2, config)
    assert model.weight.item() == pytest.approx(1.38, abs=1e-6)
    assert hist.loss == pytest.approx([2.0, 0.5 * 1.8**2])
    assert hist.grad_norm == pytest.approx([2.0, 1.8])


def test_sgd_momentum_by_hand():
    # gradient 1 at every step (loss = w); momentum 0.9: velocity 1, 1.9; w = 0 - 0.1 - 0.19
    model = _scalar_model(0.0)
    config = TrainConfig(steps=2, lr=0.1, optimizer="sgd", momentum=0.9, **QUIET)
    train(model, lambda step: None, lambda m, b: m.weight.sum(), config)
    assert model.weight.item() == pytest.approx(-0.29, abs=1e-6)


def test_adam_first_step_moves_by_lr():
    # Adam's first update is lr * g / (|g| + eps) = lr * sign(g), whatever the gradient's size
    model = _scalar_model(5.0)
    config = TrainConfig(steps=1, lr=0.01, optimizer="adam", **QUIET)
    train(model, lambda step: None, lambda m, b: 1000.0 * m.weight.sum(), config)
    assert model.weight.item() == pytest.approx(5.0 - 0.01, abs=1e-6)


def test_weight_decay_skips_biases_and_norm_gains():
    # zero loss gradient: only decoupled weight decay moves a parameter, w <- w (1 - lr * wd)
    model = nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(2.0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = TrainConfig(steps=1, lr=0.1, optimizer="adamw", weight_decay=0.5, **QUIET)
    train(model, lambda step: None, lambda m, b: 0.0 * sum(p.sum() for p in m.parameters()),
          config)
    after = dict(model.named_parameters())
    assert torch.allclose(after["0.weight"], before["0.weight"] * (1 - 0.1 * 0.5))
    for name in ("0.bias", "1.weight", "1.bias"):
        assert torch.equal(after[name], before[name]), name
    groups = make_optimizer(model.parameters(), config).param_groups
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]
    assert [len(g["params"]) for g in groups] == [1, 3]


# --- gradient clipping and divergence --------------------------------------------------------


def _big_gradient_setup():
    model = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    x = torch.full((2, 4), 10.0)

    def loss_fn(m, batch):
        return m(batch).pow(2).mean()

    return model, x, loss_fn


def test_grad_clip_bounds_the_applied_gradient():
    model, x, loss_fn = _big_gradient_setup()
    before = model.weight.detach().clone()
    # gradient by hand: d/dW mean((W x)^2) = 2 * (W x) * x = 2 * 40 * 10 = 800 per entry
    config = TrainConfig(steps=1, lr=1.0, optimizer="sgd", momentum=0.0, grad_clip=0.5, **QUIET)
    hist = train(model, lambda step: x, loss_fn, config)
    assert hist.grad_norm[0] == pytest.approx(800.0 * 2.0)  # recorded before clipping: 800*sqrt(4)
    step = (model.weight.detach() - before).norm().item()
    assert step == pytest.approx(0.5, rel=1e-5)  # lr * clipped norm


def test_without_clip_the_full_gradient_is_applied():
    model, x, loss_fn = _big_gradient_setup()
    before = model.weight.detach().clone()
    config = TrainConfig(steps=1, lr=1e-3, optimizer="sgd", momentum=0.0, **QUIET)
    train(model, lambda step: x, loss_fn, config)
    assert (model.weight.detach() - before).norm().item() == pytest.approx(1e-3 * 1600.0)


def test_divergence_stops_training_and_marks_history():
    model = nn.Linear(2, 1)
    calls = []

    def loss_fn(m, batch):
        calls.append(len(calls))
        out = m(batch).pow(2).mean()
        return out * math.inf if len(calls) == 4 else out

    before = {k: v.clone() for k, v in model.state_dict().items()}
    hist = train(model, lambda step: torch.ones(3, 2), loss_fn,
                 TrainConfig(steps=20, lr=1e-6, **QUIET))
    assert hist.diverged
    assert len(calls) == 4 and len(hist.loss) == 4
    assert math.isnan(hist.loss[-1]) and all(math.isfinite(v) for v in hist.loss[:3])
    assert len(hist.grad_norm) == 3  # no step was taken on the non-finite loss
    assert hist.final_loss == math.inf
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_callbacks_run_after_each_step_and_batches_get_the_step():
    seen, steps = [], []
    model = _scalar_model(0.0)

    def batches(step):
        steps.append(step)

    train(model, batches, lambda m, b: m.weight.sum(),
          TrainConfig(steps=3, lr=0.1, optimizer="sgd", momentum=0.0, **QUIET),
          callbacks=[lambda step, m: seen.append((step, m.weight.item()))])
    assert steps == [0, 1, 2]
    assert seen == [(0, pytest.approx(-0.1)), (1, pytest.approx(-0.2)), (2, pytest.approx(-0.3))]


def test_train_puts_the_model_in_training_mode():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).eval()
    modes = []
    train(model, lambda step: None, lambda m, b: modes.append(m.training) or m[0].weight.sum(),
          TrainConfig(steps=2, **QUIET))
    assert modes == [True, True]


def test_train_rejects_bad_batches_and_losses():
    model = nn.Linear(2, 2)
    config = TrainConfig(steps=1, **QUIET)
    with pytest.raises(TypeError, match="batches must be a callable"):
        train(model, [torch.zeros(1, 2)], config=config)
    with pytest.raises(ValueError, match="scalar"):
        train(model, lambda step: torch.ones(3, 2), lambda m, b: m(b), config)
    with pytest.raises(TypeError, match="loss_fn must return a scalar torch.Tensor"):
        train(model, lambda step: None, lambda m, b: 1.5, config)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        train(None, lambda step: None, config=config)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train(model, lambda step: None, config={"steps": 1})
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(frozen, lambda step: None, config=config)


# --- History ---------------------------------------------------------------------------------


def test_history_steps_to_is_one_based_and_inclusive():
    hist = History(loss=[3.0, 2.0, 1.0, 0.5, 0.7])
    assert hist.steps_to(1.0) == 3
    assert hist.steps_to(0.5) == 4
    assert hist.steps_to(5.0) == 1
    assert hist.steps_to(0.1) is None


def test_history_final_loss_averages_the_last_tenth():
    hist = History(loss=[float(i) for i in range(20)])  # last 2 values: 18, 19
    assert hist.final_loss == pytest.approx(18.5)
    assert History(loss=[4.0, 2.0]).final_loss == pytest.approx(2.0)  # at least one value
    with pytest.raises(ValueError):
        History().final_loss  # noqa: B018


# --- minibatches -----------------------------------------------------------------------------


def test_minibatches_take_the_same_rows_of_every_tensor():
    x = torch.arange(50).float().unsqueeze(1)
    y = torch.arange(50) * 10
    batches = minibatches(x, y, batch_size=8, generator=torch.Generator().manual_seed(0))
    for step in range(5):
        bx, by = batches(step)
        assert bx.shape == (8, 1) and by.shape == (8,)
        assert torch.equal(by, bx.squeeze(1).long() * 10)
    small = minibatches(x[:3], batch_size=8, generator=torch.Generator())
    assert small(0)[0].shape == (3, 1)  # never more rows than there are


def test_epoch_minibatches_see_every_row_once_per_epoch():
    x = torch.arange(20)
    batches = minibatches(x, batch_size=6, generator=torch.Generator().manual_seed(1),
                          sampling="epochs")
    # 20 // 6 = 3 full batches per epoch (the 2 rows left over wait for a later epoch)
    for epoch in range(4):
        rows = torch.cat([batches(3 * epoch + k)[0] for k in range(3)])
        assert rows.shape == (18,) and len(set(rows.tolist())) == 18, epoch
    epochs = [torch.cat([batches(3 * e + k)[0] for k in range(3)]) for e in range(2)]
    assert not torch.equal(epochs[0], epochs[1])  # a new permutation each epoch
    # over many epochs every row is used, about equally often
    counts = torch.bincount(torch.cat([batches(s)[0] for s in range(300)]), minlength=20)
    assert counts.min() > 0.7 * counts.float().mean()


def test_iid_minibatches_are_the_generator_s_randint_stream():
    x = torch.arange(50)
    batches = minibatches(x, batch_size=8, generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    for step in range(4):
        assert torch.equal(batches(step)[0], torch.randint(0, 50, (8,), generator=g)), step
    # with replacement: over 50 steps of 8 from 50 rows, some batch repeats a row
    assert any(len(set(batches(s)[0].tolist())) < 8 for s in range(50))


@pytest.mark.parametrize("sampling", ["iid", "epochs"])
def test_minibatches_depend_on_the_step_only(sampling):
    x = torch.randn(30, 2)
    a = minibatches(x, batch_size=4, generator=torch.Generator().manual_seed(5),
                    sampling=sampling)
    b = minibatches(x, batch_size=4, generator=torch.Generator().manual_seed(5),
                    sampling=sampling)
    order = [9, 0, 3, 9, 20, 1]
    got_a = [a(s)[0] for s in order]  # out of order, one step twice
    got_b = {s: b(s)[0] for s in sorted(order)}  # in order
    for s, batch in zip(order, got_a, strict=True):
        assert torch.equal(batch, got_b[s]), s
    assert not torch.equal(a(0)[0], a(1)[0])
    c = minibatches(x, batch_size=4, generator=torch.Generator().manual_seed(6),
                    sampling=sampling)
    assert not torch.equal(a(0)[0], c(0)[0])


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((), {"batch_size": 4}, ValueError),  # no tensor
        ((torch.zeros(5, 2), torch.zeros(4)), {"batch_size": 2}, ValueError),  # rows differ
        ((torch.zeros(5, 2),), {"batch_size": 0}, ValueError),
        ((torch.zeros(5, 2),), {"batch_size": 2.0}, TypeError),
        ((torch.zeros(0, 2),), {"batch_size": 2}, ValueError),  # nothing to sample
        ((torch.tensor(1.0),), {"batch_size": 2}, ValueError),
        (([1, 2, 3],), {"batch_size": 2}, TypeError),
        ((torch.zeros(5, 2),), {"batch_size": 2, "generator": 0}, TypeError),
        ((torch.zeros(5, 2),), {"batch_size": 2, "sampling": "shuffle"}, ValueError),
    ],
)
def test_minibatches_reject_bad_arguments(args, kwargs, error):
    with pytest.raises(error):
        minibatches(*args, **kwargs)


# --- evaluate and accuracy -------------------------------------------------------------------


class ModeRecorder(nn.Module):
    """Returns fixed logits and records the mode of every call."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.weight = nn.Parameter(torch.zeros(()))
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.logits + 0 * self.weight


@pytest.mark.parametrize("start_in_training", [True, False])
def test_evaluate_and_accuracy_run_in_eval_mode_and_restore_it(start_in_training):
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    y = torch.tensor([0, 1, 1])
    model = ModeRecorder(logits).train(start_in_training)
    assert accuracy(model, torch.zeros(3, 1), y) == pytest.approx(2 / 3)
    assert model.training is start_in_training
    loss = evaluate(model, (torch.zeros(3, 1), y))
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, y).item())
    assert model.training is start_in_training
    assert model.modes == [False, False]


def test_evaluate_and_accuracy_leave_batchnorm_statistics_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), BatchNorm(3)).train()
    x, y = 5 + torch.randn(16, 4), torch.randint(0, 3, (16,))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    evaluate(model, (x, y))
    accuracy(model, x, y)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_accuracy_needs_targets_of_the_logits_shape():
    model = ModeRecorder(torch.eye(3))
    x = torch.zeros(3, 1)
    assert accuracy(model, x, torch.tensor([0, 1, 2])) == 1.0
    with pytest.raises(ValueError, match=r"targets must have shape \(3,\)"):
        accuracy(model, x, torch.tensor([[0], [1], [2]]))  # would broadcast to (3, 3)
    with pytest.raises(TypeError, match="targets must hold integer class indices"):
        accuracy(model, x, torch.tensor([0.0, 1.0, 2.0]))
    seq = ModeRecorder(torch.randn(2, 5, 4))  # (B, T, classes)
    assert 0 <= accuracy(seq, x, torch.zeros(2, 5, dtype=torch.long)) <= 1


# --- the seeded run --------------------------------------------------------------------------


def _digits_like(n=64):
    g = torch.Generator().manual_seed(9)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def test_train_seeded_repeats_with_the_seed_and_differs_between_seeds():
    x, y = _digits_like()
    config = TrainConfig(steps=5, lr=0.05, optimizer="sgd", **QUIET)

    def run(seed):
        return train_seeded(seed, lambda: nn.Linear(5, 3), (x, y), batch_size=8, config=config)

    (m1, h1), (m2, h2), (m3, h3) = run(4), run(4), run(5)
    assert h1.loss == h2.loss and torch.equal(m1.weight, m2.weight)
    assert h1.loss != h3.loss and not torch.equal(m1.weight, m3.weight)


def test_train_seeded_is_seed_build_then_train_on_minibatches():
    x, y = _digits_like()
    config = TrainConfig(steps=4, lr=0.05, optimizer="sgd", **QUIET)
    model, hist = train_seeded(3, lambda: nn.Linear(5, 3), (x, y), batch_size=8, config=config)
    from lessons_lib.seeding import seed_everything

    gen = seed_everything(3)
    by_hand = nn.Linear(5, 3)
    hist_by_hand = train(by_hand, minibatches(x, y, batch_size=8, generator=gen), config=config)
    assert hist.loss == hist_by_hand.loss and torch.equal(model.weight, by_hand.weight)
    with pytest.raises(TypeError, match="data must be a tuple"):
        train_seeded(3, lambda: nn.Linear(5, 3), x, batch_size=8, config=config)
    with pytest.raises(TypeError, match=r"build\(\) must be an nn.Module"):
        train_seeded(3, lambda: "model", (x, y), batch_size=8, config=config)
