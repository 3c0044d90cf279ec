# Keeps the original block's ReLU after the addition: with fc2 = 0 the block gives ReLU(x),
# not x, and the identity path is clipped.
class PreActBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(d)
        self.fc1 = nn.Linear(d, d, bias=False)
        self.bn2 = nn.BatchNorm1d(d)
        self.fc2 = nn.Linear(d, d, bias=False)

    def forward(self, x):
        f = self.fc2(torch.relu(self.bn2(self.fc1(torch.relu(self.bn1(x))))))
        return torch.relu(x + f)
