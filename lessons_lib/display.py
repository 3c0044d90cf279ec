"""Result tables for the lessons: the numbers a cell prints are the numbers it asserts on."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table with one column per `header` entry; each row must have that length."""
    if not header:
        raise ValueError("header must name at least one column")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(
                f"rows[{i}] has {len(row)} values, expected {len(header)} like the header"
            )
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def show_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Display a table in a notebook (rendered as a table in JupyterLab and in the book)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))
