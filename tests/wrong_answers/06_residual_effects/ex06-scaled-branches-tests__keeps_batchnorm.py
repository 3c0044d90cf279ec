# Builds the net with make_net's default normalization (BatchNorm) instead of norm="none":
# the profile it measures is the normalized network's.
def scaled_gradient_ratio(alpha, depth, seed):
    seed_everything(seed)
    net = make_net("residual", depth, 32, 64, 10, placement="preact")
    with torch.no_grad():
        for block in net.blocks:
            block.branch[-1].weight.mul_(alpha)
    norms = input_gradient_norms(net.blocks, lambda: F.cross_entropy(net(x_probe), y_probe))
    return norms[0] / norms[-1]
