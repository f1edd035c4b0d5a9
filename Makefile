# vglab: `make lab` sets up and opens the lab; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM ?= /usr/bin/chromium

.PHONY: lab test test-fast bench browser lint clean

lab: $(VENV)/.lab-installed
	$(BIN)/jupyter lab notebooks/

test: $(VENV)/.dev-installed browser
	$(BIN)/python -m pytest

# Everything except the browser suite, for a quick check while working.
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not browser"

# Peers (PyTorch) are benchmark-only dependencies: installed here, never by lab or test.
bench: $(VENV)/.dev-installed
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check vglab tests benchmarks

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.lab-installed

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
