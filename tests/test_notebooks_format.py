"""The lessons follow the course's conventions (CONTRIBUTING.md) before anything runs."""

import re

import pytest
from notebook_utils import NOTEBOOKS, ROOT, load, nbgrader_meta, source

IDS = [p.name for p in NOTEBOOKS]
CHINESE_TERM = re.compile(r"[(（]([^()（）]*[\u4e00-\u9fff][^()（）]*)[)）]")


def test_there_are_lessons():
    assert NOTEBOOKS, "notebooks/ holds no lesson"
    for path in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_outputs_are_stripped(path):
    for i, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"cell {i} has outputs: run `make strip`"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_structure(path):
    nb = load(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown" and source(cells[0]).startswith("# ")
    # the generated Colab set-up cell (scripts/sync_notebooks.py) comes before the lesson's code
    first_code = next(
        source(c)
        for c in cells
        if c["cell_type"] == "code" and "colab-setup" not in c["metadata"].get("tags", [])
    )
    assert "seed_everything(" in first_code and "use_style()" in first_code
    headings = [source(c) for c in cells if c["cell_type"] == "markdown"]
    text = "\n".join(headings)
    h2 = [line for line in text.splitlines() if line.startswith("## ")]
    assert "## Learning objectives" in h2[:2], f"{path.name}: '## Learning objectives' comes first"
    assert h2[-3:] == ["## Summary", "## Exercises", "## References"], (
        f"{path.name} must end with Summary, Exercises, References; its last sections: {h2[-3:]}"
    )
    assert "{cite" in text, f"{path.name} cites nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_figures_have_caption_name_and_alt_text(path):
    names = []
    for i, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        code = source(cell)
        assert "set_title(" not in code and "suptitle(" not in code, (
            f"cell {i}: use a caption (mystnb.figure metadata), not a title inside the plot"
        )
        meta = cell.get("metadata", {}).get("mystnb", {})
        if "figure" in meta:
            fig = meta["figure"]
            assert fig.get("caption") and fig.get("name", "").startswith("fig-"), f"cell {i}"
            assert meta.get("image", {}).get("alt"), f"cell {i}: figure without alt text"
            names.append(fig["name"])
        elif re.search(r"\bsubplots\(|plt\.figure\(", code):
            pytest.fail(f"{path.name} cell {i} draws a figure without mystnb.figure metadata")
    assert len(names) == len(set(names)), "figure names must be unique"


def test_figure_names_unique_across_lessons():
    names = [
        c["metadata"]["mystnb"]["figure"]["name"]
        for p in NOTEBOOKS
        for c in load(p)["cells"]
        if "figure" in c.get("metadata", {}).get("mystnb", {})
    ]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_exercises_are_valid_nbgrader_cells(path):
    cells = load(path)["cells"]
    ids, graded, solutions = [], 0, 0
    for i, cell in enumerate(cells):
        meta, code = nbgrader_meta(cell), source(cell)
        if "### BEGIN SOLUTION" in code:
            assert meta.get("solution") is True and meta.get("grade") is False, f"cell {i}"
            assert "hide-input" in cell["metadata"].get("tags", []), f"cell {i}: not collapsed"
            assert code.count("### BEGIN SOLUTION") == code.count("### END SOLUTION")
            solutions += 1
        if "### BEGIN HIDDEN TESTS" in code:
            assert meta.get("grade") is True, f"cell {i}: hidden tests outside a graded cell"
            assert "### END HIDDEN TESTS" in code
        if meta.get("grade"):
            assert meta.get("points", 0) > 0 and meta.get("locked") is True, f"cell {i}"
            assert "assert" in code, f"cell {i}: a graded cell with no assertion"
            graded += 1
        if meta:
            assert meta.get("schema_version") == 3, f"cell {i}"
            ids.append(meta["grade_id"])
    assert solutions >= 1 and graded >= 2, f"{path.name}: needs graded exercises"
    assert len(ids) == len(set(ids)), "grade_id values must be unique within a notebook"
    last_exercise = max(i for i, c in enumerate(cells) if nbgrader_meta(c))
    first_exercise = min(i for i, c in enumerate(cells) if nbgrader_meta(c))
    assert "## Exercises" in "".join(source(c) for c in cells[:first_exercise]), (
        "exercises must come after the '## Exercises' heading"
    )
    later_code = [c for c in cells[last_exercise + 1 :] if c["cell_type"] == "code"]
    assert not later_code, "nothing after the exercises may depend on them"


def test_every_chinese_term_is_in_the_glossary():
    glossary = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    missing = set()
    for path in NOTEBOOKS:
        for cell in load(path)["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for term in CHINESE_TERM.findall(source(cell)):
                for part in re.split(r"[，,、/；;]", term):
                    part = part.strip()
                    if re.search(r"[图表]\s*\d|[“”「」\"]", part):
                        continue  # an outline figure/table number or a quotation, not a term
                    if re.search(r"[\u4e00-\u9fff]", part) and part not in glossary:
                        missing.add(f"{part} ({path.name})")
    assert not missing, f"add to book/glossary.md: {sorted(missing)}"


def _glossary_chinese_names() -> dict[str, list[str]]:
    """Each glossary row's English term and its Chinese names (aliases split off)."""
    rows = {}
    for line in (ROOT / "book" / "glossary.md").read_text(encoding="utf-8").splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) != 3 or cols[0] in ("English", "") or set(cols[0]) <= set("-"):
            continue
        names = re.split(r"[（）()/、，,]|又作|也作", cols[1])
        rows[cols[0]] = [n.strip() for n in names if re.search(r"[\u4e00-\u9fff]", n)]
    return rows


def test_every_glossary_term_is_introduced_in_a_lesson():
    # the other direction of the test above: a glossary row whose Chinese name no lesson gives
    # at a first use, as "term (中文)", is a term the reader never meets
    introduced = " ".join(
        term
        for path in NOTEBOOKS
        for cell in load(path)["cells"]
        if cell["cell_type"] == "markdown"
        for term in CHINESE_TERM.findall(source(cell))
    )
    rows = _glossary_chinese_names()
    assert len(rows) > 50, "the glossary table was not parsed"
    unused = [en for en, names in rows.items() if not any(n in introduced for n in names)]
    assert not unused, f"glossary terms no lesson introduces as 'term (中文)': {unused}"


OUTLINE_ITEM = re.compile(r"outline\s*([图表])\s*(\d+)")


def test_each_outline_figure_and_table_is_named_once_in_a_caption():
    # the outline (../shared/SEED-REVIEW.md §1) promises 图1-14 and 表1-14; each is one numbered
    # figure or table of the book, named "(outline 图N)" in its caption and nowhere else
    seen: dict[str, list[str]] = {}
    for path in NOTEBOOKS:
        for i, cell in enumerate(load(path)["cells"]):
            where = f"{path.name} cell {i}"
            fig = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
            captions = [fig.get("caption", "")]
            text = source(cell)
            if cell["cell_type"] == "markdown":
                captions += re.findall(r"```\{table\}(.*)", text)
                for line in text.splitlines():
                    assert not (line.startswith("#") and "outline" in line), f"{where}: {line}"
            else:
                captions += _show_table_calls(text)
            in_captions = [m for c in captions for m in OUTLINE_ITEM.findall(c)]
            assert len(in_captions) == len(OUTLINE_ITEM.findall(text + str(fig))), (
                f"{where}: an outline label outside a caption"
            )
            for kind, n in in_captions:
                seen.setdefault(f"{kind}{n}", []).append(where)
    expected = {f"{kind}{n}" for kind in "图表" for n in range(1, 15)}
    missing, unexpected = expected - set(seen), set(seen) - expected
    assert not missing and not unexpected, f"missing {missing}, unexpected {unexpected}"
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert not twice, f"named more than once: {twice}"


def _show_table_calls(code: str) -> list[str]:
    """The text of each `show_table(...)` call in `code`, up to its closing parenthesis."""
    calls = []
    for match in re.finditer(r"\bshow_table\(", code):
        depth, i = 1, match.end()
        while i < len(code) and depth:
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        calls.append(code[match.start() : i])
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_every_show_table_call_passes_caption_and_name(path):
    missing = []
    for i, cell in enumerate(load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        for call in _show_table_calls(source(cell)):
            if not (re.search(r"\bcaption\s*=", call) and re.search(r"\bname\s*=", call)):
                missing.append(f"cell {i}: {' '.join(call.split())[:80]}")
    assert not missing, "show_table without caption= and name= (a numbered table):\n" + "\n".join(
        missing
    )
