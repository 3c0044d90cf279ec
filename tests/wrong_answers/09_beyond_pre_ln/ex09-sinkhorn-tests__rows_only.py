# Wrong: only the rows are normalized (a softmax per row): the columns do not sum to 1.
def sinkhorn_log(logits: torch.Tensor, tol: float = 1e-5, max_iters: int = 1000) -> torch.Tensor:
    return (logits - torch.logsumexp(logits, dim=-1, keepdim=True)).exp()
