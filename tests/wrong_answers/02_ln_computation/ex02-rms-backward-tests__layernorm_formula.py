# Copies LayerNorm's backward: also removes the mean of g, a direction RMSNorm does not ignore.
def my_rms_norm_backward(dout, x, gamma, eps=1e-6):
    rstd = torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps)
    x_hat = x * rstd
    rows = tuple(range(x.dim() - 1))
    g = dout * gamma
    dx = rstd * (g - g.mean(dim=-1, keepdim=True) - x_hat * (g * x_hat).mean(dim=-1, keepdim=True))
    return dx, (dout * x_hat).sum(dim=rows)
