# Returns A itself: the residual layer x + W x + b then computes (I + A) x + c, not A x + c.
def residual_weights(A, c):
    return A.clone(), c.clone()
