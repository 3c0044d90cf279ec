"""The Elman RNN with optional layer normalization (Ba et al. 2016, §3.1)."""

import math

import pytest
import torch
import torch.nn.functional as F

from lessons_lib.recurrent import RNN, RecurrentCell, RNNClassifier


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _ln(a, gain, eps):
    # LayerNorm over the last dim by hand: biased variance, eps inside the root, no bias
    mu = a.mean(-1, keepdim=True)
    var = ((a - mu) ** 2).mean(-1, keepdim=True)
    return gain * (a - mu) / torch.sqrt(var + eps)


def _cell(layer_norm, seed=0, **kwargs):
    cell = RecurrentCell(3, 5, layer_norm=layer_norm, generator=torch.Generator().manual_seed(seed),
                         **kwargs).double()
    with torch.no_grad():
        cell.bias.copy_(torch.linspace(-0.5, 0.5, 5))
        if layer_norm:
            cell.norm_h.weight.copy_(torch.linspace(0.5, 1.5, 5))
            cell.norm_x.weight.copy_(torch.linspace(2.0, 1.0, 5))
    return cell


def test_plain_cell_matches_the_equation():
    cell = _cell(False)
    x = torch.randn(4, 3, dtype=torch.float64)
    h = torch.randn(4, 5, dtype=torch.float64)
    expected = torch.relu(h @ cell.w_hh.T + x @ cell.w_xh.T + cell.bias)
    assert torch.allclose(cell(x, h), expected)


def test_ln_cell_normalizes_the_two_terms_separately():
    cell = _cell(True, eps=1e-3)
    x = torch.randn(4, 3, dtype=torch.float64)
    h = torch.randn(4, 5, dtype=torch.float64)
    expected = torch.relu(_ln(h @ cell.w_hh.T, cell.norm_h.weight, 1e-3)
                          + _ln(x @ cell.w_xh.T, cell.norm_x.weight, 1e-3) + cell.bias)
    assert torch.allclose(cell(x, h), expected)
    assert cell.norm_h.bias is None and cell.norm_x.bias is None  # one shared bias only


def test_ln_cell_is_invariant_to_the_scale_of_its_weights():
    cell = _cell(True, eps=0.0)  # with eps = 0 the invariance is exact
    x = torch.randn(6, 3, dtype=torch.float64)
    h = torch.rand(6, 5, dtype=torch.float64) + 0.5
    with torch.no_grad():
        before = cell(x, h)
        cell.w_hh.mul_(7.3)
        cell.w_xh.mul_(0.2)
        assert (cell(x, h) - before).abs().max() < 1e-12
    plain = _cell(False)
    with torch.no_grad():
        before = plain(x, h)
        plain.w_hh.mul_(7.3)
        assert (plain(x, h) - before).abs().max() > 0.1


def test_ln_cell_handles_a_zero_state():
    cell = _cell(True)
    out = cell(torch.randn(2, 3, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64))
    assert torch.isfinite(out).all()


def test_initial_weight_scales():
    cell = RecurrentCell(16, 256, recurrent_gain=1.7, generator=torch.Generator().manual_seed(0))
    assert cell.w_hh.std().item() == pytest.approx(1.7 / math.sqrt(256), rel=0.03)
    assert cell.w_xh.std().item() == pytest.approx(1 / math.sqrt(16), rel=0.05)
    assert torch.count_nonzero(cell.bias) == 0


def test_rnn_unrolls_the_cell_from_a_zero_state():
    rnn = RNN(3, 5, layer_norm=True, generator=torch.Generator().manual_seed(1)).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64)
    states = rnn(x)
    assert states.shape == (2, 4, 5)
    h = torch.zeros(2, 5, dtype=torch.float64)
    for t in range(4):
        h = rnn.cell(x[:, t], h)
        assert torch.allclose(states[:, t], h)


def test_plain_state_grows_with_the_gain_and_ln_state_does_not():
    x = torch.randn(64, 16, 4, generator=torch.Generator().manual_seed(0))
    norms = {}
    for ln in (False, True):
        for gain in (1.0, 3.0):
            rnn = RNN(4, 64, layer_norm=ln, recurrent_gain=gain,
                      generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                norms[ln, gain] = rnn(x)[:, -1].norm(dim=-1).mean().item()
    assert norms[False, 3.0] > 10 * norms[False, 1.0]
    assert norms[True, 3.0] == pytest.approx(norms[True, 1.0], rel=1e-4)


def test_classifier_reads_the_last_state_and_trains():
    torch.manual_seed(0)
    model = RNNClassifier(4, 8, 3, layer_norm=True)
    x = torch.randn(5, 6, 4)
    logits = model(x)
    assert logits.shape == (5, 3)
    assert torch.allclose(logits, model.readout(model.rnn(x)[:, -1]))
    F.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_generator_makes_weights_reproducible():
    a = RecurrentCell(3, 4, generator=torch.Generator().manual_seed(2))
    b = RecurrentCell(3, 4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.w_hh, b.w_hh) and torch.equal(a.w_xh, b.w_xh)


@pytest.mark.parametrize("kwargs, error", [
    ({"input_size": 0}, ValueError),
    ({"hidden_size": 0}, ValueError),
    ({"hidden_size": 4.0}, TypeError),
    ({"recurrent_gain": 0.0}, ValueError),
    ({"recurrent_gain": -1.0}, ValueError),
    ({"eps": -1e-5}, ValueError),
    ({"layer_norm": "yes"}, TypeError),
])
def test_cell_rejects_bad_arguments(kwargs, error):
    args = {"input_size": 3, "hidden_size": 4}
    args.update(kwargs)
    with pytest.raises(error):
        RecurrentCell(args.pop("input_size"), args.pop("hidden_size"), **args)


def test_classifier_rejects_bad_num_classes():
    with pytest.raises(ValueError):
        RNNClassifier(3, 4, 0)


@pytest.mark.parametrize("x, error", [
    (torch.zeros(2, 3), ValueError),  # no time axis
    (torch.zeros(2, 4, 5), ValueError),  # wrong feature size
    (torch.zeros(2, 0, 3), ValueError),  # no time step
    (torch.zeros(2, 4, 3, dtype=torch.long), TypeError),
    ([[0.0]], TypeError),
])
def test_rnn_rejects_bad_inputs(x, error):
    with pytest.raises(error):
        RNN(3, 4)(x)


@pytest.mark.parametrize("x, h, match", [
    (torch.zeros(2, 4), torch.zeros(2, 4), r"x_t must have shape \(batch, 3\)"),
    (torch.zeros(2, 3), torch.zeros(2, 5), r"h must have shape \(batch, 4\)"),
    (torch.zeros(2, 3), torch.zeros(3, 4), "same batch size"),
    (torch.zeros(3), torch.zeros(4), r"x_t must have shape \(batch, 3\)"),
])
def test_cell_rejects_wrong_widths(x, h, match):
    with pytest.raises(ValueError, match=match):
        RecurrentCell(3, 4)(x, h)


def test_classifier_generator_draws_every_weight():
    def build(seed):
        return RNNClassifier(3, 4, 2, generator=torch.Generator().manual_seed(seed))

    a, b, c = build(1), build(1), build(2)
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters(),
                               strict=True):
        assert torch.equal(p, q), name
        if name != "rnn.cell.bias":  # zero at the start
            assert not torch.equal(p, r), name
