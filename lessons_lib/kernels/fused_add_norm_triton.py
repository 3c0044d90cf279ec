"""Triton kernels of the fused residual add + LayerNorm/RMSNorm, and the host code launching them.

This module imports Triton at the top; `lessons_lib.kernels.api` imports it only when
the Triton backend is used. Read in order: the launch configuration, the forward kernel and its
launcher, the backward kernel and its launcher.

Shapes: the host flattens every input to rows, so the kernels see M rows of N features.
h = x + residual is "the residual stream"; y = norm(h) * weight + bias.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from lessons_lib.kernels.limits import MAX_ROW_BYTES, max_features

__all__ = ["MAX_ROW_BYTES", "backward", "forward", "max_features"]
# Backward grid when the device has no SM count (CPU tensors, run by the interpreter). Fixed,
# not os.cpu_count(), so the order of the dweight/dbias sums is the same on every machine.
CPU_PROGRAMS = 4
# The interpreter's cost is per program and per operation, not per element: on CPU tensors a
# program takes as many rows as fit in this many elements (the GPU configuration otherwise).
CPU_TILE_ELEMENTS = 16384
# Autotuning on CUDA (num_warps, and programs per SM for the backward); "0" uses the heuristic
# configuration below, the same on every run and every process.
AUTOTUNE_ENV = "LESSONS_KERNEL_AUTOTUNE"


# ---------------------------------------------------------------------------------------------
# Launch configuration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """How a kernel is launched for rows of N features (depends on N and the dtypes, not on M).

    block_m: rows per step of a program; block_n: next power of two >= N (the whole row);
    num_warps: 32 threads each; programs_per_sm: backward grid size per streaming multiprocessor;
    acc_in_registers: the backward keeps its dweight/dbias sums in registers (else in memory).
    """

    block_m: int
    block_n: int
    num_warps: int
    programs_per_sm: int = 1
    acc_in_registers: bool = True


def forward_config(n: int, elt_size: int = 2) -> Config:
    """Heuristic forward configuration (checked offline by `ptx_report`: no register spills).

    A program normalizes BLOCK_M rows at once: several when rows are short (at least 1024
    elements per program), one otherwise. Each thread takes 16 bytes of each row tensor (one
    vector load: 4 fp32 or 8 fp16/bf16 values), up to the 32 warps a program can have (32
    threads each); from N = 4096 (fp32) or 8192 (16-bit) on, each thread takes more.
    """
    block_n = triton.next_power_of_2(n)
    block_m = max(1, min(16, 1024 // block_n))
    return Config(block_m, block_n, _warps(block_m * block_n * elt_size))


def _warps(tile_bytes: int) -> int:
    """Warps for 16 bytes of a tile per thread: 1 to 32."""
    return min(max(tile_bytes // (16 * 32), 1), 32)


def backward_config(n: int, elt_size: int = 2) -> Config:
    """Heuristic backward configuration (checked offline by `ptx_report`: no register spills).

    Tiles and warps as in the forward. Each program also keeps two fp32 accumulators (dweight,
    dbias) across its loop. Up to N = 8192 they fit in registers next to the row; above, they
    live in memory (see the kernel, step 2), and 16-bit rows of 16384 take 16 warps, because
    with 32 ptxas spills the registers that hold conversions between 16- and 32-bit layouts.
    The grid: 24 warps per SM for programs of up to 8 warps (they use up to 74 registers per
    thread, which leaves room for 28 warps), one program per SM for larger ones (more than 64
    registers per thread or 1024 threads: no second one fits).
    """
    block_n = triton.next_power_of_2(n)
    block_m = max(1, min(16, 1024 // block_n))
    num_warps = _warps(block_m * block_n * elt_size)
    if block_n == 16384 and elt_size < 4:
        num_warps = 16
    programs_per_sm = 24 // num_warps if num_warps <= 8 else 1
    return Config(block_m, block_n, num_warps, programs_per_sm, acc_in_registers=block_n <= 8192)


def config_for(config: Config, device: torch.device) -> Config:
    """`config` as launched on `device`: on the CPU, more rows per program (CPU_TILE_ELEMENTS)."""
    if device.type != "cpu":
        return config
    block_m = max(config.block_m, min(64, CPU_TILE_ELEMENTS // config.block_n))
    return Config(block_m, config.block_n, config.num_warps, config.programs_per_sm,
                  config.acc_in_registers)


def row_alignment(n: int, *strides: int) -> int:
    """Largest power of two <= 16 dividing N and every row stride (elements).

    The kernels round N and the strides down to a multiple of it, `(N // ROW_ALIGN) * ROW_ALIGN`,
    which changes nothing (they are multiples already) but tells Triton's compiler that every row
    starts at a multiple of ROW_ALIGN elements: then it can load 16 bytes per instruction. The
    JIT finds this by itself only for multiples of 16, so N = 1000 would get scalar loads.
    """
    g = math.gcd(n, *strides)
    return min(16, g & -g)


def autotune_enabled() -> bool:
    """Autotune on CUDA unless LESSONS_KERNEL_AUTOTUNE=0."""
    return os.environ.get(AUTOTUNE_ENV, "1").strip() not in ("0", "false", "no", "off")


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=["M"])
def fused_add_norm_fwd_kernel(  # type: ignore[no-untyped-def]
    X,  # (M, N) pointer to the sublayer output x
    Residual,  # (M, N) pointer to the residual stream coming in (None if HAS_RESIDUAL is False)
    W,  # (N,) weight (gamma), or None
    B,  # (N,) bias (beta), or None
    Y,  # (M, N) output: norm(h) * W + B, in x's dtype
    ResidualOut,  # (M, N) output: h = x + residual, in the residual stream's dtype
    Mean,  # (M,) fp32 output: mean of each row of h (LayerNorm only)
    Rstd,  # (M,) fp32 output: 1 / sqrt(var + eps) of each row
    stride_x_row,  # elements between two rows of X (row-strided views need no copy)
    stride_res_row,
    stride_y_row,
    stride_res_out_row,
    M,  # number of rows (runtime: a new batch size does not recompile)
    N,  # number of features per row
    eps,  # a Python float, which Triton passes as float32
    HAS_RESIDUAL: tl.constexpr,
    STORE_RESIDUAL_OUT: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    IS_RMS_NORM: tl.constexpr,
    STORE_STATS: tl.constexpr,  # mean and rstd, only when a backward will need them
    ROW_ALIGN: tl.constexpr,  # N and every row stride are multiples of it (see row_alignment)
    BLOCK_M: tl.constexpr,  # rows per program (>1 only for short rows)
    BLOCK_N: tl.constexpr,  # next power of two >= N: the whole row in one block
):
    # 1. Which rows and columns this program owns. The program id is cast to int64 *before* it is
    #    multiplied by a stride: row * stride overflows int32 beyond 2**31 elements.
    N = (N // ROW_ALIGN) * ROW_ALIGN  # a no-op that tells the compiler N % ROW_ALIGN == 0
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    row_mask = rows < M
    col_mask = cols < N
    mask = row_mask[:, None] & col_mask[None, :]

    # 2. Load x (and the residual), upcast to fp32 at once: arithmetic and reductions on fp16 or
    #    bf16 values would accumulate in low precision. Padding lanes load 0 (`other=0.0`: a
    #    masked load without it is undefined on a GPU).
    x_ptrs = X + rows[:, None] * ((stride_x_row // ROW_ALIGN) * ROW_ALIGN) + cols[None, :]
    h = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        res_ptrs = Residual + rows[:, None] * ((stride_res_row // ROW_ALIGN) * ROW_ALIGN)
        h += tl.load(res_ptrs + cols[None, :], mask=mask, other=0.0).to(tl.float32)

    # 3. Store the new residual stream, rounded to its dtype, and normalize that rounded value:
    #    then y = norm(h) for exactly the h we return, and the backward (which reloads h) sees
    #    the same numbers as the forward.
    if STORE_RESIDUAL_OUT:
        h_out = h.to(ResidualOut.dtype.element_ty)
        out_ptrs = ResidualOut + rows[:, None] * ((stride_res_out_row // ROW_ALIGN) * ROW_ALIGN)
        tl.store(out_ptrs + cols[None, :], h_out, mask=mask)
        h = h_out.to(tl.float32)

    # 4. Statistics in fp32, two passes over the registers: the mean, then the squares of the
    #    centered values. The padding lanes would contribute (0 - mean)**2 each, so they are
    #    zeroed before the second reduction.
    if IS_RMS_NORM:
        centered = h  # padding lanes are already 0
    else:
        mean = tl.sum(h, axis=1) / N
        centered = tl.where(mask, h - mean[:, None], 0.0)
        if STORE_STATS:
            tl.store(Mean + rows, mean, mask=row_mask)
    var = tl.sum(centered * centered, axis=1) / N
    rstd = 1.0 / tl.sqrt(var + eps)  # not libdevice.rsqrt: the interpreter has no libdevice
    if STORE_STATS:
        tl.store(Rstd + rows, rstd, mask=row_mask)

    # 5. Normalize, scale and shift; store in the output dtype.
    y = centered * rstd[:, None]
    if HAS_WEIGHT:
        w = tl.load(W + cols, mask=col_mask, other=0.0).to(tl.float32)
        y = y * w[None, :]
    if HAS_BIAS:
        b = tl.load(B + cols, mask=col_mask, other=0.0).to(tl.float32)
        y = y + b[None, :]
    y_ptrs = Y + rows[:, None] * ((stride_y_row // ROW_ALIGN) * ROW_ALIGN) + cols[None, :]
    tl.store(y_ptrs, y.to(Y.dtype.element_ty), mask=mask)


def kernel_for(kernel: Any, device: torch.device) -> Any:
    """The kernel to launch on tensors of `device`: CUDA runs it, or the interpreter does.

    Whether a kernel is compiled or interpreted was fixed when Triton was imported (see
    `lessons_lib.kernels.triton_support`); CPU tensors need the interpreted kind.
    """
    if device.type == "cuda":
        return kernel
    if device.type != "cpu":
        raise ValueError(f"backend='triton' runs on 'cuda' or 'cpu' tensors, got device {device}")
    if not isinstance(kernel, InterpretedFunction):
        raise RuntimeError(
            "CPU tensors run in Triton's interpreter, which was not switched on: Triton was "
            "imported in compiled mode. Call lessons_lib.kernels.use_interpreter() (or export "
            "TRITON_INTERPRET=1) before Triton is first imported, or move the tensors to CUDA"
        )
    return kernel


def device_guard(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Launch on the tensors' GPU, not the current one (tensors on cuda:1 while cuda:0 is
    current would otherwise run on the wrong device). A no-op off CUDA."""
    if device.type == "cuda":
        return torch.cuda.device(device)
    return contextlib.nullcontext()


def launch(kernel: Any, grid: Any, *args: Any, **kwargs: Any) -> Any:
    """`kernel[grid](*args, **kwargs)`: the one place the launchers start a kernel
    (`ptx_report` replaces it to compile what the launchers would run, without a GPU)."""
    return kernel[grid](*args, **kwargs)


def forward(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
    is_rms_norm: bool,
    residual_dtype: torch.dtype,
    store_residual_out: bool,
    store_stats: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Launch the forward on rows x (M, N). Returns y, h (or None), mean, rstd.

    mean is None for RMSNorm, and mean and rstd are None without `store_stats` (no backward).
    Inputs must have stride 1 along the last dimension (weight and bias: contiguous); their row
    strides may be anything.
    """
    m, n = x.shape
    device = x.device
    y = torch.empty((m, n), dtype=x.dtype, device=device)
    h = torch.empty((m, n), dtype=residual_dtype, device=device) if store_residual_out else None
    mean = rstd = None
    if store_stats:
        mean = None if is_rms_norm else torch.empty((m,), dtype=torch.float32, device=device)
        rstd = torch.empty((m,), dtype=torch.float32, device=device)
    if m == 0:  # a grid of zero programs is an error on some backends: return before launching
        return y, h, mean, rstd
    config = config_for(forward_config(n, x.element_size()), device)
    strides = (x.stride(0), y.stride(0), *(t.stride(0) for t in (residual, h) if t is not None))
    kernel = kernel_for(fused_add_norm_fwd_kernel, device)
    options = {"num_warps": config.num_warps}
    if device.type == "cuda" and autotune_enabled():
        kernel, options = _tuned_forward(), {}
    with device_guard(device):
        launch(
            kernel, (triton.cdiv(m, config.block_m),),
            x, residual, weight, bias, y, h, mean, rstd,
            x.stride(0),
            0 if residual is None else residual.stride(0),
            y.stride(0),
            0 if h is None else h.stride(0),
            m, n, float(eps),
            HAS_RESIDUAL=residual is not None,
            STORE_RESIDUAL_OUT=store_residual_out,
            HAS_WEIGHT=weight is not None,
            HAS_BIAS=bias is not None,
            IS_RMS_NORM=is_rms_norm,
            STORE_STATS=store_stats,
            ROW_ALIGN=row_alignment(n, *strides),
            BLOCK_M=config.block_m,
            BLOCK_N=config.block_n,
            **options,
        )
    return y, h, mean, rstd


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=["M", "programs_per_sm"])
def fused_add_norm_bwd_kernel(  # type: ignore[no-untyped-def]
    DY,  # (M, N) gradient of the loss with respect to y
    DResidualOut,  # (M, N) gradient flowing into h from later layers (None if absent)
    H,  # (M, N) the residual stream h saved by the forward
    W,  # (N,) weight, or None
    Mean,  # (M,) fp32 from the forward (LayerNorm only)
    Rstd,  # (M,) fp32 from the forward
    DX,  # (M, N) output: gradient for x, and for the residual when it has x's dtype
    DResidualIn,  # (M, N) output: gradient for the residual, when its dtype is not x's
    DW,  # (programs, N) fp32 output: this program's partial sum of dweight
    DB,  # (programs, N) fp32 output: this program's partial sum of dbias
    stride_dy_row,
    stride_dres_out_row,
    stride_h_row,
    stride_dx_row,
    stride_dres_in_row,
    M,
    N,
    programs_per_sm,  # unused here: it sizes the grid, and the autotuner varies it
    HAS_DRESIDUAL_OUT: tl.constexpr,
    STORE_DX: tl.constexpr,  # somebody wants DX (x, or a residual of x's dtype)
    STORE_DRESIDUAL_IN: tl.constexpr,  # a residual of another dtype wants its gradient
    HAS_WEIGHT: tl.constexpr,
    COMPUTE_DW: tl.constexpr,  # the weight wants a gradient
    COMPUTE_DB: tl.constexpr,  # the bias wants a gradient
    IS_RMS_NORM: tl.constexpr,
    ACC_IN_REGISTERS: tl.constexpr,  # False for the widest rows (see 2.)
    ROW_ALIGN: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # 1. This program's rows: the grid has P programs (a few per SM), the M rows are cut into
    #    tiles of BLOCK_M, and program p takes tiles [p * T, (p + 1) * T) with T = ceil(tiles / P).
    #    All of it is computed here from runtime values: a new M reuses the compiled kernel.
    N = (N // ROW_ALIGN) * ROW_ALIGN
    pid = tl.program_id(0).to(tl.int64)
    tiles = tl.cdiv(M, BLOCK_M)
    rows_per_program = tl.cdiv(tiles, tl.num_programs(0)) * BLOCK_M
    row_begin = pid * rows_per_program
    row_end = tl.minimum(row_begin + rows_per_program, M)  # the last programs may get no rows
    cols = tl.arange(0, BLOCK_N)
    col_mask = cols < N

    # 2. Running fp32 sums of dweight and dbias, one value per column (a 1-D row: each tile is
    #    reduced over its BLOCK_M rows as it goes, so they cost BLOCK_N values, not
    #    BLOCK_M * BLOCK_N). No two programs touch the same memory: no atomics. For the widest
    #    rows they do not fit in registers next to the row itself; then they live in this
    #    program's own row of DW and DB (in the L2 cache) and are read, added to and written
    #    back for every tile.
    dw_acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    db_acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
    if not ACC_IN_REGISTERS:
        if COMPUTE_DW:
            tl.store(DW + pid * N + cols, dw_acc, mask=col_mask)
        if COMPUTE_DB:
            tl.store(DB + pid * N + cols, db_acc, mask=col_mask)
    for row_start in range(row_begin, row_end, BLOCK_M):
        # int64 once more: the interpreter hands the loop variable over as a Python int, which
        # Triton would treat as int32 (compiled, it is int64 already, like row_begin).
        rows = row_start + tl.arange(0, BLOCK_M).to(tl.int64)
        row_mask = rows < row_end
        mask = row_mask[:, None] & col_mask[None, :]

        # 3. Recompute x_hat from the saved h and the fp32 statistics (cheaper than storing it).
        #    Padding lanes: x_hat = 0 and dy = 0 there, so they add nothing to any sum below.
        h_ptrs = H + rows[:, None] * ((stride_h_row // ROW_ALIGN) * ROW_ALIGN) + cols[None, :]
        h = tl.load(h_ptrs, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(Rstd + rows, mask=row_mask, other=0.0)
        if IS_RMS_NORM:
            x_hat = h * rstd[:, None]
        else:
            mean = tl.load(Mean + rows, mask=row_mask, other=0.0)
            x_hat = tl.where(mask, (h - mean[:, None]) * rstd[:, None], 0.0)
        dy_ptrs = DY + rows[:, None] * ((stride_dy_row // ROW_ALIGN) * ROW_ALIGN) + cols[None, :]
        dy = tl.load(dy_ptrs, mask=mask, other=0.0).to(tl.float32)

        # 4. The parameter gradients first: after this, dy is needed only in g.
        if ACC_IN_REGISTERS:
            if COMPUTE_DW:
                dw_acc += tl.sum(dy * x_hat, axis=0)
            if COMPUTE_DB:
                db_acc += tl.sum(dy, axis=0)
        else:
            if COMPUTE_DW:
                dw_row = tl.load(DW + pid * N + cols, mask=col_mask, other=0.0)
                tl.store(DW + pid * N + cols, dw_row + tl.sum(dy * x_hat, axis=0), mask=col_mask)
            if COMPUTE_DB:
                db_row = tl.load(DB + pid * N + cols, mask=col_mask, other=0.0)
                tl.store(DB + pid * N + cols, db_row + tl.sum(dy, axis=0), mask=col_mask)
            tl.debug_barrier()  # the next tile's load may be another thread's: order them

        if STORE_DX or STORE_DRESIDUAL_IN:
            # 5. g = dy * w is the gradient with respect to x_hat. w is reloaded for every tile
            #    (from the cache: N values, not a new pass over memory) instead of being held in
            #    registers across the loop; loaded as a (1, BLOCK_N) tile, it comes in the same
            #    layout as dy, with no reshuffle through shared memory.
            if HAS_WEIGHT:
                w = tl.load(W + cols[None, :], mask=col_mask[None, :], other=0.0)
                g = dy * w.to(tl.float32)
            else:
                g = dy
            # dh = rstd * (g - mean(g) - x_hat * mean(g * x_hat)); RMSNorm has no mean(g) term.
            c1 = tl.sum(x_hat * g, axis=1) / N
            if IS_RMS_NORM:
                dh = (g - x_hat * c1[:, None]) * rstd[:, None]
            else:
                c2 = tl.sum(g, axis=1) / N
                dh = (g - x_hat * c1[:, None] - c2[:, None]) * rstd[:, None]
            # 6. h feeds both the norm and the later layers: add the gradient they sent back.
            if HAS_DRESIDUAL_OUT:
                dres_ptrs = DResidualOut + rows[:, None] * (
                    (stride_dres_out_row // ROW_ALIGN) * ROW_ALIGN
                )
                dh += tl.load(dres_ptrs + cols[None, :], mask=mask, other=0.0).to(tl.float32)
            # 7. h = x + residual, so x and the residual both receive dh. With equal dtypes the
            #    host hands the same tensor to both; otherwise the residual's copy is written too.
            if STORE_DX:
                dx_ptrs = DX + rows[:, None] * ((stride_dx_row // ROW_ALIGN) * ROW_ALIGN)
                tl.store(dx_ptrs + cols[None, :], dh.to(DX.dtype.element_ty), mask=mask)
            if STORE_DRESIDUAL_IN:
                dri_ptrs = DResidualIn + rows[:, None] * (
                    (stride_dres_in_row // ROW_ALIGN) * ROW_ALIGN
                )
                tl.store(dri_ptrs + cols[None, :], dh.to(DResidualIn.dtype.element_ty), mask=mask)

    # 8. Every program writes its row of partial sums, zeros if it got no rows (with the sums in
    #    memory, it wrote them at the start): the buffer comes from torch.empty, and the host
    #    adds up the rows of all the programs it launched.
    if ACC_IN_REGISTERS:
        if COMPUTE_DW:
            tl.store(DW + pid * N + cols, dw_acc, mask=col_mask)
        if COMPUTE_DB:
            tl.store(DB + pid * N + cols, db_acc, mask=col_mask)


def sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device."""
    return torch.cuda.get_device_properties(device).multi_processor_count


def num_programs(device: torch.device, programs_per_sm: int) -> int:
    """Upper bound on the backward grid: programs_per_sm per SM, or CPU_PROGRAMS on the CPU."""
    if device.type == "cuda":
        return programs_per_sm * sm_count(device)
    return CPU_PROGRAMS


def new_partials(programs: int, n: int, device: torch.device) -> torch.Tensor:
    """The (programs, N) fp32 buffer of partial sums (its own function so tests can poison it)."""
    return torch.empty((programs, n), dtype=torch.float32, device=device)


def backward(
    dy: torch.Tensor,
    dresidual_out: torch.Tensor | None,
    h: torch.Tensor,
    weight: torch.Tensor | None,
    mean: torch.Tensor | None,
    rstd: torch.Tensor,
    x_dtype: torch.dtype,
    residual_dtype: torch.dtype | None,
    *,
    want_dx: bool = True,
    want_dresidual: bool = True,
    want_dweight: bool = True,
    want_dbias: bool = True,
    max_programs: int | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Launch the backward on rows (M, N). Returns dx, dresidual, dweight, dbias (None: not wanted).

    `residual_dtype`: dtype of the residual the forward added (None: there was none). When it is
    x's dtype, dresidual *is* dx: the same tensor, written once (both equal dh). dweight/dbias
    come back in fp32 (sums of per-program fp32 partials, in a fixed order); the caller casts.
    """
    m, n = h.shape
    device = h.device
    want_dresidual = want_dresidual and residual_dtype is not None
    alias = want_dresidual and residual_dtype == x_dtype
    store_dx = want_dx or alias
    store_dres = want_dresidual and not alias
    want_dweight = want_dweight and weight is not None
    dx = torch.empty((m, n), dtype=x_dtype, device=device) if store_dx else None
    dres = torch.empty((m, n), dtype=residual_dtype, device=device) if store_dres else None
    dw = db = None
    if m > 0:
        dw, db = _launch_backward(dy, dresidual_out, h, weight, mean, rstd, dx, dres,
                                  want_dweight, want_dbias, max_programs)
    else:
        zeros = torch.zeros((n,), dtype=torch.float32, device=device)
        dw, db = (zeros if want_dweight else None), (zeros.clone() if want_dbias else None)
    return (dx if want_dx else None, dx if alias else dres, dw, db)


def _launch_backward(
    dy: torch.Tensor, dresidual_out: torch.Tensor | None, h: torch.Tensor,
    weight: torch.Tensor | None, mean: torch.Tensor | None, rstd: torch.Tensor,
    dx: torch.Tensor | None, dres: torch.Tensor | None, want_dw: bool, want_db: bool,
    max_programs: int | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The launch itself; returns the summed fp32 dweight and dbias (or None)."""
    m, n = h.shape
    device = h.device
    config = config_for(backward_config(n, h.element_size()), device)
    tiles = triton.cdiv(m, config.block_m)
    kernel = kernel_for(fused_add_norm_bwd_kernel, device)
    tuned = device.type == "cuda" and autotune_enabled() and max_programs is None
    grid: Any
    options: dict[str, int] = {}
    if tuned:
        kernel = _tuned_backward()
        buffer_rows = min(tiles, num_programs(device, max(PROGRAMS_PER_SM)))
        grid = lambda meta: (min(tiles, num_programs(device, meta["programs_per_sm"])),)  # noqa: E731
    else:
        buffer_rows = min(tiles, max_programs or num_programs(device, config.programs_per_sm))
        grid = (buffer_rows,)
        options = {"num_warps": config.num_warps, "programs_per_sm": config.programs_per_sm}
    dw = new_partials(buffer_rows, n, device) if want_dw else None
    db = new_partials(buffer_rows, n, device) if want_db else None
    strides = [t.stride(0) for t in (dy, dresidual_out, h, dx, dres) if t is not None]
    with device_guard(device):
        launch(
            kernel, grid,
            dy, dresidual_out, h, weight, mean, rstd, dx, dres, dw, db,
            dy.stride(0),
            0 if dresidual_out is None else dresidual_out.stride(0),
            h.stride(0),
            0 if dx is None else dx.stride(0),
            0 if dres is None else dres.stride(0),
            m, n,
            HAS_DRESIDUAL_OUT=dresidual_out is not None,
            STORE_DX=dx is not None,
            STORE_DRESIDUAL_IN=dres is not None,
            HAS_WEIGHT=weight is not None,
            COMPUTE_DW=want_dw,
            COMPUTE_DB=want_db,
            IS_RMS_NORM=mean is None,
            ACC_IN_REGISTERS=config.acc_in_registers,
            ROW_ALIGN=row_alignment(n, *strides),
            BLOCK_M=config.block_m,
            BLOCK_N=config.block_n,
            **options,
        )
    programs = buffer_rows
    if tuned:  # the autotuner ran its best configuration last: only its rows were written
        programs = min(tiles, num_programs(device, kernel.best_config.kwargs["programs_per_sm"]))
    # Second stage of the deterministic reduction: sum the partial rows (fixed shape, fixed order).
    return (None if dw is None else dw[:programs].sum(dim=0),
            None if db is None else db[:programs].sum(dim=0))


# ---------------------------------------------------------------------------------------------
# Autotuning (CUDA only: the interpreter cannot time configurations)
# ---------------------------------------------------------------------------------------------

_TUNED: dict[str, object] = {}
_FWD_KEY = ["N", "HAS_RESIDUAL", "STORE_RESIDUAL_OUT", "HAS_WEIGHT", "HAS_BIAS", "IS_RMS_NORM",
            "STORE_STATS", "ROW_ALIGN", "BLOCK_M", "BLOCK_N"]
_BWD_KEY = ["N", "HAS_DRESIDUAL_OUT", "STORE_DX", "STORE_DRESIDUAL_IN", "HAS_WEIGHT",
            "COMPUTE_DW", "COMPUTE_DB", "IS_RMS_NORM", "ROW_ALIGN", "BLOCK_M", "BLOCK_N"]
WARPS = (1, 2, 4, 8, 16, 32)
PROGRAMS_PER_SM = (1, 2, 4, 8)


def _near(configs: list[Any], heuristic: Config) -> list[Any]:
    """Candidates: half, the same and twice the heuristic's warps (each is a compile), and
    no more than 64 warps resident per SM."""
    warps = {heuristic.num_warps // 2, heuristic.num_warps, 2 * heuristic.num_warps}
    return [c for c in configs if c.num_warps in warps
            and c.num_warps * c.kwargs.get("programs_per_sm", 1) <= 64]


def _tuned_forward() -> Any:
    """The forward wrapped in `triton.autotune` over num_warps, keyed on N and the flags."""
    if "fwd" not in _TUNED:
        _TUNED["fwd"] = triton.autotune(
            configs=[triton.Config({}, num_warps=w) for w in WARPS], key=_FWD_KEY,
            prune_configs_by={"early_config_prune": lambda configs, nargs, **kw: _near(
                configs, forward_config(nargs["N"], nargs["X"].element_size()))},
        )(fused_add_norm_fwd_kernel)
    return _TUNED["fwd"]


def _tuned_backward() -> Any:
    """The backward wrapped in `triton.autotune` over num_warps x programs per SM (a runtime
    argument: it changes the grid, not the compiled code)."""
    if "bwd" not in _TUNED:
        _TUNED["bwd"] = triton.autotune(
            configs=[triton.Config({"programs_per_sm": p}, num_warps=w)
                     for w in WARPS for p in PROGRAMS_PER_SM],
            key=_BWD_KEY,
            prune_configs_by={"early_config_prune": lambda configs, nargs, **kw: _near(
                configs, backward_config(nargs["N"], nargs["H"].element_size()))},
        )(fused_add_norm_bwd_kernel)
    return _TUNED["bwd"]
