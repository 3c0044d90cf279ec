# Wrong: rebuilds x correctly but then calls the course library's RMSNorm on it, which the
# exercise rules out: the point is the formula for the mean square.
def rms_from_ln(ln_out, mean, var, eps=1e-5):
    x = mean.unsqueeze(-1) + ln_out * torch.sqrt(var.unsqueeze(-1) + eps)
    return libnorm.rms_norm_forward(x, eps=eps)[0]
