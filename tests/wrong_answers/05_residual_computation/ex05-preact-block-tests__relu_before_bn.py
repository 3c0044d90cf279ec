# Applies each ReLU before its BatchNorm (ReLU, BN, weight) instead of BN, ReLU, weight.
class PreActBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(d)
        self.fc1 = nn.Linear(d, d, bias=False)
        self.bn2 = nn.BatchNorm1d(d)
        self.fc2 = nn.Linear(d, d, bias=False)

    def forward(self, x):
        f = self.fc2(self.bn2(torch.relu(self.fc1(self.bn1(torch.relu(x))))))
        return x + f
