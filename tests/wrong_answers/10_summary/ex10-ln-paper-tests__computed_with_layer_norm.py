# Wrong: asks PyTorch instead of working the numbers out, which the exercise rules out.
ln_prediction = F.layer_norm(
    torch.tensor([[0.0, 0.0, 3.0, 5.0], [3.0, 3.0, 3.0, 3.0]]), (4,),
    torch.tensor([1.0, 2.0, 1.0, 2.0]), torch.tensor([0.0, 0.0, 1.0, 1.0])).tolist()
