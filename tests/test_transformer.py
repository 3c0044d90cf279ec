"""The configurable GPT (lessons_lib.transformer): attention, placements, stream, init, config
checks, and the fused add + norm as a drop-in (the Triton kernel through its interpreter)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib.kernels import triton_available, use_interpreter
from lessons_lib.transformer import (
    GPT,
    NORMS,
    PLACEMENTS,
    Block,
    FusedPreLNBlock,
    GPTConfig,
    PostLNBlock,
    PreLNBlock,
    SelfAttention,
)

use_interpreter()  # before Triton is imported: CPU tensors run in the interpreter
needs_triton = pytest.mark.skipif(not triton_available(), reason="Triton is not installed")

SMALL = dict(vocab_size=11, block_size=12, n_layer=2, n_head=4, n_embd=32)
NORMALIZING = ("layernorm", "rmsnorm")  # the norms that normalize, and that the kernel fuses


def _config(**kwargs) -> GPTConfig:
    return GPTConfig(**{**SMALL, **kwargs})


def _randomize(module: nn.Module, seed: int) -> None:
    """Non-trivial norm gains and biases and non-zero Linear biases, so every parameter matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if ".ln_" in name or name.startswith("ln_") or "bias" in name:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.3 * torch.randn(p.shape, generator=gen))


def _tokens(b: int, t: int, seed: int, vocab: int = SMALL["vocab_size"]) -> torch.Tensor:
    return torch.randint(0, vocab, (b, t), generator=torch.Generator().manual_seed(seed))


# --- attention ------------------------------------------------------------------------------------


def _attention_by_hand(attn: SelfAttention, x: torch.Tensor, n_head: int, causal: bool):
    """softmax(q kᵀ / sqrt(hs) + mask) v for each head separately, then the output projection."""
    b, t, c = x.shape
    hs = c // n_head
    w, bias = attn.c_attn.weight, attn.c_attn.bias
    heads = []
    for h in range(n_head):
        rows = [slice(part * c + h * hs, part * c + (h + 1) * hs) for part in range(3)]
        q, k, v = (x @ w[r].T + bias[r] for r in rows)  # (B, T, hs) each
        scores = q @ k.transpose(1, 2) / math.sqrt(hs)  # (B, T, T)
        if causal:
            later = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
            scores = scores.masked_fill(later, float("-inf"))
        heads.append(torch.softmax(scores, dim=-1) @ v)
    return torch.cat(heads, dim=-1) @ attn.c_proj.weight.T + attn.c_proj.bias


@pytest.mark.parametrize("causal", [True, False])
def test_attention_matches_the_formula_per_head(causal):
    torch.manual_seed(0)
    config = _config(causal=causal)
    attn = SelfAttention(config)
    _randomize(attn, 1)
    x = torch.randn(3, 7, 32)
    torch.testing.assert_close(attn(x), _attention_by_hand(attn, x, 4, causal),
                               rtol=1e-5, atol=1e-5)


def test_the_heads_are_not_one_big_head():
    """A single-head formula on the same weights gives a different answer (the test can fail)."""
    torch.manual_seed(0)
    attn = SelfAttention(_config())
    x = torch.randn(2, 6, 32)
    assert (attn(x) - _attention_by_hand(attn, x, 1, True)).abs().max() > 1e-3


@pytest.mark.parametrize("placement", ["post", "pre"])
def test_changing_token_t_leaves_earlier_outputs_unchanged(placement):
    torch.manual_seed(0)
    model = GPT(_config(placement=placement, n_layer=3)).eval()
    idx = _tokens(2, 10, seed=1)
    changed = idx.clone()
    changed[:, 6] = (changed[:, 6] + 1) % SMALL["vocab_size"]
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :6], b[:, :6], rtol=0, atol=1e-6)
    assert (a[:, 6:] - b[:, 6:]).abs().max() > 1e-4  # the change reaches t and later tokens


def test_an_encoder_block_sees_the_whole_sequence():
    torch.manual_seed(0)
    model = GPT(_config(causal=False)).eval()
    idx = _tokens(2, 10, seed=1)
    changed = idx.clone()
    changed[:, 6] = (changed[:, 6] + 1) % SMALL["vocab_size"]
    assert (model(idx)[0][:, :6] - model(changed)[0][:, :6]).abs().max() > 1e-4


# --- placements -----------------------------------------------------------------------------------


@pytest.mark.parametrize("norm", list(NORMS))
@pytest.mark.parametrize("placement", ["post", "pre"])
def test_each_placement_computes_its_formula(placement, norm):
    torch.manual_seed(0)
    block = Block(_config(placement=placement, norm=norm))
    _randomize(block, 2)
    x = torch.randn(2, 5, 32)
    ln_1, attn, ln_2, mlp = block.ln_1, block.attn, block.ln_2, block.mlp
    if placement == "post":  # x = norm(x + F(x))
        h = ln_1(x + attn(x))
        expected = ln_2(h + mlp(h))
    else:  # x = x + F(norm(x))
        h = x + attn(ln_1(x))
        expected = h + mlp(ln_2(h))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_blocks_match_pytorchs_encoder_layer(norm_first, activation):
    """PyTorch's own nn.TransformerEncoderLayer, norm_first=False (Post-LN) or True (Pre-LN),
    with the same weights, computes the same non-causal block."""
    torch.manual_seed(0)
    config = _config(placement="pre" if norm_first else "post", causal=False,
                     activation=activation)
    block = Block(config)
    _randomize(block, 3)
    ref = nn.TransformerEncoderLayer(32, 4, dim_feedforward=128, dropout=0.0,
                                     activation=activation, batch_first=True,
                                     norm_first=norm_first)
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(block.attn.c_attn.weight)
        ref.self_attn.in_proj_bias.copy_(block.attn.c_attn.bias)
        ref.self_attn.out_proj.weight.copy_(block.attn.c_proj.weight)
        ref.self_attn.out_proj.bias.copy_(block.attn.c_proj.bias)
        for ours, theirs in ((block.mlp.c_fc, ref.linear1), (block.mlp.c_proj, ref.linear2),
                             (block.ln_1, ref.norm1), (block.ln_2, ref.norm2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    x = torch.randn(3, 6, 32)
    torch.testing.assert_close(block.eval()(x), ref.eval()(x), rtol=1e-5, atol=1e-5)


def test_block_dispatches_on_the_placement_and_copies():
    pre, post = Block(_config(placement="pre")), Block(_config(placement="post"))
    assert type(pre) is PreLNBlock and type(post) is PostLNBlock
    assert isinstance(pre, Block) and isinstance(post, Block)
    assert type(copy.deepcopy(post)) is PostLNBlock  # deepcopy (and pickling) rebuild the subclass
    assert sorted(n for n, _ in pre.named_children()) == ["attn", "ln_1", "ln_2", "mlp"]
    with pytest.raises(TypeError, match="GPTConfig"):
        Block({"placement": "pre"})


def test_a_new_placement_is_one_class_and_one_registry_entry(monkeypatch):
    class NoNormBlock(Block):  # x = x + F(x), the norms unused
        final_norm = False

        def forward(self, x):
            x = x + self.attn(x)
            return x + self.mlp(x)

    monkeypatch.setitem(PLACEMENTS, "none", NoNormBlock)
    config = _config(placement="none")
    assert config.final_norm is False
    model = GPT(config)
    assert all(type(b) is NoNormBlock for b in model.h)
    assert model.ln_f is None
    logits, loss = model(_tokens(2, 5, 0), _tokens(2, 5, 1))
    assert logits.shape == (2, 5, 11) and loss.isfinite()


def test_final_norm_defaults_follow_the_placement():
    assert _config(placement="pre").final_norm is True
    assert _config(placement="post").final_norm is False
    assert GPT(_config(placement="pre")).ln_f is not None
    assert GPT(_config(placement="post")).ln_f is None
    assert GPT(_config(placement="post", final_norm=True)).ln_f is not None
    assert GPT(_config(placement="pre", final_norm=False)).ln_f is None


# --- the residual stream --------------------------------------------------------------------------


@pytest.mark.parametrize("norm", NORMALIZING)
def test_post_ln_stream_is_normalized_after_every_block(norm):
    torch.manual_seed(0)
    model = GPT(_config(placement="post", norm=norm, n_layer=4, init="xavier"))
    xs = model.stream(_tokens(4, 12, seed=2))
    assert len(xs) == 5
    for x in xs[1:]:
        ms = x.square().mean(-1)  # per token: mean square 1 (mean 0, variance 1 for LayerNorm)
        torch.testing.assert_close(ms, torch.ones_like(ms), rtol=0, atol=1e-3)
        if norm == "layernorm":
            assert x.mean(-1).abs().max() < 1e-5
    assert (xs[0].square().mean(-1) - 1).abs().max() > 0.1  # the embeddings are not normalized


def test_pre_ln_stream_grows_and_ends_in_the_logits():
    torch.manual_seed(0)
    model = GPT(_config(placement="pre", n_layer=6, init="xavier"))
    idx = _tokens(8, 12, seed=3)
    xs = model.stream(idx)
    ms = [x.square().mean().item() for x in xs]
    assert all(b > a for a, b in zip(ms[:-1], ms[1:], strict=True)), ms
    logits = model.lm_head(model.ln_f(xs[-1]))
    torch.testing.assert_close(logits, model(idx)[0], rtol=0, atol=0)


def test_stream_tensors_carry_gradients():
    torch.manual_seed(0)
    model = GPT(_config(n_layer=3))
    xs = model.stream(_tokens(2, 6, 0))
    for x in xs:
        x.retain_grad()
    model.lm_head(model.ln_f(xs[-1])).square().sum().backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in xs)


# --- the model ------------------------------------------------------------------------------------


def test_forward_returns_logits_and_the_masked_cross_entropy():
    torch.manual_seed(0)
    model = GPT(_config())
    idx, targets = _tokens(3, 8, 0), _tokens(3, 8, 1)
    logits, none = model(idx)
    assert logits.shape == (3, 8, 11) and none is None
    targets[:, :3] = -100  # ignored positions, as in lessons_lib.data.copy_task
    logits, loss = model(idx, targets)
    keep = targets != -100
    expected = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(loss, expected)


def test_tied_weights_share_one_tensor():
    tied, untied = GPT(_config(tie_weights=True)), GPT(_config())
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.num_params() - tied.num_params() == 11 * 32


def test_dropout_is_wired_and_off_in_eval_mode():
    torch.manual_seed(0)
    model = GPT(_config(dropout=0.2))
    idx = _tokens(2, 8, 0)
    model.train()
    assert (model(idx)[0] - model(idx)[0]).abs().max() > 1e-4
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0], rtol=0, atol=0)


def test_bad_inputs_raise_clear_errors():
    model = GPT(_config())
    with pytest.raises(TypeError, match="idx must be an int64"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"shape \(B, T\)"):
        model(torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="block_size=12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 11\)"):
        model(torch.full((1, 3), 11))
    with pytest.raises(ValueError, match="targets must have idx's shape"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="config must be a GPTConfig"):
        GPT(SMALL)


# --- initialization -------------------------------------------------------------------------------


def test_gpt2_init_scales_the_output_projections():
    torch.manual_seed(0)
    config = _config(n_layer=8, n_embd=64, vocab_size=64, init="gpt2")
    model = GPT(config)
    small = 0.02 / math.sqrt(2 * 8)
    for block in model.h:
        assert abs(block.attn.c_attn.weight.std().item() - 0.02) < 0.002
        assert abs(block.mlp.c_fc.weight.std().item() - 0.02) < 0.002
        for proj in (block.attn.c_proj, block.mlp.c_proj):
            assert abs(proj.weight.std().item() / small - 1) < 0.15
            assert proj.bias.abs().max() == 0
        assert torch.equal(block.ln_1.weight, torch.ones(64))
    for w in (model.wte.weight, model.wpe.weight, model.lm_head.weight):
        assert abs(w.std().item() - 0.02) < 0.003


def test_xavier_init_is_xiong_et_als_setting():
    torch.manual_seed(0)
    model = GPT(_config(n_layer=2, n_embd=64, vocab_size=64, block_size=64, init="xavier"))
    for block in model.h:
        for w in block.attn.c_attn.weight.split(64):  # q, k, v: each Xavier for 64 x 64
            assert abs(w.std().item() * math.sqrt(64) - 1) < 0.06
        assert abs(block.mlp.c_fc.weight.std().item() / math.sqrt(2 / (64 + 256)) - 1) < 0.06
        assert abs(block.mlp.c_proj.weight.std().item() / math.sqrt(2 / (256 + 64)) - 1) < 0.06
        assert block.attn.c_attn.bias.abs().max() == 0 and block.mlp.c_fc.bias.abs().max() == 0
    for emb in (model.wte, model.wpe):
        assert abs(emb.weight.std().item() - 1) < 0.06
    assert abs(model.lm_head.weight.std().item() / math.sqrt(2 / 128) - 1) < 0.06


def test_init_is_reproducible_from_the_seed():
    torch.manual_seed(5)
    a = GPT(_config(init="xavier"))
    torch.manual_seed(5)
    b = GPT(_config(init="xavier"))
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


# --- config checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    (dict(eps=-1e-5), ValueError, "eps must be >= 0"),
    (dict(placement="middle"), ValueError, "placement must be one of 'post', 'pre'"),
    (dict(norm="batchnorm"), ValueError, "norm must be one of"),
    (dict(n_embd=30), ValueError, "n_embd must be divisible by n_head"),
    (dict(n_layer=0), ValueError, "n_layer must be >= 1"),
    (dict(n_head=2.0), TypeError, "n_head must be an int"),
    (dict(mlp_ratio=True), TypeError, "mlp_ratio must be an int"),
    (dict(bias=1), TypeError, "bias must be True or False"),
    (dict(causal="yes"), TypeError, "causal must be True or False"),
    (dict(final_norm=0), TypeError, "final_norm must be True or False"),
    (dict(tie_weights=None), TypeError, "tie_weights must be True or False"),
    (dict(dropout=1.0), ValueError, "dropout must be < 1"),
    (dict(dropout=-0.1), ValueError, "dropout must be >= 0"),
    (dict(activation="swish"), ValueError, "activation must be one of"),
    (dict(init="kaiming"), ValueError, "init must be one of 'gpt2', 'xavier'"),
    (dict(init="xavier", tie_weights=True), ValueError, "tie_weights=True with init='xavier'"),
])
def test_bad_configs_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        _config(**kwargs)


def test_config_is_frozen():
    config = _config()
    with pytest.raises(AttributeError):
        config.n_layer = 3  # type: ignore[misc]


# --- the fused add + norm as a drop-in ------------------------------------------------------------


def _plain_and_fused(backend: str, seed: int, **kwargs):
    torch.manual_seed(seed)
    config = _config(**kwargs)
    plain = GPT(config)
    _randomize(plain, seed + 10)
    fused = GPT(config, fused_backend=backend)
    fused.load_state_dict(plain.state_dict())
    return plain, fused


def _assert_same_function(plain: GPT, fused: GPT, idx, targets, *, atol=1e-5, rtol=1e-5):
    logits_p, loss_p = plain(idx, targets)
    logits_f, loss_f = fused(idx, targets)
    torch.testing.assert_close(logits_f, logits_p, rtol=rtol, atol=atol)
    loss_p.backward()
    loss_f.backward()
    for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        scale = max(1.0, p.grad.abs().max().item())
        torch.testing.assert_close(q.grad, p.grad, rtol=10 * rtol, atol=atol * scale, msg=name)


@pytest.mark.parametrize("final_norm", [True, False])
@pytest.mark.parametrize("norm", NORMALIZING)
def test_fused_gpt_is_the_same_function_reference_backend(norm, final_norm):
    plain, fused = _plain_and_fused("reference", 0, norm=norm, final_norm=final_norm, n_layer=3)
    _assert_same_function(plain, fused, _tokens(3, 9, 1), _tokens(3, 9, 2))
    # the stream too, block by block
    for a, b in zip(plain.stream(_tokens(2, 5, 3)), fused.stream(_tokens(2, 5, 3)), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


@needs_triton
@pytest.mark.parametrize("norm", NORMALIZING)
def test_fused_gpt_is_the_same_function_triton_interpreter(norm):
    plain, fused = _plain_and_fused("triton", 1, norm=norm, n_layer=2, bias=norm == "layernorm")
    _assert_same_function(plain, fused, _tokens(2, 6, 4), _tokens(2, 6, 5))


def test_state_dicts_load_both_ways_and_an_untrained_copy_differs():
    plain, fused = _plain_and_fused("reference", 2)
    assert plain.state_dict().keys() == fused.state_dict().keys()
    other = GPT(_config())
    other.load_state_dict(fused.state_dict())
    idx = _tokens(2, 7, 6)
    torch.testing.assert_close(other(idx)[0], plain(idx)[0], rtol=1e-5, atol=1e-5)
    assert (GPT(_config())(idx)[0] - plain(idx)[0]).abs().max() > 1e-3


@needs_triton
@pytest.mark.parametrize("norm", NORMALIZING)
def test_fused_block_matches_the_pytorch_block(norm):
    torch.manual_seed(0)
    config = _config(norm=norm)
    plain = PreLNBlock(config)
    _randomize(plain, 7)
    fused = FusedPreLNBlock(config, backend="triton")
    fused.load_state_dict(plain.state_dict())
    x = torch.randn(2, 8, 32)
    x_plain, x_fused = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_plain = plain(x_plain)
    hidden, residual = fused(x_fused)
    out_fused = hidden + residual
    weights = torch.randn(out_plain.shape)
    (out_plain * weights).sum().backward()
    (out_fused * weights).sum().backward()
    torch.testing.assert_close(out_fused, out_plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x_fused.grad, x_plain.grad, rtol=1e-4, atol=1e-5)
    for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        scale = max(1.0, p.grad.abs().max().item())
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_fused_needs_pre_ln_and_a_known_backend():
    with pytest.raises(ValueError, match="placement='post'"):
        GPT(_config(placement="post"), fused_backend="reference")
    with pytest.raises(ValueError, match="fused_backend must be one of"):
        GPT(_config(), fused_backend="cuda")
    with pytest.raises(ValueError, match="placement='post'"):
        FusedPreLNBlock(_config(placement="post"))


def test_fused_gpt_trains_like_the_plain_one():
    """A few Adam steps from the same weights give the same losses (the drop-in in training)."""
    plain, fused = _plain_and_fused("reference", 3)
    losses = []
    for model in (plain, fused):
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        run = []
        for _ in range(5):
            _, loss = model(_tokens(4, 8, 100), _tokens(4, 8, 200))  # one batch, memorized
            opt.zero_grad()
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append(run)
    assert losses[0][-1] < losses[0][0]  # it does learn
    for a, b in zip(*losses, strict=True):
        assert abs(a - b) < 1e-4, losses
