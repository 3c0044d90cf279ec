# Wrong: divides the squared deviations by C - 1 = 3 (the unbiased variance, torch.var's
# default) instead of by C = 4, so x-hat comes out too small by sqrt(3/4).
ln_prediction = [
    [-2 / 6**0.5, 2 * (-2 / 6**0.5), 1 / 6**0.5 + 1, 2 * (3 / 6**0.5) + 1],
    [0.0, 0.0, 1.0, 1.0],
]
