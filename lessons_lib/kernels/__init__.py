"""The fused residual-add + LayerNorm/RMSNorm kernel of lesson 08, and what surrounds it.

    from lessons_lib.kernels import fused_add_norm, FusedAddNorm
    y, h = fused_add_norm(x, residual, weight, bias, norm="layernorm", backend="triton")

Modules:
- `api`: the public function and `nn.Module`, argument checks, autograd glue, and
  the plain-PyTorch reference backend.
- `fused_add_norm_triton`: the Triton kernels (forward, backward) and their launchers. Needs
  Triton; imported only when the Triton backend runs.
- `triton_support`: finding Triton, and `use_interpreter()`.
- `bytes_model`: bytes moved per row, fused vs unfused (why fusion pays off).
- `benchmark`: `python -m lessons_lib.kernels.benchmark --out benchmarks/results.json`.

Running kernels on a CPU (Triton's interpreter), the switch:
- Call `use_interpreter()` before anything imports Triton (first cell of a notebook, top of a
  test module), or export TRITON_INTERPRET=1 before starting Python. Triton reads the variable
  when a kernel is defined, and its own library functions (`tl.sum`, ...) are defined when
  Triton is imported, so setting it later does not work; `use_interpreter()` then raises.
- Then every Triton kernel runs in the interpreter: the library's (backend="triton" on CPU
  tensors) and any kernel you write with `@triton.jit`, on CPU tensors (and on CUDA tensors
  too, copied to the host and back).
- On a machine without a CUDA GPU the library switches the interpreter on by itself the first
  time backend="triton" imports Triton, if nothing imported Triton before.
- Without the switch, CUDA tensors run the compiled kernel, and CPU tensors with
  backend="triton" raise RuntimeError saying how to switch. backend="auto" never needs it: it
  uses the plain PyTorch reference for CPU tensors.
See `triton_support` for the details checked against Triton 3.9.

Importing this package does not import Triton; without Triton, the reference backend works and
backend="triton" raises ImportError saying how to install it.
"""

from lessons_lib.kernels.api import (
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
