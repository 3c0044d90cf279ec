"""The fused residual-add + LayerNorm/RMSNorm kernel of lesson 08, and what surrounds it.

    from lessons_lib.kernels import fused_add_norm, FusedAddNorm
    y, h = fused_add_norm(x, residual, weight, bias, norm="layernorm", backend="triton")

Modules:
- `fused_add_norm`: the public function and `nn.Module`, argument checks, autograd glue, and
  the plain-PyTorch reference backend.
- `fused_add_norm_triton`: the Triton kernels (forward, backward) and their launchers. Needs
  Triton; imported only when the Triton backend runs.
- `triton_support`: finding Triton, and `use_interpreter()`.
- `bytes_model`: bytes moved per row, fused vs unfused (why fusion pays off).
- `benchmark`: `python -m lessons_lib.kernels.benchmark --out benchmarks/results.json`.

Running kernels on a CPU (Triton's interpreter):
- The library's kernels need no switch. With backend="triton", CUDA tensors run the compiled
  kernel and CPU tensors run the *same kernel source* in Triton's interpreter (an
  `InterpretedFunction` built from the kernel's Python function), whatever `TRITON_INTERPRET`
  says. backend="auto" uses the plain PyTorch reference for CPU tensors.
- A kernel you write yourself with `@triton.jit` is interpreted only if `TRITON_INTERPRET=1`
  was in effect *when the decorator ran* (Triton 3.x reads it at definition time). Call
  `use_interpreter()` at the top of the notebook, before defining the kernel, or export
  TRITON_INTERPRET=1 before starting Python.

Importing this package does not import Triton; without Triton, the reference backend works and
backend="triton" raises ImportError saying how to install it.
"""

from lessons_lib.kernels.fused_add_norm import (
    BACKENDS,
    DEFAULT_EPS,
    FusedAddNorm,
    fused_add_norm,
)
from lessons_lib.kernels.triton_support import (
    interpreter_enabled,
    require_triton,
    triton_available,
    use_interpreter,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_EPS",
    "FusedAddNorm",
    "fused_add_norm",
    "interpreter_enabled",
    "require_triton",
    "triton_available",
    "use_interpreter",
]
