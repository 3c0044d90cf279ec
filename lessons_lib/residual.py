"""Plain and residual blocks, shortcuts, placements and whole nets, sized for a CPU.

The blocks are the multilayer-perceptron twins of the ResNet building blocks of He et al.
(2016a, 2016b): every 3x3 convolution becomes a `Linear` layer, and BatchNorm normalizes each
feature over the batch as `BatchNorm2d` normalizes each channel. That keeps the structure (and
the arithmetic of shortcuts and parameter counts) while a 40-layer net trains in seconds.

Placements (where BN, ReLU and the addition go), after He et al. (2016b), Fig. 4:

====================  ====================================  ==================================
placement             block output                          residual branch F
====================  ====================================  ==================================
``original``          ReLU(s(x) + F(x))                     W-BN-ReLU-W-BN
``bn_after_add``      ReLU(BN(s(x) + F(x)))                 W-BN-ReLU-W
``relu_before_add``   s(x) + ReLU(F(x))                     W-BN-ReLU-W-BN
``preact``            s(x) + F(x)                           BN-ReLU-W-BN-ReLU-W
====================  ====================================  ==================================

`s` is the shortcut: the identity when the width does not change (no parameters, one addition)
or a projection `W_s x` (a Linear layer, followed by BN in the post-activation placements) when
it does. A *plain* block is the same block with the shortcut term deleted, so a plain net and a
residual net with identity shortcuts have exactly the same parameters (He et al. 2016a, §3.3).

Only ``preact`` keeps a clean identity path: with F = 0 a pre-activation block *is* the
identity, while an ``original`` block gives ReLU(x). `zero_init_branch_` sets the last layer of
the branch so that F = 0 exactly, which is how the lessons show this.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

from lessons_lib._checks import check_choice, check_int

Placement = Literal["original", "bn_after_add", "relu_before_add", "preact"]
PLACEMENTS: tuple[str, ...] = ("original", "bn_after_add", "relu_before_add", "preact")
NORMS: tuple[str, ...] = ("batch", "layer", "none")
SHORTCUTS: tuple[str, ...] = ("auto", "identity", "projection")
KINDS: tuple[str, ...] = ("plain", "residual")


def _norm(kind: str, features: int) -> nn.Module:
    """BatchNorm over the batch, LayerNorm over the features, or nothing."""
    if kind == "batch":
        return nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.LayerNorm(features)
    return nn.Identity()


def _linear(in_features: int, out_features: int, bias: bool = False) -> nn.Linear:
    """A Linear layer with He (Kaiming-normal, fan-in, ReLU) initialization.

    Branch layers have no bias: in the BN placements a bias before BN is cancelled by the mean
    subtraction, and He et al.'s convolutions have none either.
    """
    layer = nn.Linear(in_features, out_features, bias=bias)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


def _check_features(name: str, value: object) -> int:
    return check_int(name, value, minimum=1)


def count_parameters(module: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of (trainable) parameter entries of `module`: what "adds N parameters" means."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type(module).__name__}")
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class Projection(nn.Module):
    """Projection shortcut W_s x (+ BN): needed when the block changes the width.

    Parameters: in_features * out_features for W_s, + out_features with `bias`, + 2 *
    out_features (gain and shift) with `norm="batch"` or `"layer"`.
    """

    def __init__(
        self, in_features: int, out_features: int, *, bias: bool = False, norm: str = "batch"
    ) -> None:
        super().__init__()
        _check_features("in_features", in_features)
        _check_features("out_features", out_features)
        check_choice("norm", norm, NORMS)
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.norm = _norm(norm, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x))


class ResidualBlock(nn.Module):
    """One residual block x -> out, in one of the four placements of He et al. (2016b).

    `shortcut="auto"` uses the identity when `in_features == out_features` and a projection
    otherwise; `"identity"` with different widths is an error (the addition would not be
    defined), `"projection"` forces a projection. `self.branch` is F, `self.shortcut` is s.
    """

    has_shortcut = True

    def __init__(
        self,
        in_features: int,
        out_features: int | None = None,
        *,
        placement: Placement = "original",
        norm: str = "batch",
        shortcut: str = "auto",
    ) -> None:
        super().__init__()
        _check_features("in_features", in_features)
        out_features = in_features if out_features is None else out_features
        _check_features("out_features", out_features)
        check_choice("placement", placement, PLACEMENTS)
        check_choice("norm", norm, NORMS)
        check_choice("shortcut", shortcut, SHORTCUTS)
        self.in_features, self.out_features = in_features, out_features
        self.placement, self.norm_kind = placement, norm
        self.branch = self._make_branch(in_features, out_features, placement, norm)
        self.post_norm = _norm(norm, out_features) if placement == "bn_after_add" else None
        self.shortcut = self._make_shortcut(in_features, out_features, placement, norm, shortcut)

    @staticmethod
    def _make_branch(fin: int, fout: int, placement: str, norm: str) -> nn.Sequential:
        if placement == "preact":
            return nn.Sequential(
                _norm(norm, fin), nn.ReLU(), _linear(fin, fout),
                _norm(norm, fout), nn.ReLU(), _linear(fout, fout),
            )
        layers = [_linear(fin, fout), _norm(norm, fout), nn.ReLU(), _linear(fout, fout)]
        if placement != "bn_after_add":  # with bn_after_add the last BN moves after the sum
            layers.append(_norm(norm, fout))
        return nn.Sequential(*layers)

    def _make_shortcut(
        self, fin: int, fout: int, placement: str, norm: str, shortcut: str
    ) -> nn.Module | None:
        if not self.has_shortcut:
            return None
        if shortcut == "identity" and fin != fout:
            raise ValueError(
                f"shortcut='identity' needs in_features == out_features, got {fin} and {fout}: "
                "x + F(x) is only defined for equal widths; use shortcut='projection' or 'auto'"
            )
        if shortcut == "identity" or (shortcut == "auto" and fin == fout):
            return nn.Identity()
        # The pre-activation stream is not normalized; He et al. (2016b) project it without BN.
        return Projection(fin, fout, norm="none" if placement == "preact" else norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have shape (batch, {self.in_features}), got {tuple(x.shape)}"
            )
        f = self.branch(x)
        s = self.shortcut(x) if self.shortcut is not None else None
        p = self.placement
        if p == "original":
            return torch.relu(f if s is None else s + f)
        if p == "bn_after_add":
            return torch.relu(self.post_norm(f if s is None else s + f))
        if p == "relu_before_add":
            f = torch.relu(f)
            return f if s is None else s + f
        return f if s is None else s + f  # preact

    @torch.no_grad()
    def zero_init_branch_(self) -> ResidualBlock:
        """Make F(x) = 0 exactly: zero the last BN gain (and shift), else the last Linear.

        This is the "zero-γ" initialization of ResNets (the last BN of each branch starts at
        γ = 0): the block then starts as its shortcut path.
        """
        last = self.branch[-1]
        if isinstance(last, (nn.BatchNorm1d, nn.LayerNorm)):
            last.weight.zero_()
            last.bias.zero_()
        else:
            linear = last if isinstance(last, nn.Linear) else self.branch[-2]
            linear.weight.zero_()
            if linear.bias is not None:
                linear.bias.zero_()
        return self


class PlainBlock(ResidualBlock):
    """The same block without its shortcut: out = ReLU(F(x)) (post-activation) or F(x).

    With the shortcut term deleted, ``original``, ``bn_after_add`` and ``relu_before_add``
    all compute the same function W-BN-ReLU-W-BN-ReLU; ``preact`` computes
    BN-ReLU-W-BN-ReLU-W. A plain block has exactly the parameters of a residual block with an
    identity shortcut.
    """

    has_shortcut = False

    def __init__(
        self,
        in_features: int,
        out_features: int | None = None,
        *,
        placement: Placement = "original",
        norm: str = "batch",
    ) -> None:
        super().__init__(in_features, out_features, placement=placement, norm=norm)


class BlockNet(nn.Module):
    """stem -> blocks -> head, with `forward(x, drop=...)` to delete blocks at test time.

    Deleting block i replaces it by the identity (h <- h), the lesion of Veit et al. (2016).
    """

    def __init__(self, stem: nn.Module, blocks: Iterable[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = stem
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def features(self, x: torch.Tensor, drop: Iterable[int] = ()) -> torch.Tensor:
        """The output of the last block (before the head), with blocks in `drop` deleted."""
        dropped = self._check_drop(drop)
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            if i not in dropped:
                h = block(h)
        return h

    def forward(self, x: torch.Tensor, drop: Iterable[int] = ()) -> torch.Tensor:
        return self.head(self.features(x, drop))

    def _check_drop(self, drop: Iterable[int]) -> set[int]:
        if isinstance(drop, int):
            drop = (drop,)
        dropped = set()
        for i in drop:
            check_int("drop index", i)
            if i >= len(self.blocks):
                raise ValueError(
                    f"drop index must be < {len(self.blocks)} (the number of blocks), got {i}"
                )
            block = self.blocks[i]
            if getattr(block, "in_features", None) != getattr(block, "out_features", None):
                raise ValueError(
                    f"block {i} changes the width ({block.in_features} -> "
                    f"{block.out_features}), so it cannot be deleted (replaced by h <- h)"
                )
            dropped.add(i)
        return dropped


def depth_to_blocks(depth: int) -> int:
    """Blocks in a net of `depth` weight layers: 1 stem + 2 per block + 1 head (He et al.)."""
    check_int("depth", depth, minimum=2)
    if depth % 2:
        raise ValueError(
            f"depth must be even (1 stem + 2 layers per block + 1 head), got {depth}"
        )
    return (depth - 2) // 2


def make_net(
    kind: str,
    depth: int,
    width: int,
    in_features: int,
    classes: int,
    *,
    placement: Placement = "original",
    norm: str = "batch",
    zero_init_residual: bool = False,
) -> BlockNet:
    """A plain or residual MLP classifier with `depth` weight layers, as in He et al. (2016a).

    Layout: stem Linear(in_features, width) (+ norm + ReLU in the post-activation placements),
    (depth - 2) / 2 blocks of width `width` with identity shortcuts, then the head
    Linear(width, classes) (preceded by norm + ReLU in ``preact``, as in He et al. 2016b).
    `kind="plain"` deletes the shortcuts and nothing else. `zero_init_residual` starts every
    branch at F = 0 (see `ResidualBlock.zero_init_branch_`): a residual net then starts as its
    shortcut path, a plain net as a constant map (zero weights give the zero map).
    """
    check_choice("kind", kind, KINDS)
    n_blocks = depth_to_blocks(depth)
    _check_features("width", width)
    _check_features("in_features", in_features)
    check_int("classes", classes, minimum=2)
    check_choice("placement", placement, PLACEMENTS)
    check_choice("norm", norm, NORMS)
    if not isinstance(zero_init_residual, bool):
        raise TypeError(f"zero_init_residual must be a bool, got {type(zero_init_residual)}")
    if placement == "preact":
        stem: nn.Module = _linear(in_features, width)
        head: nn.Module = nn.Sequential(_norm(norm, width), nn.ReLU(), nn.Linear(width, classes))
    else:
        stem = nn.Sequential(_linear(in_features, width), _norm(norm, width), nn.ReLU())
        head = nn.Linear(width, classes)
    cls = ResidualBlock if kind == "residual" else PlainBlock
    blocks = [cls(width, width, placement=placement, norm=norm) for _ in range(n_blocks)]
    if zero_init_residual:
        for block in blocks:
            block.zero_init_branch_()
    return BlockNet(stem, blocks, head)
