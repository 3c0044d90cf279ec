# Wrong: runs the lesson's own five-line layer_norm instead of working the numbers out.
ln_prediction = layer_norm(torch.tensor([[0.0, 0.0, 3.0, 5.0], [3.0, 3.0, 3.0, 3.0]]),
                           torch.tensor([1.0, 2.0, 1.0, 2.0]),
                           torch.tensor([0.0, 0.0, 1.0, 1.0])).tolist()
