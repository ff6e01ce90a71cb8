# esc-book: `make test` runs the test suite, `make smoke` the smoke run of every chapter's paper path, `make book`
# executes every chapter (quick profile) and builds the HTML book into _build/html. Each creates .venv and installs
# the pinned dependencies first when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= quick
# chapters whose smoke run `make smoke` runs (empty: every chapter of the book)
SMOKE_CHAPTERS ?=
# stamp of the last install; redone when the dependencies change
INSTALLED := $(VENV)/.esc-installed

.PHONY: setup test smoke book clean

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-cache-dir -c constraints.txt -e '.[book,dev]'
	touch $@

setup: $(INSTALLED)

# the tests train small models in-process: under the allocator settings the chapters' kernels get
# (esclib.runner.execute.KERNEL_TUNABLES) unless GLIBC_TUNABLES is set
test: $(INSTALLED)
	GLIBC_TUNABLES="$${GLIBC_TUNABLES:-$$($(BIN)/python -c 'from esclib.runner.execute import KERNEL_TUNABLES as t; print(t)')}" \
		$(BIN)/python -m pytest

# every chapter's paper code path at full size on synthetic data in the real layouts, a couple of steps per run
smoke: $(INSTALLED)
	$(BIN)/esc smoke --no-progress $(SMOKE_CHAPTERS)

book: $(INSTALLED)
	$(BIN)/esc book --profile $(PROFILE)

clean:
	rm -rf _build book/chapters
