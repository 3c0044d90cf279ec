# Sums dgamma over the feature axis instead of over the tokens.
def my_rms_norm_backward(dout, x, gamma, eps=1e-6):
    rstd = torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps)
    x_hat = x * rstd
    g = dout * gamma
    dx = rstd * (g - x_hat * (g * x_hat).mean(dim=-1, keepdim=True))
    return dx, (dout * x_hat).sum(dim=-1)
