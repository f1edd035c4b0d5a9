# vglab: `make lab` sets up and opens the lab; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM ?= /usr/bin/chromium

.PHONY: lab test test-fast bench browser lint clean

# make lab [PORT=8890] [LAB_ARGS="--ip=0.0.0.0"].  As root (Docker images, cloud VMs, CI) JupyterLab needs
# --allow-root; with no display (and no $$BROWSER) no browser can start, so it is not asked to, and the URL to
# open is the one JupyterLab prints (http://localhost:<port>/lab?token=...).
PORT     ?=
LAB_ARGS ?=
LAB_FLAGS = $(if $(PORT),--port=$(PORT)) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lab: $(VENV)/.lab-installed
	@if [ -z "$$DISPLAY$$WAYLAND_DISPLAY$$BROWSER" ] && [ "$$(uname)" != Darwin ]; then \
	  echo "make lab: no display here, so no browser opens: open the URL JupyterLab prints below" \
	    "(http://localhost:<port>/lab?token=...; over ssh, forward the port first)."; \
	  no_browser=--no-browser; fi; \
	exec $(BIN)/python -m jupyterlab $$no_browser $(LAB_FLAGS) notebooks/

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
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.lab-installed

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
