"""Lesson 08 runs where students run it: copied out of the repository (Colab's /content, a
release folder), and on a machine without Triton (macOS, Windows), where its Triton cells say
what they would show and everything else, exercises included, still runs.

Each test executes the whole notebook with nbclient (about 25 s with Triton, 10 s without, on
two cores)."""

from __future__ import annotations

import os
import shutil

import pytest
from notebook_utils import ROOT

NOTEBOOK = ROOT / "notebooks" / "08_fused_kernel.ipynb"
# Put on PYTHONPATH of the notebook's kernel: `import triton` then fails, as on a machine
# where it is not installed (None in sys.modules makes the import raise ImportError, and
# importlib.util.find_spec report the module missing).
NO_TRITON = "import sys\nsys.modules['triton'] = None\n"


def _execute(path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LESSONS_PROGRESS", "0")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    return "\n".join(
        "".join(out.get("text", "")) for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.get("output_type") == "stream"
    )


def test_runs_from_a_copy_outside_the_repository(tmp_path, monkeypatch):
    copy = tmp_path / "release" / NOTEBOOK.name
    copy.parent.mkdir()
    shutil.copy(NOTEBOOK, copy)
    assert not any((p / "pyproject.toml").exists() for p in [copy.parent, *copy.parents])
    text = _execute(copy, monkeypatch)
    assert "[needs Triton]" not in text  # Triton is installed here: every kernel ran
    assert "bitwise equal" in text


def test_runs_without_triton(tmp_path, monkeypatch):
    pytest.importorskip("nbclient")
    shim = tmp_path / "no_triton"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(NO_TRITON, encoding="utf-8")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(shim), *filter(None, [os.environ.get("PYTHONPATH")])]))
    text = _execute(NOTEBOOK, monkeypatch)
    assert "Triton is not installed" in text, "the first cell must say Triton is missing"
    skipped = text.count("[needs Triton]")
    assert skipped >= 6, f"expected the 6 Triton cells to explain themselves, {skipped} did"
    assert "backend 'reference'" in text  # the Pre-LN block check still ran, on the reference
