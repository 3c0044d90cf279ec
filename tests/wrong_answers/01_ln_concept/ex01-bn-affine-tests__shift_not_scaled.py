# Forgets that the mean is subtracted before scaling: shift = beta - mean, not beta - mean * scale.
def bn_eval_affine(bn):
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias - bn.running_mean
    return scale, shift
