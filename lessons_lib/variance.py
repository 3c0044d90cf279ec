"""Three ways to compute a row's (biased) variance, and why only two of them are safe.

All functions reduce over the last dimension of x (..., N) and compute in x's own dtype, so
that float32 data shows float32 rounding. They return the biased variance (divide by N).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lessons_lib._checks import check_float_tensor, check_int


def _check_rows(x: object) -> torch.Tensor:
    x = check_float_tensor("x", x)
    if x.shape[-1] == 0:
        raise ValueError(f"x must have at least one value per row, got shape {tuple(x.shape)}")
    return x


def naive_variance(x: torch.Tensor) -> torch.Tensor:
    """E[x^2] - E[x]^2 in one pass: cancels catastrophically when |mean| >> std."""
    _check_rows(x)
    mean = x.mean(dim=-1)
    return (x * x).mean(dim=-1) - mean * mean


def two_pass_variance(x: torch.Tensor) -> torch.Tensor:
    """First the mean, then the mean of squared deviations: what the course's LN uses."""
    _check_rows(x)
    centered = x - x.mean(dim=-1, keepdim=True)
    return (centered * centered).mean(dim=-1)


@dataclass(frozen=True)
class WelfordState:
    """Running count, mean and M2 = sum of squared deviations, for each row."""

    count: int
    mean: torch.Tensor
    m2: torch.Tensor

    @property
    def variance(self) -> torch.Tensor:
        """The biased variance M2 / count."""
        return self.m2 / self.count


def welford_state(x: torch.Tensor) -> WelfordState:
    """Stream the values of each row once (Welford 1962), vectorized across rows."""
    _check_rows(x)
    n = x.shape[-1]
    mean = torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    m2 = torch.zeros_like(mean)
    for k in range(n):
        value = x[..., k]
        delta = value - mean
        mean = mean + delta / (k + 1)
        m2 = m2 + delta * (value - mean)  # uses the old and the new mean
    return WelfordState(n, mean, m2)


def welford_merge(a: WelfordState, b: WelfordState) -> WelfordState:
    """Combine two partial results (Chan et al. 1979): how parallel reductions merge chunks."""
    for name, state in (("a", a), ("b", b)):
        if not isinstance(state, WelfordState):
            raise TypeError(f"{name} must be a WelfordState, got {type(state).__name__}")
    if a.mean.shape != b.mean.shape:
        raise ValueError(f"a and b must cover the same rows, got shapes {tuple(a.mean.shape)} "
                         f"and {tuple(b.mean.shape)}")
    count = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.count / count)
    m2 = a.m2 + b.m2 + delta * delta * (a.count * b.count / count)
    return WelfordState(count, mean, m2)


def welford_variance(x: torch.Tensor, chunks: int = 1) -> torch.Tensor:
    """Welford's one-pass variance; with `chunks` > 1, one Welford per chunk, then merged."""
    _check_rows(x)
    check_int("chunks", chunks, minimum=1)
    if chunks > x.shape[-1]:
        raise ValueError(f"chunks must be <= the row length {x.shape[-1]}, got {chunks}")
    parts = [welford_state(part) for part in torch.tensor_split(x, chunks, dim=-1)]
    state = parts[0]
    for part in parts[1:]:
        state = welford_merge(state, part)
    return state.variance
