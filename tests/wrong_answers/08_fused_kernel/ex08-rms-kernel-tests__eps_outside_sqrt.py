# Puts eps outside the square root: x / (sqrt(mean(x^2)) + eps), wrong for rows of small values.
@triton.jit
def student_rms_norm_kernel(X, W, Y, stride_x_row, stride_y_row, N, eps, BLOCK_N: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK_N)
    mask = cols < N
    x = tl.load(X + row * stride_x_row + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / (tl.sqrt(tl.sum(x * x, axis=0) / N) + eps)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + row * stride_y_row + cols, (x * rstd * w).to(Y.dtype.element_ty), mask=mask)


def student_rms_norm(x, weight, eps=1e-6):
    m, n = x.shape
    y = torch.empty((m, n), dtype=x.dtype, device=x.device)
    student_rms_norm_kernel[(m,)](x, weight, y, x.stride(0), y.stride(0), n, eps,
                                  BLOCK_N=triton.next_power_of_2(n))
    return y
