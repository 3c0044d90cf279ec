# Wrong: takes the mean of x² to be the variance, forgetting the mean² term, so it divides x by
# its standard deviation instead of by its root mean square.
def rms_from_ln(ln_out, mean, var, eps=1e-5):
    mean, var = mean.unsqueeze(-1), var.unsqueeze(-1)
    x = mean + ln_out * torch.sqrt(var + eps)
    return x / torch.sqrt(var + eps)
