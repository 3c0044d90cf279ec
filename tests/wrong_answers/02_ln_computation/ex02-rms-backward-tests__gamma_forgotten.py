# Forgets the gain in dL/dx-hat: g = dout instead of dout * gamma.
def my_rms_norm_backward(dout, x, gamma, eps=1e-6):
    rstd = torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps)
    x_hat = x * rstd
    rows = tuple(range(x.dim() - 1))
    g = dout
    dx = rstd * (g - x_hat * (g * x_hat).mean(dim=-1, keepdim=True))
    return dx, (dout * x_hat).sum(dim=rows)
