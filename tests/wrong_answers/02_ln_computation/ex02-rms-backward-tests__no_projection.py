# Treats r as a constant: dx = r * g, forgetting that r depends on x.
def my_rms_norm_backward(dout, x, gamma, eps=1e-6):
    rstd = torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps)
    x_hat = x * rstd
    rows = tuple(range(x.dim() - 1))
    g = dout * gamma
    return rstd * g, (dout * x_hat).sum(dim=rows)
