"""The training loop, its schedule and safeguards, and the MLP builder of Part I."""

import math

import pytest
import torch
from torch import nn

from lessons_lib.normalization import batch_norm_forward
from lessons_lib.training import (
    FeaturesLastBatchNorm,
    History,
    TrainConfig,
    accuracy,
    evaluate,
    lr_at,
    make_mlp,
    minibatches,
    progress_bar,
    train,
)

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
        ({"lr": "1e-3"}, TypeError),
        ({"optimizer": "rmsprop"}, ValueError),
        ({"schedule": "step"}, ValueError),
        ({"warmup_steps": -1}, ValueError),
        ({"warmup_steps": 1.5}, TypeError),
        ({"weight_decay": -0.1}, ValueError),
        ({"grad_clip": 0.0}, ValueError),
        ({"grad_clip": -1.0}, ValueError),
    ],
)
def test_config_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"optimizer": "sgd", "momentum": -0.5}, {"optimizer": "adam", "betas": (1.5, 0.9)}]
)
def test_bad_optimizer_settings_raise_when_training_starts(kwargs):
    # Not checked by TrainConfig itself; PyTorch's optimizer rejects them in train().
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError):
        train(model, lambda step: (torch.zeros(1, 2), torch.zeros(1, dtype=torch.long)),
              config=TrainConfig(steps=1, progress=False, **kwargs))


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
    config = TrainConfig(steps=6, lr=0.2, warmup_steps=3, schedule="linear", progress=False)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    hist = train(nn.Linear(3, 2), lambda step: (x, y), config=config)
    assert hist.lr == pytest.approx([lr_at(s, config) for s in range(6)])
    assert hist.lr[:3] == pytest.approx([0.2 / 3, 0.4 / 3, 0.2])


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
    config = TrainConfig(steps=1, lr=1.0, optimizer="sgd", momentum=0.0, grad_clip=0.5,
                         progress=False)
    hist = train(model, lambda step: x, loss_fn, config)
    assert hist.grad_norm[0] == pytest.approx(800.0 * 2.0)  # recorded before clipping: 800*sqrt(4)
    step = (model.weight.detach() - before).norm().item()
    assert step == pytest.approx(0.5, rel=1e-5)  # lr * clipped norm


def test_without_clip_the_full_gradient_is_applied():
    model, x, loss_fn = _big_gradient_setup()
    before = model.weight.detach().clone()
    config = TrainConfig(steps=1, lr=1e-3, optimizer="sgd", momentum=0.0, progress=False)
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
                 TrainConfig(steps=20, lr=1e-6, progress=False))
    assert hist.diverged
    assert len(calls) == 4 and len(hist.loss) == 4
    assert math.isnan(hist.loss[-1]) and all(math.isfinite(v) for v in hist.loss[:3])
    assert len(hist.grad_norm) == 3  # no step was taken on the non-finite loss
    assert hist.final_loss == math.inf
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_train_rejects_bad_batches_and_non_scalar_losses():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        train(model, [torch.zeros(1, 2)], config=TrainConfig(steps=1, progress=False))
    with pytest.raises(ValueError, match="scalar"):
        train(model, lambda step: torch.ones(3, 2), lambda m, b: m(b),
              TrainConfig(steps=1, progress=False))


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


# --- minibatches, evaluate, accuracy ---------------------------------------------------------


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


def test_minibatches_are_reproducible_with_the_generator():
    x = torch.randn(30, 2)
    a = minibatches(x, batch_size=4, generator=torch.Generator().manual_seed(5))
    b = minibatches(x, batch_size=4, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a(s)[0], b(s)[0]) for s in range(3))


@pytest.mark.parametrize(
    "args, kwargs, error",
    [
        ((), {"batch_size": 4}, ValueError),  # no tensor
        ((torch.zeros(5, 2), torch.zeros(4)), {"batch_size": 2}, ValueError),  # rows differ
        ((torch.zeros(5, 2),), {"batch_size": 0}, ValueError),
        ((torch.zeros(5, 2),), {"batch_size": 2.0}, TypeError),
    ],
)
def test_minibatches_reject_bad_arguments(args, kwargs, error):
    with pytest.raises(error):
        minibatches(*args, generator=torch.Generator(), **kwargs)


def test_evaluate_and_accuracy_use_eval_mode_and_restore_it():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 1])
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
    model.train()
    assert accuracy(model, x, y) == 1.0  # dropout off: deterministic
    assert model.training
    model.eval()
    loss = evaluate(model, (x, y))
    expected = nn.functional.cross_entropy(x, y).item()  # logits = x
    assert loss == pytest.approx(expected)
    assert not model.training


def test_progress_bar_can_be_disabled():
    with progress_bar(5, "x", enabled=False) as bar:
        bar.update(5)
        assert bar.disable


# --- make_mlp --------------------------------------------------------------------------------


def test_make_mlp_structure():
    model = make_mlp(5, 7, 3, 4, norm="layernorm")
    assert len(model) == 5  # 4 hidden layers + head
    for block in model[:4]:
        assert [name for name, _ in block.named_children()] == ["linear", "norm", "act"]
        assert isinstance(block.norm, nn.LayerNorm) and isinstance(block.act, nn.ReLU)
    assert model[0].linear.in_features == 5 and model[3].linear.out_features == 7
    assert isinstance(model[-1], nn.Linear) and model[-1].out_features == 3
    assert model(torch.randn(2, 5)).shape == (2, 3)
    assert model(torch.randn(2, 6, 5)).shape == (2, 6, 3)


@pytest.mark.parametrize(
    "norm, cls",
    [(None, nn.Identity), ("none", nn.Identity), ("layernorm", nn.LayerNorm),
     ("rmsnorm", nn.RMSNorm), ("batchnorm", FeaturesLastBatchNorm)],
)
def test_make_mlp_norm_choices(norm, cls):
    model = make_mlp(4, 8, 2, 2, norm=norm)
    assert type(model[0].norm) is cls


def test_make_mlp_accepts_a_norm_factory():
    made = []

    def factory(width):
        made.append(width)
        return nn.Identity()

    make_mlp(4, 9, 2, 3, norm=factory)
    assert made == [9, 9, 9]
    with pytest.raises(TypeError):
        make_mlp(4, 9, 2, 3, norm=lambda width: "not a module")


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_make_mlp_weight_scale_sets_the_init_std(scale):
    gen = torch.Generator().manual_seed(0)
    model = make_mlp(256, 256, 10, 2, weight_scale=scale, generator=gen)
    w = model[1].linear.weight  # 256 x 256 entries
    assert w.std().item() == pytest.approx(scale * math.sqrt(2 / 256), rel=0.03)
    assert abs(w.mean().item()) < 0.05 * scale * math.sqrt(2 / 256)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 3 and all(torch.count_nonzero(m.bias) == 0 for m in linears)


def test_make_mlp_is_reproducible_with_a_generator():
    a = make_mlp(3, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    b = make_mlp(3, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_plain_mlp_scales_activations_geometrically_and_ln_does_not():
    x = torch.randn(128, 32, generator=torch.Generator().manual_seed(0))
    outs = {}
    for norm in ("none", "layernorm"):
        model = make_mlp(32, 64, 2, 8, norm=norm, weight_scale=2.0,
                         generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            outs[norm] = model[:-1](x).std().item()
    assert outs["none"] > 2**5  # about 2x per layer over 8 layers
    assert 0.4 < outs["layernorm"] < 0.8


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"depth": 0}, ValueError),
        ({"width": 0}, ValueError),
        ({"in_features": 2.0}, TypeError),
        ({"norm": "groupnorm"}, ValueError),
        ({"activation": "sigmoid"}, ValueError),
        ({"weight_scale": 0.0}, ValueError),
        ({"weight_scale": "2"}, TypeError),
        ({"generator": 0}, TypeError),
    ],
)
def test_make_mlp_rejects_bad_arguments(kwargs, error):
    args = {"in_features": 4, "width": 8, "out_features": 2, "depth": 2}
    args.update(kwargs)
    with pytest.raises(error):
        make_mlp(args.pop("in_features"), args.pop("width"), args.pop("out_features"),
                 args.pop("depth"), **args)


def test_features_last_batchnorm_pools_every_axis_but_the_last():
    x = 3.0 + torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(0))
    bn = FeaturesLastBatchNorm(6)
    out = bn(x)
    assert out.shape == x.shape
    assert torch.allclose(out, batch_norm_forward(x), atol=1e-5)
    assert torch.allclose(bn.running_mean, 0.1 * x.reshape(-1, 6).mean(0), atol=1e-6)


def test_progress_bars_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("LESSONS_PROGRESS", "0")
    with progress_bar(10, "off", leave=True) as bar:
        assert bar.disable
    monkeypatch.setenv("LESSONS_PROGRESS", "1")
    with progress_bar(10, "on") as bar:
        assert not bar.disable and not bar.leave


def test_static_progress_prints_each_kept_bar_once(monkeypatch, capsys):
    monkeypatch.setenv("LESSONS_PROGRESS", "static")
    bar = progress_bar(4, "kept runs", leave=True)
    for _ in range(4):
        bar.update(1)
    assert capsys.readouterr().out == ""  # silent while running
    bar.close()
    bar.close()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kept runs: 100%|██████████| 4/4")

    for kwargs in (dict(leave=False), dict(leave=True, enabled=False)):
        with progress_bar(3, "hidden", **kwargs) as bar:
            bar.update(3)
    assert capsys.readouterr().out == ""


def test_static_progress_keeps_train_quiet(monkeypatch, capsys):
    monkeypatch.setenv("LESSONS_PROGRESS", "static")
    model = nn.Linear(3, 2)
    batch = (torch.randn(8, 3), torch.randint(0, 2, (8,)))
    train(model, lambda step: batch, config=TrainConfig(steps=3))
    assert capsys.readouterr().out == ""


def test_unknown_progress_mode_is_named(monkeypatch):
    monkeypatch.setenv("LESSONS_PROGRESS", "yes")
    with pytest.raises(ValueError, match="LESSONS_PROGRESS must be one of"):
        progress_bar(1, "bad")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(momentum=-0.5), "momentum must be >= 0"),
        (dict(betas=(0.9, 1.5)), r"betas must be two numbers in \[0, 1\)"),
        (dict(betas=(0.9,)), "betas must be two numbers"),
    ],
)
def test_train_config_rejects_bad_optimizer_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_lr_at_rejects_a_negative_step():
    with pytest.raises(ValueError, match="step must be >= 0"):
        lr_at(-1, TrainConfig())
