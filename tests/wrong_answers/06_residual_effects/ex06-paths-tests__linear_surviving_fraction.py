# Thinks of blocks, not paths: deleting d of n blocks keeps (n - d) / n of the network.
def path_counts(n):
    return [math.comb(n, k) for k in range(n + 1)]


def surviving_fraction(n, deleted):
    return (n - deleted) / n
