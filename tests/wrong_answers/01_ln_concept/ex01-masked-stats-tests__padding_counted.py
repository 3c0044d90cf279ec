# Zeroes the padding but still divides by every position, padding included.
def masked_batch_stats(x, mask):
    w = mask.to(x.dtype).unsqueeze(-1)
    mean = (x * w).mean(dim=(0, 1))
    var = ((x - mean).pow(2) * w).mean(dim=(0, 1))
    return mean, var
