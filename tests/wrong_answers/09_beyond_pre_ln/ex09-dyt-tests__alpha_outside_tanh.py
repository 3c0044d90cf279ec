# Wrong: alpha scales the output of tanh, alpha * tanh(x), instead of its input, tanh(alpha x).
class DyT(nn.Module):
    def __init__(self, num_features: int, alpha0: float = 0.5) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha0)))
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * self.alpha * torch.tanh(x) + self.bias
