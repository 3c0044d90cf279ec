"""Every graded cell fails the plausible wrong answers kept in tests/wrong_answers/.

Layout: `tests/wrong_answers/<notebook stem>/<graded grade_id>__<slug>.py`. A file's content
replaces the solution cell just above the graded cell (or the solution cell named by a first
line `# replaces: <solution grade_id>`). For each wrong answer the notebook's kernel runs the
lesson as the instructor wrote it up to that solution cell, then the wrong answer in place of
the solution, then the cells after it down to the graded cell, which must raise: the grade
nbgrader gives a test cell is its points if it runs without error and 0 otherwise, so a raise is
"less than full marks". The kernel's variables and random generators are then restored and the
lesson goes on with the real solution. One kernel per lesson keeps this to about one run of
each notebook.

The static checks (every graded cell has at least two wrong answers, every file names a graded
cell) run with the library tests; executing them runs with the assignment tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from notebook_utils import NOTEBOOKS, ROOT, load, nbgrader_meta

WRONG = ROOT / "tests" / "wrong_answers"
MIN_WRONG_ANSWERS = 2
# Errors that show the wrong answer is not an answer at all (it does not define what the
# exercise asks for, or it is the untouched stub), so its failing proves nothing.
NOT_AN_ANSWER = ("NameError", "SyntaxError", "NotImplementedError", "IndentationError")

SNAPSHOT = """\
import random as _wa_random, numpy as _wa_np, torch as _wa_torch
_wa_saved = (dict(globals()), _wa_random.getstate(), _wa_np.random.get_state(),
             _wa_torch.get_rng_state())"""
RESTORE = """\
_wa_random.setstate(_wa_saved[1]); _wa_np.random.set_state(_wa_saved[2])
_wa_torch.set_rng_state(_wa_saved[3])
(lambda ns, saved: (ns.clear(), ns.update(saved)))(globals(), _wa_saved[0])"""


@dataclass(frozen=True)
class WrongAnswer:
    path: Path
    graded_id: str  # the test cell that must fail
    replaces: str | None  # the solution cell it replaces (None: the one above the graded cell)

    @property
    def label(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def wrong_answers(stem: str) -> list[WrongAnswer]:
    found = []
    for path in sorted((WRONG / stem).glob("*.py")):
        graded_id = path.stem.split("__", 1)[0]
        first = path.read_text(encoding="utf-8").splitlines()[:1]
        m = re.fullmatch(r"#\s*replaces:\s*(\S+)\s*", first[0]) if first else None
        found.append(WrongAnswer(path, graded_id, m.group(1) if m else None))
    return found


def graded_cells(cells: list[dict]) -> dict[str, int]:
    return {nbgrader_meta(c)["grade_id"]: i for i, c in enumerate(cells)
            if nbgrader_meta(c).get("grade")}


def solution_cells(cells: list[dict]) -> dict[str, int]:
    return {nbgrader_meta(c)["grade_id"]: i for i, c in enumerate(cells)
            if nbgrader_meta(c).get("solution")}


def target_solution(cells: list[dict], wrong: WrongAnswer) -> int:
    """Index of the solution cell that `wrong` replaces."""
    if wrong.replaces is not None:
        return solution_cells(cells)[wrong.replaces]
    graded = graded_cells(cells)[wrong.graded_id]
    return max(i for i in solution_cells(cells).values() if i < graded)


GRADED = [p for p in NOTEBOOKS if graded_cells(load(p)["cells"])]
IDS = [p.stem for p in GRADED]


def test_wrong_answer_folders_name_lessons():
    stems = {p.stem for p in NOTEBOOKS}
    folders = {p.name for p in WRONG.iterdir() if p.is_dir()} if WRONG.exists() else set()
    assert folders <= stems, f"folders for no lesson: {sorted(folders - stems)}"


@pytest.mark.parametrize("path", GRADED, ids=IDS)
def test_every_graded_cell_has_wrong_answers(path):
    cells = load(path)["cells"]
    graded, solutions = graded_cells(cells), solution_cells(cells)
    answers = wrong_answers(path.stem)
    for wrong in answers:
        assert wrong.graded_id in graded, f"{wrong.label}: no graded cell {wrong.graded_id!r}"
        assert wrong.replaces is None or wrong.replaces in solutions, (
            f"{wrong.label}: no solution cell {wrong.replaces!r}"
        )
        assert any(i < graded[wrong.graded_id] for i in solutions.values()), (
            f"{wrong.label}: no solution cell above {wrong.graded_id}"
        )
    counts = {g: sum(w.graded_id == g for w in answers) for g in graded}
    few = {g: n for g, n in counts.items() if n < MIN_WRONG_ANSWERS}
    assert not few, f"{path.name}: fewer than {MIN_WRONG_ANSWERS} wrong answers for {few}"


def _error(outputs: list) -> str | None:
    for out in outputs:
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return None


@pytest.mark.assignments
@pytest.mark.parametrize("path", GRADED, ids=IDS)
def test_wrong_answers_fail_their_graded_cell(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("TQDM_DISABLE", "1")  # no bars (LESSONS_PROGRESS has no "off" value)
    monkeypatch.delenv("LESSONS_PROGRESS", raising=False)
    nb = nbformat.read(path, as_version=4)
    cells = [dict(c) for c in load(path)["cells"]]
    graded = graded_cells(cells)
    by_solution: dict[int, list[WrongAnswer]] = {}
    for wrong in wrong_answers(path.stem):
        by_solution.setdefault(target_solution(cells, wrong), []).append(wrong)
    if not by_solution:
        pytest.skip(f"{path.name} keeps no wrong answers yet")

    client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    lesson = list(nb.cells)
    nb.cells.append(nbformat.v4.new_code_cell(""))  # nbclient stores each run cell here

    def run(code: str) -> str | None:
        cell = nbformat.v4.new_code_cell(code)
        client.execute_cell(cell, len(nb.cells) - 1)
        return _error(cell.outputs)

    problems, passed = [], []
    with client.setup_kernel():
        for i, cell in enumerate(lesson):
            if cell.cell_type != "code":
                continue
            for wrong in by_solution.get(i, []):
                assert run(SNAPSHOT) is None
                err = run(wrong.path.read_text(encoding="utf-8"))
                if err:
                    problems.append(f"{wrong.label}: the wrong answer itself fails ({err})")
                else:
                    last = graded[wrong.graded_id]
                    for j in range(i + 1, last + 1):
                        if lesson[j].cell_type == "code":
                            err = run(lesson[j].source)
                    if err is None:
                        problems.append(f"{wrong.label}: {wrong.graded_id} passes (full marks)")
                    elif err.split(":")[0] in NOT_AN_ANSWER:
                        problems.append(f"{wrong.label}: fails only with {err}: not an answer")
                    else:
                        passed.append(f"{wrong.label}: {err[:120]}")
                assert run(RESTORE) is None
            err = run(cell.source)
            assert err is None, f"{path.name} cell {i} fails as the instructor wrote it: {err}"
    assert not problems, "\n".join(problems)
    print("\n".join(passed))
