# Keeps both signs in the hidden layer but adds the two halves instead of subtracting them:
# ReLU(h) + ReLU(-h) = |h|, not h.
I2 = torch.eye(2)
plain_identity = (torch.cat([I2, -I2]), torch.zeros(4), torch.cat([I2, I2], dim=1), torch.zeros(2))
residual_relu = (torch.cat([-I2, torch.zeros(2, 2)]), torch.zeros(4),
                 torch.cat([I2, torch.zeros(2, 2)], dim=1), torch.zeros(2))
