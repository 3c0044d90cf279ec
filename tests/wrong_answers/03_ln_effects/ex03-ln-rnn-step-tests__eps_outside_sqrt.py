# Puts eps outside the square root: (a - mu) / (sigma + eps) instead of / sqrt(var + eps).
def ln_rnn_step(x_t, h, w_hh, w_xh, gain_h, gain_x, bias, eps=1e-5):
    def norm(a, gain):
        mu = a.mean(dim=-1, keepdim=True)
        var = (a - mu).pow(2).mean(dim=-1, keepdim=True)
        return gain * (a - mu) / (torch.sqrt(var) + eps)

    return torch.relu(norm(h @ w_hh.T, gain_h) + norm(x_t @ w_xh.T, gain_x) + bias)
