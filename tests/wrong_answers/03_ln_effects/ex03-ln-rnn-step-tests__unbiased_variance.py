# Normalizes with the unbiased variance (divides by H - 1); LayerNorm divides by H.
def ln_rnn_step(x_t, h, w_hh, w_xh, gain_h, gain_x, bias, eps=1e-5):
    def norm(a, gain):
        mu = a.mean(dim=-1, keepdim=True)
        var = a.var(dim=-1, keepdim=True)
        return gain * (a - mu) / torch.sqrt(var + eps)

    return torch.relu(norm(h @ w_hh.T, gain_h) + norm(x_t @ w_xh.T, gain_x) + bias)
