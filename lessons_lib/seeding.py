"""One call that makes a lesson deterministic."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from lessons_lib._checks import check_int


def seed_everything(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh `torch.Generator` seeded with `seed`.

    With `deterministic=True`, PyTorch is asked for deterministic kernels (a warning, not an
    error, where an op has none), so a re-run of a notebook prints the same numbers.
    """
    check_int("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.Generator().manual_seed(seed)
