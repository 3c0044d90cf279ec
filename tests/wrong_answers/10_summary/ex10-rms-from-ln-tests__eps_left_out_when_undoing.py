# Wrong: undoes LayerNorm with sqrt(var) instead of sqrt(var + eps), so x is rebuilt slightly
# too small, noticeably so when the variance is near eps.
def rms_from_ln(ln_out, mean, var, eps=1e-5):
    mean, var = mean.unsqueeze(-1), var.unsqueeze(-1)
    x = mean + ln_out * torch.sqrt(var)
    return x / torch.sqrt(var + mean * mean + eps)
