# Zero weights make the residual block the identity, not ReLU: the residual of ReLU is
# F(h) = ReLU(h) - h, which is not zero for negative entries.
I2 = torch.eye(2)
plain_identity = (torch.cat([I2, -I2]), torch.zeros(4), torch.cat([I2, -I2], dim=1), torch.zeros(2))
residual_relu = (torch.zeros(4, 2), torch.zeros(4), torch.zeros(2, 4), torch.zeros(2))
