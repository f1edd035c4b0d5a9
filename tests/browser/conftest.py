"""Fixtures of the browser suite: one JupyterLab server and one headless Chromium for the whole session.

``lab_server``  a JupyterLab on 127.0.0.1 (free port, token, --allow-root as root) serving a temporary copy
                of notebooks/; stopped, kernels included, when the session ends, whatever happened.
``browser``     Debian's /usr/bin/chromium through Playwright (never a downloaded browser), headless.
``open_notebook``  open_notebook("02_saturating_activations") → a NotebookPage (lab_driver.py) in a fresh
                browser context; its kernel is shut down and its page closed at the end of the test's scope.

Without Chromium or the ``playwright`` package the suite fails under CI (CI=true), with what to install,
and is skipped elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_driver import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    INSTRUMENTATION,
    OPEN_PAGES,
    VIEWPORT,
    LabServer,
    NotebookPage,
)

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO / "notebooks"
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LATENCY_FILE = ARTIFACTS / "latency.json"


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_browser_tools() -> str | None:
    """Why the suite cannot drive a browser here, or None."""
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"no Chromium at {CHROMIUM} (install Debian's package: apt-get install -y chromium, "
                        "which `make test` does; never `playwright install`)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the Python package `playwright` is not installed (pip install -e '.[dev]')")
    return "; ".join(problems) or None


def require_browser_tools() -> None:
    problem = missing_browser_tools()
    if problem is None:
        return
    if running_in_ci():
        pytest.fail(f"browser tests cannot run: {problem}", pytrace=False)
    pytest.skip(f"browser tests skipped outside CI: {problem}")


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory) -> Path:
    """A temporary copy of the teaching notebooks (the server may write to it; the repository stays clean)."""
    root = tmp_path_factory.mktemp("lab-root")
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        shutil.copy2(path, root / path.name)
    return root


@pytest.fixture(scope="session")
def lab_server(lab_root, tmp_path_factory):
    require_browser_tools()
    server = LabServer(lab_root, tmp_path_factory.mktemp("lab-state"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    require_browser_tools()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def browser_context(browser):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.add_init_script(INSTRUMENTATION)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def open_notebook(lab_server, browser_context):
    """open_notebook(name) → an opened NotebookPage; every page is closed and its kernel shut down at the
    end of the test file (tests close their own pages earlier with page.close())."""
    pages: list[NotebookPage] = []

    def opener(name: str) -> NotebookPage:
        page = NotebookPage(lab_server, browser_context, name, SCREENSHOTS)
        pages.append(page)
        page.open()
        return page

    try:
        yield opener
    finally:
        for page in pages:
            page.close()


@pytest.fixture(scope="session")
def latency_report():
    """record(notebook, control, milliseconds list): medians written to test-artifacts/latency.json as they
    come (merged with the file's earlier entries), printed at the end of the session."""
    results: dict = {}

    def record(notebook: str, control: str, samples_ms: list[float], **details) -> float:
        ordered = sorted(samples_ms)
        median = (ordered[len(ordered) // 2] if len(ordered) % 2
                  else (ordered[len(ordered) // 2 - 1] + ordered[len(ordered) // 2]) / 2)
        results[notebook] = {"control": control, "median_ms": round(median, 1),
                             "samples_ms": [round(v, 1) for v in samples_ms], **details}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        previous = {}
        with contextlib.suppress(OSError, ValueError):
            previous = json.loads(LATENCY_FILE.read_text(encoding="utf-8"))
        previous.update(results)
        LATENCY_FILE.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"\n{notebook}: slider key → repainted plot, median {median:.1f} ms over {len(samples_ms)} "
              f"changes ({control}; samples {[round(v) for v in samples_ms]})")
        return median

    yield record
    if results:
        lines = [f"  {name:32s} {entry['median_ms']:8.1f} ms  ({entry['control']})"
                 for name, entry in sorted(results.items())]
        print("\nslider → plot latency medians (test-artifacts/latency.json):\n" + "\n".join(lines))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """When a browser test fails: a screenshot of every open notebook page (FAILED-<test>-<notebook>.png)
    and the pages' last console messages in the report."""
    report = yield
    if report.failed and report.when in ("setup", "call") and OPEN_PAGES:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in item.name)[:80]
        for page in list(OPEN_PAGES):
            with contextlib.suppress(Exception):
                path = SCREENSHOTS / f"FAILED-{safe}-{page.stem}.png"
                page.page.screenshot(path=str(path))
                report.sections.append((f"browser {page.stem}", f"screenshot: {path}\n"
                                        + "\n".join(page.console[-30:])))
    return report
