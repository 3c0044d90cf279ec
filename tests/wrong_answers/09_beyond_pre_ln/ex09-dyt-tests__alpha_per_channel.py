# Wrong: alpha is a vector with one value per feature; DyT's alpha is one scalar for the layer.
class DyT(nn.Module):
    def __init__(self, num_features: int, alpha0: float = 0.5) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((num_features,), float(alpha0)))
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * torch.tanh(self.alpha * x) + self.bias
