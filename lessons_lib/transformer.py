"""A small nanoGPT-style GPT whose blocks any lesson configures: where the norms sit, which norm,
causal or not, which initialization, plain PyTorch or the fused add + norm kernel.

    Post-LN (Vaswani et al. 2017, BERT):    x = norm(x + sublayer(x))      no final norm
    Pre-LN  (GPT-2, Llama; Xiong et al.):   x = x + sublayer(norm(x))      final norm ln_f
    Peri-LN (Gemma 2/3; Kim et al. 2025):   x = x + norm_out(sublayer(norm(x)))   ln_f
    DeepNorm (DeepNet, Wang et al. 2022):   x = norm(alpha x + sublayer(x)),  beta-scaled init
    ReZero (Bachlechner et al. 2020):       x = x + alpha sublayer(x), alpha = 0 at init, no norm

    config = GPTConfig(vocab_size=32, block_size=16, n_layer=6, placement="post")
    model = GPT(config)
    logits, loss = model(idx, targets)      # (B, T, V), scalar
    xs = model.stream(idx)                  # the residual stream x_0 .. x_L, each (B, T, C)

`Block(config)` builds one block of `config.placement`. Each placement is a small `Block`
subclass listed in `PLACEMENTS`; each norm a constructor in `NORMS`. To add a placement, write
its subclass (its `forward`, any parameters it adds, `reset_parameters` if it initializes
differently, its `final_norm` default) and add it to `PLACEMENTS`; `GPTConfig` then accepts
its name. A norm is one entry in `NORMS`: "layernorm", "rmsnorm", or "dyt" (Dynamic Tanh,
`DynamicTanh`, Zhu et al. 2025). `qk_norm=True` adds an RMSNorm over each head's queries and
keys before their dot product (OLMo 2, Qwen3, Gemma 3).

`GPT(config, fused_backend="reference" | "triton" | "auto")` is the same Pre-LN model with every
residual add done inside the norm that follows it (`lessons_lib.kernels.FusedAddNorm`): same
function, same parameter names, so state dicts load both ways.

Initialization (`GPTConfig.init`) decides what the Post-LN / Pre-LN experiments show, so it is a
named choice, not a side effect:
- "gpt2" (nanoGPT, GPT-2): every weight N(0, 0.02), the two output projections of each block
  (`attn.c_proj`, `mlp.c_proj`) N(0, 0.02 / sqrt(2 n_layer)), biases 0;
- "xavier" (the setting of Xiong et al.'s Theorem 1 and Lemma 2): Xavier-normal weight matrices
  (q, k and v each as its own C x C matrix), N(0, 1) token and position embeddings, biases 0.
Norm gains start at 1 and biases at 0 in both. `tie_weights=True` shares the output layer with
the token embedding (GPT-2 does); it is refused with "xavier", whose N(0, 1) embeddings would
give logits of standard deviation about sqrt(n_embd).

Shapes: B = batch, T = tokens, C = n_embd, V = vocab_size, nh = n_head, hs = C // nh.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lessons_lib._checks import check_choice, check_int, check_positive
from lessons_lib.kernels import BACKENDS, FusedAddNorm

INITS = ("gpt2", "xavier")
GPT2_STD = 0.02
IGNORE_INDEX = -100  # targets with this value add nothing to the loss (lessons_lib.data.copy_task)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 32
    block_size: int = 64  # the longest sequence (the position embedding's size)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64
    mlp_ratio: int = 4  # the MLP's hidden width is mlp_ratio * n_embd
    activation: str = "gelu"  # "gelu" (GPT-2) | "relu" (Vaswani et al., Xiong et al.'s lemmas)
    bias: bool = True  # biases in the Linear layers and in LayerNorm
    dropout: float = 0.0
    norm: str = "layernorm"  # a key of NORMS: "layernorm" | "rmsnorm" | "dyt"
    eps: float = 1e-5
    placement: str = "pre"  # a key of PLACEMENTS: "post" | "pre" | "peri" | "deepnorm" | "rezero"
    final_norm: bool | None = None  # None: the placement's default (pre: True, post: False)
    causal: bool = True  # False: every token attends to every token (an encoder block)
    init: str = "gpt2"  # "gpt2" | "xavier", see the module docstring
    tie_weights: bool = False  # share lm_head's weight with the token embedding
    qk_norm: bool = False  # RMSNorm on each head's queries and keys before q·kᵀ

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_ratio"):
            check_int(name, getattr(self, name), minimum=1)
        if self.n_embd % self.n_head:
            raise ValueError(
                "n_embd must be divisible by n_head, "
                f"got n_embd={self.n_embd}, n_head={self.n_head}"
            )
        check_choice("activation", self.activation, tuple(ACTIVATIONS))
        check_choice("norm", self.norm, tuple(NORMS))
        check_choice("placement", self.placement, tuple(PLACEMENTS))
        check_choice("init", self.init, INITS)
        check_positive("eps", self.eps, allow_zero=True)
        check_positive("dropout", self.dropout, allow_zero=True)
        if self.dropout >= 1:
            raise ValueError(f"dropout must be < 1, got {self.dropout}")
        for name in ("bias", "causal", "tie_weights"):
            _check_bool(name, getattr(self, name))
        if self.final_norm is None:  # frozen: set the resolved default once, here
            object.__setattr__(self, "final_norm", PLACEMENTS[self.placement].final_norm)
        _check_bool("final_norm", self.final_norm)
        _check_bool("qk_norm", self.qk_norm)
        if self.tie_weights and self.init == "xavier":
            raise ValueError(
                "tie_weights=True with init='xavier': the N(0, 1) token embedding would also be "
                "the output layer, giving logits of std ~sqrt(n_embd); use tie_weights=False"
            )

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head


# --- norms and activations: one entry each -------------------------------------------------------


class DynamicTanh(nn.Module):
    """Dynamic Tanh (DyT, Zhu et al. 2025): y = γ ⊙ tanh(α x) + β, element by element.

    α is one learnable scalar (starting at `alpha0`; 0.5 is the paper's default), γ and β are
    per-feature like LayerNorm's gain and bias (1 and 0 at the start). No statistics are taken:
    a token is squashed, not rescaled by its own size. For small α x the map is the straight
    line γ α x + β; for large α x it saturates at γ sign(x) + β.
    """

    def __init__(self, normalized_shape: int, alpha0: float = 0.5, bias: bool = True) -> None:
        super().__init__()
        check_int("normalized_shape", normalized_shape, minimum=1)
        self.alpha0 = check_positive("alpha0", alpha0)
        self.alpha = nn.Parameter(torch.empty(()))  # one scalar for the whole layer
        self.weight = nn.Parameter(torch.empty(normalized_shape))  # γ
        _check_bool("bias", bias)
        self.bias = nn.Parameter(torch.empty(normalized_shape)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.alpha, self.alpha0)
        nn.init.ones_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.weight * torch.tanh(self.alpha * x)  # (..., C)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, alpha0={self.alpha0}, bias={self.bias is not None}"


NORMS: dict[str, Callable[[GPTConfig], nn.Module]] = {
    "layernorm": lambda c: nn.LayerNorm(c.n_embd, eps=c.eps, bias=c.bias),
    "rmsnorm": lambda c: nn.RMSNorm(c.n_embd, eps=c.eps),
    "dyt": lambda c: DynamicTanh(c.n_embd, bias=c.bias),
}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


def make_norm(config: GPTConfig) -> nn.Module:
    """The norm layer `config.norm` over the last dimension (C)."""
    return NORMS[config.norm](config)


def _reset_norm(norm: nn.Module) -> None:
    """Gain 1, bias 0 (a norm without parameters has nothing to reset)."""
    reset = getattr(norm, "reset_parameters", None)
    if callable(reset):
        reset()


def _xavier_normal(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    nn.init.normal_(weight, std=math.sqrt(2.0 / (fan_in + fan_out)))


# --- the two sublayers ----------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Multi-head self-attention: per head softmax(q kᵀ / sqrt(hs) + mask) v, then c_proj.

    The mask hides later tokens when `config.causal` (a decoder), nothing otherwise (an encoder).
    With `config.qk_norm`, q and k are RMS-normalized over each head's hs features first (one
    gain of size hs shared by the heads, as in Qwen3 and Gemma 3), so each logit is at most
    sqrt(hs) max|g_q| max|g_k| in size, however large the weights grow.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head, self.causal, self.dropout = config.n_head, config.causal, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.q_norm: nn.Module | None = None
        self.k_norm: nn.Module | None = None
        if config.qk_norm:
            self.q_norm = nn.RMSNorm(config.head_size, eps=config.eps)
            self.k_norm = nn.RMSNorm(config.head_size, eps=config.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape  # (B, T, C)
        q, k, v = self.c_attn(x).split(c, dim=2)  # 3 x (B, T, C)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # (B, nh, T, hs), each head on its own
        y = F.scaled_dot_product_attention(  # (B, nh, T, hs)
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=self.causal
        )
        y = y.transpose(1, 2).reshape(b, t, c)  # (B, T, C): the heads side by side
        return self.resid_dropout(self.c_proj(y))

    def reset_parameters(self, config: GPTConfig) -> None:
        c = config.n_embd
        if config.init == "xavier":
            for w in self.c_attn.weight.split(c, dim=0):  # q, k and v: each a C x C matrix
                _xavier_normal(w, c, c)
            _xavier_normal(self.c_proj.weight, c, c)
        else:
            nn.init.normal_(self.c_attn.weight, std=GPT2_STD)
            nn.init.normal_(self.c_proj.weight, std=GPT2_STD / math.sqrt(2 * config.n_layer))
        for layer in (self.c_attn, self.c_proj):
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        for norm in (self.q_norm, self.k_norm):
            if norm is not None:
                _reset_norm(norm)


class MLP(nn.Module):
    """The position-wise feed-forward sublayer: c_proj(act(c_fc(x))), width mlp_ratio * C."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        hidden = config.mlp_ratio * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.act = ACTIVATIONS[config.activation]()
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C)

    def reset_parameters(self, config: GPTConfig) -> None:
        c, hidden = config.n_embd, config.mlp_ratio * config.n_embd
        if config.init == "xavier":
            _xavier_normal(self.c_fc.weight, c, hidden)
            _xavier_normal(self.c_proj.weight, hidden, c)
        else:
            nn.init.normal_(self.c_fc.weight, std=GPT2_STD)
            nn.init.normal_(self.c_proj.weight, std=GPT2_STD / math.sqrt(2 * config.n_layer))
        for layer in (self.c_fc, self.c_proj):
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


# --- blocks: one small class per placement -------------------------------------------------------


class Block(nn.Module):
    """One Transformer block: attention and MLP, each wrapped in a residual add and a norm.

    `Block(config)` returns the subclass that `PLACEMENTS[config.placement]` names; the
    subclasses differ only in `forward` (and in what they add). Parameter names follow nanoGPT:
    ln_1, attn, ln_2, mlp.
    """

    final_norm: ClassVar[bool] = True  # GPTConfig.final_norm's default for this placement

    def __new__(cls, *args: Any, **kwargs: Any) -> Block:
        if cls is Block:  # dispatch on the placement; subclasses are built as usual
            config = args[0] if args else kwargs["config"]
            if not isinstance(config, GPTConfig):
                raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
            cls = PLACEMENTS[config.placement]
        return super().__new__(cls)

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.ln_1 = make_norm(config)
        self.attn = SelfAttention(config)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config)
        self.reset_parameters(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("Block(config) builds the subclass of config.placement")

    def reset_parameters(self, config: GPTConfig) -> None:
        """Initialize by `config.init`; norms get gain 1 and bias 0."""
        self.attn.reset_parameters(config)
        self.mlp.reset_parameters(config)
        for norm in (self.ln_1, self.ln_2):
            _reset_norm(norm)


class PostLNBlock(Block):
    """Post-LN: the sum is normalized, so every block's output has unit scale per token."""

    final_norm = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_1(x + self.attn(x))  # (B, T, C)
        x = self.ln_2(x + self.mlp(x))
        return x


class PreLNBlock(Block):
    """Pre-LN: each sublayer sees a normalized copy; the stream itself is never normalized."""

    final_norm = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))
        return x


PLACEMENTS: dict[str, type[Block]] = {"post": PostLNBlock, "pre": PreLNBlock}


# --- later designs: Peri-LN, DeepNorm, ReZero (lesson 09) ---------------------------------------


class PeriLNBlock(Block):
    """Peri-LN: a norm on each sublayer's input and another on its output, *before* the add.

    The stream is never normalized (as in Pre-LN), but each sublayer adds a normalized update,
    so the stream grows by a bounded step per sublayer however large the sublayer's output is.
    Gemma 2/3 use it (their `post_attention_layernorm` and `post_feedforward_layernorm` are the
    output norms). The output norm after the add, norm(x + F(norm(x))), is a different model:
    that one normalizes the stream, like Post-LN.
    """

    final_norm = True

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.ln_1_out = make_norm(config)  # on the attention output
        self.ln_2_out = make_norm(config)  # on the MLP output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ln_1_out(self.attn(self.ln_1(x)))  # (B, T, C)
        x = x + self.ln_2_out(self.mlp(self.ln_2(x)))
        return x

    def reset_parameters(self, config: GPTConfig) -> None:
        super().reset_parameters(config)
        for name in ("ln_1_out", "ln_2_out"):  # not built yet when Block.__init__ calls this
            if hasattr(self, name):
                _reset_norm(getattr(self, name))


class DeepNormBlock(Block):
    """DeepNorm (DeepNet): Post-LN with the shortcut weighted up, x = norm(α x + sublayer(x)).

    α = (2M)^(1/4) and β = (8M)^(-1/4), DeepNet's decoder-only values for M = n_layer blocks
    (the encoder-only row has the same form). The init is the paper's whatever `config.init` says:
    Xavier-normal matrices, with gain β for the value projection, the attention output
    projection and both MLP layers, gain 1 for queries and keys; biases 0. The embeddings and
    the output layer still follow `config.init`.
    """

    final_norm = False
    alpha: float
    beta: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_1(self.alpha * x + self.attn(x))  # (B, T, C)
        x = self.ln_2(self.alpha * x + self.mlp(x))
        return x

    def reset_parameters(self, config: GPTConfig) -> None:
        super().reset_parameters(config)  # norms and biases
        self.alpha = (2 * config.n_layer) ** 0.25  # the shortcut's weight
        self.beta = (8 * config.n_layer) ** -0.25  # init gain of v, the output projection, the MLP
        c, hidden = config.n_embd, config.mlp_ratio * config.n_embd
        q, k, v = self.attn.c_attn.weight.split(c, dim=0)
        with torch.no_grad():
            for w, fan_in, fan_out, gain in (
                (q, c, c, 1.0), (k, c, c, 1.0), (v, c, c, self.beta),
                (self.attn.c_proj.weight, c, c, self.beta),
                (self.mlp.c_fc.weight, c, hidden, self.beta),
                (self.mlp.c_proj.weight, hidden, c, self.beta),
            ):
                _xavier_normal(w, fan_in, fan_out)
                w.mul_(gain)


class ReZeroBlock(Block):
    """ReZero: no norm at all; one learnable scalar α per block scales both branches,
    x = x + α F(x), and starts at 0, so every block begins as the identity.

    ln_1 and ln_2 are identities (the placement has no norm); one α per block, shared by the
    attention and the MLP, as in the paper's reference Transformer layer.
    """

    final_norm = False

    def __init__(self, config: GPTConfig) -> None:
        super().__init__(config)
        self.ln_1, self.ln_2 = nn.Identity(), nn.Identity()
        self.alpha = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.alpha * self.attn(x)  # (B, T, C)
        x = x + self.alpha * self.mlp(x)
        return x

    def reset_parameters(self, config: GPTConfig) -> None:
        super().reset_parameters(config)
        if hasattr(self, "alpha"):  # not built yet when Block.__init__ calls this
            nn.init.zeros_(self.alpha)


PLACEMENTS.update(peri=PeriLNBlock, deepnorm=DeepNormBlock, rezero=ReZeroBlock)


class FusedPreLNBlock(nn.Module):
    """`PreLNBlock` with each residual add moved into the norm that follows it.

    `forward(hidden, residual=None) -> (hidden, residual)`: hidden is the last sublayer's output
    and residual the stream it must be added to. For one block, `sum(block(x))` equals
    `PreLNBlock(x)`; in a stack, pass both tensors on, and let the final norm do the last add.
    """

    def __init__(
        self, config: GPTConfig, *, backend: str = "auto",
        residual_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        _check_fusable(config, backend)
        self.ln_1 = _fused_norm(config, backend, residual_dtype)
        self.attn = SelfAttention(config)
        self.ln_2 = _fused_norm(config, backend, residual_dtype)
        self.mlp = MLP(config)
        self.attn.reset_parameters(config)
        self.mlp.reset_parameters(config)

    def forward(
        self, hidden: torch.Tensor, residual: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y, residual = self.ln_1(hidden, residual)  # residual += hidden; y = ln_1(residual)
        hidden = self.attn(y)  # (B, T, C)
        y, residual = self.ln_2(hidden, residual)  # residual += attention output
        hidden = self.mlp(y)
        return hidden, residual  # the block's output is hidden + residual


def _check_fusable(config: GPTConfig, backend: str) -> None:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
    check_choice("fused_backend", backend, BACKENDS)
    if config.placement != "pre":
        raise ValueError(
            "the fused add + norm computes Pre-LN (each add feeds the next norm); "
            f"got placement={config.placement!r}"
        )
    check_choice("norm (for the fused kernel)", config.norm, ("layernorm", "rmsnorm"))


def _fused_norm(
    config: GPTConfig, backend: str, residual_dtype: torch.dtype | None
) -> FusedAddNorm:
    return FusedAddNorm(
        config.n_embd, config.eps, norm=config.norm,  # type: ignore[arg-type]
        bias=config.bias and config.norm == "layernorm", backend=backend,  # type: ignore[arg-type]
        residual_dtype=residual_dtype,
    )


# --- the model -----------------------------------------------------------------------------------


class GPT(nn.Module):
    """Token + position embeddings, n_layer blocks, an optional final norm, a linear head.

    `forward(idx, targets=None) -> (logits, loss)`: idx (B, T) int64 tokens, logits (B, T, V);
    loss is the mean cross-entropy over targets != -100, or None without targets.
    `stream(idx)` returns the residual stream x_0 (embeddings) .. x_L (after the last block).
    """

    def __init__(
        self, config: GPTConfig, *, fused_backend: str | None = None,
        residual_dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config, self.fused = config, fused_backend is not None
        blocks: list[nn.Module]
        self.ln_f: nn.Module | None  # None without a final norm, so its absence is visible
        if fused_backend is None:
            blocks = [Block(config) for _ in range(config.n_layer)]
            self.ln_f = make_norm(config) if config.final_norm else None
        else:
            _check_fusable(config, fused_backend)
            blocks = [FusedPreLNBlock(config, backend=fused_backend, residual_dtype=residual_dtype)
                      for _ in range(config.n_layer)]
            self.ln_f = (_fused_norm(config, fused_backend, residual_dtype)
                         if config.final_norm else None)
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList(blocks)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self._reset_embeddings_and_head()
        if config.tie_weights:
            self.lm_head.weight = self.wte.weight

    def _reset_embeddings_and_head(self) -> None:
        c = self.config
        std = 1.0 if c.init == "xavier" else GPT2_STD
        for emb in (self.wte, self.wpe):
            nn.init.normal_(emb.weight, std=std)
        if c.init == "xavier":
            _xavier_normal(self.lm_head.weight, c.n_embd, c.vocab_size)
        else:
            nn.init.normal_(self.lm_head.weight, std=GPT2_STD)

    def _check_tokens(self, name: str, idx: object) -> torch.Tensor:
        if not isinstance(idx, torch.Tensor) or idx.dtype != torch.long:
            got = idx.dtype if isinstance(idx, torch.Tensor) else type(idx).__name__
            raise TypeError(f"{name} must be an int64 (torch.long) tensor, got {got}")
        if idx.dim() != 2:
            raise ValueError(f"{name} must have shape (B, T), got {tuple(idx.shape)}")
        return idx

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """x_0 = dropout(wte[idx] + wpe[0..T-1]), (B, T, C)."""
        self._check_tokens("idx", idx)
        t, v = idx.shape[1], self.config.vocab_size
        if t > self.config.block_size:
            raise ValueError(f"idx has {t} tokens, more than block_size={self.config.block_size}")
        if idx.numel() and (idx.min() < 0 or idx.max() >= v):
            raise ValueError(f"idx values must be in [0, {v}), got {idx.min()}..{idx.max()}")
        pos = torch.arange(t, device=idx.device)  # (T,)
        return self.drop(self.wte(idx) + self.wpe(pos))

    def stream(self, idx: torch.Tensor) -> list[torch.Tensor]:
        """[x_0, x_1, ..., x_L]: the embeddings and each block's output, before the final norm.

        The tensors are part of the autograd graph (call `.retain_grad()` on them to read
        gradients with respect to the stream).
        """
        x = self.embed(idx)
        xs = [x]
        if self.fused:
            hidden, residual = x, None
            for block in self.h:
                hidden, residual = block(hidden, residual)
                xs.append(hidden + residual)
        else:
            for block in self.h:
                x = block(x)
                xs.append(x)
        return xs

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.embed(idx)  # (B, T, C)
        if self.fused:
            hidden, residual = x, None
            for block in self.h:
                hidden, residual = block(hidden, residual)
            if self.ln_f is not None:
                x, _ = self.ln_f(hidden, residual)  # the last add, fused too
            else:
                x = hidden + residual  # type: ignore[operator]  # n_layer >= 1: not None
        else:
            for block in self.h:
                x = block(x)
            if self.ln_f is not None:
                x = self.ln_f(x)
        logits = self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits, None
        self._check_tokens("targets", targets)
        if targets.shape != idx.shape:
            raise ValueError(
                f"targets must have idx's shape {tuple(idx.shape)}, got {tuple(targets.shape)}"
            )
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=IGNORE_INDEX)
        return logits, loss

    def num_params(self) -> int:
        """Number of parameters (a tied weight counted once)."""
        return sum(p.numel() for p in self.parameters())


BlockConfig = GPTConfig  # the name lesson 08 imports for a block's configuration
