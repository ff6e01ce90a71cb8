# esc-book: `make test` runs the test suite, `make book` executes every chapter (quick profile) and builds the
# HTML book into _build/html. Both create .venv and install the pinned dependencies first when needed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= quick
# stamp of the last install; redone when the dependencies change
INSTALLED := $(VENV)/.esc-installed

.PHONY: setup test book clean

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[book,dev]'
	touch $@

setup: $(INSTALLED)

test: $(INSTALLED)
	$(BIN)/python -m pytest

book: $(INSTALLED)
	$(BIN)/esc book --profile $(PROFILE)

clean:
	rm -rf _build book/chapters
