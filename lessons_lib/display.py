"""Result tables for the lessons: the numbers a cell prints are the numbers it asserts on.

`show_table(header, rows, caption=..., name=...)` displays a numbered, captioned table. The cell
output carries two renderings of it: MyST Markdown with a `{table}` directive, which the book
turns into "Table n" that prose can cite with {numref}`name` (`_config.yml` makes the book
prefer Markdown), and HTML with a `<caption>`, which JupyterLab shows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

_NAME = re.compile(r"tab-[a-z0-9][a-z0-9-]*")


def _cell(value: object) -> str:
    # a "|" inside a value would end the Markdown cell early
    return str(value).replace("|", r"\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table with one column per `header` entry; each row must have that length."""
    if isinstance(header, (str, bytes)) or not isinstance(header, Sequence):
        raise TypeError(f"header must be a sequence of column names, got {type(header).__name__}")
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Iterable):
        raise TypeError(f"rows must be a sequence of rows, got {type(rows).__name__}")
    rows = list(rows)
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence):
            raise TypeError(f"rows[{i}] must be a sequence of values, got {type(row).__name__}")
    if not header:
        raise ValueError("header must name at least one column")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(
                f"rows[{i}] has {len(row)} values, expected {len(header)} like the header"
            )
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _inline_html(text: str) -> str:
    # the little Markdown a table cell uses: **bold** and `code` (math is typeset by JupyterLab)
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], caption: str | None = None
) -> str:
    """The same table as HTML (what JupyterLab displays), with an optional caption."""
    markdown_table(header, rows)  # the same checks
    cap = f"<caption>{_inline_html(caption)}</caption>" if caption else ""
    head = "".join(f"<th>{_inline_html(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_inline_html(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def myst_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str, name: str
) -> str:
    """The table inside a MyST `{table}` directive: numbered, captioned, citable by `name`."""
    if not isinstance(caption, str) or not caption.strip() or "\n" in caption:
        raise ValueError(f"caption must be a non-empty one-line string, got {caption!r}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"name must look like 'tab-07-warmup' (lowercase, digits, '-'), got {name!r}"
        )
    return f":::{{table}} {caption}\n:name: {name}\n\n{markdown_table(header, rows)}\n:::"


def show_table(
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    caption: str | None = None,
    name: str | None = None,
) -> None:
    """Display a table in a notebook: numbered and captioned when `caption` and `name` are given
    (every result table of a lesson should be), a plain table otherwise."""
    from IPython.display import display

    if isinstance(rows, Iterable) and not isinstance(rows, (str, bytes)):
        rows = list(rows)  # a generator or a dict view is read once and used three times

    if (caption is None) != (name is None):
        raise ValueError("give both caption and name (a numbered table) or neither")
    if caption is None:
        display({"text/markdown": markdown_table(header, rows)}, raw=True)
        return
    bundle = {
        "text/markdown": myst_table(header, rows, caption=caption, name=str(name)),
        "text/html": html_table(header, rows, caption),
        "text/plain": markdown_table(header, rows),
    }
    display(bundle, raw=True)
