"""The pins resolve from PyPI alone, for every platform and Python the course supports.

This is what a student, an instructor or CI gets on a fresh machine: no local wheels, no
mirror, no pip configuration. uv resolves pyproject's `dev` extra under the constraints for
each target platform (it evaluates markers for the target, which pip's `--platform` does not),
with wheels only; pip resolves it for this machine. Every resolved package must be pinned, at
the pinned version. Needs the network to PyPI (marker `network`; `make test-resolve`).
"""

import json
import os
import subprocess
import sys

import pytest
from notebook_utils import ROOT
from test_environment import _name, constraints

pytestmark = pytest.mark.network
PYPI = "https://pypi.org/simple"
# (uv's target, the environment it needs); torch 2.13.0's macOS wheels need macOS 14 or newer.
PLATFORMS = {
    "linux-x86_64": ("x86_64-manylinux_2_28", {}),
    "linux-aarch64": ("aarch64-manylinux_2_28", {}),
    "macos-arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
    "windows-x86_64": ("x86_64-pc-windows-msvc", {}),
}
PYTHONS = ("3.11", "3.12")
TARGETS = [(p, v) for p in PLATFORMS for v in PYTHONS]


def pinned_versions() -> dict[str, set[str]]:
    """Each package's pinned versions (two where the pin depends on the Python version)."""
    return {name: {ln.split(";")[0].split("==")[1].strip() for ln in lines.splitlines()}
            for name, lines in constraints().items()}


def check_resolution(resolved: dict[str, str], where: str) -> None:
    pins = pinned_versions()
    unpinned = sorted(set(resolved) - set(pins))
    assert not unpinned, f"{where}: resolved but not pinned (run `make lock`): {unpinned}"
    moved = {n: (v, pins[n]) for n, v in resolved.items() if v.split("+")[0] not in pins[n]}
    assert not moved, f"{where}: resolved versions differ from the pins (resolved, pinned): {moved}"
    assert resolved["torch"].startswith("2.13.0"), where


def _uv_command(platform: str, python: str, out) -> list[str]:
    return [sys.executable, "-m", "uv", "pip", "compile", "pyproject.toml", "--extra", "dev",
            "-c", "requirements/constraints.txt", "--python-platform", PLATFORMS[platform][0],
            "--python-version", python, "--only-binary", ":all:", "--no-config",
            "--index-url", PYPI, "--no-header", "--no-annotate", "--quiet", "-o", str(out)]


def _pip_command(report) -> list[str]:
    return [sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed",
            "--quiet", "--index-url", PYPI, "--report", str(report),
            "-c", "requirements/constraints.txt", "-e", ".[dev]"]


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory) -> dict[str, tuple[int, str, object]]:
    """Every resolution, started at once (they wait on the network, not on the CPU):
    target -> (return code, stderr, the output file)."""
    tmp = tmp_path_factory.mktemp("resolve")
    commands = {}
    for platform, python in TARGETS:
        out = tmp / f"{platform}-{python}.txt"
        env = dict(os.environ, UV_NO_CONFIG="1", **PLATFORMS[platform][1])
        commands[f"{platform}-py{python}"] = (_uv_command(platform, python, out), env, out)
    report = tmp / "pip-report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    commands["pip"] = (_pip_command(report), env, report)
    jobs = {}
    for key, (cmd, env, out) in commands.items():
        log = tmp / f"{key}.stderr"  # a file, not a pipe: a full pipe would block the job
        with log.open("w") as stderr:
            jobs[key] = (subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                          stderr=stderr), log, out)
    return {key: (job.wait(), log.read_text(), out) for key, (job, log, out) in jobs.items()}


@pytest.mark.parametrize(("platform", "python"), TARGETS, ids=[f"{p}-py{v}" for p, v in TARGETS])
def test_pins_resolve_for_platform(platform, python, resolutions):
    returncode, stderr, out = resolutions[f"{platform}-py{python}"]
    assert returncode == 0, f"{platform}, Python {python}: no resolution\n{stderr}"
    resolved = {}
    for line in out.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split(";")[0].strip().split("==")
            resolved[_name(name)] = version
    check_resolution(resolved, f"{platform}, Python {python}")
    has_triton = "triton" in resolved
    assert has_triton == platform.startswith("linux"), f"{platform}: Triton is for Linux only"


def test_pip_resolves_the_pins_from_pypi_alone(resolutions):
    returncode, stderr, report = resolutions["pip"]
    assert returncode == 0, f"pip found no resolution from PyPI:\n{stderr}"
    installs = json.loads(report.read_text())["install"]
    resolved = {_name(i["metadata"]["name"]): i["metadata"]["version"] for i in installs}
    resolved.pop("lessons-lib")
    check_resolution(resolved, "pip on this machine")
    urls = [i["download_info"]["url"] for i in installs if i["metadata"]["name"] != "lessons_lib"]
    foreign = [u for u in urls if not u.startswith("https://files.pythonhosted.org/")]
    assert not foreign, f"packages not from PyPI: {foreign}"
