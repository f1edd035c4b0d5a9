# vglab: `make lab` sets up and opens the lab; `make test` sets up and runs every test.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CHROMIUM ?= /usr/bin/chromium

.PHONY: lab test test-fast site bench bench-hub bench-cold browser hub-deps lint clean

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

# Everything but the browser suite runs on WORKERS processes (pytest-xdist), each taking whole test files
# (--dist loadfile: a file's fixtures, e.g. one graded course, are set up once) in the order tests/conftest.py
# sorts them (longest first; xdist would otherwise start with the files that hold the most tests).  Then the
# browser suite runs alone: it times slider-to-plot latency and races a training run against Stop, which a
# second worker's compiles on the same cores would distort.  `make test` fails if either part fails.
WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

# Both parts share one JAX compilation cache, empty at the start and removed at the end (tests/conftest.py says
# why); a VGLAB_COMPILATION_CACHE of the caller's (e.g. off) wins.
test: $(VENV)/.dev-installed browser hub-deps
	cache=$$(mktemp -d -t vglab-test-jax-XXXXXX); export VGLAB_COMPILATION_CACHE=$${VGLAB_COMPILATION_CACHE:-$$cache}; \
	VGLAB_HUB_PREFIX=$(HUB_PREFIX) $(BIN)/python -m pytest -m "not browser" -n $(WORKERS) --dist loadfile \
	  --no-loadscope-reorder; parallel=$$?; \
	$(BIN)/python -m pytest -m browser; browser=$$?; \
	rm -rf "$$cache"; [ $$parallel = 0 ] && [ $$browser = 0 ]

# Everything except the browser suite, for a quick check while working.
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m "not browser"

# The course website: every lesson executed (a failing cell fails the build), static HTML in _site/html/index.html.
site: $(VENV)/.site-installed
	$(BIN)/python docs/build.py --out _site

# Peers (PyTorch) are benchmark-only dependencies: installed here, never by lab or test.
bench: $(VENV)/.dev-installed
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py

# How many students one machine serves: real kernels running a dashboard's updates (results → benchmarks/README.md).
bench-hub: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/hub_sizing.py

# A cold kernel's first plot and first activation switch, before/after the compilation cache and warm-up.
bench-cold: $(VENV)/.dev-installed
	$(BIN)/python benchmarks/cold_start.py

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check vglab tests benchmarks

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.lab-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	touch $@

$(VENV)/.site-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[site]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.lab-installed $(VENV)/.site-installed

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
browser:
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# tests/test_hub.py runs a real JupyterHub with real Unix users.  Their servers run as those users, so the hub gets
# its own venv outside the repository (a clone may sit where other users cannot read), made from the system Python
# (a venv made from an interpreter under /root fails for everyone else), with vglab copied in (not editable), and
# configurable-http-proxy from npm.  Root only (the hub must setuid); elsewhere the hub test skips.
HUB_PREFIX ?= /opt/vglab-hub
HUB_PYTHON ?= /usr/bin/python3

hub-deps:
	@if [ "$$(id -u)" = 0 ] && [ -x $(HUB_PYTHON) ]; then $(MAKE) --no-print-directory $(HUB_PREFIX)/.installed; \
	else echo "hub-deps: not root or no $(HUB_PYTHON): tests/test_hub.py will skip"; fi

$(HUB_PREFIX)/.installed: pyproject.toml $(shell find vglab -name '*.py')
	$(HUB_PYTHON) -m venv $(HUB_PREFIX)/venv
	$(HUB_PREFIX)/venv/bin/python -m pip install --quiet --upgrade pip
	$(HUB_PREFIX)/venv/bin/python -m pip install --quiet ".[hub]"
	npm install --silent --no-audit --no-fund --prefix $(HUB_PREFIX)/proxy configurable-http-proxy
	chmod -R a+rX $(HUB_PREFIX)
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts _site
