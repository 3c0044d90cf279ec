# Forgets the dropout mask the backward needs: counts x, r, h, y and the statistics only.
def dropout_add_ln_forward_bytes(n, elt_size=2):
    return 4 * elt_size * n + 2 * 4
