# Forgets seed_everything(seed): the result depends on whatever the generator's state is, not
# on the seed it was asked for.
def scaled_gradient_ratio(alpha, depth, seed):
    net = make_net("residual", depth, 32, 64, 10, placement="preact", norm="none")
    with torch.no_grad():
        for block in net.blocks:
            block.branch[-1].weight.mul_(alpha)
    norms = input_gradient_norms(net.blocks, lambda: F.cross_entropy(net(x_probe), y_probe))
    return norms[0] / norms[-1]
