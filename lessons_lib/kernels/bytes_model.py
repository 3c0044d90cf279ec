"""How many bytes the residual add + norm moves through memory: fused, unfused, and eager PyTorch.

Add and normalize do a handful of flops per element, far fewer than a GPU can do in the time it
takes to read the element from memory, so their run time is mostly set by the bytes moved (and
by how close each kernel gets to the memory's bandwidth, which this model does not know). The
model counts, per row of N features, each tensor a kernel reads or writes once (everything it
needs from a row is read once and stays in registers):

- "unfused" (an ideal two-kernel version): kernel "add" (h = x + residual) then kernel "norm"
  (y = norm(h) * w + b); in the backward "norm bwd" writes dh_norm, autograd adds the gradient
  dh coming from later layers ("accumulate"), and the add's backward hands the sum to x and the
  residual for free when their dtypes match (a cast kernel otherwise);
- "eager" (what PyTorch's CUDA LayerNorm backward does): as "unfused", plus a separate
  "weight/bias grad" kernel that reads dy and h a second time (PyTorch computes dx in one kernel
  and dweight/dbias in another);
- "fused": one kernel reads x and residual, writes h and y; one backward kernel reads dy, h and
  dh and writes dx, which is also the residual's gradient when their dtypes match (a separate
  dresidual only for an fp32 stream).

The weight and bias (N values per call) and the backward's fp32 partial sums (programs x N per
parameter, written by the kernel and read back to be summed) do not grow with the number of
rows: `per_call_bytes` counts them, `total_bytes` adds them for M rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from lessons_lib._checks import check_choice, check_int

Direction = Literal["forward", "backward"]
Impl = Literal["fused", "unfused", "eager"]
IMPLS: tuple[str, ...] = ("fused", "unfused", "eager")
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
    impl: Impl = "fused",
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
    check_choice("impl", impl, IMPLS)
    check_choice("direction", direction, ("forward", "backward"))
    a = _size(x_dtype)
    r = _size(residual_dtype if residual_dtype is not None else x_dtype)
    stats = STAT_BYTES * (2 if norm == "layernorm" else 1)  # RMSNorm has no mean
    acc: list[Access] = []

    def add(kernel: str, tensor: str, op: Literal["read", "write"], nbytes: int) -> None:
        acc.append(Access(kernel, tensor, op, nbytes))

    if direction == "forward":
        if impl == "fused":
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
    if impl == "fused":
        add("fused bwd", "dy", "read", n * a)
        add("fused bwd", "h", "read", n * h)
        add("fused bwd", "mean, rstd", "read", stats)
        if has_dresidual:
            add("fused bwd", "dh", "read", n * h)
        add("fused bwd", "dx", "write", n * a)
        if has_residual and r != a:  # same dtype: dx is the residual's gradient too
            add("fused bwd", "dresidual", "write", n * r)
        return acc
    add("norm bwd", "dy", "read", n * a)
    add("norm bwd", "h", "read", n * h)
    add("norm bwd", "mean, rstd", "read", stats)
    add("norm bwd", "dh_norm", "write", n * h)
    if impl == "eager":
        add("weight/bias grad", "dy", "read", n * a)
        add("weight/bias grad", "h", "read", n * h)
        add("weight/bias grad", "mean, rstd", "read", stats)
    if has_dresidual:
        add("accumulate", "dh_norm", "read", n * h)
        add("accumulate", "dh", "read", n * h)
        add("accumulate", "dh_total", "write", n * h)
    if h != a:  # the add's backward casts the fp32 gradient to x's dtype
        add("cast", "dh_total", "read", n * h)
        add("cast", "dx", "write", n * a)
    return acc


def bytes_per_row(n: int, **kwargs: Any) -> int:
    """Total bytes read and written per row; keyword arguments as for `accesses`."""
    return sum(item.bytes for item in accesses(n, **kwargs))


def per_call_bytes(
    n: int,
    *,
    x_dtype: torch.dtype = torch.float16,
    norm: str = "layernorm",
    impl: Impl = "fused",
    direction: Direction = "forward",
    programs: int = 0,
) -> int:
    """Bytes that do not grow with the rows: weight (and bias) read once per call; in the
    backward, their gradients written, and for the fused kernel the fp32 partial sums of
    `programs` programs, written by the kernel and read back by the final sum."""
    check_int("n", n, minimum=1)
    check_int("programs", programs, minimum=0)
    params = 2 if norm == "layernorm" else 1
    a = _size(x_dtype)
    if direction == "forward":
        return params * n * a
    total = params * n * a * 2  # read the parameters, write their gradients
    if impl == "fused":
        total += params * programs * n * 4 * 2  # fp32 partials: written, then read to be summed
    return total


def total_bytes(m: int, n: int, *, programs: int = 0, **kwargs: Any) -> int:
    """All the bytes of one pass over M rows: M x per-row bytes + the per-call bytes."""
    check_int("m", m, minimum=0)
    per_call = {k: v for k, v in kwargs.items() if k in ("x_dtype", "norm", "impl", "direction")}
    return m * bytes_per_row(n, **kwargs) + per_call_bytes(n, programs=programs, **per_call)


def table(
    hidden_sizes: list[int],
    dtypes: list[torch.dtype],
    *,
    norm: str = "layernorm",
    residual_in_fp32: bool = False,
) -> list[dict]:
    """Bytes per row of each implementation, forward and backward, for each (dtype, N)."""
    rows = []
    for dtype in dtypes:
        res = torch.float32 if residual_in_fp32 else dtype
        for n in hidden_sizes:
            row: dict[str, Any] = {"dtype": str(dtype).removeprefix("torch."),
                   "residual_dtype": str(res).removeprefix("torch."), "n": n, "norm": norm}
            for direction in ("forward", "backward"):
                for impl in IMPLS:
                    row[f"{direction}_{impl}"] = bytes_per_row(
                        n, x_dtype=dtype, residual_dtype=res, norm=norm, impl=impl,
                        direction=direction,
                    )
            fused = row["forward_fused"] + row["backward_fused"]
            for impl in ("unfused", "eager"):
                total = row[f"forward_{impl}"] + row[f"backward_{impl}"]
                row[f"ratio_{impl}"] = total / fused  # bytes moved relative to the fused kernel
            row["saving_total"] = 1 - fused / (row["forward_unfused"] + row["backward_unfused"])
            rows.append(row)
    return rows
