# Leaves out the first BN and ReLU: the first weight layer sees the raw, un-normalized stream.
class PreActBlock(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.bn1 = nn.BatchNorm1d(d)
        self.fc1 = nn.Linear(d, d, bias=False)
        self.bn2 = nn.BatchNorm1d(d)
        self.fc2 = nn.Linear(d, d, bias=False)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.bn2(self.fc1(x))))
