"""Helper library of the course "Layer Normalization and residual connections in Transformers".

Modules, one concept each:
- `normalization`: LayerNorm, RMSNorm and BatchNorm from scratch, with an explicit backward,
  and `make_norm`, the one factory for a model's normalization layer;
- `variance`: naive, two-pass and Welford variance (with Chan's parallel merge);
- `models`: He initialization, the MLP of Part I, `count_parameters`;
- `residual`: plain and residual blocks, one class per placement of He et al., nets of any depth;
- `transformer`: a small Pre-LN Transformer block, plain or with the fused add + norm;
- `kernels`: the fused residual-add + LayerNorm/RMSNorm kernel (Triton optional);
- `recurrent`: a small RNN cell with optional LayerNorm;
- `training`: the training loop, minibatches, evaluation, and the seeded-run recipe;
- `ensemble`: many seeds of one small model trained side by side in one batched pass;
- `progress`: tqdm bars, with a static mode for the published book;
- `probes`: gradient norms and activation statistics inside a network;
- `data`: datasets that ship with scikit-learn or are generated (nothing is downloaded);
- `stats` and `display`: the numbers and tables a lesson prints;
- `plotting` and `widgets`: the figure style, figure helpers and interactive explorers;
- `diagrams`: block diagrams of plain and residual blocks, drawn with matplotlib;
- `seeding`: `seed_everything`, one call that makes a lesson deterministic.

The names used everywhere: a normalization is "layernorm", "rmsnorm", "batchnorm" or "none"
(`normalization.NORMS`); every builder that draws weights takes `generator` (a
`torch.Generator`, or None for PyTorch's global one).
"""

from lessons_lib.seeding import seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "__version__"]
