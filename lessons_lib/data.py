"""Datasets the lessons use: shipped with scikit-learn or generated. Nothing is downloaded.

Every generated dataset takes `generator` (a `torch.Generator`, or None for PyTorch's global
generator), so a lesson decides what is reproducible.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lessons_lib._checks import (
    check_bool,
    check_generator,
    check_int,
    check_number,
    check_positive,
    check_tensor,
)


@dataclass(frozen=True)
class Split:
    """Standardized inputs and integer labels, split into train and test."""

    x_train: torch.Tensor  # (n_train, features) float32
    y_train: torch.Tensor  # (n_train,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The digits' pixels (1797, 64) and labels (1797,), read from scikit-learn's data file.

    Reading the file directly skips importing scikit-learn (about 2.5 s, a noticeable share of
    a lesson's run time); if the file is not where scikit-learn 1.x keeps it, its loader runs.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            table = np.loadtxt(path, delimiter=",")
            return table[:, :-1], table[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    return bunch.data, bunch.target


def load_digits(test_size: int = 497, seed: int = 0, standardize: bool = True) -> Split:
    """scikit-learn's 8x8 handwritten digits (1797 images, 64 pixels, 10 classes).

    The data ships inside scikit-learn. Features are standardized with the training split's
    mean and std, so test statistics never leak into training.
    """
    check_int("test_size", test_size, minimum=1)
    check_int("seed", seed)
    check_bool("standardize", standardize)
    pixels, labels = _digits_arrays()
    x = torch.tensor(pixels, dtype=torch.float32)
    y = torch.tensor(labels, dtype=torch.int64)
    if test_size >= len(x):
        raise ValueError(f"test_size must be < {len(x)} (the number of images), got {test_size}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = perm[:test_size], perm[test_size:]
    x_train, x_test = x[train], x[test]
    if standardize:
        mean, std = x_train.mean(0), x_train.std(0)
        # Pixels that are constant in the training split (always blank) are only centered:
        # dividing by a tiny std would blow a stray test pixel up to ~1e6.
        std = torch.where(std > 0, std, torch.ones_like(std))
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return Split(x_train, y[train], x_test, y[test])


def copy_task(
    batch: int, length: int, vocab: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences `a b c ... a b c`: the second half repeats the first (a causal-LM task).

    Returns (inputs, targets) of shape (batch, 2*length - 1): next-token prediction, with
    targets set to -100 (ignored by cross_entropy) on the first half, which is unpredictable.
    """
    for name, v in (("batch", batch), ("length", length), ("vocab", vocab)):
        check_int(name, v, minimum=1)
    check_generator("generator", generator)
    first = torch.randint(0, vocab, (batch, length), generator=generator)
    seq = torch.cat([first, first], dim=1)  # (B, 2L)
    inputs, targets = seq[:, :-1], seq[:, 1:].clone()
    targets[:, : length - 1] = -100
    return inputs, targets


def gaussian_sequences(
    batch: int, length: int, features: int, generator: torch.Generator | None = None,
    offset: float = 0.0, scale: float = 1.0,
) -> torch.Tensor:
    """A (B, T, C) activation-like tensor: offset + scale * N(0, 1), scale >= 0."""
    for name, v in (("batch", batch), ("length", length), ("features", features)):
        check_int(name, v, minimum=1)
    check_generator("generator", generator)
    check_number("offset", offset)
    check_positive("scale", scale, allow_zero=True)
    return offset + scale * torch.randn(batch, length, features, generator=generator)


def as_sequences(x: torch.Tensor, steps: int) -> torch.Tensor:
    """Read each row of x (N, F) as a sequence of `steps` chunks: (N, steps, F // steps).

    The chunks are consecutive features, so an 8x8 digit with steps=16 is fed to an RNN four
    pixels (half an image row) at a time, top to bottom. A view, not a copy.
    """
    check_tensor("x", x)
    if x.dim() != 2:
        raise ValueError(f"x must have shape (N, features), got {tuple(x.shape)}")
    check_int("steps", steps, minimum=1)
    if x.shape[1] % steps:
        raise ValueError(f"steps must divide the number of features {x.shape[1]}, got {steps}")
    return x.reshape(x.shape[0], steps, x.shape[1] // steps)


def padded_batch(
    lengths: Sequence[int] | np.ndarray,
    features: int,
    generator: torch.Generator | None = None,
    *,
    pad_value: float = 0.0,
    offset: float = 0.0,
    scale: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of sequences of different lengths, padded at the end to the longest one.

    Returns (x, mask): x (B, T, features) holds offset + scale * N(0, 1) in the real positions
    and `pad_value` in the padding; mask (B, T) is True on real tokens. T = max(lengths). This
    is how variable-length text reaches a Transformer, and why a normalization that pools
    statistics over (B, T) sees the padding. `lengths` is a list, tuple or 1-D integer array.
    """
    if isinstance(lengths, (str, bytes)) or not isinstance(lengths, (Sequence, np.ndarray)):
        raise TypeError(f"lengths must be a list of sequence lengths, got "
                        f"{type(lengths).__name__}")
    if isinstance(lengths, np.ndarray) and lengths.ndim != 1:
        raise ValueError(f"lengths must be one-dimensional, got shape {lengths.shape}")
    sizes = [check_int(f"lengths[{i}]", n, minimum=1) for i, n in enumerate(lengths)]
    if not sizes:
        raise ValueError("lengths must hold at least one sequence length, got none")
    check_int("features", features, minimum=1)
    check_generator("generator", generator)
    pad_value, offset = check_number("pad_value", pad_value), check_number("offset", offset)
    scale = check_positive("scale", scale, allow_zero=True)
    t = max(sizes)
    x = offset + scale * torch.randn(len(sizes), t, features, generator=generator)
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(sizes).unsqueeze(1)  # (B, T)
    x = x.masked_fill(~mask.unsqueeze(-1), float(pad_value))
    return x, mask
