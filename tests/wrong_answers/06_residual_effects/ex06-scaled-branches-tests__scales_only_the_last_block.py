# Scales the branch of the last block only, so the other blocks still explode.
def scaled_gradient_ratio(alpha, depth, seed):
    seed_everything(seed)
    net = make_net("residual", depth, 32, 64, 10, placement="preact", norm="none")
    with torch.no_grad():
        net.blocks[-1].branch[-1].weight.mul_(alpha)
    norms = input_gradient_norms(net.blocks, lambda: F.cross_entropy(net(x_probe), y_probe))
    return norms[0] / norms[-1]
