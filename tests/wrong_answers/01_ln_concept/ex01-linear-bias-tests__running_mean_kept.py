# Drops the bias but keeps BN's running mean: training mode agrees, evaluation mode is off by
# the bias (scaled by gamma / sigma).
def drop_linear_bias(linear, bn):
    linear2 = nn.Linear(linear.in_features, linear.out_features, bias=False,
                        dtype=linear.weight.dtype)
    with torch.no_grad():
        linear2.weight.copy_(linear.weight)
    return linear2, copy.deepcopy(bn)
