"""Give every lesson its set-up cell for Colab, generated from `_config.yml`.

A lesson opened alone (Colab's launch button opens the notebook straight from the repository)
has no `lessons_lib`. The set-up cell, the first code cell of each lesson, installs the course
library from the repository at the configured branch, and does nothing where the library
already imports (a local `make lab`, Binder, a hub). It is tagged `remove-cell`, so the book
does not show it.

    python scripts/sync_notebooks.py          # insert or update the cell in every lesson
    python scripts/sync_notebooks.py --check  # exit 1 if a lesson's cell is missing or stale

The cell is generated: never edit it by hand; change `repository` in `_config.yml` and run
`make sync`. Running the script twice changes nothing the second time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TAG = "colab-setup"
CELL_ID = "colab-setup"


def repository(root: Path = ROOT) -> tuple[str, str]:
    """(url, branch) from `_config.yml`'s `repository` setting."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = config.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"_config.yml: repository.url must be an https:// URL, got {url!r}")
    return url, str(repo.get("branch") or "main")


def pip_spec(url: str, branch: str) -> str:
    """What the cell installs: the library with its kernel extra, from the repository."""
    return f"lessons_lib[kernel] @ git+{url}@{branch}"


def setup_source(url: str, branch: str) -> str:
    return (
        "# Set-up for Colab or any fresh environment: installs the course library from the\n"
        "# course repository if it is missing, and does nothing where it is installed.\n"
        "# Generated from _config.yml by `make sync`; do not edit by hand.\n"
        "import importlib.util\n"
        "\n"
        'if importlib.util.find_spec("lessons_lib") is None:\n'
        f'    %pip install --quiet "{pip_spec(url, branch)}"'
    )


def setup_cell(url: str, branch: str) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": CELL_ID,
        "metadata": {"tags": ["remove-cell", TAG]},
        "outputs": [],
        "source": setup_source(url, branch).splitlines(keepends=True),
    }


def is_setup_cell(cell: dict) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", [])


def synced(nb: dict, url: str, branch: str) -> dict:
    """`nb` with exactly one, current set-up cell, placed right after the title cell."""
    cells = [c for c in nb["cells"] if not is_setup_cell(c)]
    at = 1 if cells and cells[0]["cell_type"] == "markdown" else 0
    nb = dict(nb, cells=cells[:at] + [setup_cell(url, branch)] + cells[at:])
    return nb


def dumps(nb: dict) -> str:
    # the layout Jupyter writes, so that syncing an up-to-date lesson changes no byte
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report stale lessons, write none")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args(argv)
    url, branch = repository()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb"))
    stale = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = dumps(synced(json.loads(text), url, branch))
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "stale (run `make sync`)" if args.check else "updated"
    for path in stale:
        print(f"{verb}: {path.relative_to(ROOT) if path.is_absolute() else path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
