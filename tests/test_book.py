"""The table of contents, the citations and the pins are consistent."""

import importlib.util
import json
import re
import sys

import pytest
import yaml
from notebook_utils import NOTEBOOKS, ROOT, load, source

sys.path.insert(0, str(ROOT / "_ext"))
from course_book import citations, exercises  # noqa: E402

BIB = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
BIB_KEYS = set(re.findall(r"@\w+\{([^,]+),", BIB))


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [ch["file"] for ch in part["chapters"]]
    return files


def test_toc_lists_existing_pages_and_every_page():
    files = toc_files()
    assert len(files) == len(set(files)), "a page is listed twice"
    for f in files:
        assert (ROOT / f"{f}.md").exists() or (ROOT / f"{f}.ipynb").exists(), f"{f} is missing"
    pages = {f"notebooks/{p.stem}" for p in NOTEBOOKS}
    pages |= {f"book/{p.stem}" for p in (ROOT / "book").glob("*.md")}
    assert pages == set(files), f"pages not in _toc.yml: {sorted(pages - set(files))}"


def test_lessons_appear_in_order():
    lessons = [f for f in toc_files() if f.startswith("notebooks/")]
    assert lessons == sorted(lessons)


def _texts():
    for path in (ROOT / "book").glob("*.md"):
        yield path.name, path.read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        # the Colab set-up cell is generated from _config.yml (make sync), checked below
        cells = [
            c for c in load(path)["cells"] if "colab-setup" not in c["metadata"].get("tags", [])
        ]
        yield path.name, "\n".join(source(c) for c in cells)


def test_every_citation_is_in_references_bib():
    for name, text in _texts():
        for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            for key in keys.split(","):
                assert key.strip() in BIB_KEYS, f"{name} cites unknown key {key.strip()!r}"


def test_bib_entries_are_unique_and_complete():
    entries = re.findall(r"@\w+\{([^,]+),(.*?)\n\}", BIB, flags=re.S)
    keys = [k for k, _ in entries]
    assert len(keys) == len(set(keys)) == len(BIB_KEYS)
    for key, body in entries:
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=", body, flags=re.M), f"{key} lacks {field}"
        # "A and others" is cited as "A and others, 2025": name three authors before "others"
        # so the author-year style writes "A et al."
        authors = re.search(r"^\s*author\s*=\s*\{(.*)\},?$", body, flags=re.M)
        names = [n.strip() for n in authors.group(1).split(" and ")] if authors else []
        if "others" in names:
            assert len(names) >= 4, f"{key}: name at least three authors before 'others'"


def test_config_sets_strict_execution_and_the_repository_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert config["execute"]["raise_on_error"] is True and config["execute"]["timeout"] > 0
    url = config["repository"]["url"]
    assert url.startswith("https://")
    for buttons in ("binderhub_url", "colab_url"):
        assert config["launch_buttons"][buttons].startswith("https://")
    # no hub button until a class sets its own hub (see the instructor guide)
    hub = config["launch_buttons"]["jupyterhub_url"]
    assert hub == "" or (hub.startswith("https://") and "example" not in hub)
    for name, text in _texts():
        assert url not in text, f"{name} repeats the repository URL: set it in _config.yml only"


def _sync_script():
    path = ROOT / "scripts" / "sync_notebooks.py"
    spec = importlib.util.spec_from_file_location("sync_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_lesson_has_the_current_colab_setup_cell(path):
    sync = _sync_script()
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url, branch = config["repository"]["url"].rstrip("/"), config["repository"]["branch"]
    assert sync.repository() == (url, branch)
    cells = load(path)["cells"]
    setup = [i for i, c in enumerate(cells) if sync.is_setup_cell(c)]
    assert setup == [1], f"{path.name}: the set-up cell must be cell 1, once; run `make sync`"
    cell = cells[1]
    assert cell == sync.setup_cell(url, branch), f"{path.name}: stale set-up cell; run `make sync`"
    assert "remove-cell" in cell["metadata"]["tags"], "the book must not show the set-up cell"
    assert f'"lessons_lib[kernel] @ git+{url}@{branch}"' in source(cell)
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert first_code is cell, "the set-up cell must run before any other code"


def test_sync_is_idempotent_and_follows_the_repository_setting():
    sync = _sync_script()
    nb = load(NOTEBOOKS[0])
    once = sync.synced(nb, "https://github.com/someone/fork", "v2")
    assert sync.synced(once, "https://github.com/someone/fork", "v2") == once
    assert sum(sync.is_setup_cell(c) for c in once["cells"]) == 1
    assert "git+https://github.com/someone/fork@v2" in source(once["cells"][1])
    again = sync.synced(once, "https://github.com/other/repo", "main")
    assert "someone/fork" not in json.dumps(again) and len(again["cells"]) == len(once["cells"])


PLACEHOLDER = re.compile(r"example\.edu|<(?:the|your|a|an) [a-z ]+>", re.I)


def test_no_page_source_has_a_placeholder():
    for name, text in _texts():
        assert not PLACEHOLDER.search(text), f"{name}: {PLACEHOLDER.search(text).group(0)}"
    config = (ROOT / "_config.yml").read_text()
    assert "example.edu" not in config


def test_setup_page_derives_its_commands_from_the_repository_setting():
    text = (ROOT / "book" / "setup.md").read_text(encoding="utf-8")
    for key in ("clone_block", "colab_block", "pip_block", "repo_url"):
        assert "{{ " + key + " }}" in text, f"book/setup.md does not use {{{{ {key} }}}}"
    from course_book import substitutions

    subs = substitutions("https://github.com/o/r", "b")
    assert "git clone --branch b \\\n    https://github.com/o/r ln-course" in subs["clone_block"]
    assert 'git+https://github.com/o/r@b"' in subs["colab_block"]
    assert subs["colab_block"].split("%pip install --quiet ")[1].strip().rstrip("`").strip() in (
        _sync_script().setup_source("https://github.com/o/r", "b")
    )


def _nbgrader_release(nb: dict) -> dict:
    import nbformat
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    node = nbformat.reads(json.dumps(nb), as_version=4)
    node, _ = ClearSolutions().preprocess(node, {})
    node, _ = ClearHiddenTests().preprocess(node, {})
    return node


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_downloaded_notebook_is_nbgraders_student_release(path):
    nb = load(path)
    student = exercises.student_edition(nb)
    release = _nbgrader_release(nb)
    assert [source(c) for c in student["cells"]] == [source(c) for c in release.cells]
    for cell in student["cells"]:
        assert not exercises.leaks(source(cell)), f"{path.name}: {exercises.leaks(source(cell))}"


@pytest.mark.parametrize("mode", exercises.SOLUTION_MODES)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_book_edition_shows_statement_starter_solution_toggle_and_visible_tests(path, mode):
    nb = load(path)
    book = exercises.book_edition(nb, mode)
    code = [c for c in book["cells"] if c["cell_type"] == "code"]
    for cell in book["cells"]:
        assert not exercises.leaks(source(cell)), f"{path.name}: {exercises.leaks(source(cell))}"
        assert "nbgrader" not in cell["metadata"]
    solutions = [c for c in nb["cells"] if exercises.is_solution(c)]
    starters = [c for c in code if "skip-execution" in c["metadata"].get("tags", [])]
    assert len(starters) == len(solutions)
    assert all("raise NotImplementedError()" in source(c) for c in starters)
    shown = [c for c in code if "Solution to exercise" in
             c["metadata"].get("mystnb", {}).get("code_prompt_show", "")]
    removed = [c for c in code if "remove-cell" in c["metadata"].get("tags", [])
               and "colab-setup" not in c["metadata"]["tags"]]
    if mode == "toggle":
        assert len(shown) == len(solutions) and not removed
        assert all("hide-input" in c["metadata"]["tags"] for c in shown)
        numbers = [int(c["metadata"]["mystnb"]["code_prompt_show"].split()[-1]) for c in shown]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    else:
        assert not shown and len(removed) == len(solutions)
    visible = [line for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade")
               for line in exercises.student_source(c).splitlines() if line.strip()]
    book_text = "\n".join(source(c) for c in code)
    assert all(line in book_text for line in visible), "a visible test is missing from the page"
    ids = [c.get("id") for c in book["cells"]]
    assert len(ids) == len(set(ids)), "cell ids must stay unique"


def test_exercise_editions_handle_indented_regions_and_reject_broken_markers():
    cell = {"cell_type": "code", "metadata": {"nbgrader": {"solution": True}},
            "source": "def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"}
    assert exercises.student_source(cell) == (
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n")
    assert exercises.solution_source(cell) == "def f(x):\n    return x\n"
    bad = dict(cell, source="### BEGIN SOLUTION\nx = 1\n")
    with pytest.raises(ValueError, match="without"):
        exercises.student_source(bad)
    with pytest.raises(ValueError, match="solutions must be one of"):
        exercises.book_edition({"cells": []}, "hidden")


def test_citations_tell_same_author_same_year_papers_apart():
    from pybtex.database import parse_file

    bib = parse_file(str(ROOT / "book" / "references.bib"))
    citations.suffix_years(bib)
    citations.suffix_years(bib)  # idempotent: a rebuild must not make 2016aa
    labels = [f"{citations.author_text(e)}, {e.fields['year']}" for e in bib.entries.values()]
    assert len(labels) == len(set(labels)), f"ambiguous in-text citations: {sorted(labels)}"
    years = {bib.entries[k].fields["year"] for k in ("he2016deep", "he2016identity")}
    assert years == {"2016a", "2016b"}


def test_widget_state_is_drawn_as_static_html():
    from course_book import widgets_static

    models = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_s", "IPY_MODEL_o"]}},
        "s": {"model_name": "FloatSliderModel",
              "state": {"description": "ε", "value": 1e-05, "readout_format": ".3g"}},
        "o": {"model_name": "OutputModel", "state": {"outputs": [
            {"output_type": "display_data", "metadata": {"image/png": {"width": 320}},
             "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}}]}},
    }
    html = widgets_static.render("box", models)
    assert "ε = 1e-05" in html
    assert '<img src="data:image/png;base64,iVBORw0KGgo=" width="320"' in html
    assert "<Figure>" not in html and widgets_static.NOTE in html
