# Wrong: the stopping test looks at the columns only, which are exact right after the column
# step, so it always stops after one iteration with the rows still off.
def sinkhorn_log(logits: torch.Tensor, tol: float = 1e-5, max_iters: int = 1000) -> torch.Tensor:
    log_p = logits
    for _ in range(max_iters):
        log_p = log_p - torch.logsumexp(log_p, dim=-1, keepdim=True)
        log_p = log_p - torch.logsumexp(log_p, dim=-2, keepdim=True)
        if (log_p.exp().sum(-2) - 1).abs().max().item() <= tol:
            break
    return log_p.exp()
