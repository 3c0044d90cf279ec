"""Argument checks shared by the library: each raises an error that names the argument."""

from __future__ import annotations

from collections.abc import Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


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
    if tuple(value.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {tuple(value.shape)}")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Check a real number is > 0 (or >= 0 with allow_zero)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if value != value or (value < 0 if allow_zero else value <= 0):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return float(value)


def check_int(name: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value  # type: ignore[return-value]
