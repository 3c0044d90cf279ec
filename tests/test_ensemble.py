"""Ensembles: K members computed in one batched pass equal K models computed one by one."""

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib.ensemble import (
    Ensemble,
    _optimizer,
    evaluate_members,
    member_accuracy,
    member_outputs,
    train_ensemble,
    train_seeds,
)
from lessons_lib.models import make_mlp
from lessons_lib.probes import MeanTap
from lessons_lib.recurrent import RNNClassifier
from lessons_lib.seeding import seed_everything
from lessons_lib.training import TrainConfig, accuracy, evaluate, minibatches, train_seeded

QUIET = {"progress": False}


def _mlps(norm, k=3, depth=3, seed=0):
    models = []
    for i in range(k):
        seed_everything(seed + i)
        models.append(make_mlp(8, 16, 4, depth, norm=norm))
    return models


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()
    return x, y


@pytest.mark.parametrize("norm", ["none", "layernorm", "rmsnorm", "batchnorm"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_forward_equals_each_model_alone(norm, mode):
    models = _mlps(norm)
    ens = Ensemble(models)
    for m in models:
        getattr(m, mode)()
    getattr(ens, mode)()
    x = torch.randn(3, 10, 8)
    expected = torch.stack([m(x[k]) for k, m in enumerate(models)])
    assert torch.allclose(ens(x), expected, atol=1e-6)
    # upto: the output of the first two children (hidden layer 2)
    hidden = torch.stack([m[:2](x[k]) for k, m in enumerate(models)])
    assert torch.allclose(ens(x, upto=2), hidden, atol=1e-6)


def test_members_start_as_exact_copies_and_the_models_are_not_changed():
    models = _mlps("batchnorm")
    before = [{n: t.clone() for n, t in m.state_dict().items()} for m in models]
    ens = Ensemble(models)
    with torch.no_grad():
        ens.stacked("0.linear.weight").mul_(2.0)  # training the ensemble must not touch them
    for m, state in zip(models, before, strict=True):
        assert all(torch.equal(m.state_dict()[n], t) for n, t in state.items())
    member = Ensemble(models).member(1)
    assert type(member) is type(models[1])
    for n, t in models[1].state_dict().items():
        assert torch.equal(member.state_dict()[n], t), n
    assert ens.stacked("0.norm.running_mean").shape == (3, 16)
    assert [p.shape[0] for p in ens.parameters()] == [3] * len(list(ens.parameters()))


def test_losses_and_evaluation_match_the_library_for_one_model():
    models = _mlps("batchnorm")
    ens = Ensemble(models)
    x, y = _data()
    xs, ys = x.expand(3, *x.shape), y.expand(3, *y.shape)
    expected = torch.stack([F.cross_entropy(m(x), y) for m in models])
    assert torch.allclose(ens.losses(xs, ys), expected, atol=1e-6)
    for m in models:
        m.eval()
    assert evaluate_members(ens, (x, y)) == pytest.approx([evaluate(m, (x, y)) for m in models],
                                                          abs=1e-6)
    assert member_accuracy(ens, x, y) == pytest.approx([accuracy(m, x, y) for m in models])
    assert ens.training  # evaluation restores the mode
    assert member_outputs(ens, x).shape == (3, 96, 4)


def test_train_and_eval_switch_every_member():
    ens = Ensemble(_mlps("batchnorm"))
    ens.eval()
    assert not ens.template.training and not ens.member(0).training
    ens.train()
    assert ens.template.training and ens.member(2).training


@pytest.mark.parametrize("norm", ["none", "layernorm", "batchnorm"])
def test_train_seeds_follows_train_seeded_for_each_seed(norm):
    x, y = _data()
    config = TrainConfig(steps=8, lr=0.05, optimizer="sgd", momentum=0.9, **QUIET)
    build = partial(make_mlp, 8, 16, 4, 3, norm=norm)
    ens, histories = train_seeds([3, 7], build, (x, y), batch_size=16, config=config)
    for k, seed in enumerate([3, 7]):
        model, hist = train_seeded(seed, build, (x, y), batch_size=16, config=config)
        assert histories[k].loss == pytest.approx(hist.loss, abs=1e-5)
        assert histories[k].grad_norm == pytest.approx(hist.grad_norm, rel=1e-4)
        assert histories[k].lr == hist.lr
        for n, t in model.state_dict().items():
            assert torch.allclose(ens.member(k).state_dict()[n].float(), t.float(), atol=1e-5), n


def test_adam_weight_decay_and_clipping_act_per_member_as_for_one_model():
    x, y = _data()
    config = TrainConfig(steps=6, lr=0.01, optimizer="adamw", weight_decay=0.1, grad_clip=0.05,
                         **QUIET)
    build = partial(make_mlp, 8, 16, 4, 2, norm="layernorm")
    ens, histories = train_seeds([0, 1], build, (x, y), batch_size=32, config=config)
    for k in (0, 1):
        model, hist = train_seeded(k, build, (x, y), batch_size=32, config=config)
        assert histories[k].loss == pytest.approx(hist.loss, abs=1e-5)
        for n, t in model.state_dict().items():
            assert torch.allclose(ens.member(k).state_dict()[n], t, atol=1e-5), n
    groups = _optimizer(ens, config).param_groups
    assert all(p.dim() == 3 for p in groups[0]["params"])  # weight matrices decay ...
    assert groups[1]["weight_decay"] == 0.0 and all(p.dim() == 2 for p in groups[1]["params"])


def test_a_diverging_member_stops_and_leaves_the_others_unchanged():
    x, y = _data()
    seed_everything(0)
    good = make_mlp(8, 16, 4, 3)
    bad = make_mlp(8, 16, 4, 3, weight_scale=1e12)  # logits overflow: loss inf at once
    config = TrainConfig(steps=5, lr=0.05, optimizer="sgd", **QUIET)

    def batches():
        return minibatches(x, y, batch_size=16, generator=torch.Generator().manual_seed(1))

    both = Ensemble([good, bad])
    h_both = train_ensemble(both, [batches(), batches()], config)
    alone = Ensemble([good])
    h_alone = train_ensemble(alone, [batches()], config)
    assert h_both[1].diverged and len(h_both[1].loss) == 1 and math.isnan(h_both[1].loss[0])
    assert h_both[1].final_loss == math.inf
    assert not h_both[0].diverged and h_both[0].loss == pytest.approx(h_alone[0].loss, abs=1e-6)
    for n, t in alone.member(0).state_dict().items():
        assert torch.allclose(both.member(0).state_dict()[n], t, atol=1e-6), n


def test_every_member_diverged_ends_the_loop():
    x, y = _data()
    seed_everything(0)
    models = [make_mlp(8, 16, 4, 3, weight_scale=1e12) for _ in range(2)]
    batches = [minibatches(x, y, batch_size=16, generator=torch.Generator().manual_seed(i))
               for i in range(2)]
    histories = train_ensemble(Ensemble(models), batches, TrainConfig(steps=50, **QUIET))
    assert all(h.diverged and len(h.loss) == 1 for h in histories)


def test_callbacks_see_the_ensemble_after_each_step_and_a_tap_records_each_member():
    x, y = _data()
    means = []

    def build():
        model = make_mlp(8, 16, 4, 3)
        model[1].add_module("tap", MeanTap(16))
        return model

    def record(step, ens):
        means.append(ens.stacked("1.tap.mean").clone())

    config = TrainConfig(steps=4, lr=0.05, optimizer="sgd", **QUIET)
    ens, _ = train_seeds([0, 1], build, (x, y), batch_size=16, config=config,
                         callbacks=[record])
    assert len(means) == 4 and means[0].shape == (2, 16)
    # the tap holds the batch mean of hidden layer 2 in the last training step (before it)
    model, _ = train_seeded(1, build, (x, y), batch_size=16,
                            config=TrainConfig(steps=3, lr=0.05, optimizer="sgd", **QUIET))
    last_batch = minibatches(x, y, batch_size=16, generator=seed_everything(1))(3)[0]
    with torch.no_grad():
        expected = model[:2](last_batch).mean(0)
    assert torch.allclose(means[-1][1], expected, atol=1e-5)


def test_an_rnn_ensemble_matches_its_members():
    models = []
    for i in range(2):
        seed_everything(i)
        models.append(RNNClassifier(4, 8, 3, layer_norm=bool(i), recurrent_gain=2.0))
    with pytest.raises(ValueError, match="parameters and buffers"):
        Ensemble(models)  # one with LN, one without: not one architecture
    models = [RNNClassifier(4, 8, 3, layer_norm=True, generator=torch.Generator().manual_seed(i))
              for i in range(2)]
    ens = Ensemble(models)
    x = torch.randn(2, 5, 6, 4)
    expected = torch.stack([m(x[k]) for k, m in enumerate(models)])
    assert torch.allclose(ens(x), expected, atol=1e-6)


def test_mean_tap_is_an_identity_that_remembers_the_training_batch_mean():
    tap = MeanTap(3)
    x = torch.arange(12.0).reshape(2, 2, 3)
    assert torch.equal(tap(x), x)
    assert torch.equal(tap.mean, x.reshape(-1, 3).mean(0))
    tap.eval()
    tap(torch.zeros(4, 3))
    assert torch.equal(tap.mean, x.reshape(-1, 3).mean(0))  # eval mode stores nothing
    with pytest.raises(ValueError, match="x must have 3 features"):
        tap(torch.ones(2, 4))


def test_a_model_is_not_an_ensemble_input():
    with pytest.raises(TypeError, match="models must be a sequence"):
        Ensemble(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="models\\[1\\] must be a Sequential"):
        Ensemble([nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 2)])


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_member_learning_rates_and_builders_give_each_member_its_own_run(optimizer):
    x, y = _data()
    base = TrainConfig(steps=6, lr=0.02, optimizer=optimizer, weight_decay=0.05, **QUIET)
    builds = [partial(make_mlp, 8, 16, 4, 3, norm="layernorm", weight_scale=s)
              for s in (1.0, 2.0, 1.0)]
    lrs = [0.02, 0.05, 0.005]
    ens, histories = train_seeds([4, 4, 5], builds, (x, y), batch_size=16, config=base,
                                 member_lr=lrs)
    for k, (seed, build, lr) in enumerate(zip([4, 4, 5], builds, lrs, strict=True)):
        config = TrainConfig(**{**base.__dict__, "lr": lr})
        model, hist = train_seeded(seed, build, (x, y), batch_size=16, config=config)
        assert histories[k].loss == pytest.approx(hist.loss, abs=1e-5)
        assert histories[k].lr == pytest.approx(hist.lr)
        for n, t in model.state_dict().items():
            assert torch.allclose(ens.member(k).state_dict()[n], t, atol=1e-5), n
    with pytest.raises(ValueError, match="seeds must be distinct"):
        train_seeds([1, 1], builds[0], (x, y), batch_size=16, config=base)
