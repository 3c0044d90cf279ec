# Right formula, but computed in place: A itself becomes A - I, so the caller's matrix changes
# and the returned W is the same tensor as A.
def residual_weights(A, c):
    A -= torch.eye(A.shape[0], dtype=A.dtype)
    return A, c
