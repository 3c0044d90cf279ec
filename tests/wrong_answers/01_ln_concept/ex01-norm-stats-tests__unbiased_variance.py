# Uses torch.var's default, the unbiased variance (divides by n - 1); LN and BN divide by n.
def norm_stats(x, kind):
    if kind == "layer":
        dims = (-1,)
    elif kind == "batch":
        dims = tuple(range(x.dim() - 1))
    else:
        raise ValueError(f"kind must be 'layer' or 'batch', got {kind!r}")
    return x.mean(dim=dims), x.var(dim=dims)
