"""Helper library of the course "Layer Normalization and residual connections in Transformers".

Modules, one concept each:
- `normalization`: LayerNorm, RMSNorm and BatchNorm from scratch, with an explicit backward;
- `variance`: naive, two-pass and Welford variance (with Chan's parallel merge);
- `residual`: plain and residual blocks, shortcuts, He et al.'s placements, nets of any depth;
- `transformer`: a small Pre-LN Transformer block, plain or with the fused add + norm;
- `kernels`: the fused residual-add + LayerNorm/RMSNorm kernel (Triton optional);
- `training` and `probes`: a small training loop, gradient and activation statistics;
- `recurrent`: a small RNN cell with optional LayerNorm;
- `data`: datasets that ship with scikit-learn or are generated (nothing is downloaded);
- `plotting` and `widgets`: the figure style and interactive explorers;
- `seeding`: `seed_everything`, one call that makes a lesson deterministic.
"""

from lessons_lib.seeding import seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "__version__"]
