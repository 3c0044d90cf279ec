"""Probes: gradient norms, activation statistics, activation drift."""

import math

import pytest
import torch
from torch import nn

from lessons_lib.probes import (
    ActivationDrift,
    ActivationRecorder,
    gradient_norms,
    input_gradient_norms,
)


def _chain():
    # x -> l1 (W1 = diag(1, 2)) -> l2 (W2 = [3, 4]) -> scalar; no biases
    l1, l2 = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        l1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        l2.weight.copy_(torch.tensor([[3.0, 4.0]]))
    return l1, l2


def test_input_gradient_norms_match_a_hand_computed_chain():
    l1, l2 = _chain()
    x = torch.tensor([[1.0, 1.0]], requires_grad=True)
    norms = input_gradient_norms([l1, l2], lambda: l2(l1(x)).sum())
    # dL/d(input of l2) = W2 = [3, 4] -> 5;  dL/d(input of l1) = W2 W1 = [3, 8] -> sqrt(73)
    assert norms == pytest.approx([math.sqrt(73.0), 5.0])


def test_input_gradient_norms_work_when_the_input_needs_no_grad():
    l1, l2 = _chain()
    x = torch.tensor([[1.0, 1.0]])  # the first layer's input is a leaf without grad
    norms = input_gradient_norms([l2], lambda: l2(l1(x)).sum())
    assert norms == pytest.approx([5.0])


def test_input_gradient_norms_remove_their_hooks_even_on_error():
    l1, l2 = _chain()
    x = torch.ones(1, 2)
    input_gradient_norms([l2], lambda: l2(l1(x)).sum())
    assert not l2._forward_pre_hooks
    with pytest.raises(ValueError, match="scalar"):
        input_gradient_norms([l2], lambda: l2(l1(x)))  # (1, 1) is not a scalar
    assert not l2._forward_pre_hooks


def test_input_gradient_norms_report_layers_not_reached():
    l1, l2 = _chain()
    unused = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match=r"\[1\]"):
        input_gradient_norms([l2, unused], lambda: l2(l1(torch.ones(1, 2))).sum())
    assert not unused._forward_pre_hooks


def test_gradient_norms_skip_one_dimensional_parameters_by_default():
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
    model(torch.ones(4, 3)).pow(2).sum().backward()
    weights = gradient_norms(model)
    assert set(weights) == {"0.weight"}
    assert weights["0.weight"] == pytest.approx(model[0].weight.grad.norm().item())
    everything = gradient_norms(model, weights_only=False)
    assert set(everything) == {"0.weight", "0.bias", "1.weight", "1.bias"}


def test_activation_recorder_records_each_call_and_removes_hooks():
    layer = nn.Identity()
    a = torch.tensor([[1.0, 2.0], [3.0, 6.0]])  # mean 3, biased std sqrt(3.5), rms sqrt(12.5)
    b = torch.tensor([[-1.0, 1.0]])  # mean 0, std 1, rms 1
    with ActivationRecorder({"id": layer}) as rec:
        layer(a)
        layer(b)
        assert len(layer._forward_hooks) == 1
    assert not layer._forward_hooks
    stats = rec.stats["id"]
    assert stats.mean == pytest.approx([3.0, 0.0])
    assert stats.std == pytest.approx([math.sqrt(3.5), 1.0])
    assert stats.rms == pytest.approx([math.sqrt(12.5), 1.0])
    layer(a)  # after the context: nothing recorded
    assert len(stats.mean) == 2


def test_activation_recorder_takes_the_first_element_of_tuple_outputs():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x * 100

    layer = Pair()
    with ActivationRecorder({"p": layer}) as rec:
        layer(torch.tensor([2.0, 4.0]))
    assert rec.stats["p"].mean == pytest.approx([3.0])


@pytest.mark.parametrize("modules, error", [({}, ValueError), ({"x": lambda t: t}, TypeError)])
def test_activation_recorder_rejects_bad_arguments(modules, error):
    with pytest.raises(error):
        ActivationRecorder(modules)


def test_activation_drift_by_hand():
    layer = nn.Identity()
    x1 = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # per-unit means (1, 2)
    x2 = torch.tensor([[1.0, 5.0], [3.0, 5.0]])  # per-unit means (2, 5)
    x3 = torch.tensor([[2.0, 5.0], [2.0, 5.0]])  # per-unit means (2, 5)
    with ActivationDrift(layer) as drift:
        layer(x1)
        layer.eval()
        layer(100 + x1)  # evaluation-mode calls are not recorded
        layer.train()
        layer(x2)
        layer(x3)
    assert not layer._forward_hooks
    assert drift.steps == pytest.approx([(1 + 3) / 2, 0.0])
    assert drift.drift == pytest.approx(1.0)


def test_activation_drift_averages_over_every_axis_but_the_last():
    layer = nn.Identity()
    with ActivationDrift(layer) as drift:
        layer(torch.zeros(2, 3, 4))
        layer(torch.ones(2, 3, 4))
    assert drift.means[0].shape == (4,)
    assert drift.drift == pytest.approx(1.0)


def test_activation_drift_needs_two_calls_and_a_module():
    layer = nn.Identity()
    with ActivationDrift(layer) as drift:
        layer(torch.ones(3, 2))
    with pytest.raises(ValueError, match="at least 2"):
        drift.drift  # noqa: B018
    with pytest.raises(TypeError):
        ActivationDrift(lambda t: t)


def test_input_gradient_norms_of_a_first_layer_fed_with_data():
    l1, l2 = _chain()
    x = torch.tensor([[1.0, 1.0]])  # data: needs no grad, and stays untouched
    norms = input_gradient_norms([l1, l2], lambda: l2(l1(x)).sum())
    assert norms == pytest.approx([math.sqrt(73.0), 5.0])
    assert not x.requires_grad and x.grad is None


def test_input_gradient_norms_reject_bad_arguments():
    l1, l2 = _chain()
    x = torch.ones(1, 2)
    with pytest.raises(ValueError, match="at least one module"):
        input_gradient_norms([], lambda: l2(l1(x)).sum())
    with pytest.raises(TypeError, match=r"layers\[0\] must be an nn.Module"):
        input_gradient_norms([lambda t: t], lambda: l2(l1(x)).sum())
    with pytest.raises(TypeError, match="forward must return a scalar torch.Tensor"):
        input_gradient_norms([l2], lambda: 1.0)
    with pytest.raises(ValueError, match="does not require grad"):
        input_gradient_norms([l2], lambda: torch.ones(()))


def test_a_reused_recorder_starts_afresh_and_cannot_nest():
    layer = nn.Identity()
    rec = ActivationRecorder({"id": layer})
    with rec:
        layer(torch.ones(2, 2))
    with rec:
        layer(torch.zeros(2, 2))
        with pytest.raises(RuntimeError, match="already recording"):
            rec.__enter__()
    assert rec.stats["id"].mean == [0.0]  # the second run only
    assert not layer._forward_hooks  # no hook leaked


def test_a_reused_drift_probe_does_not_mix_runs_and_cannot_nest():
    layer = nn.Identity()
    probe = ActivationDrift(layer)
    with probe:
        layer(torch.zeros(2, 2))
        layer(torch.full((2, 2), 10.0))
    assert probe.drift == pytest.approx(10.0)
    with probe:
        layer(torch.zeros(2, 2))
        layer(torch.ones(2, 2))
        with pytest.raises(RuntimeError, match="already recording"):
            probe.__enter__()
    assert probe.drift == pytest.approx(1.0) and len(probe.means) == 2
    assert not layer._forward_hooks
