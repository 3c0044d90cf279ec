"""Helper library of the course "Layer Normalization and residual connections in Transformers".

Modules (one concept each): `normalization` (LayerNorm, RMSNorm, BatchNorm from scratch, with an
explicit backward), `variance` (naive, two-pass and Welford variance), `seeding`, `plotting`,
`training` (a small training loop), `probes` (gradient and activation statistics), `data`
(datasets that ship or are generated), `widgets` (interactive explorers), and `kernels` (the
fused residual-add + LayerNorm/RMSNorm kernel, Triton optional).
"""

from lessons_lib.seeding import seed_everything

__version__ = "0.1.0"
__all__ = ["seed_everything", "__version__"]
