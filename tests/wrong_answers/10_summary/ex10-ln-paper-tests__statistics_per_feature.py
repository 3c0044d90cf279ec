# Wrong: takes the statistics of each feature over the two tokens (BatchNorm's axis): every
# column becomes -1 and 1, or 0 where both tokens agree, before gamma and beta.
ln_prediction = [
    [-1.0, -2.0, 1.0, 3.0],
    [1.0, 2.0, 1.0, -1.0],
]
