# Divides the last block's gradient norm by the first's: explosion then looks like vanishing.
def scaled_gradient_ratio(alpha, depth, seed):
    seed_everything(seed)
    net = make_net("residual", depth, 32, 64, 10, placement="preact", norm="none")
    with torch.no_grad():
        for block in net.blocks:
            block.branch[-1].weight.mul_(alpha)
    norms = input_gradient_norms(net.blocks, lambda: F.cross_entropy(net(x_probe), y_probe))
    return norms[-1] / norms[0]
