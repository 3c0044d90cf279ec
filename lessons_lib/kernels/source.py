"""The source of the kernels' functions, read from the file (no import, so no Triton needed)."""

from __future__ import annotations

import ast
from pathlib import Path

KERNEL_FILE = Path(__file__).with_name("fused_add_norm_triton.py")


def function_source(name: str, path: Path = KERNEL_FILE) -> str:
    """The text of the top-level function `name` of `path`, decorators included."""
    text = path.read_text(encoding="utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            lines = text.splitlines()[start - 1 : node.end_lineno]
            return "\n".join(lines) + "\n"
    raise ValueError(f"name must be a function of {path.name}, got {name!r}")
