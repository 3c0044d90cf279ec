# Wrong: alpha is a plain number, so training can never change it.
class DyT(nn.Module):
    def __init__(self, num_features: int, alpha0: float = 0.5) -> None:
        super().__init__()
        self.alpha = float(alpha0)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * torch.tanh(self.alpha * x) + self.bias
