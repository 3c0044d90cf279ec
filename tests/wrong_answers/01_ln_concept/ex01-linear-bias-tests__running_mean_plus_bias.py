# Corrects the running mean in the wrong direction: adds the bias instead of subtracting it.
def drop_linear_bias(linear, bn):
    linear2 = nn.Linear(linear.in_features, linear.out_features, bias=False,
                        dtype=linear.weight.dtype)
    bn2 = copy.deepcopy(bn)
    with torch.no_grad():
        linear2.weight.copy_(linear.weight)
        bn2.running_mean.add_(linear.bias)
    return linear2, bn2
