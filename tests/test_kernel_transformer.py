"""FusedAddNorm as a drop-in inside a Pre-LN Transformer block (run by Triton's interpreter)."""

from __future__ import annotations

import pytest
import torch

from lessons_lib.kernels import use_interpreter

use_interpreter()  # before Triton is imported: CPU tensors run in the interpreter
pytest.importorskip("triton")

from lessons_lib.transformer import BlockConfig, FusedPreLNBlock, PreLNBlock  # noqa: E402


def _blocks(norm: str, seed: int, n_blocks: int = 1):
    torch.manual_seed(seed)
    config = BlockConfig(n_embd=32, n_head=4, norm=norm)
    plain = torch.nn.ModuleList(PreLNBlock(config) for _ in range(n_blocks))
    with torch.no_grad():  # non-trivial norm parameters, so their gradients mean something
        for name, p in plain.named_parameters():
            if ".ln_" in name or name.startswith("ln_"):
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.3 * torch.randn(p.shape))
    fused = torch.nn.ModuleList(FusedPreLNBlock(config, backend="triton") for _ in range(n_blocks))
    fused.load_state_dict(plain.state_dict())
    return plain, fused


def _assert_same(plain, fused, out_plain, out_fused):
    torch.testing.assert_close(out_fused, out_plain, rtol=1e-5, atol=1e-5)
    for (name, p), q in zip(plain.named_parameters(), fused.parameters(), strict=True):
        scale = max(1.0, p.grad.abs().max().item())
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_fused_block_matches_pytorch_block(norm):
    plain, fused = _blocks(norm, seed=0)
    x = torch.randn(2, 8, 32)
    x_plain, x_fused = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_plain = plain[0](x_plain)
    hidden, residual = fused[0](x_fused)
    out_fused = hidden + residual
    loss_weights = torch.randn(out_plain.shape)
    (out_plain * loss_weights).sum().backward()
    (out_fused * loss_weights).sum().backward()
    _assert_same(plain, fused, out_plain, out_fused)
    torch.testing.assert_close(x_fused.grad, x_plain.grad, rtol=1e-4, atol=1e-5)


def test_two_fused_blocks_pass_the_stream_on():
    """In a stack the add of one block's last sublayer is fused into the next block's ln_1."""
    plain, fused = _blocks("layernorm", seed=1, n_blocks=2)
    x = torch.randn(3, 5, 32)
    out_plain = plain[1](plain[0](x))
    hidden, residual = fused[0](x)
    hidden, residual = fused[1](hidden, residual)
    out_fused = hidden + residual
    out_plain.square().mean().backward()
    out_fused.square().mean().backward()
    _assert_same(plain, fused, out_plain, out_fused)


def test_block_config_checks():
    with pytest.raises(ValueError, match="n_embd"):
        BlockConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="norm"):
        BlockConfig(norm="batchnorm")
