"""The fused residual-add + LayerNorm/RMSNorm kernel of lesson 08, and what surrounds it.

    from lessons_lib.kernels import fused_add_norm, FusedAddNorm
    y, h = fused_add_norm(x, residual, weight, bias, norm="layernorm", backend="triton")
    norm = FusedAddNorm(768, norm="rmsnorm")        # a drop-in for nn.RMSNorm, plus the add
    y, h = norm(hidden, residual)

Modules:
- `api`: the public function and `nn.Module`, argument checks, the torch.library operators
  (torch.compile / torch.export see one op) with their autograd, and the plain-PyTorch
  reference backend.
- `fused_add_norm_triton`: the Triton kernels (forward, backward) and their launchers. Needs
  Triton; imported only when the Triton backend runs.
- `triton_support`: finding Triton, `use_interpreter()`, `undefined_masked_loads()` (masked
  lanes read NaN, as garbage would on a GPU) and `import_triton()` (stand-ins without Triton).
- `limits`: what the kernel accepts (64 KiB rows; fp16, bf16, fp32), known without Triton.
- `bytes_model`: bytes moved per row, fused vs unfused vs eager PyTorch (why fusion pays off).
- `benchmark`: `python -m lessons_lib.kernels.benchmark --out benchmarks/results.json`.
- `ptx_report`: `python -m lessons_lib.kernels.ptx_report`, what the kernels compile to on an
  H100 (registers, spills, shared memory, vector loads, programs per SM), without a GPU;
  `compile_report_data` holds its last output for the lesson.
- `source`: the kernels' source text, read from the file (no Triton needed).

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
    import_triton,
    interpreter_enabled,
    require_triton,
    triton_available,
    undefined_masked_loads,
    use_interpreter,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_EPS",
    "FusedAddNorm",
    "fused_add_norm",
    "import_triton",
    "interpreter_enabled",
    "require_triton",
    "triton_available",
    "undefined_masked_loads",
    "use_interpreter",
]
