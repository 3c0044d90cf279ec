# The course's commands. `make book` and `make test` each do all set-up on a fresh machine
# (Python 3.11+ with pip and venv): they create .venv and install the pinned dependencies.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tools started by other tools (nbgrader runs alembic, nbval starts a kernel) come from .venv.
export PATH := $(abspath $(BIN)):$(PATH)
BOOK_FLAGS := -W -n --keep-going
# Bars print their final state as text in the static book (lessons_lib.training.progress_bar).
BOOK_ENV := LESSONS_PROGRESS=static
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
NBVAL_FLAGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=120 -q --durations=0

# Print how long each step took: $(call timed,NAME,COMMAND)
timed = @start=$$(date +%s); $(2) || exit $$?; echo "[time] $(1): $$(( $$(date +%s) - start )) s"

.PHONY: help install book test lint test-lib test-notebooks test-book test-assignments \
        lab release strip lock bench ptx-report clean

help:
	@echo "make book     build the book into _build/html (open _build/html/index.html)"
	@echo "make test     lint, library and kernel tests, notebooks, strict book build, grading"
	@echo "make lab      open JupyterLab on the lessons with the course's environment"
	@echo "make release  student release of the exercises into _build/nbgrader/release"
	@echo "make bench    benchmark the fused kernel (GPU figures need a CUDA GPU)"
	@echo "make ptx-report  compile the fused kernel for an H100 and print registers, spills, loads"
	@echo "make strip    strip outputs from the notebooks before committing"

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
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

book: $(STAMP) $(CACHE_STAMP)
	$(call timed,book,$(BOOK_ENV) $(BIN)/jupyter-book build . $(BOOK_FLAGS))
	@echo "Open _build/html/index.html in a browser."

test: $(STAMP)
	$(call timed,total,$(MAKE) --no-print-directory lint test-lib test-notebooks test-book test-assignments)

lint: $(STAMP)
	$(call timed,lint,$(BIN)/ruff check .)

test-lib: $(STAMP)
	$(call timed,library and kernel tests,$(BIN)/python -m pytest tests -m "not assignments" -q)

test-notebooks: $(STAMP)
	$(call timed,notebooks (nbval),$(BIN)/python -m pytest $(NBVAL_FLAGS) $(NOTEBOOKS))

test-book: $(STAMP) $(CACHE_STAMP)
	$(call timed,strict book build,$(BOOK_ENV) $(BIN)/jupyter-book build . $(BOOK_FLAGS))

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

lock: $(STAMP)
	$(BIN)/python scripts/lock.py

clean:
	rm -rf _build
