# Takes the statistics over the batch (dim 0, BatchNorm's axis) instead of over the H units.
def ln_rnn_step(x_t, h, w_hh, w_xh, gain_h, gain_x, bias, eps=1e-5):
    def norm(a, gain):
        mu = a.mean(dim=0, keepdim=True)
        var = (a - mu).pow(2).mean(dim=0, keepdim=True)
        return gain * (a - mu) / torch.sqrt(var + eps)

    return torch.relu(norm(h @ w_hh.T, gain_h) + norm(x_t @ w_xh.T, gain_x) + bias)
