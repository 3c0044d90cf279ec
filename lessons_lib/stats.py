"""The few numbers the lessons print to summarize a result.

- `max_diff(a, b)`: the largest absolute difference between two tensors, the error of a check;
- `spread(values)`: "mean [min, max]" of a metric over seeds;
- `seed_range(values, fmt)`: "min to max" of a metric over seeds (one value if they agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from lessons_lib._checks import check_tensor


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over all entries (a and b broadcast against each other), as a float."""
    check_tensor("a", a)
    check_tensor("b", b)
    try:
        diff = (a - b).abs()
    except RuntimeError as err:
        raise ValueError(f"a and b must have broadcastable shapes, got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}") from err
    if diff.numel() == 0:
        raise ValueError("a and b are empty: there is no difference to take the maximum of")
    return diff.max().item()


def _values(values: Sequence[float] | np.ndarray) -> list[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"values must be a sequence of numbers, got {type(values).__name__}")
    items = list(values.tolist() if isinstance(values, np.ndarray) else values)
    if not items:
        raise ValueError("values must hold at least one number, got none")
    for i, v in enumerate(items):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"values[{i}] must be a number, got {type(v).__name__}")
    return items  # ints stay ints, so "{}" prints 37, not 37.0


def _check_fmt(fmt: str) -> str:
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a format string such as '{{:.3f}}', got "
                        f"{type(fmt).__name__}")
    return fmt


def spread(values: Sequence[float] | np.ndarray, fmt: str = "{:.3f}") -> str:
    """"mean [min, max]" of `values` (e.g. one metric over seeds), each formatted with `fmt`."""
    v, fmt = _values(values), _check_fmt(fmt)
    mean = sum(v) / len(v)
    return f"{fmt.format(mean)} [{fmt.format(min(v))}, {fmt.format(max(v))}]"


def seed_range(values: Sequence[float] | np.ndarray, fmt: str = "{:.3f}") -> str:
    """"min to max" of `values` formatted with `fmt`, or one value when both print alike."""
    v, fmt = _values(values), _check_fmt(fmt)
    lo, hi = fmt.format(min(v)), fmt.format(max(v))
    return lo if lo == hi else f"{lo} to {hi}"
