"""The table of contents, the citations and the pins are consistent."""

import re

import yaml
from notebook_utils import NOTEBOOKS, ROOT, load, source

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
        yield path.name, "\n".join(source(c) for c in load(path)["cells"])


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


def test_config_sets_strict_execution_and_the_repository_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["only_build_toc_files"] is True
    assert config["execute"]["raise_on_error"] is True and config["execute"]["timeout"] > 0
    url = config["repository"]["url"]
    assert url.startswith("https://")
    for buttons in ("binderhub_url", "colab_url", "jupyterhub_url"):
        assert config["launch_buttons"][buttons].startswith("https://")
    for name, text in _texts():
        assert url not in text, f"{name} repeats the repository URL: set it in _config.yml only"
