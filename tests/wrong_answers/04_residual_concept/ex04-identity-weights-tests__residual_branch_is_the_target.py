# Puts the wanted map into the branch, F(h) = ReLU(h), forgetting that the shortcut adds h:
# the block returns h + ReLU(h).
I2 = torch.eye(2)
plain_identity = (torch.cat([I2, -I2]), torch.zeros(4), torch.cat([I2, -I2], dim=1), torch.zeros(2))
residual_relu = (torch.cat([I2, torch.zeros(2, 2)]), torch.zeros(4),
                 torch.cat([I2, torch.zeros(2, 2)], dim=1), torch.zeros(2))
