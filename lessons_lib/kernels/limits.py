"""What the Triton kernel accepts, known without importing Triton (the checks run everywhere)."""

from __future__ import annotations

import torch

# A row lives in registers: the kernel refuses rows wider than 64 KiB of input.
MAX_ROW_BYTES = 65536
TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def max_features(dtype: torch.dtype) -> int:
    """Largest N the kernel accepts for inputs of `dtype` (a row of at most MAX_ROW_BYTES)."""
    return MAX_ROW_BYTES // torch.empty((), dtype=dtype).element_size()
