# Puts eps outside the square root: 1 / (sqrt(var) + eps) instead of 1 / sqrt(var + eps).
def bn_eval_affine(bn):
    with torch.no_grad():
        scale = bn.weight / (torch.sqrt(bn.running_var) + bn.eps)
        shift = bn.bias - bn.running_mean * scale
    return scale, shift
