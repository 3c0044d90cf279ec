# Stores the mask in the activations' dtype (elt_size bytes per element) instead of one byte.
def dropout_add_ln_forward_bytes(n, elt_size=2):
    return 4 * elt_size * n + elt_size * n + 2 * 4
