"""He initialization, the MLP of Part I, parameter counts (lessons_lib.models)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lessons_lib.models import count_parameters, default_linear, he_linear, make_mlp
from lessons_lib.normalization import BatchNorm


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
    [("none", nn.Identity), ("layernorm", nn.LayerNorm), ("rmsnorm", nn.RMSNorm),
     ("batchnorm", BatchNorm)],
)
def test_make_mlp_norm_choices(norm, cls):
    model = make_mlp(4, 8, 2, 2, norm=norm)
    assert type(model[0].norm) is cls
    assert model(torch.randn(6, 3, 4)).shape == (6, 3, 2)  # features-last for every norm


def test_make_mlp_accepts_a_norm_factory():
    made = []

    def factory(width):
        made.append(width)
        return nn.Identity()

    make_mlp(4, 9, 2, 3, norm=factory)
    assert made == [9, 9, 9]
    with pytest.raises(TypeError, match="must return an nn.Module"):
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


def test_make_mlp_is_reproducible_with_a_generator_and_leaves_the_global_one_alone():
    torch.manual_seed(0)
    a = make_mlp(3, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    after_a = torch.randn(3)
    torch.manual_seed(0)
    b = make_mlp(3, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    torch.manual_seed(0)
    assert torch.equal(torch.randn(3), after_a)  # building with a generator drew nothing else


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
        ({"norm": "layer"}, ValueError),  # the old residual spelling
        ({"norm": None}, ValueError),
        ({"activation": "sigmoid"}, ValueError),
        ({"weight_scale": 0.0}, ValueError),
        ({"weight_scale": math.inf}, ValueError),
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


def test_make_mlp_accepts_numpy_integers():
    model = make_mlp(np.int64(4), np.int64(8), 2, np.int32(2))
    assert model(torch.randn(3, 4)).shape == (3, 2)


def test_he_linear_matches_kaiming_normal_on_the_global_generator():
    torch.manual_seed(3)
    ours = he_linear(64, 32, bias=False)
    torch.manual_seed(3)
    theirs = nn.Linear(64, 32, bias=False)
    nn.init.kaiming_normal_(theirs.weight, nonlinearity="relu")
    assert torch.equal(ours.weight, theirs.weight)
    big = he_linear(512, 512, gain=0.5, generator=torch.Generator().manual_seed(0))
    assert big.weight.std().item() == pytest.approx(0.5 * math.sqrt(2 / 512), rel=0.02)
    assert torch.count_nonzero(big.bias) == 0


def test_default_linear_is_pytorch_default_init_from_a_generator():
    layer = default_linear(100, 200, generator=torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(100)
    for p in (layer.weight, layer.bias):
        assert p.abs().max() <= bound and p.abs().max() > 0.95 * bound
        assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # uniform
    again = default_linear(100, 200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(layer.weight, again.weight) and torch.equal(layer.bias, again.bias)
    torch.manual_seed(1)
    plain = default_linear(3, 2)  # without a generator: exactly nn.Linear(3, 2)
    torch.manual_seed(1)
    assert torch.equal(plain.weight, nn.Linear(3, 2).weight)


def test_count_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    assert count_parameters(model) == 3 * 4 + 4 + 2 * 4
    model[0].weight.requires_grad_(False)
    assert count_parameters(model) == 4 + 2 * 4
    assert count_parameters(model, trainable_only=False) == 3 * 4 + 4 + 2 * 4
    with pytest.raises(TypeError, match="module must be an nn.Module"):
        count_parameters([nn.Linear(2, 2)])
