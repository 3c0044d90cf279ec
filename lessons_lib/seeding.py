"""One call that makes a lesson deterministic."""

from __future__ import annotations

import random

import numpy as np
import torch

from lessons_lib._checks import check_bool, check_int


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh `torch.Generator` seeded with `seed`.

    `deterministic` sets `torch.use_deterministic_algorithms` either way (a warning, not an
    error, where an op has no deterministic kernel), so a re-run of a notebook prints the same
    numbers, and `deterministic=False` undoes an earlier `True`.

    String hashing is not seeded: `PYTHONHASHSEED` only takes effect when set before Python
    starts, and nothing in the course depends on the order of a set of strings.
    """
    seed = check_int("seed", seed)
    if seed >= 2**64:
        raise ValueError(f"seed must be < 2**64 (what PyTorch's generator takes), got {seed}")
    check_bool("deterministic", deterministic)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    return torch.Generator().manual_seed(seed)
