"""Triton kernels of the fused residual add + LayerNorm/RMSNorm, and the host code launching them.

This module imports Triton at the top; `lessons_lib.kernels.api` imports it only when
the Triton backend is used. Read in order: the forward kernel, its launcher, the backward kernel,
its launcher.

Shapes: the host flattens every input to rows, so the kernels see M rows of N features.
h = x + residual is "the residual stream"; y = norm(h) * weight + bias.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

# A row lives in registers: the kernel refuses rows wider than 64 KiB of input.
MAX_ROW_BYTES = 65536
# Backward grid when the device has no SM count (CPU tensors, run by the interpreter). Fixed,
# not os.cpu_count(), so the order of the dweight/dbias sums is the same on every machine.
CPU_PROGRAMS = 4
# Backward grid on a GPU: this many programs per streaming multiprocessor (SM).
PROGRAMS_PER_SM = 2


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=["M"])
def fused_add_norm_fwd_kernel(
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
    BLOCK_M: tl.constexpr,  # rows per program (>1 only for short rows)
    BLOCK_N: tl.constexpr,  # next power of two >= N: the whole row in one block
):
    # 1. Which rows and columns this program owns. The program id is cast to int64 *before* it is
    #    multiplied by a stride: row * stride overflows int32 beyond 2**31 elements.
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, BLOCK_N)
    row_mask = rows < M
    col_mask = cols < N
    mask = row_mask[:, None] & col_mask[None, :]

    # 2. Load x (and the residual), upcast to fp32 at once: arithmetic and reductions on fp16 or
    #    bf16 values would accumulate in low precision. Padding lanes load 0.
    x = tl.load(X + rows[:, None] * stride_x_row + cols[None, :], mask=mask, other=0.0)
    h = x.to(tl.float32)
    if HAS_RESIDUAL:
        r = tl.load(Residual + rows[:, None] * stride_res_row + cols[None, :], mask=mask, other=0.0)
        h += r.to(tl.float32)

    # 3. Store the new residual stream, rounded to its dtype, and normalize that rounded value:
    #    then y = norm(h) for exactly the h we return, and the backward (which reloads h) sees
    #    the same numbers as the forward.
    if STORE_RESIDUAL_OUT:
        h_out = h.to(ResidualOut.dtype.element_ty)
        tl.store(ResidualOut + rows[:, None] * stride_res_out_row + cols[None, :], h_out, mask=mask)
        h = h_out.to(tl.float32)

    # 4. Statistics in fp32, two passes over the registers: the mean, then the squares of the
    #    centered values. The padding lanes would contribute (0 - mean)**2 each, so they are
    #    zeroed before the second reduction.
    if IS_RMS_NORM:
        centered = h  # padding lanes are already 0
    else:
        mean = tl.sum(h, axis=1) / N
        centered = tl.where(mask, h - mean[:, None], 0.0)
        tl.store(Mean + rows, mean, mask=row_mask)
    var = tl.sum(centered * centered, axis=1) / N
    rstd = 1.0 / tl.sqrt(var + eps)  # not libdevice.rsqrt: the interpreter has no libdevice
    tl.store(Rstd + rows, rstd, mask=row_mask)

    # 5. Normalize, scale and shift; store in the output dtype.
    y = centered * rstd[:, None]
    if HAS_WEIGHT:
        w = tl.load(W + cols, mask=col_mask, other=0.0).to(tl.float32)
        y = y * w[None, :]
    if HAS_BIAS:
        b = tl.load(B + cols, mask=col_mask, other=0.0).to(tl.float32)
        y = y + b[None, :]
    tl.store(Y + rows[:, None] * stride_y_row + cols[None, :], y.to(Y.dtype.element_ty), mask=mask)


def block_sizes(n: int) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps) for rows of n features; depends on n only, not on M."""
    block_n = triton.next_power_of_2(n)
    # Short rows: several per program, so a program has at least ~4096 elements to work on.
    block_m = max(1, min(16, 4096 // block_n))
    # About 16 elements of each tensor per thread (32 threads per warp), 1 to 16 warps. Not
    # tuned on a GPU yet: a starting point, like the Triton tutorial's BLOCK // 256 rule.
    num_warps = min(max(block_m * block_n // 512, 1), 16)
    return block_m, block_n, num_warps


def max_features(dtype: torch.dtype) -> int:
    """Largest N the kernel accepts for inputs of `dtype` (a row of at most MAX_ROW_BYTES)."""
    return MAX_ROW_BYTES // torch.empty((), dtype=dtype).element_size()


def kernel_for(kernel, device: torch.device):
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


def forward(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    weight: torch.Tensor | None,
    bias: torch.Tensor | None,
    eps: float,
    is_rms_norm: bool,
    residual_dtype: torch.dtype,
    store_residual_out: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """Launch the forward on rows x (M, N). Returns y, h (or None), mean (None for RMS), rstd.

    Inputs must have stride 1 along the last dimension; their row strides may be anything.
    """
    m, n = x.shape
    device = x.device
    y = torch.empty((m, n), dtype=x.dtype, device=device)
    h = torch.empty((m, n), dtype=residual_dtype, device=device) if store_residual_out else None
    mean = None if is_rms_norm else torch.empty((m,), dtype=torch.float32, device=device)
    rstd = torch.empty((m,), dtype=torch.float32, device=device)
    if m == 0:  # a grid of zero programs is an error on some backends: return before launching
        return y, h, mean, rstd
    block_m, block_n, num_warps = block_sizes(n)
    kernel = kernel_for(fused_add_norm_fwd_kernel, device)
    kernel[(triton.cdiv(m, block_m),)](
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
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        num_warps=num_warps,
    )
    return y, h, mean, rstd


# ---------------------------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------------------------


@triton.jit(do_not_specialize=["M", "rows_per_program"])
def fused_add_norm_bwd_kernel(
    DY,  # (M, N) gradient of the loss with respect to y
    DResidualOut,  # (M, N) gradient flowing into h from later layers (None if absent)
    H,  # (M, N) the residual stream h saved by the forward
    W,  # (N,) weight, or None
    Mean,  # (M,) fp32 from the forward (LayerNorm only)
    Rstd,  # (M,) fp32 from the forward
    DX,  # (M, N) output: gradient for x
    DResidualIn,  # (M, N) output: gradient for the incoming residual (None if not needed)
    DW,  # (num_programs, N) fp32 output: this program's partial sum of dweight
    DB,  # (num_programs, N) fp32 output: this program's partial sum of dbias
    stride_dy_row,
    stride_dres_out_row,
    stride_h_row,
    stride_dx_row,
    stride_dres_in_row,
    M,
    N,
    rows_per_program,  # runtime, a multiple of BLOCK_M: new batch sizes reuse the compiled kernel
    HAS_DRESIDUAL_OUT: tl.constexpr,
    STORE_DRESIDUAL_IN: tl.constexpr,
    HAS_WEIGHT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    IS_RMS_NORM: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
):
    # Each program walks over its own contiguous range of rows and keeps running fp32 sums of
    # dweight and dbias in registers; no two programs touch the same memory, so no atomics.
    pid = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    col_mask = cols < N
    if HAS_WEIGHT:
        w = tl.load(W + cols, mask=col_mask, other=0.0).to(tl.float32)
    dw_acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    db_acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    row_begin = pid * rows_per_program
    row_end = tl.minimum(row_begin + rows_per_program, M)
    for row_start in range(row_begin, row_end, BLOCK_M):
        # int64 once more: the interpreter hands the loop variable over as a Python int, which
        # Triton would treat as int32 (compiled, it is int64 already, like row_begin).
        rows = row_start + tl.arange(0, BLOCK_M).to(tl.int64)
        row_mask = rows < row_end
        mask = row_mask[:, None] & col_mask[None, :]
        # Recompute x_hat from the saved h and the fp32 statistics (cheaper than storing it).
        h = tl.load(H + rows[:, None] * stride_h_row + cols[None, :], mask=mask, other=0.0)
        h = h.to(tl.float32)
        dy = tl.load(DY + rows[:, None] * stride_dy_row + cols[None, :], mask=mask, other=0.0)
        dy = dy.to(tl.float32)
        rstd = tl.load(Rstd + rows, mask=row_mask, other=0.0)
        # Padding lanes: dy = 0 there, so they add nothing to any sum below; x_hat is zeroed
        # there as well, so that no reduction depends on that coincidence.
        if IS_RMS_NORM:
            x_hat = h * rstd[:, None]  # h = 0 in padding lanes
        else:
            mean = tl.load(Mean + rows, mask=row_mask, other=0.0)
            x_hat = tl.where(mask, (h - mean[:, None]) * rstd[:, None], 0.0)
        # g = dy * w is the gradient with respect to x_hat.
        if HAS_WEIGHT:
            g = dy * w[None, :]
            dw_acc += dy * x_hat
        else:
            g = dy
        if HAS_BIAS:
            db_acc += dy
        # dh = rstd * (g - mean(g) - x_hat * mean(g * x_hat)); RMSNorm has no mean(g) term.
        c1 = tl.sum(x_hat * g, axis=1) / N
        if IS_RMS_NORM:
            dh = (g - x_hat * c1[:, None]) * rstd[:, None]
        else:
            c2 = tl.sum(g, axis=1) / N
            dh = (g - x_hat * c1[:, None] - c2[:, None]) * rstd[:, None]
        # h feeds both the norm and the later layers: add the gradient they sent back.
        if HAS_DRESIDUAL_OUT:
            dres = tl.load(
                DResidualOut + rows[:, None] * stride_dres_out_row + cols[None, :],
                mask=mask, other=0.0,
            )
            dh += dres.to(tl.float32)
        # h = x + residual, so x and the residual both receive dh.
        tl.store(DX + rows[:, None] * stride_dx_row + cols[None, :],
                 dh.to(DX.dtype.element_ty), mask=mask)
        if STORE_DRESIDUAL_IN:
            tl.store(DResidualIn + rows[:, None] * stride_dres_in_row + cols[None, :],
                     dh.to(DResidualIn.dtype.element_ty), mask=mask)
    # Every program writes its row of partial sums, zeros if it got no rows: the buffer comes
    # from torch.empty and the host sums all of it.
    if HAS_WEIGHT:
        tl.store(DW + pid * N + cols, tl.sum(dw_acc, axis=0), mask=col_mask)
    if HAS_BIAS:
        tl.store(DB + pid * N + cols, tl.sum(db_acc, axis=0), mask=col_mask)


def num_programs(device: torch.device) -> int:
    """Upper bound on the backward grid: a few programs per SM, or CPU_PROGRAMS on the CPU."""
    if device.type == "cuda":
        return PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count
    return CPU_PROGRAMS


def new_partials(programs: int, n: int, device: torch.device) -> torch.Tensor:
    """The (programs, N) fp32 buffer of partial sums (its own function so tests can poison it)."""
    return torch.empty((programs, n), dtype=torch.float32, device=device)


def backward(
    dy: torch.Tensor,
    dresidual_out: torch.Tensor | None,
    h: torch.Tensor,
    weight: torch.Tensor | None,
    has_bias: bool,
    mean: torch.Tensor | None,
    rstd: torch.Tensor,
    x_dtype: torch.dtype,
    dresidual_in_dtype: torch.dtype | None,
    max_programs: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """Launch the backward on rows (M, N). Returns dx, dresidual (or None), dweight, dbias.

    dweight/dbias come back in fp32 (sums of per-program fp32 partials, in a fixed order);
    the caller casts them to the parameters' dtype. `dresidual_in_dtype=None`: no dresidual.
    """
    m, n = h.shape
    device = h.device
    dx = torch.empty((m, n), dtype=x_dtype, device=device)
    dres_in = None
    if dresidual_in_dtype is not None:
        dres_in = torch.empty((m, n), dtype=dresidual_in_dtype, device=device)
    if m == 0:
        zeros = torch.zeros((n,), dtype=torch.float32, device=device)
        return dx, dres_in, zeros if weight is not None else None, zeros if has_bias else None
    block_m, block_n, num_warps = block_sizes(n)
    tiles = triton.cdiv(m, block_m)
    programs = min(tiles, max_programs or num_programs(device))
    rows_per_program = triton.cdiv(tiles, programs) * block_m
    dw = new_partials(programs, n, device) if weight is not None else None
    db = new_partials(programs, n, device) if has_bias else None
    kernel = kernel_for(fused_add_norm_bwd_kernel, device)
    kernel[(programs,)](
        dy, dresidual_out, h, weight, mean, rstd, dx, dres_in, dw, db,
        dy.stride(0),
        0 if dresidual_out is None else dresidual_out.stride(0),
        h.stride(0),
        dx.stride(0),
        0 if dres_in is None else dres_in.stride(0),
        m, n, rows_per_program,
        HAS_DRESIDUAL_OUT=dresidual_out is not None,
        STORE_DRESIDUAL_IN=dres_in is not None,
        HAS_WEIGHT=weight is not None,
        HAS_BIAS=has_bias,
        IS_RMS_NORM=mean is None,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        num_warps=num_warps,
    )
    # Second stage of the deterministic reduction: sum the partial rows (fixed shape, fixed order).
    return (
        dx,
        dres_in,
        None if dw is None else dw.sum(dim=0),
        None if db is None else db.sum(dim=0),
    )
