"""The published editions of a lesson notebook, made from its nbgrader cells at build time.

The lesson files are the instructor's version: nbgrader needs the solutions between
`### BEGIN SOLUTION` / `### END SOLUTION` and the hidden tests between
`### BEGIN HIDDEN TESTS` / `### END HIDDEN TESTS`. Readers get two other editions:

- the *book edition* (what the HTML page shows): for each exercise the statement, the student's
  starting cell (nbgrader's stub, shown, not executed), the reference solution without markers
  (executed, so that the visible tests below it pass during the build, and shown behind a toggle
  "Solution to exercise n" or removed from the page) and the visible tests;
- the *student edition* (the page's `.ipynb` download): what `nbgrader generate_assignment`
  hands out, solutions replaced by the stub and hidden tests removed.

Everything is driven by nbgrader's cell metadata and markers, so no lesson needs editing.
"""

from __future__ import annotations

import copy
import re
from typing import Any

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
SOLUTION_MODES = ("toggle", "omit")
# Any line that nbgrader treats as a marker; none may reach a reader.
MARKERS = re.compile(
    r"BEGIN SOLUTION|END SOLUTION|BEGIN HIDDEN TESTS|END HIDDEN TESTS|AUTOTEST|"
    r"BEGIN MARK SCHEME|END MARK SCHEME"
)
_EXERCISE_HEADING = re.compile(r"^#{1,6}\s*Exercise\s+(\d+)\b", re.M | re.I)

Cell = dict[str, Any]
Notebook = dict[str, Any]


def _source(cell: Cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _nbgrader(cell: Cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_solution(cell: Cell) -> bool:
    """An nbgrader solution cell (or a code cell with solution markers but no metadata)."""
    if _nbgrader(cell).get("solution"):
        return True
    return cell.get("cell_type") == "code" and "BEGIN SOLUTION" in _source(cell)


def _is_exercise_cell(cell: Cell) -> bool:
    # prose that merely mentions a marker is not touched; code that carries one is
    return bool(_nbgrader(cell)) or (
        cell.get("cell_type") == "code" and bool(MARKERS.search(_source(cell)))
    )


def _replace_regions(text: str, begin: str, end: str, stub: str | None) -> str:
    """Replace each region from a line containing `begin` to one containing `end` (both
    included) by `stub` indented like the `begin` line, or drop it when `stub` is None, as
    nbgrader's ClearSolutions and ClearHiddenTests do."""
    out, inside = [], False
    for line in text.split("\n"):
        if begin in line:
            if inside:
                raise ValueError(f"nested {begin!r} in:\n{text}")
            inside = True
            if stub is not None:
                indent = re.match(r"\s*", line).group(0)
                out += [indent + s for s in stub.split("\n")]
        elif end in line:
            if not inside:
                raise ValueError(f"{end!r} without {begin!r} in:\n{text}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{begin!r} without {end!r} in:\n{text}")
    return "\n".join(out)


def student_source(cell: Cell) -> str:
    """The cell as nbgrader's student release has it: solutions become the stub, hidden tests
    and mark schemes are removed."""
    text = _source(cell)
    stub = CODE_STUB if cell.get("cell_type") == "code" else TEXT_STUB
    if is_solution(cell):
        if "BEGIN SOLUTION" in text:
            text = _replace_regions(text, "BEGIN SOLUTION", "END SOLUTION", stub)
        else:  # a solution cell without markers is replaced whole
            text = stub
    text = _replace_regions(text, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", None)
    return _replace_regions(text, "BEGIN MARK SCHEME", "END MARK SCHEME", None)


def solution_source(cell: Cell) -> str:
    """The reference solution without nbgrader's marker lines."""
    lines = _source(cell).split("\n")
    return "\n".join(line for line in lines if not re.search(r"(BEGIN|END) SOLUTION", line))


def _strip_trailing_blank(text: str) -> str:
    return text.rstrip("\n")


def _tags(cell: Cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _with(
    cell: Cell, *, source: str, tags: list[str], mystnb: dict | None = None, id_suffix: str = ""
) -> Cell:
    new = copy.deepcopy(cell)
    if id_suffix and "id" in new:  # cell ids must stay unique (nbformat 4.5)
        new["id"] = f"{new['id'][: 64 - len(id_suffix)]}{id_suffix}"
    meta = new.setdefault("metadata", {})
    meta.pop("nbgrader", None)
    meta["tags"] = tags
    if mystnb:
        meta.setdefault("mystnb", {}).update(mystnb)
    new["source"] = _strip_trailing_blank(source)
    if new.get("cell_type") == "code":
        new["outputs"] = []
        new["execution_count"] = None
    return new


def exercise_numbers(cells: list[Cell]) -> dict[int, int]:
    """Cell index of each solution cell -> its exercise number: the number of the last
    "Exercise n" heading above it, else its rank among the solution cells."""
    numbers, heading, rank = {}, None, 0
    for i, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown":
            found = _EXERCISE_HEADING.findall(_source(cell))
            if found:
                heading = int(found[-1])
        if is_solution(cell):
            rank += 1
            numbers[i] = heading if heading is not None else rank
    return numbers


def book_edition(nb: Notebook, solutions: str = "toggle") -> Notebook:
    """The notebook the book executes and renders (see the module docstring).

    `solutions` is "toggle" (the reference solution behind a "Solution to exercise n" button)
    or "omit" (the solution still runs, so the visible tests pass, but the page leaves it out).
    """
    if solutions not in SOLUTION_MODES:
        raise ValueError(f"solutions must be one of {SOLUTION_MODES}, got {solutions!r}")
    nb = copy.deepcopy(nb)
    numbers = exercise_numbers(nb["cells"])
    cells: list[Cell] = []
    for i, cell in enumerate(nb["cells"]):
        if i in numbers:
            n = numbers[i]
            base = [t for t in _tags(cell) if t not in {"hide-input", "hide-cell", "remove-cell"}]
            starter_tags = base + (["skip-execution"] if cell["cell_type"] == "code" else [])
            cells.append(
                _with(cell, source=student_source(cell), tags=starter_tags, id_suffix="-start")
            )
            if cell["cell_type"] == "code":
                if solutions == "toggle":
                    prompts = {
                        "code_prompt_show": f"Solution to exercise {n}",
                        "code_prompt_hide": f"Hide the solution to exercise {n}",
                    }
                    cells.append(
                        _with(cell, source=solution_source(cell), tags=base + ["hide-input"],
                              mystnb=prompts)
                    )
                else:
                    cells.append(
                        _with(cell, source=solution_source(cell), tags=base + ["remove-cell"])
                    )
            elif solutions == "toggle":  # a written answer: a collapsed admonition
                body = solution_source(cell)
                head = f":::{{admonition}} Solution to exercise {n}\n:class: dropdown\n\n"
                text = f"{head}{body}\n:::"
                cells.append(_with(cell, source=text, tags=base))
        elif _is_exercise_cell(cell):
            cells.append(_with(cell, source=student_source(cell), tags=_tags(cell)))
        else:
            cells.append(cell)
    nb["cells"] = cells
    return nb


def student_edition(nb: Notebook) -> Notebook:
    """The notebook a reader downloads: nbgrader's student release of the lesson (solutions
    replaced by the stub, hidden tests removed, nbgrader metadata kept so that a class can
    still autograde it), with no outputs."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if _is_exercise_cell(cell):
            cell["source"] = student_source(cell)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


def leaks(text: str) -> list[str]:
    """The lines of `text` that carry an nbgrader marker."""
    return [line.strip() for line in text.splitlines() if MARKERS.search(line)]
