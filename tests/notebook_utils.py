"""Reading the course's notebooks in tests."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def nbgrader_meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def region_lines(text: str, begin: str, end: str, *, inside: bool = True) -> list[str]:
    """Non-blank, stripped lines strictly between `begin` and `end` marker lines (or, with
    `inside=False`, the lines outside every such region, markers excluded)."""
    lines, within = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped == begin:
            within = True
        elif stripped == end:
            within = False
        elif within == inside and stripped:
            lines.append(stripped)
    return lines
