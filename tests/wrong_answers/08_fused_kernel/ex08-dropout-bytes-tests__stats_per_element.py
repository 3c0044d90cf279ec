# Counts the fp32 mean and rstd once per element instead of once per row.
def dropout_add_ln_forward_bytes(n, elt_size=2):
    return 4 * elt_size * n + n + 2 * 4 * n
