# Wrong: a single row-then-column pass: the columns sum to 1, the rows only roughly.
def sinkhorn_log(logits: torch.Tensor, tol: float = 1e-5, max_iters: int = 1000) -> torch.Tensor:
    log_p = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    log_p = log_p - torch.logsumexp(log_p, dim=-2, keepdim=True)
    return log_p.exp()
