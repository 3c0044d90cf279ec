"""A small nanoGPT-style Pre-LN Transformer block, plain and with the fused add + norm.

    PreLNBlock:       x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    FusedPreLNBlock:  the same arithmetic, with each residual add done inside the next norm
                      (`lessons_lib.kernels.FusedAddNorm`), so the block passes on two tensors:
                      the last sublayer's output and the residual stream before it.

Both blocks have the same parameter names, so one's state dict loads into the other.
Shapes: B = batch, T = tokens, C = n_embd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib._checks import check_choice, check_int
from lessons_lib.kernels import FusedAddNorm


@dataclass(frozen=True)
class BlockConfig:
    n_embd: int = 64
    n_head: int = 4
    mlp_ratio: int = 4
    bias: bool = True  # biases in the Linear layers (and in LayerNorm)
    norm: str = "layernorm"  # or "rmsnorm"
    eps: float = 1e-5

    def __post_init__(self) -> None:
        check_int("n_embd", self.n_embd, minimum=1)
        check_int("n_head", self.n_head, minimum=1)
        check_int("mlp_ratio", self.mlp_ratio, minimum=1)
        check_choice("norm", self.norm, ("layernorm", "rmsnorm"))
        if self.n_embd % self.n_head:
            raise ValueError(
                "n_embd must be divisible by n_head, "
                f"got n_embd={self.n_embd}, n_head={self.n_head}"
            )


def make_norm(config: BlockConfig) -> nn.Module:
    """PyTorch's own norm layer for the config: nn.LayerNorm or nn.RMSNorm."""
    if config.norm == "layernorm":
        return nn.LayerNorm(config.n_embd, eps=config.eps, bias=config.bias)
    return nn.RMSNorm(config.n_embd, eps=config.eps)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape  # (B, T, C)
        q, k, v = self.c_attn(x).split(c, dim=2)  # 3 x (B, T, C)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(b, t, c)  # (B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        hidden = config.mlp_ratio * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))  # (B, T, C)


class PreLNBlock(nn.Module):
    """Pre-LN: each sublayer sees a normalized copy of the stream; the stream itself is not."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))
        return x


class FusedPreLNBlock(nn.Module):
    """`PreLNBlock` with each residual add moved into the following norm.

    `forward(hidden, residual=None) -> (hidden, residual)`: hidden is the last sublayer's output
    and residual the stream it must be added to. For a single block, `sum(block(x))` equals
    `PreLNBlock(x)`; in a stack, pass both tensors on and add them once after the last block.
    """

    def __init__(
        self, config: BlockConfig, *, backend: str = "auto",
        residual_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        kwargs = {"norm": config.norm, "bias": config.bias and config.norm == "layernorm",
                  "backend": backend, "residual_dtype": residual_dtype}
        self.ln_1 = FusedAddNorm(config.n_embd, config.eps, **kwargs)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = FusedAddNorm(config.n_embd, config.eps, **kwargs)
        self.mlp = MLP(config)

    def forward(
        self, hidden: torch.Tensor, residual: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y, residual = self.ln_1(hidden, residual)  # residual += hidden; y = ln_1(residual)
        hidden = self.attn(y)  # (B, T, C)
        y, residual = self.ln_2(hidden, residual)  # residual += attn output
        hidden = self.mlp(y)
        return hidden, residual  # the block's output is hidden + residual
