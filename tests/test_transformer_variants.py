"""The later designs in lessons_lib.transformer: Peri-LN, DeepNorm and ReZero blocks, the DyT
norm and QK-norm. Each against a hand-written formula, plus shapes, init and bad values."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib.transformer import (
    GPT,
    NORMS,
    PLACEMENTS,
    Block,
    DeepNormBlock,
    DynamicTanh,
    GPTConfig,
    PeriLNBlock,
    ReZeroBlock,
    SelfAttention,
)

SMALL = dict(vocab_size=11, block_size=12, n_layer=2, n_head=4, n_embd=32)
NEW_PLACEMENTS = ("peri", "deepnorm", "rezero")


def _config(**kwargs) -> GPTConfig:
    return GPTConfig(**{**SMALL, **kwargs})


def _randomize(module: nn.Module, seed: int) -> None:
    """Non-trivial gains, biases and DyT/ReZero scalars, so every parameter takes part."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("alpha"):
                p.copy_(0.4 + torch.rand((), generator=gen))
            elif "ln_" in name or "_norm" in name or "bias" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.3 * torch.randn(p.shape, generator=gen))


def _tokens(b: int, t: int, seed: int, vocab: int = SMALL["vocab_size"]) -> torch.Tensor:
    return torch.randint(0, vocab, (b, t), generator=torch.Generator().manual_seed(seed))


# --- the placements' formulas ---------------------------------------------------------------------


@pytest.mark.parametrize("norm", list(NORMS))
def test_peri_ln_normalizes_each_sublayer_output_before_the_add(norm):
    torch.manual_seed(0)
    block = Block(_config(placement="peri", norm=norm))
    _randomize(block, 1)
    x = torch.randn(2, 5, 32)
    h = x + block.ln_1_out(block.attn(block.ln_1(x)))
    expected = h + block.ln_2_out(block.mlp(block.ln_2(h)))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
    # the common mistake, the output norm after the add, is a different function
    wrong = block.ln_1_out(x + block.attn(block.ln_1(x)))
    wrong = block.ln_2_out(wrong + block.mlp(block.ln_2(wrong)))
    assert (block(x) - wrong).abs().max() > 0.1


def test_peri_ln_bounds_each_blocks_step_but_leaves_the_stream_unnormalized():
    """With gain-1 output norms each sublayer adds a vector of RMS 1 per token, however large its
    output: the block's step has RMS <= 2. Pre-LN's step grows with the weights."""
    torch.manual_seed(0)
    for placement in ("peri", "pre"):
        model = GPT(_config(placement=placement, n_layer=4, init="xavier"))
        with torch.no_grad():
            for block in model.h:
                for layer in (block.attn.c_proj, block.mlp.c_proj):
                    layer.weight.mul_(20.0)  # sublayers with huge outputs
        xs = model.stream(_tokens(4, 12, seed=2))
        steps = [(b - a).square().mean(-1).sqrt().max().item()  # per token, the worst one
                 for a, b in zip(xs[:-1], xs[1:], strict=True)]
        if placement == "peri":
            assert max(steps) <= 2.0 + 1e-4, steps
            # not normalized: the stream's size keeps growing from block to block
            rms = [x.square().mean().sqrt().item() for x in xs]
            assert rms[-1] > rms[1] * 1.5, rms
        else:
            assert min(steps) > 10, steps


def test_deepnorm_weights_the_shortcut_by_alpha_inside_the_norm():
    torch.manual_seed(0)
    block = Block(_config(placement="deepnorm", n_layer=6))
    _randomize(block, 2)
    alpha = 12 ** 0.25  # (2M)^(1/4), M = 6
    assert block.alpha == pytest.approx(alpha, rel=1e-12)
    x = torch.randn(2, 5, 32)
    h = block.ln_1(alpha * x + block.attn(x))
    expected = block.ln_2(alpha * h + block.mlp(h))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
    # alpha on the branch instead of the shortcut is a different function
    wrong = block.ln_1(x + alpha * block.attn(x))
    assert (block.ln_1(alpha * x + block.attn(x)) - wrong).abs().max() > 0.1


def test_rezero_scales_both_branches_by_one_scalar_and_has_no_norm():
    torch.manual_seed(0)
    block = Block(_config(placement="rezero"))
    assert isinstance(block.alpha, nn.Parameter) and block.alpha.shape == ()
    assert block.alpha.item() == 0.0
    assert isinstance(block.ln_1, nn.Identity) and isinstance(block.ln_2, nn.Identity)
    assert not any(isinstance(m, (nn.LayerNorm, nn.RMSNorm, DynamicTanh)) for m in block.modules())
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)  # the identity at initialization
    with torch.no_grad():
        block.alpha.fill_(0.7)
    h = x + 0.7 * block.attn(x)
    torch.testing.assert_close(block(x), h + 0.7 * block.mlp(h), rtol=0, atol=0)


def test_rezero_model_starts_as_the_identity_and_only_alpha_gets_a_gradient():
    torch.manual_seed(0)
    model = GPT(_config(placement="rezero", n_layer=3, init="xavier"))
    assert model.ln_f is None
    assert not [n for n, _ in model.named_parameters() if "ln_" in n], "ReZero has no norm"
    idx = _tokens(2, 6, 0)
    xs = model.stream(idx)
    for x in xs[1:]:
        torch.testing.assert_close(x, xs[0], rtol=0, atol=0)
    model(idx, _tokens(2, 6, 1))[1].backward()
    for block in model.h:
        assert block.alpha.grad is not None and block.alpha.grad.abs() > 0
        # with alpha = 0 the branches' weights do not reach the loss yet
        assert block.attn.c_attn.weight.grad.abs().max() == 0
        assert block.mlp.c_fc.weight.grad.abs().max() == 0


# --- DeepNorm's constants and init ----------------------------------------------------------------


@pytest.mark.parametrize(("n_layer", "alpha", "beta"), [
    (6, 1.8612, 0.3799),  # DeepNet's decoder-only row for M = 6, to 4 decimals
    (12, 2.2134, 0.3195),
    (1000, 6.6874, 0.1057),
])
def test_deepnorm_constants_are_the_papers_decoder_only_row(n_layer, alpha, beta):
    """α = (2M)^(1/4), β = (8M)^(-1/4): not the encoder-decoder decoder row, (3M)^(1/4) and
    (12M)^(-1/4), which would give 2.0598 and 0.3433 at M = 6."""
    block = Block(_config(placement="deepnorm", n_layer=n_layer))
    assert (round(block.alpha, 4), round(block.beta, 4)) == (alpha, beta), (block.alpha, block.beta)
    assert block.alpha * block.beta == pytest.approx(2**-0.5, rel=1e-12)  # α β = 1/√2 for every M


@pytest.mark.parametrize("init", ["gpt2", "xavier"])
def test_deepnorm_init_is_xavier_with_gain_beta_on_v_out_and_the_mlp(init):
    torch.manual_seed(0)
    c, hidden = 64, 256
    model = GPT(_config(placement="deepnorm", n_layer=6, n_embd=c, init=init))
    beta = 48 ** -0.25  # (8M)^(-1/4), M = 6
    xavier = math.sqrt(2 / (c + c))
    for block in model.h:
        assert block.beta == pytest.approx(beta, rel=1e-12)
        q, k, v = block.attn.c_attn.weight.split(c, dim=0)
        expected = {
            "q": (q, xavier), "k": (k, xavier), "v": (v, beta * xavier),
            "attn.c_proj": (block.attn.c_proj.weight, beta * xavier),
            "mlp.c_fc": (block.mlp.c_fc.weight, beta * math.sqrt(2 / (c + hidden))),
            "mlp.c_proj": (block.mlp.c_proj.weight, beta * math.sqrt(2 / (hidden + c))),
        }
        for name, (w, std) in expected.items():
            assert abs(w.std().item() / std - 1) < 0.06, (name, w.std().item(), std)
        assert block.attn.c_attn.bias.abs().max() == 0 and block.mlp.c_proj.bias.abs().max() == 0
    assert model.ln_f is None  # Post-LN: the last block's norm is the final norm


def test_reset_parameters_restores_each_placements_init():
    torch.manual_seed(0)
    for placement in NEW_PLACEMENTS:
        config = _config(placement=placement, n_layer=6, n_embd=64)
        block = Block(config)
        _randomize(block, 3)
        with torch.no_grad():
            for p in block.parameters():
                p.add_(1.0)
        block.reset_parameters(config)
        if placement == "peri":
            for norm in (block.ln_1, block.ln_2, block.ln_1_out, block.ln_2_out):
                assert torch.equal(norm.weight, torch.ones(64)), placement
        elif placement == "rezero":
            assert block.alpha.item() == 0.0
        else:
            v = block.attn.c_attn.weight[128:]
            assert abs(v.std().item() / (block.beta * math.sqrt(2 / 128)) - 1) < 0.1


# --- DyT ------------------------------------------------------------------------------------------


def test_dyt_is_gamma_tanh_alpha_x_plus_beta():
    torch.manual_seed(0)
    dyt = DynamicTanh(8)
    assert dyt.alpha.shape == () and dyt.alpha.item() == 0.5  # one scalar, the paper's α0
    assert torch.equal(dyt.weight, torch.ones(8)) and torch.equal(dyt.bias, torch.zeros(8))
    _randomize(dyt, 4)
    x = torch.randn(3, 5, 8)
    expected = dyt.weight * torch.tanh(dyt.alpha * x) + dyt.bias
    torch.testing.assert_close(dyt(x), expected, rtol=0, atol=0)
    # elementwise: no statistics, so a token's other features do not change its output
    y = x.clone()
    y[..., 1:] *= 100.0
    torch.testing.assert_close(dyt(y)[..., 0], dyt(x)[..., 0], rtol=0, atol=0)
    assert DynamicTanh(8, bias=False).bias is None


def test_dyt_limits_linear_for_small_alpha_sign_for_large_alpha():
    torch.manual_seed(0)
    x = torch.randn(4, 16, dtype=torch.float64)
    gamma, beta = 1 + torch.rand(16, dtype=torch.float64), torch.randn(16, dtype=torch.float64)
    for alpha, limit, tol in ((1e-5, None, 1e-8), (1e5, gamma * torch.sign(x) + beta, 1e-6)):
        dyt = DynamicTanh(16, alpha0=alpha).double()
        with torch.no_grad():
            dyt.weight.copy_(gamma)
            dyt.bias.copy_(beta)
        y = dyt(x)
        if limit is None:  # (y - β) / α -> γ x: a linear map
            torch.testing.assert_close((y - beta) / dyt.alpha, gamma * x, rtol=0, atol=tol)
        else:
            keep = x.abs() > 1e-3  # tanh(1e5 · 1e-3) = 1 - 1e-86
            torch.testing.assert_close(y[keep], limit[keep], rtol=0, atol=tol)


def test_dyt_alpha_is_learned():
    dyt = DynamicTanh(8)
    (dyt(torch.randn(4, 8)) ** 2).sum().backward()
    assert dyt.alpha.grad is not None and dyt.alpha.grad.shape == () and dyt.alpha.grad != 0


def test_dyt_refuses_bad_arguments():
    with pytest.raises(ValueError, match="alpha0 must be > 0"):
        DynamicTanh(8, alpha0=0.0)
    with pytest.raises(TypeError, match="alpha0 must be a number"):
        DynamicTanh(8, alpha0="0.5")
    with pytest.raises(ValueError, match="normalized_shape must be >= 1"):
        DynamicTanh(0)
    with pytest.raises(TypeError, match="bias must be True or False"):
        DynamicTanh(8, bias=1)


@pytest.mark.parametrize("placement", ["pre", "post", "peri", "deepnorm"])
def test_norm_dyt_puts_dyt_in_every_norm_of_the_model(placement):
    model = GPT(_config(norm="dyt", placement=placement))
    norms = [m for m in model.modules() if isinstance(m, (nn.LayerNorm, nn.RMSNorm, DynamicTanh))]
    assert norms and all(isinstance(m, DynamicTanh) for m in norms)
    assert (model.ln_f is not None) == (placement in ("pre", "peri"))
    assert not any(isinstance(m, DynamicTanh) and m.bias is not None
                   for m in GPT(_config(norm="dyt", bias=False)).modules())


# --- QK-norm --------------------------------------------------------------------------------------


def _qk_norm_attention_by_hand(attn: SelfAttention, x: torch.Tensor, n_head: int, *,
                               per_head: bool = True):
    """softmax(rms(q) rms(k)ᵀ / sqrt(hs) + causal mask) v per head; rms over each head's hs
    features (or, per_head=False, over all C features of q and of k, as OLMo 2 does)."""
    b, t, c = x.shape
    hs = c // n_head
    q, k, v = (x @ attn.c_attn.weight.T + attn.c_attn.bias).split(c, dim=-1)  # (B, T, C) each
    if not per_head:
        q, k = (z / z.square().mean(-1, keepdim=True).add(attn.q_norm.eps).sqrt() for z in (q, k))
    gq, gk, eps = attn.q_norm.weight, attn.k_norm.weight, attn.q_norm.eps
    heads = []
    for h in range(n_head):
        cols = slice(h * hs, (h + 1) * hs)
        qh, kh, vh = q[..., cols], k[..., cols], v[..., cols]
        if per_head:
            qh = qh / torch.sqrt(qh.square().mean(-1, keepdim=True) + eps) * gq
            kh = kh / torch.sqrt(kh.square().mean(-1, keepdim=True) + eps) * gk
        scores = qh @ kh.transpose(1, 2) / math.sqrt(hs)  # (B, T, T)
        later = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        heads.append(torch.softmax(scores.masked_fill(later, float("-inf")), dim=-1) @ vh)
    return torch.cat(heads, dim=-1) @ attn.c_proj.weight.T + attn.c_proj.bias


def test_qk_norm_is_rmsnorm_per_head_before_the_dot_product():
    torch.manual_seed(0)
    attn = SelfAttention(_config(qk_norm=True))
    assert attn.q_norm.weight.shape == (8,) and attn.k_norm.weight.shape == (8,)  # hs = 32 / 4
    _randomize(attn, 5)
    x = torch.randn(3, 7, 32)
    torch.testing.assert_close(attn(x), _qk_norm_attention_by_hand(attn, x, 4),
                               rtol=1e-5, atol=1e-5)
    # normalizing over the full width instead is a different function (the test can fail)
    full = _qk_norm_attention_by_hand(attn, x, 4, per_head=False)
    assert (attn(x) - full).abs().max() > 1e-3
    # and so is no QK-norm at all
    plain = SelfAttention(_config())
    plain.load_state_dict({k: v for k, v in attn.state_dict().items() if "_norm" not in k})
    assert (attn(x) - plain(x)).abs().max() > 1e-3


def test_qk_norm_bounds_the_attention_logits_however_large_the_weights():
    """|q̂·k̂| / sqrt(hs) <= sqrt(hs) when both have RMS 1 (gains 1): with weights x100 the
    logits stay bounded with QK-norm and are huge without it."""
    torch.manual_seed(0)
    x = torch.randn(2, 9, 32)
    for qk_norm in (True, False):
        attn = SelfAttention(_config(qk_norm=qk_norm))
        with torch.no_grad():
            attn.c_attn.weight.mul_(100.0)
        q, k, _ = attn.c_attn(x).split(32, dim=2)
        q, k = (z.view(2, 9, 4, 8).transpose(1, 2) for z in (q, k))
        if qk_norm:
            q, k = attn.q_norm(q), attn.k_norm(k)
        logits = (q @ k.transpose(-2, -1) / math.sqrt(8)).abs().max().item()
        if qk_norm:
            assert logits <= math.sqrt(8) + 1e-4, logits
        else:
            assert logits > 100, logits


def test_qk_norm_off_keeps_the_state_dict_and_on_adds_two_gains_per_block():
    off, on = GPT(_config()), GPT(_config(qk_norm=True))
    extra = set(on.state_dict()) - set(off.state_dict())
    assert extra == {f"h.{i}.attn.{n}_norm.weight" for i in range(2) for n in "qk"}
    assert on.num_params() - off.num_params() == 2 * 2 * 8
    assert all(b.attn.q_norm is None for b in off.h)


def test_qk_norm_works_in_the_fused_model_too():
    torch.manual_seed(0)
    plain = GPT(_config(qk_norm=True))
    _randomize(plain, 6)
    fused = GPT(_config(qk_norm=True), fused_backend="reference")
    fused.load_state_dict(plain.state_dict())
    idx = _tokens(2, 7, 1)
    torch.testing.assert_close(fused(idx)[0], plain(idx)[0], rtol=1e-5, atol=1e-5)


# --- every combination: shapes, causality, registry, errors ---------------------------------------


@pytest.mark.parametrize("qk_norm", [False, True])
@pytest.mark.parametrize("norm", list(NORMS))
@pytest.mark.parametrize("placement", NEW_PLACEMENTS)
def test_every_new_combination_runs_and_stays_causal(placement, norm, qk_norm):
    torch.manual_seed(0)
    model = GPT(_config(placement=placement, norm=norm, qk_norm=qk_norm, n_layer=3))
    _randomize(model, 7)
    model.eval()
    idx, targets = _tokens(2, 10, 1), _tokens(2, 10, 2)
    logits, loss = model(idx, targets)
    assert logits.shape == (2, 10, 11) and loss.isfinite()
    xs = model.stream(idx)
    assert len(xs) == 4 and all(x.shape == (2, 10, 32) for x in xs)
    changed = idx.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 11
    other = model(changed)[0]
    torch.testing.assert_close(logits[:, :6], other[:, :6], rtol=0, atol=1e-6)
    assert (logits[:, 6:] - other[:, 6:]).abs().max() > 1e-5
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_new_placements_are_registered_and_dispatch():
    expected = {"peri": PeriLNBlock, "deepnorm": DeepNormBlock, "rezero": ReZeroBlock}
    for name, cls in expected.items():
        assert PLACEMENTS[name] is cls
        block = Block(_config(placement=name))
        assert type(block) is cls and type(copy.deepcopy(block)) is cls
    assert _config(placement="peri").final_norm is True  # Gemma 2/3 keep a final norm
    assert _config(placement="deepnorm").final_norm is False
    assert _config(placement="rezero").final_norm is False
    assert sorted(n for n, _ in Block(_config(placement="peri")).named_children()) == [
        "attn", "ln_1", "ln_1_out", "ln_2", "ln_2_out", "mlp"]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(placement="peri-ln"), ValueError, "'peri', 'deepnorm', 'rezero'; got 'peri-ln'"),
    (dict(norm="tanh"), ValueError, "norm must be one of 'layernorm', 'rmsnorm', 'dyt'"),
    (dict(qk_norm=1), TypeError, "qk_norm must be True or False"),
    (dict(qk_norm="per-head"), TypeError, "qk_norm must be True or False"),
])
def test_bad_values_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        _config(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(placement="peri"), dict(placement="deepnorm"),
                                    dict(placement="rezero"), dict(norm="dyt")])
def test_the_fused_kernel_refuses_what_it_does_not_compute(kwargs):
    with pytest.raises(ValueError, match="placement=|norm \\(for the fused kernel\\)"):
        GPT(_config(**kwargs), fused_backend="reference")


def test_one_training_step_moves_every_design():
    """A smoke test with teeth: a few Adam steps on one batch lower the loss for each design."""
    for kwargs in (dict(placement="peri"), dict(placement="deepnorm"), dict(placement="rezero"),
                   dict(norm="dyt"), dict(qk_norm=True)):
        torch.manual_seed(0)
        model = GPT(_config(init="xavier", **kwargs))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        idx, targets = _tokens(4, 8, 3), _tokens(4, 8, 4)
        losses = []
        for _ in range(8):
            loss = F.cross_entropy(model(idx)[0].reshape(-1, 11), targets.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0] - 0.2, (kwargs, losses)
