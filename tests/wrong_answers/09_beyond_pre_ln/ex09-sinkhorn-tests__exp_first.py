# Wrong: exponentiates first and normalizes in linear space (the lesson's sinkhorn_knopp run to
# the tolerance): large logits overflow to inf or underflow to 0 in float32, giving NaN.
def sinkhorn_log(logits: torch.Tensor, tol: float = 1e-5, max_iters: int = 1000) -> torch.Tensor:
    p = logits.exp()
    for _ in range(max_iters):
        p = p / p.sum(-1, keepdim=True)
        p = p / p.sum(-2, keepdim=True)
        if max((p.sum(-1) - 1).abs().max().item(), (p.sum(-2) - 1).abs().max().item()) <= tol:
            break
    return p
