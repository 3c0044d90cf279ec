# Counts 2**k paths through k branches (the number of subsets of k blocks' choices), not the
# binomial coefficient C(n, k).
def path_counts(n):
    return [2**k for k in range(n + 1)]


def surviving_fraction(n, deleted):
    return 2.0 ** (n - deleted) / 2.0**n
