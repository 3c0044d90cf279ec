"""Argument checks shared by the library: each raises an error that names the argument.

Types are checked first (`TypeError`), then values (`ValueError`), so a caller learns both what
was expected and what came in. Integers are accepted through `operator.index`, which takes
Python ints and NumPy/PyTorch integer scalars but not bools, floats or strings.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import SupportsIndex, TypeVar, cast

import torch
from torch import nn

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
T = TypeVar("T", bound=str)


def check_float_tensor(name: str, value: object, *, min_ndim: int = 1) -> torch.Tensor:
    """Return `value` if it is a floating-point tensor with at least `min_ndim` dims."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64), "
            f"got dtype {value.dtype}"
        )
    if value.dim() < min_ndim:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimension(s), got shape {tuple(value.shape)}"
        )
    return value


def check_tensor(name: str, value: object) -> torch.Tensor:
    """Return `value` if it is a tensor of any dtype."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_optional_param(
    name: str, value: torch.Tensor | None, like: torch.Tensor, size: int
) -> torch.Tensor | None:
    """Check an optional per-feature parameter (weight or bias) of shape (size,)."""
    if value is None:
        return None
    check_float_tensor(name, value)
    if tuple(value.shape) != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {tuple(value.shape)}")
    if value.device != like.device:
        raise ValueError(f"{name} is on {value.device} but the input is on {like.device}")
    return value


def check_same_shape(name: str, value: torch.Tensor, expected: Sequence[int]) -> None:
    """Raise a ValueError naming `name` unless `value` has exactly the shape `expected`."""
    if tuple(value.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(value.shape)}")


def check_number(name: str, value: object) -> float:
    """A finite real number (int or float, not bool); returned as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with `allow_zero`); infinity and NaN are rejected."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    bound = ">= 0" if allow_zero else "> 0"
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    if value < 0 if allow_zero else value <= 0:
        raise ValueError(f"{name} must be {bound}, got {value}")
    return float(value)


def check_in_range(
    name: str, value: object, low: float, high: float, *, include_high: bool = True
) -> float:
    """A real number in [low, high] (or [low, high) with `include_high=False`)."""
    number = check_number(name, value)
    if not (low <= number <= high) or (not include_high and number == high):
        interval = f"[{low}, {high}]" if include_high else f"[{low}, {high})"
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return number


def check_int(name: str, value: object, *, minimum: int = 0) -> int:
    """An integer >= `minimum`: Python ints and NumPy/PyTorch integer scalars, not bools."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        number = operator.index(cast(SupportsIndex, value))
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def check_bool(name: str, value: object) -> bool:
    """`True` or `False` (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def check_choice(name: str, value: object, choices: Sequence[T]) -> T:
    """One of `choices` (strings), compared exactly."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]


def check_generator(name: str, value: object) -> torch.Generator | None:
    """A `torch.Generator`, or None for PyTorch's global generator."""
    if value is not None and not isinstance(value, torch.Generator):
        raise TypeError(
            f"{name} must be a torch.Generator or None (the global generator), "
            f"got {type(value).__name__}"
        )
    return value


def check_module(name: str, value: object) -> nn.Module:
    """An `nn.Module`."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be an nn.Module, got {type(value).__name__}")
    return value
