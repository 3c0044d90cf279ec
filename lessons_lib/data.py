"""Datasets the lessons use: shipped with scikit-learn or generated. Nothing is downloaded."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lessons_lib._checks import check_int


@dataclass(frozen=True)
class Split:
    """Standardized inputs and integer labels, split into train and test."""

    x_train: torch.Tensor  # (n_train, features) float32
    y_train: torch.Tensor  # (n_train,) int64
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digits(test_size: int = 497, seed: int = 0, standardize: bool = True) -> Split:
    """scikit-learn's 8x8 handwritten digits (1797 images, 64 pixels, 10 classes).

    The data ships inside scikit-learn. Features are standardized with the training split's
    mean and std, so test statistics never leak into training.
    """
    from sklearn.datasets import load_digits as _load

    check_int("test_size", test_size, minimum=1)
    bunch = _load()
    x = torch.tensor(bunch.data, dtype=torch.float32)
    y = torch.tensor(bunch.target, dtype=torch.int64)
    if test_size >= len(x):
        raise ValueError(f"test_size must be < {len(x)} (the number of images), got {test_size}")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = perm[:test_size], perm[test_size:]
    x_train, x_test = x[train], x[test]
    if standardize:
        mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    return Split(x_train, y[train], x_test, y[test])


def copy_task(
    batch: int, length: int, vocab: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences `a b c ... a b c`: the second half repeats the first (a causal-LM task).

    Returns (inputs, targets) of shape (batch, 2*length - 1): next-token prediction, with
    targets set to -100 (ignored by cross_entropy) on the first half, which is unpredictable.
    """
    for name, v in (("batch", batch), ("length", length), ("vocab", vocab)):
        check_int(name, v, minimum=1)
    first = torch.randint(0, vocab, (batch, length), generator=generator)
    seq = torch.cat([first, first], dim=1)  # (B, 2L)
    inputs, targets = seq[:, :-1], seq[:, 1:].clone()
    targets[:, : length - 1] = -100
    return inputs, targets


def gaussian_sequences(
    batch: int, length: int, features: int, generator: torch.Generator,
    offset: float = 0.0, scale: float = 1.0,
) -> torch.Tensor:
    """A (B, T, C) activation-like tensor: offset + scale * N(0, 1)."""
    for name, v in (("batch", batch), ("length", length), ("features", features)):
        check_int(name, v, minimum=1)
    return offset + scale * torch.randn(batch, length, features, generator=generator)
