# The course's commands. `make book` and `make test` each do all set-up on a fresh machine
# (Python 3.11+ with pip and venv): they create .venv and install the pinned dependencies.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Which PyTorch build `make install` takes on Linux: `pypi` (the default: PyPI's build, with CUDA,
# about 7 GB in .venv, needed to run the kernel on a GPU) or `cpu` (PyTorch's CPU-only wheels,
# about 2.4 GB in .venv, enough for every lesson). macOS and Windows get a CPU build either way.
TORCH ?= pypi
ifeq ($(TORCH),cpu)
TORCH_INDEX := --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
else ifeq ($(TORCH),pypi)
TORCH_INDEX :=
else
$(error TORCH must be 'pypi' or 'cpu', got '$(TORCH)')
endif
STAMP := $(VENV)/.installed-$(TORCH)
# Tools started by other tools (nbgrader runs alembic, nbval starts a kernel) come from .venv.
export PATH := $(abspath $(BIN)):$(PATH)
BOOK_FLAGS := -W -n --keep-going
# Bars print their final state as text in the static book (lessons_lib.progress.progress_bar).
BOOK_ENV := LESSONS_PROGRESS=static
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=120 -q --durations=0
# nbval runs the lessons on PyTorch's generic CPU code path (no AVX2/AVX512 kernels), as on an
# ARM laptop or an older CPU: every assertion must hold there too. The book build runs them on
# this machine's fastest path.
NBVAL_ENV := ATEN_CPU_CAPABILITY=default

# Print how long each step took: $(call timed,NAME,COMMAND)
timed = @start=$$(date +%s); $(2) || exit $$?; echo "[time] $(1): $$(( $$(date +%s) - start )) s"

.PHONY: help install book test lint typecheck test-lib test-notebooks test-book test-browser \
        test-assignments test-resolve lab release strip lock bench ptx-report sync clean

help:
	@echo "make book     build the book into _build/html (open _build/html/index.html)"
	@echo "make test     lint, types, library and kernel tests, notebooks, strict book build, grading"
	@echo "make lab      open JupyterLab on the lessons with the course's environment"
	@echo "make release  student release of the exercises into _build/nbgrader/release"
	@echo "make bench    benchmark the fused kernel (GPU figures need a CUDA GPU)"
	@echo "make ptx-report  compile the fused kernel for an H100 and print registers, spills, loads"
	@echo "make strip    strip outputs from the notebooks before committing"
	@echo "make sync     insert or update each lesson's Colab set-up cell (from _config.yml)"

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_INDEX) -c requirements/constraints.txt -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# The book's execution cache keys on each notebook's own text, so outputs computed with an older
# lessons_lib, environment or benchmark file would be reused without a word: a change to any of
# them empties the cache first.
CACHE_INPUTS := $(STAMP) $(shell find lessons_lib -name '*.py') $(wildcard benchmarks/results.json)
CACHE_STAMP := _build/.cache-inputs

$(CACHE_STAMP): $(CACHE_INPUTS)
	rm -rf _build/.jupyter_cache _build/.doctrees
	mkdir -p _build && touch $@

# The course's Sphinx extension (_ext) shapes every page: a change to it re-reads them all (the
# execution cache stays valid).
EXT_STAMP := _build/.ext-inputs
$(EXT_STAMP): $(shell find _ext -type f -not -path '*/__pycache__/*')
	rm -rf _build/.doctrees
	mkdir -p _build && touch $@

book: $(STAMP) $(CACHE_STAMP) $(EXT_STAMP)
	$(call timed,book,$(BOOK_ENV) $(BIN)/jupyter-book build . $(BOOK_FLAGS))
	@echo "Open _build/html/index.html in a browser."

test: $(STAMP)
	$(call timed,total,$(MAKE) --no-print-directory lint typecheck test-resolve test-lib test-notebooks \
	    test-book test-browser test-assignments)

lint: $(STAMP)
	$(call timed,lint,$(BIN)/ruff check . && $(BIN)/actionlint)

typecheck: $(STAMP)
	$(call timed,typecheck,$(BIN)/mypy lessons_lib)

test-lib: $(STAMP)
	$(call timed,library and kernel tests,\
	    $(BIN)/python -m pytest tests -m "not assignments and not browser and not network" -q)

# The pins resolve from PyPI alone (no local wheels, no pip configuration) for Linux x86_64 and
# aarch64, macOS arm64 and Windows, Python 3.11 and 3.12. Needs the network to PyPI.
test-resolve: $(STAMP)
	$(call timed,pins resolve from PyPI,$(BIN)/python -m pytest tests -m network -q)

test-notebooks: $(STAMP)
	$(call timed,notebooks (nbval; generic CPU path),$(NBVAL_ENV) $(BIN)/python -m pytest $(NBVAL_FLAGS) $(NOTEBOOKS))

test-book: $(STAMP) $(CACHE_STAMP) $(EXT_STAMP)
	$(call timed,strict book build,$(BOOK_ENV) $(BIN)/jupyter-book build . $(BOOK_FLAGS))

# The built book in Chromium at 1280 and 390 px (tests/test_browser.py); run after test-book.
# Without Chromium it is skipped with a message (outside CI) or fails (in CI).
test-browser: $(STAMP)
	$(call timed,browser test,$(BIN)/python -m pytest tests/test_browser.py -m browser -q -rsx)

test-assignments: $(STAMP)
	$(call timed,assignments (nbgrader),$(BIN)/python -m pytest tests -m assignments -q)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

release: $(STAMP)
	mkdir -p _build/nbgrader
	$(BIN)/nbgrader generate_assignment notebooks --force
	@echo "Student notebooks: _build/nbgrader/release/notebooks"

bench: $(STAMP)
	$(BIN)/python -m lessons_lib.kernels.benchmark --out benchmarks/results.json

# Compiles for sm_90a without a GPU; --write refreshes the copy lesson 08 shows.
ptx-report: $(STAMP)
	env -u TRITON_INTERPRET $(BIN)/python -m lessons_lib.kernels.ptx_report --write

strip: $(STAMP)
	$(BIN)/jupyter nbconvert --clear-output --inplace --log-level=WARN $(NOTEBOOKS)

sync: $(STAMP)
	$(BIN)/python scripts/sync_notebooks.py

lock: $(STAMP)
	$(BIN)/python scripts/lock.py

# Removes the built book and caches; the grading data in _build/nbgrader (gradebook, submissions,
# feedback) stays: delete that folder yourself when a class is over.
clean:
	find _build -mindepth 1 -maxdepth 1 ! -name nbgrader -exec rm -rf {} + 2>/dev/null || true
