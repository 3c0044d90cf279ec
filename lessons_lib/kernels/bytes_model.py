"""How many bytes the residual add + norm moves through memory, fused and unfused.

Add and normalize do a handful of flops per element, far fewer than a GPU can do in the time it
takes to read the element from memory, so their run time is set by the bytes moved. The model
counts, per row of N features, each tensor a kernel reads or writes once (an ideal kernel:
everything it needs from a row is read once and stays in registers):

- unfused forward: kernel "add" (h = x + residual) then kernel "norm" (y = norm(h) * w + b);
- fused forward: one kernel reads x and residual, writes h and y;
- unfused backward: "norm backward" writes dh_norm; autograd adds the gradient dh coming from
  later layers ("accumulate"); the add's backward hands the sum to x and residual for free
  when their dtypes match (a cast kernel otherwise);
- fused backward: one kernel reads dy, h and dh, writes dx and a separate dresidual.

The weight and bias (N values per call, not per row) and the per-program dweight/dbias partial
sums are left out: they do not grow with the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from lessons_lib._checks import check_choice, check_int

Direction = Literal["forward", "backward"]
STAT_BYTES = 4  # mean and rstd are fp32, one value per row each


@dataclass(frozen=True)
class Access:
    """One tensor read or written by one kernel, in bytes per row."""

    kernel: str
    tensor: str
    op: Literal["read", "write"]
    bytes: int


def _size(dtype: torch.dtype) -> int:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return torch.empty((), dtype=dtype).element_size()


def accesses(
    n: int,
    *,
    x_dtype: torch.dtype = torch.float16,
    residual_dtype: torch.dtype | None = None,
    norm: str = "layernorm",
    fused: bool = True,
    direction: Direction = "forward",
    has_residual: bool = True,
    has_dresidual: bool = True,
) -> list[Access]:
    """Every read and write of one row (N features), for one pass of one implementation.

    `residual_dtype` is the dtype of the residual stream (h, and the residual coming in);
    default x's. `has_dresidual`: later layers send a gradient into h (true in a Pre-LN stack).
    """
    check_int("n", n, minimum=1)
    check_choice("norm", norm, ("layernorm", "rmsnorm"))
    check_choice("direction", direction, ("forward", "backward"))
    a = _size(x_dtype)
    r = _size(residual_dtype if residual_dtype is not None else x_dtype)
    stats = STAT_BYTES * (2 if norm == "layernorm" else 1)  # RMSNorm has no mean
    acc: list[Access] = []

    def add(kernel: str, tensor: str, op: str, nbytes: int) -> None:
        acc.append(Access(kernel, tensor, op, nbytes))

    if direction == "forward":
        if fused:
            add("fused", "x", "read", n * a)
            if has_residual:
                add("fused", "residual", "read", n * r)
            if has_residual or r != a:
                add("fused", "h", "write", n * r)
            add("fused", "y", "write", n * a)
            add("fused", "mean, rstd", "write", stats)
        else:
            if has_residual:
                add("add", "x", "read", n * a)
                add("add", "residual", "read", n * r)
                add("add", "h", "write", n * r)
            add("norm", "h", "read", n * (r if has_residual else a))
            add("norm", "y", "write", n * a)
            add("norm", "mean, rstd", "write", stats)
        return acc

    h = r if has_residual else a
    if fused:
        add("fused bwd", "dy", "read", n * a)
        add("fused bwd", "h", "read", n * h)
        add("fused bwd", "mean, rstd", "read", stats)
        if has_dresidual:
            add("fused bwd", "dh", "read", n * h)
        add("fused bwd", "dx", "write", n * a)
        if has_residual:
            add("fused bwd", "dresidual", "write", n * r)
    else:
        add("norm bwd", "dy", "read", n * a)
        add("norm bwd", "h", "read", n * h)
        add("norm bwd", "mean, rstd", "read", stats)
        add("norm bwd", "dh_norm", "write", n * h)
        if has_dresidual:
            add("accumulate", "dh_norm", "read", n * h)
            add("accumulate", "dh", "read", n * h)
            add("accumulate", "dh_total", "write", n * h)
        if h != a:  # the add's backward casts the fp32 gradient to x's dtype
            add("cast", "dh_total", "read", n * h)
            add("cast", "dx", "write", n * a)
    return acc


def bytes_per_row(n: int, **kwargs) -> int:
    """Total bytes read and written per row; keyword arguments as for `accesses`."""
    return sum(item.bytes for item in accesses(n, **kwargs))


def table(
    hidden_sizes: list[int],
    dtypes: list[torch.dtype],
    *,
    norm: str = "layernorm",
    residual_in_fp32: bool = False,
) -> list[dict]:
    """Bytes per row, fused and unfused, forward and backward, for each (dtype, N)."""
    rows = []
    for dtype in dtypes:
        res = torch.float32 if residual_in_fp32 else dtype
        for n in hidden_sizes:
            row = {"dtype": str(dtype).removeprefix("torch."),
                   "residual_dtype": str(res).removeprefix("torch."), "n": n, "norm": norm}
            for direction in ("forward", "backward"):
                for fused in (True, False):
                    key = f"{direction}_{'fused' if fused else 'unfused'}"
                    row[key] = bytes_per_row(
                        n, x_dtype=dtype, residual_dtype=res, norm=norm, fused=fused,
                        direction=direction,
                    )
            row["saving_forward"] = 1 - row["forward_fused"] / row["forward_unfused"]
            row["saving_backward"] = 1 - row["backward_fused"] / row["backward_unfused"]
            fused_total = row["forward_fused"] + row["backward_fused"]
            unfused_total = row["forward_unfused"] + row["backward_unfused"]
            row["saving_total"] = 1 - fused_total / unfused_total
            rows.append(row)
    return rows
