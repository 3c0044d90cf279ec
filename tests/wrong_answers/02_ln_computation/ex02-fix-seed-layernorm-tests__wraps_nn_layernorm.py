# Wraps nn.LayerNorm instead of computing the normalization (and so has a submodule).
class FixedLayerNorm(nn.Module):
    def __init__(self, d_model, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.inner = nn.LayerNorm(d_model, eps=eps)
        self.weight = self.inner.weight
        self.bias = self.inner.bias

    def forward(self, x):
        return self.inner(x)
