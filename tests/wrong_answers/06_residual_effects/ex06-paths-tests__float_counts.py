# Computes the binomial coefficients with float division: the counts are floats, and lose
# exactness for large n.
def path_counts(n):
    return [math.factorial(n) / (math.factorial(k) * math.factorial(n - k)) for k in range(n + 1)]


def surviving_fraction(n, deleted):
    return 2.0 ** (n - deleted) / 2.0**n
