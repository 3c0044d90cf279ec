# Wrong: the first token is right, but the constant token is taken to normalize to 1 (as if
# dividing 0 by a tiny standard deviation gave 1) instead of to 0, so its output is gamma + beta.
ln_prediction = [
    [-2 / 4.5**0.5, 2 * (-2 / 4.5**0.5), 1 / 4.5**0.5 + 1, 2 * (3 / 4.5**0.5) + 1],
    [1.0, 2.0, 2.0, 3.0],
]
