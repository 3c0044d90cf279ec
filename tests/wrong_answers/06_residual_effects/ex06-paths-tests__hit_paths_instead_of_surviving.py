# Returns the fraction of paths that pass through a deleted block, 1 - 2**-d, instead of the
# fraction that survive (the two agree only for one deleted block).
def path_counts(n):
    return [math.comb(n, k) for k in range(n + 1)]


def surviving_fraction(n, deleted):
    return 1 - 2.0**-deleted
