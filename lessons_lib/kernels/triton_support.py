"""Finding Triton, and switching on Triton's CPU interpreter (`TRITON_INTERPRET=1`).

Triton is optional: it has Linux wheels only, and everything in `lessons_lib` except the Triton
backend of the fused kernel works without it. Nothing here imports Triton at module import time.

When the interpreter switch must be set (checked against Triton 3.7 and 3.9):
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

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

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


@contextlib.contextmanager
def undefined_masked_loads() -> Iterator[None]:
    """Within the block, masked-off lanes of a `tl.load` without `other=` read NaN.

    On a GPU such lanes hold whatever the registers held (undefined); Triton's interpreter fills
    them with zeros, which hides a missing `other=0.0` in a sum. This makes the interpreter show
    the bug instead (floating-point loads only; an integer load still reads 0). Needs the
    interpreter to be on.
    """
    if not interpreter_enabled():
        raise RuntimeError("undefined_masked_loads() needs Triton's interpreter: call "
                           "use_interpreter() before Triton is imported")
    import numpy as np
    import triton.language as tl
    from triton.runtime import interpreter

    builder = interpreter.InterpreterBuilder
    original = builder.create_masked_load

    def poisoned(self: Any, ptrs: Any, mask: Any, other: Any, *args: Any, **kwargs: Any) -> Any:
        dtype = ptrs.get_element_ty()
        if other is None and dtype.is_floating():
            np_dtype = interpreter._get_np_dtype(dtype)
            # bfloat16 is stored as uint16: 0x7FC0 is its quiet NaN
            fill = 0x7FC0 if dtype == tl.bfloat16 else np.nan
            other = interpreter.TensorHandle(np.full(ptrs.data.shape, fill, dtype=np_dtype), dtype)
        return original(self, ptrs, mask, other, *args, **kwargs)

    builder.create_masked_load = poisoned
    try:
        yield
    finally:
        builder.create_masked_load = original


class _MissingKernel:
    """What `@triton.jit` gives without Triton: the function, which cannot be launched."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")

    def __getitem__(self, grid: Any) -> Any:
        raise ImportError(f"{self.__name__} is a Triton kernel and Triton is not installed: "
                          f"{INSTALL_HINT}")


class _MissingModule:
    """Stands in for `triton` or `triton.language` when Triton is not installed: enough to
    define a kernel (the decorator, `tl.constexpr` annotations) and to size blocks; using
    anything else raises ImportError saying how to install Triton."""

    def __init__(self, name: str) -> None:
        self.__name__ = name
        self.constexpr = type("constexpr", (), {})

    def jit(self, fn: Any = None, **kwargs: Any) -> Any:
        if fn is None:
            return lambda f: _MissingKernel(f)
        return _MissingKernel(fn)

    @staticmethod
    def next_power_of_2(n: int) -> int:
        return 1 if n <= 1 else 1 << (n - 1).bit_length()

    @staticmethod
    def cdiv(a: int, b: int) -> int:
        return -(-a // b)

    def __getattr__(self, attr: str) -> Any:
        raise ImportError(f"{self.__name__}.{attr} needs Triton, which is not installed: "
                          f"{INSTALL_HINT}")


def import_triton() -> tuple[ModuleType, ModuleType] | tuple[_MissingModule, _MissingModule]:
    """(triton, triton.language), or stand-ins if Triton is not installed (macOS, Windows).

    With the stand-ins a lesson can still define its kernels and read them; only launching one
    (or using Triton's other functions) raises ImportError, with the install hint.
    """
    if triton_available():
        triton = require_triton()
        import triton.language as tl

        return triton, tl
    return _MissingModule("triton"), _MissingModule("triton.language")
