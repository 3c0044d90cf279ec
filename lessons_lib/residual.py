"""Plain and residual blocks, shortcuts, placements and whole nets, sized for a CPU.

The blocks are the multilayer-perceptron twins of the ResNet building blocks of He et al.
(2016a, 2016b): every 3x3 convolution becomes a `Linear` layer, and BatchNorm normalizes each
feature over the batch as `BatchNorm2d` normalizes each channel. That keeps the structure (and
the arithmetic of shortcuts and parameter counts) while a 40-layer net trains in seconds.

Placements (where BN, ReLU and the addition go), after He et al. (2016b), Fig. 4, one class
each:

=========================  ====================  ======================  ======================
class                      placement             block output            residual branch F
=========================  ====================  ======================  ======================
``OriginalBlock``          ``original``          ReLU(s(x) + F(x))       W-BN-ReLU-W-BN
``BNAfterAddBlock``        ``bn_after_add``      ReLU(BN(s(x) + F(x)))   W-BN-ReLU-W
``ReLUBeforeAddBlock``     ``relu_before_add``   s(x) + ReLU(F(x))       W-BN-ReLU-W-BN
``PreActivationBlock``     ``preact``            s(x) + F(x)             BN-ReLU-W-BN-ReLU-W
=========================  ====================  ======================  ======================

`s` is the shortcut: the identity when the width does not change (no parameters, one addition)
or a projection `W_s x` (a Linear layer, followed by BN in the post-activation placements) when
it does. A *plain* block is the same block with the shortcut term deleted (`shortcut="none"`,
or `plain_block`), so a plain net and a residual net with identity shortcuts have exactly the
same parameters (He et al. 2016a, §3.3). "BN" stands for the block's `norm`, any name of
`lessons_lib.normalization.NORMS`.

Only ``preact`` keeps a clean identity path: with F = 0 a pre-activation block *is* the
identity, while an ``original`` block gives ReLU(x). `Block.zero_init_branch_` sets the last
layer of the branch so that F = 0 exactly, which is how the lessons show this.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

import torch
from torch import nn

from lessons_lib._checks import (
    check_bool,
    check_choice,
    check_float_tensor,
    check_generator,
    check_int,
    check_module,
)
from lessons_lib.models import default_linear, he_linear
from lessons_lib.normalization import NORMS, Norm, make_norm

Placement = Literal["original", "bn_after_add", "relu_before_add", "preact"]
PLACEMENTS: tuple[Placement, ...] = ("original", "bn_after_add", "relu_before_add", "preact")
Shortcut = Literal["auto", "identity", "projection", "none"]
SHORTCUTS: tuple[Shortcut, ...] = ("auto", "identity", "projection", "none")
Kind = Literal["plain", "residual"]
KINDS: tuple[Kind, ...] = ("plain", "residual")


def _weight(fin: int, fout: int, generator: torch.Generator | None) -> nn.Linear:
    # Branch layers have no bias: before a BN it would be cancelled by the mean subtraction,
    # and He et al.'s convolutions have none either.
    return he_linear(fin, fout, bias=False, generator=generator)


class Projection(nn.Module):
    """Projection shortcut W_s x (+ norm): needed when the block changes the width.

    Parameters: in_features * out_features for W_s, + out_features with `bias`, + 2 *
    out_features (gain and shift) with `norm="batchnorm"` or `"layernorm"`.
    """

    def __init__(
        self, in_features: int, out_features: int, *, bias: bool = False,
        norm: Norm = "batchnorm", generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_int("in_features", in_features, minimum=1)
        check_int("out_features", out_features, minimum=1)
        check_bool("bias", bias)
        check_choice("norm", norm, NORMS)
        self.linear = he_linear(in_features, out_features, bias=bias, generator=generator)
        self.norm = make_norm(norm, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """W_s x, normalized: (B, in_features) -> (B, out_features)."""
        check_float_tensor("x", x)
        if x.dim() != 2 or x.shape[-1] != self.linear.in_features:
            raise ValueError(f"x must have shape (batch, {self.linear.in_features}), got "
                             f"{tuple(x.shape)}")
        return self.norm(self.linear(x))


class Block(nn.Module):
    """What the four placements share: widths, norm, the shortcut s, and F = `self.branch`.

    A subclass sets `placement`, builds its branch in `make_branch` and writes `forward`.
    `shortcut="auto"` uses the identity when `in_features == out_features` and a projection
    otherwise; `"identity"` with different widths is an error (the addition would not be
    defined); `"projection"` forces a projection; `"none"` deletes the shortcut (a plain
    block). `self.shortcut` is then None.
    """

    placement: ClassVar[Placement]
    projection_norm: ClassVar[bool] = True  # BN after W_s (He et al. 2016a)

    def __init__(
        self,
        in_features: int,
        out_features: int | None = None,
        *,
        norm: Norm = "batchnorm",
        shortcut: Shortcut = "auto",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if type(self) is Block:
            raise TypeError("Block is the shared base of the placements: build a block with "
                            "residual_block(...) or one of its subclasses")
        fin = check_int("in_features", in_features, minimum=1)
        fout = fin if out_features is None else check_int("out_features", out_features,
                                                           minimum=1)
        check_choice("norm", norm, NORMS)
        check_choice("shortcut", shortcut, SHORTCUTS)
        check_generator("generator", generator)
        if shortcut == "identity" and fin != fout:
            raise ValueError(
                f"shortcut='identity' needs in_features == out_features, got {fin} and {fout}: "
                "x + F(x) is only defined for equal widths; use shortcut='projection' or 'auto'"
            )
        self.in_features, self.out_features, self.norm = fin, fout, norm
        self.branch = nn.Sequential(*self.make_branch(fin, fout, norm, generator))
        self.shortcut: nn.Module | None = None
        if shortcut == "identity" or (shortcut == "auto" and fin == fout):
            self.shortcut = nn.Identity()
        elif shortcut != "none":
            self.shortcut = Projection(fin, fout, norm=norm if self.projection_norm else "none",
                                       generator=generator)

    def make_branch(
        self, fin: int, fout: int, norm: Norm, generator: torch.Generator | None
    ) -> list[nn.Module]:
        """The layers of F, in order."""
        raise NotImplementedError

    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """x must be (batch, in_features)."""
        check_float_tensor("x", x)
        if x.dim() != 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"x must have shape (batch, {self.in_features}), got {tuple(x.shape)}"
            )
        return x

    def add_shortcut(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """s(x) + f, or f alone in a plain block."""
        return f if self.shortcut is None else self.shortcut(x) + f

    @torch.no_grad()
    def zero_init_branch_(self) -> Block:
        """Make F(x) = 0 exactly: zero the last norm's gain and shift, else the last Linear.

        This is the "zero-γ" initialization of ResNets (the last BN of each branch starts at
        γ = 0 and β = 0): the block then starts as its shortcut path.
        """
        for module in reversed(self.branch):
            weight = getattr(module, "weight", None)
            if isinstance(weight, torch.Tensor):
                weight.zero_()
                bias = getattr(module, "bias", None)
                if isinstance(bias, torch.Tensor):
                    bias.zero_()
                return self
        raise RuntimeError("the branch has no layer with a weight to zero")

    def extra_repr(self) -> str:
        kind = "plain" if self.shortcut is None else "residual"
        return f"{self.in_features} -> {self.out_features}, {kind}, norm={self.norm!r}"


class OriginalBlock(Block):
    """He et al. (2016a): out = ReLU(s(x) + F(x)), F = W-BN-ReLU-W-BN."""

    placement = "original"

    def make_branch(self, fin: int, fout: int, norm: Norm,
                    generator: torch.Generator | None) -> list[nn.Module]:
        return [_weight(fin, fout, generator), make_norm(norm, fout), nn.ReLU(),
                _weight(fout, fout, generator), make_norm(norm, fout)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch(self.check_input(x))  # (B, out)
        return torch.relu(self.add_shortcut(x, f))


class BNAfterAddBlock(Block):
    """out = ReLU(BN(s(x) + F(x))), F = W-BN-ReLU-W: the last BN moves after the addition."""

    placement = "bn_after_add"

    def __init__(
        self, in_features: int, out_features: int | None = None, *, norm: Norm = "batchnorm",
        shortcut: Shortcut = "auto", generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(in_features, out_features, norm=norm, shortcut=shortcut,
                         generator=generator)
        self.post_norm = make_norm(norm, self.out_features)

    def make_branch(self, fin: int, fout: int, norm: Norm,
                    generator: torch.Generator | None) -> list[nn.Module]:
        return [_weight(fin, fout, generator), make_norm(norm, fout), nn.ReLU(),
                _weight(fout, fout, generator)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch(self.check_input(x))  # (B, out)
        return torch.relu(self.post_norm(self.add_shortcut(x, f)))


class ReLUBeforeAddBlock(Block):
    """out = s(x) + ReLU(F(x)), F = W-BN-ReLU-W-BN: the branch can only add, never subtract."""

    placement = "relu_before_add"

    def make_branch(self, fin: int, fout: int, norm: Norm,
                    generator: torch.Generator | None) -> list[nn.Module]:
        return [_weight(fin, fout, generator), make_norm(norm, fout), nn.ReLU(),
                _weight(fout, fout, generator), make_norm(norm, fout)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.branch(self.check_input(x)))  # (B, out)
        return self.add_shortcut(x, f)


class PreActivationBlock(Block):
    """He et al. (2016b): out = s(x) + F(x), F = BN-ReLU-W-BN-ReLU-W; nothing after the add.

    The stream between blocks is not normalized, so a projection shortcut has no BN here.
    """

    placement = "preact"
    projection_norm = False

    def make_branch(self, fin: int, fout: int, norm: Norm,
                    generator: torch.Generator | None) -> list[nn.Module]:
        return [make_norm(norm, fin), nn.ReLU(), _weight(fin, fout, generator),
                make_norm(norm, fout), nn.ReLU(), _weight(fout, fout, generator)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.branch(self.check_input(x))  # (B, out)
        return self.add_shortcut(x, f)


BLOCKS: dict[Placement, type[Block]] = {
    cls.placement: cls
    for cls in (OriginalBlock, BNAfterAddBlock, ReLUBeforeAddBlock, PreActivationBlock)
}


def residual_block(
    in_features: int,
    out_features: int | None = None,
    *,
    placement: Placement = "original",
    norm: Norm = "batchnorm",
    shortcut: Shortcut = "auto",
    generator: torch.Generator | None = None,
) -> Block:
    """A block of `placement` (see the module docstring); `shortcut="none"` makes it plain."""
    check_choice("placement", placement, PLACEMENTS)
    return BLOCKS[placement](in_features, out_features, norm=norm, shortcut=shortcut,
                             generator=generator)


def plain_block(
    in_features: int,
    out_features: int | None = None,
    *,
    placement: Placement = "original",
    norm: Norm = "batchnorm",
    generator: torch.Generator | None = None,
) -> Block:
    """The same block without its shortcut: out = ReLU(F(x)) (post-activation) or F(x).

    With the shortcut term deleted, ``original``, ``bn_after_add`` and ``relu_before_add``
    all compute W-BN-ReLU-W-BN-ReLU; ``preact`` computes BN-ReLU-W-BN-ReLU-W. A plain block
    has exactly the parameters of a residual block with an identity shortcut.
    """
    return residual_block(in_features, out_features, placement=placement, norm=norm,
                          shortcut="none", generator=generator)


class BlockNet(nn.Module):
    """stem -> blocks -> head, with `forward(x, drop=...)` to delete blocks at test time.

    Deleting block i replaces it by the identity (h <- h), the lesion of Veit et al. (2016).
    """

    def __init__(self, stem: nn.Module, blocks: Iterable[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.stem = check_module("stem", stem)
        self.blocks = nn.ModuleList(blocks)
        self.head = check_module("head", head)
        first = next((m for m in stem.modules() if isinstance(m, nn.Linear)), None)
        self.in_features = None if first is None else first.in_features

    def features(self, x: torch.Tensor, drop: int | Iterable[int] = ()) -> torch.Tensor:
        """The output of the last block (before the head), with blocks in `drop` deleted."""
        check_float_tensor("x", x)
        if self.in_features is not None and (x.dim() != 2 or x.shape[-1] != self.in_features):
            raise ValueError(f"x must have shape (batch, {self.in_features}), got "
                             f"{tuple(x.shape)}")
        dropped = self._check_drop(drop)
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            if i not in dropped:
                h = block(h)
        return h

    def forward(self, x: torch.Tensor, drop: int | Iterable[int] = ()) -> torch.Tensor:
        """Logits of x, with the blocks in `drop` (an index or several) deleted."""
        return self.head(self.features(x, drop))

    def _check_drop(self, drop: int | Iterable[int]) -> set[int]:
        indices = drop if isinstance(drop, Iterable) else (drop,)
        dropped = set()
        for i in indices:
            check_int("drop index", i)
            if i >= len(self.blocks):
                raise ValueError(
                    f"drop index must be < {len(self.blocks)} (the number of blocks), got {i}"
                )
            block = self.blocks[i]
            fin, fout = getattr(block, "in_features", None), getattr(block, "out_features", None)
            if fin != fout:
                raise ValueError(
                    f"block {i} changes the width ({fin} -> {fout}), so it cannot be deleted "
                    "(replaced by h <- h)"
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
    kind: Kind,
    depth: int,
    width: int,
    in_features: int,
    classes: int,
    *,
    placement: Placement = "original",
    norm: Norm = "batchnorm",
    zero_init_residual: bool = False,
    generator: torch.Generator | None = None,
) -> BlockNet:
    """A plain or residual MLP classifier with `depth` weight layers, as in He et al. (2016a).

    Layout: stem Linear(in_features, width) (+ norm + ReLU in the post-activation placements),
    (depth - 2) / 2 blocks of width `width` with identity shortcuts, then the head
    Linear(width, classes) (preceded by norm + ReLU in ``preact``, as in He et al. 2016b).
    `kind="plain"` deletes the shortcuts and nothing else. `zero_init_residual` starts every
    branch at F = 0 (see `Block.zero_init_branch_`): a residual net then starts as its
    shortcut path, a plain net as a constant map (zero weights give the zero map).
    `generator` draws every weight (None: PyTorch's global generator).
    """
    check_choice("kind", kind, KINDS)
    n_blocks = depth_to_blocks(depth)
    check_int("width", width, minimum=1)
    check_int("in_features", in_features, minimum=1)
    check_int("classes", classes, minimum=2)
    check_choice("placement", placement, PLACEMENTS)
    check_choice("norm", norm, NORMS)
    check_bool("zero_init_residual", zero_init_residual)
    check_generator("generator", generator)
    stem: nn.Module
    head: nn.Module
    if placement == "preact":
        stem = _weight(in_features, width, generator)
        head = nn.Sequential(make_norm(norm, width), nn.ReLU(),
                             default_linear(width, classes, generator=generator))
    else:
        stem = nn.Sequential(_weight(in_features, width, generator), make_norm(norm, width),
                             nn.ReLU())
        head = default_linear(width, classes, generator=generator)
    shortcut: Shortcut = "auto" if kind == "residual" else "none"
    blocks = [residual_block(width, width, placement=placement, norm=norm, shortcut=shortcut,
                             generator=generator) for _ in range(n_blocks)]
    if zero_init_residual:
        for block in blocks:
            block.zero_init_branch_()
    return BlockNet(stem, blocks, head)
