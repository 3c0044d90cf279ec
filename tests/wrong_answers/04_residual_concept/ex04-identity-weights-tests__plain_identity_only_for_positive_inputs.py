# The lesson's plain identity, W = I and b = 0, padded to four hidden units: the ReLU clips
# every negative entry, so the plain block returns ReLU(h), not h.
I2 = torch.eye(2)
plain_identity = (torch.cat([I2, torch.zeros(2, 2)]), torch.zeros(4),
                  torch.cat([I2, torch.zeros(2, 2)], dim=1), torch.zeros(2))
residual_relu = (torch.cat([-I2, torch.zeros(2, 2)]), torch.zeros(4),
                 torch.cat([I2, torch.zeros(2, 2)], dim=1), torch.zeros(2))
