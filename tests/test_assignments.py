"""The nbgrader round trip: release without solutions, full marks for the solutions, zero for
an untouched release. Slow (it runs every lesson twice), so it has its own marker and runs last
in `make test`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from notebook_utils import NOTEBOOKS, ROOT, load, nbgrader_meta, region_lines, source

pytestmark = pytest.mark.assignments
NBGRADER = [sys.executable, "-m", "nbgrader"]


def _run(args, cwd):
    # nbgrader runs `alembic` from PATH: put this interpreter's scripts first
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(NBGRADER + args, cwd=cwd, env=env, capture_output=True, text=True)
    log = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{log}"
    return result


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A copy of the course with the release generated and two submissions autograded."""
    root = tmp_path_factory.mktemp("course")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    shutil.copytree(ROOT / "notebooks", root / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (root / "_build/nbgrader").mkdir(parents=True)  # where the gradebook lives
    _run(["generate_assignment", "notebooks", "--force"], root)
    release = root / "_build/nbgrader/release/notebooks"
    submitted = root / "_build/nbgrader/submitted"
    shutil.copytree(root / "notebooks", submitted / "solutions/notebooks")
    shutil.copytree(release, submitted / "untouched/notebooks")
    _run(["autograde", "notebooks", "--force"], root)
    return root


def _graded_cells(path: Path) -> dict[str, int]:
    return {
        nbgrader_meta(c)["grade_id"]: nbgrader_meta(c)["points"]
        for c in load(path)["cells"]
        if nbgrader_meta(c).get("grade")
    }


def _scores(course: Path, student: str) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / '_build/nbgrader/gradebook.db'}") as gb:
        scores = {}
        for path in NOTEBOOKS:
            nb = gb.find_submission_notebook(path.stem, "notebooks", student)
            scores[path.stem] = {g.name: g.score for g in nb.grades}
        return scores


def test_release_has_every_lesson_without_solutions_or_hidden_tests(course):
    release = course / "_build/nbgrader/release/notebooks"
    assert sorted(p.name for p in release.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for path in NOTEBOOKS:
        source_cells = load(path)["cells"]
        released = "\n".join(source(c) for c in load(release / path.name)["cells"])
        outside = set()  # lines the lesson also has outside any solution/hidden region
        secret = []
        for cell in source_cells:
            text = source(cell)
            secret += region_lines(text, "### BEGIN SOLUTION", "### END SOLUTION")
            secret += region_lines(text, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
            visible = region_lines(text, "### BEGIN SOLUTION", "### END SOLUTION", inside=False)
            visible = region_lines("\n".join(visible), "### BEGIN HIDDEN TESTS",
                                   "### END HIDDEN TESTS", inside=False)
            outside |= set(visible)
        for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            assert marker not in released, f"{path.name}: release still has '{marker}'"
        assert "raise NotImplementedError()" in released
        released_lines = {ln.strip() for ln in released.splitlines()}
        leaked = [ln for ln in secret if ln in released_lines and ln not in outside]
        assert not leaked, f"{path.name}: solution or hidden-test lines in the release: {leaked}"


def test_solutions_score_full_marks(course):
    scores = _scores(course, "solutions")
    for path in NOTEBOOKS:
        expected = _graded_cells(path)
        assert scores[path.stem] == {k: float(v) for k, v in expected.items()}, path.name


def test_untouched_release_scores_zero_on_every_graded_cell(course):
    scores = _scores(course, "untouched")
    for path in NOTEBOOKS:
        expected = _graded_cells(path)
        assert set(scores[path.stem]) == set(expected), path.name
        passed = {k: v for k, v in scores[path.stem].items() if v != 0}
        assert not passed, f"{path.name}: graded cells pass without the exercise done: {passed}"
