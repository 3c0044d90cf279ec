"""Every public function and class of the library says what it does (a docstring), and the
package docstring names every module."""

import importlib
import inspect
import pkgutil

import pytest

import lessons_lib

# The kernel and the Transformer block are documented and checked with their own tests.
OWN_TESTS = ("lessons_lib.kernels", "lessons_lib.transformer")
MODULES = sorted(
    m.name for m in pkgutil.iter_modules(lessons_lib.__path__, "lessons_lib.")
    if not m.name.startswith(OWN_TESTS) and not m.name.rsplit(".", 1)[1].startswith("_")
)


def _public(module):
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


@pytest.mark.parametrize("name", MODULES)
def test_public_functions_and_classes_have_docstrings(name):
    module = importlib.import_module(name)
    assert inspect.getdoc(module), f"{name} has no module docstring"
    missing = [n for n, obj in _public(module) if not obj.__doc__]
    assert not missing, f"{name}: no docstring on {missing}"


def test_the_package_docstring_names_every_module():
    doc = lessons_lib.__doc__
    for name in MODULES + list(OWN_TESTS):
        assert f"`{name.split('.')[1]}`" in doc, name
