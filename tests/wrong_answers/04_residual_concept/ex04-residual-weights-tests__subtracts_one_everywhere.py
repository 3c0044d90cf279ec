# Subtracts the scalar 1 from every entry of A instead of the identity matrix I.
def residual_weights(A, c):
    return A - 1, c.clone()
