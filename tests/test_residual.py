"""Plain and residual blocks, shortcuts, placements and nets (lessons_lib.residual)."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib.models import count_parameters
from lessons_lib.normalization import NORMS
from lessons_lib.residual import (
    BLOCKS,
    PLACEMENTS,
    Block,
    BlockNet,
    BNAfterAddBlock,
    OriginalBlock,
    PreActivationBlock,
    Projection,
    ReLUBeforeAddBlock,
    depth_to_blocks,
    make_net,
    plain_block,
    residual_block,
)

EPS = 1e-5  # nn.BatchNorm1d's default


def _randomize_norms(module: nn.Module, gen: torch.Generator) -> None:
    """Give every norm random gains and shifts, and every BN random running statistics (so
    neither eval mode nor a zero-initialized branch is trivially right)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm, nn.RMSNorm)):
                n = m.weight.shape[0]
                m.weight.copy_(1 + 0.3 * torch.randn(n, generator=gen))
                if getattr(m, "bias", None) is not None:
                    m.bias.copy_(0.3 * torch.randn(n, generator=gen))
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(0.5 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))


def _bn_eval(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """BatchNorm in eval mode written out: (x - running_mean) / sqrt(running_var + eps) * g + b."""
    return (x - bn.running_mean) / torch.sqrt(bn.running_var + EPS) * bn.weight + bn.bias


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("widths", [(16, 16), (16, 24), (24, 8)])
def test_block_output_shapes(placement, norm, widths):
    fin, fout = widths
    x = torch.randn(5, fin)
    for block in (residual_block(fin, fout, placement=placement, norm=norm),
                  plain_block(fin, fout, placement=placement, norm=norm)):
        assert block(x).shape == (5, fout)
    assert residual_block(fin, fout, placement=placement).shortcut.__class__ is (
        nn.Identity if fin == fout else Projection)


@pytest.mark.parametrize("kind", ["plain", "residual"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_net_shapes_and_block_count(kind, placement):
    net = make_net(kind, 10, 12, 64, 10, placement=placement)
    assert isinstance(net, BlockNet) and len(net.blocks) == 4  # (10 - 2) / 2
    assert net(torch.randn(7, 64)).shape == (7, 10)
    assert net.features(torch.randn(7, 64)).shape == (7, 12)


def test_depth_to_blocks_counts_weight_layers():
    # stem + 2 per block + head, so depth 6 has 2 blocks and depth 42 has 20 (He et al.)
    assert [depth_to_blocks(d) for d in (2, 4, 6, 42)] == [0, 1, 2, 20]


# --- what each placement computes, written out by hand -------------------------------------------


def _manual_forward(block: Block, x: torch.Tensor, with_shortcut: bool) -> torch.Tensor:
    """The formulas of He et al. (2016b), Fig. 4, from the block's weights (eval mode)."""
    b = block.branch
    s = x if with_shortcut else torch.zeros(())
    if block.placement == "preact":
        h = b[2].weight @ torch.relu(_bn_eval(b[0], x)).T
        f = (b[5].weight @ torch.relu(_bn_eval(b[3], h.T)).T).T
        return s + f
    h = torch.relu(_bn_eval(b[1], x @ b[0].weight.T))
    f = h @ b[3].weight.T
    if block.placement == "bn_after_add":
        return torch.relu(_bn_eval(block.post_norm, s + f))
    f = _bn_eval(b[4], f)
    if block.placement == "relu_before_add":
        return s + torch.relu(f)
    return torch.relu(s + f)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_placements_compute_the_formulas(placement):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 8, generator=gen, dtype=torch.float64)
    for cls, with_shortcut in ((residual_block, True), (plain_block, False)):
        torch.manual_seed(2)
        block = cls(8, 8, placement=placement).double()
        _randomize_norms(block, gen)
        block.eval()
        expected = _manual_forward(block, x, with_shortcut)
        assert torch.allclose(block(x), expected, atol=1e-12, rtol=0), (cls.__name__, placement)


def test_branch_layers_have_no_bias_and_he_init():
    block = residual_block(512, 512, placement="original")
    linears = [m for m in block.branch if isinstance(m, nn.Linear)]
    assert len(linears) == 2 and all(m.bias is None for m in linears)
    for m in linears:  # He-normal: std sqrt(2 / fan_in), within sampling error (512^2 draws)
        assert abs(m.weight.std().item() / math.sqrt(2 / 512) - 1) < 0.02


def test_plain_and_residual_share_weights_and_differ_by_the_shortcut():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(6, 10, generator=gen)
    plain = plain_block(10, placement="preact", norm="none")
    res = residual_block(10, placement="preact", norm="none")
    res.load_state_dict(plain.state_dict())  # same keys: the identity shortcut has no parameters
    assert torch.allclose(res(x) - x, plain(x), atol=1e-6)


# --- zero-initialized branch ----------------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_zero_branch_gives_exact_identity_or_relu(norm, mode):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(32, 16, generator=gen)  # signed entries, so ReLU(x) != x
    expected = {"preact": x, "relu_before_add": x, "original": torch.relu(x)}
    for placement, want in expected.items():
        block = residual_block(16, placement=placement, norm=norm)
        _randomize_norms(block, gen)  # a zero gain with a nonzero shift would leave F = shift
        block.zero_init_branch_()
        block.train(mode == "train")
        with torch.no_grad():
            assert torch.equal(block.branch(x), torch.zeros_like(x)), placement
            assert torch.equal(block(x), want), (placement, norm, mode)


def test_zero_branch_with_bn_after_add_is_relu_of_bn_not_identity():
    x = torch.randn(32, 16, generator=torch.Generator().manual_seed(5))
    block = residual_block(16, placement="bn_after_add").zero_init_branch_().train()
    out = block(x)
    assert torch.allclose(out, torch.relu(F.batch_norm(x, None, None, training=True)), atol=1e-6)
    assert not torch.allclose(out, x, atol=0.1)


def test_zero_branch_with_projection_gives_the_projection():
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(6))
    block = residual_block(6, 10, placement="preact").zero_init_branch_()
    assert torch.equal(block(x), block.shortcut(x))


def test_zero_init_net_starts_as_identity_or_constant():
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(7))
    res = make_net("residual", 20, 32, 64, 10, placement="preact", zero_init_residual=True)
    plain = make_net("plain", 20, 32, 64, 10, placement="preact", zero_init_residual=True)
    assert torch.equal(res.features(x), res.stem(x))  # every block is the identity
    assert torch.equal(plain.features(x), torch.zeros(16, 32))  # zero weights: the zero map


# --- parameter counts, computed by hand -----------------------------------------------------------


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_parameter_counts_by_hand(placement):
    d = 64
    # two d x d weight matrices, no biases, and two norms of 2d (gain, shift) each
    assert count_parameters(plain_block(d, placement=placement)) == 2 * d * d + 4 * d
    # an identity shortcut adds nothing
    assert count_parameters(residual_block(d, placement=placement)) == 2 * d * d + 4 * d
    fin, fout = 64, 128
    branch = fin * fout + fout * fout + (2 * fin + 2 * fout if placement == "preact" else 4 * fout)
    assert count_parameters(plain_block(fin, fout, placement=placement)) == branch
    # a projection adds fin * fout, plus a BN (2 * fout) except in the pre-activation placement
    proj = fin * fout + (0 if placement == "preact" else 2 * fout)
    assert count_parameters(residual_block(fin, fout, placement=placement)) == branch + proj


def test_projection_counts():
    assert count_parameters(Projection(64, 128)) == 64 * 128 + 2 * 128  # 8448: W_s and BN
    assert count_parameters(Projection(64, 128, bias=True)) == 64 * 128 + 128 + 2 * 128
    assert count_parameters(Projection(64, 128, norm="none")) == 64 * 128
    forced = residual_block(32, 32, shortcut="projection")
    assert isinstance(forced.shortcut, Projection)
    assert count_parameters(forced) - count_parameters(plain_block(32)) == 32 * 32 + 2 * 32


def test_net_parameter_count_by_hand_and_plain_equals_residual():
    depth, w, fin, classes = 12, 32, 64, 10
    n = (depth - 2) // 2
    expected = (fin * w + 2 * w) + n * (2 * w * w + 4 * w) + (w * classes + classes)
    for kind in ("plain", "residual"):
        assert count_parameters(make_net(kind, depth, w, fin, classes)) == expected
    frozen = make_net("plain", depth, w, fin, classes)
    frozen.head.weight.requires_grad_(False)
    assert count_parameters(frozen) == expected - w * classes
    assert count_parameters(frozen, trainable_only=False) == expected


# --- deleting blocks (lesion) --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "residual"])
def test_drop_deletes_blocks(kind):
    torch.manual_seed(8)
    net = make_net(kind, 10, 16, 20, 5).eval()
    x = torch.randn(9, 20)
    with torch.no_grad():
        h = net.stem(x)
        for i, block in enumerate(net.blocks):
            if i not in (1, 3):
                h = block(h)
        assert torch.equal(net(x, drop=[1, 3]), net.head(h))
        assert torch.equal(net(x, drop=range(4)), net.head(net.stem(x)))
        assert torch.equal(net(x, drop=2), net(x, drop=[2]))
        assert torch.equal(net(x, drop=()), net(x))


def test_drop_errors():
    net = make_net("residual", 10, 16, 20, 5)
    x = torch.randn(3, 20)
    with pytest.raises(ValueError, match="drop index must be < 4"):
        net(x, drop=[4])
    with pytest.raises(ValueError, match="drop index must be >= 0"):
        net(x, drop=[-1])
    with pytest.raises(TypeError, match="drop index must be an int"):
        net(x, drop=[1.0])
    widening = BlockNet(nn.Linear(20, 16), [residual_block(16, 24)], nn.Linear(24, 5))
    with pytest.raises(ValueError, match="changes the width"):
        widening(x, drop=[0])


# --- bad arguments --------------------------------------------------------------------------------


def test_block_argument_errors():
    with pytest.raises(ValueError, match="in_features must be >= 1"):
        residual_block(0)
    with pytest.raises(TypeError, match="out_features must be an int"):
        residual_block(8, 8.0)
    with pytest.raises(ValueError, match="placement must be one of"):
        residual_block(8, placement="post")
    with pytest.raises(ValueError, match="norm must be one of"):
        plain_block(8, norm="group")
    with pytest.raises(ValueError, match="shortcut must be one of"):
        residual_block(8, shortcut="zero-pad")
    with pytest.raises(ValueError, match="shortcut='identity' needs in_features == out_features"):
        residual_block(8, 16, shortcut="identity")
    with pytest.raises(ValueError, match="norm must be one of"):
        Projection(8, 16, norm="batch")
    with pytest.raises(ValueError, match="norm must be one of"):
        residual_block(8, norm="layer")
    block = residual_block(8)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 8\)"):
        block(torch.randn(4, 9))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 8\)"):
        block(torch.randn(2, 4, 8))


def test_net_argument_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        make_net("dense", 6, 8, 4, 3)
    with pytest.raises(ValueError, match="depth must be even"):
        make_net("plain", 7, 8, 4, 3)
    with pytest.raises(ValueError, match="depth must be >= 2"):
        make_net("plain", 0, 8, 4, 3)
    with pytest.raises(ValueError, match="width must be >= 1"):
        make_net("plain", 6, 0, 4, 3)
    with pytest.raises(ValueError, match="classes must be >= 2"):
        make_net("plain", 6, 8, 4, 1)
    with pytest.raises(ValueError, match="placement must be one of"):
        make_net("residual", 6, 8, 4, 3, placement="pre-ln")
    with pytest.raises(TypeError, match="zero_init_residual must be a bool"):
        make_net("residual", 6, 8, 4, 3, zero_init_residual=1)
    with pytest.raises(ValueError, match="norm must be one of"):
        make_net("residual", 6, 8, 4, 3, norm="batch")
    with pytest.raises(TypeError, match="generator must be a torch.Generator or None"):
        make_net("residual", 6, 8, 4, 3, generator=1)


# --- one class per placement, the norm vocabulary, generators -----------------------------------


def test_each_placement_has_its_class():
    expected = {"original": OriginalBlock, "bn_after_add": BNAfterAddBlock,
                "relu_before_add": ReLUBeforeAddBlock, "preact": PreActivationBlock}
    assert expected == BLOCKS
    for placement, cls in BLOCKS.items():
        block = residual_block(8, placement=placement)
        assert type(block) is cls and block.placement == placement
        assert type(plain_block(8, placement=placement)) is cls
        assert plain_block(8, placement=placement).shortcut is None
    assert "plain" in repr(plain_block(8)) and "residual" in repr(residual_block(8))


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_nets_take_every_norm_of_the_vocabulary(norm, placement):
    net = make_net("residual", 6, 8, 4, 3, placement=placement, norm=norm)
    assert net(torch.randn(5, 4)).shape == (5, 3)
    if norm == "layernorm":
        assert any(isinstance(m, nn.LayerNorm) for m in net.modules())


def test_generator_makes_nets_reproducible_and_leaves_the_global_generator_alone():
    torch.manual_seed(0)
    a = make_net("residual", 8, 16, 4, 3, placement="preact", generator=torch.Generator()
                 .manual_seed(1))
    after = torch.randn(2)
    torch.manual_seed(0)
    b = make_net("residual", 8, 16, 4, 3, placement="preact", generator=torch.Generator()
                 .manual_seed(1))
    assert torch.equal(torch.randn(2), after)  # nothing was drawn from the global generator
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
    c = make_net("residual", 8, 16, 4, 3, placement="preact",
                 generator=torch.Generator().manual_seed(2))
    assert not torch.equal(a.stem.weight, c.stem.weight)
    assert not torch.equal(a.head[-1].weight, c.head[-1].weight)  # the head too


def test_blocks_without_a_generator_draw_like_before():
    # the global generator draws the same weights as nn.Linear + kaiming_normal_, in order
    torch.manual_seed(5)
    block = residual_block(8, placement="original")
    torch.manual_seed(5)
    first = nn.Linear(8, 8, bias=False)
    nn.init.kaiming_normal_(first.weight, nonlinearity="relu")
    assert torch.equal(block.branch[0].weight, first.weight)
