"""Finding Triton, and switching on Triton's CPU interpreter (`TRITON_INTERPRET=1`).

Triton is optional: it has Linux wheels only, and everything in `lessons_lib` except the Triton
backend of the fused kernel works without it. Nothing here imports Triton at module import time.

When the interpreter switch must be set (checked against Triton 3.9):
- `@triton.jit` reads `TRITON_INTERPRET` (through `triton.knobs.runtime.interpret`) when the
  decorated function is *defined*: it returns an `InterpretedFunction` (runs the kernel on the
  host with numpy) if the variable is set, and a `JITFunction` (compiled for a GPU) otherwise.
- Triton's own library functions are `@triton.jit` functions too (`tl.sum`, `tl.max`, `tl.zeros`,
  `tl.cdiv`, ...), decorated when `triton.language` is imported. An interpreted kernel that calls
  `tl.sum` while `tl.sum` is a compiled `JITFunction` fails with "Cannot call @triton.jit'd outside
  of the scope of a kernel". So the variable must be set **before Triton is first imported**, not
  merely before your kernel is defined.

The switch, then, is `use_interpreter()`, called before anything imports Triton: first cell of a
notebook, top of a test module (or `TRITON_INTERPRET=1` exported in the shell). It raises a clear
error if Triton was already imported in compiled mode. On a machine without a CUDA GPU, where
compiled Triton cannot run at all, `require_triton()` (used by the kernel backend on first use)
switches the interpreter on by itself if Triton has not been imported yet.

In interpreter mode every kernel is interpreted, including on CUDA tensors (Triton copies them to
the host and back): that is Triton's documented behaviour.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from types import ModuleType

INSTALL_HINT = (
    "install it with `pip install triton` (Linux only; or `pip install -e .[kernel]` in the "
    "course repository), or use backend='reference'"
)


def triton_available() -> bool:
    """True if Triton is installed and importable here (does not import it)."""
    if "triton" in sys.modules:
        return isinstance(sys.modules["triton"], ModuleType)
    return importlib.util.find_spec("triton") is not None


def use_interpreter() -> None:
    """Run every Triton kernel of this process in Triton's CPU interpreter.

    Sets `TRITON_INTERPRET=1`. Call it before anything imports Triton (the first cell of a
    notebook); it does not need Triton to be installed. If Triton is already imported in compiled
    mode the switch cannot take effect, and RuntimeError says so.
    """
    os.environ["TRITON_INTERPRET"] = "1"
    if "triton.language" in sys.modules and not interpreter_enabled():
        raise RuntimeError(
            "use_interpreter() was called after Triton had been imported in compiled mode: "
            "TRITON_INTERPRET must be set before the first `import triton`. Restart Python "
            "(the notebook kernel) and call use_interpreter() first"
        )


def interpreter_enabled() -> bool:
    """True if Triton kernels run in the interpreter in this process.

    Once Triton is imported this is decided (by whether its library functions are interpreted);
    before that, by the environment variable.
    """
    if "triton.language" in sys.modules:
        from triton.runtime.interpreter import InterpretedFunction

        return isinstance(sys.modules["triton.language"].sum, InterpretedFunction)
    value = os.environ.get("TRITON_INTERPRET", "0").strip().lower()
    return value in ("1", "true", "on", "yes")


def require_triton() -> ModuleType:
    """Import and return `triton`, or raise ImportError saying how to install it.

    Without a CUDA GPU, compiled Triton cannot run, so the first import switches the
    interpreter on (see the module docstring).
    """
    if "triton" not in sys.modules and triton_available():
        import torch

        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"
    try:
        module = importlib.import_module("triton")
    except ImportError as err:
        raise ImportError(
            f"backend='triton' needs Triton, which is not installed: {INSTALL_HINT}"
        ) from err
    return module
