# Wrong: divides the centred token by its variance, 4.5, instead of by the standard deviation.
ln_prediction = [
    [-2 / 4.5, 2 * (-2 / 4.5), 1 / 4.5 + 1, 2 * (3 / 4.5) + 1],
    [0.0, 0.0, 1.0, 1.0],
]
