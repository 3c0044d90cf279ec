"""The pip pins and the conda environment agree, and the key versions are the course's."""

import re
import tomllib

import yaml
from notebook_utils import ROOT


def _name(req: str) -> str:
    return re.split(r"[=<>!~;\[ ]", req, maxsplit=1)[0].lower().replace("_", "-")


def pin_lines() -> list[str]:
    """The `name==version[ ; marker]` lines of requirements/constraints.txt."""
    lines = []
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            assert "==" in line.split(";")[0], f"not an exact pin: {line}"
            lines.append(line)
    return lines


def constraints() -> dict[str, str]:
    """Each package's pin; a package pinned per Python version (several lines with markers)
    maps to its lines joined by newlines."""
    pins: dict[str, str] = {}
    for line in pin_lines():
        name = _name(line)
        pins[name] = f"{pins[name]}\n{line}" if name in pins else line
    return pins


def test_environment_yml_has_exactly_the_constraints_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert [r for r in pip if not r.startswith("-")] == pin_lines()
    assert "-e .[dev]" in pip


def test_key_versions():
    pins = constraints()
    assert pins["torch"] == "torch==2.13.0"
    assert pins["jupyter-book"] == "jupyter-book==1.0.4.post1"
    assert pins["triton"] == "triton==3.7.1 ; sys_platform == 'linux'"  # torch 2.13.0's own pin
    for name in ("nbval", "nbgrader", "ipywidgets", "matplotlib", "pytest", "ipykernel"):
        assert name in pins


def test_every_declared_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    pins = constraints()
    for req in declared:
        name = _name(req)
        if name != "lessons-lib":
            assert name in pins, f"{req} is not pinned in requirements/constraints.txt"
