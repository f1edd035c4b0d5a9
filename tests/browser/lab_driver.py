"""Drive a real JupyterLab server from a headless Chromium as a student would (used by tests/browser/).

``LabServer``    starts ``python -m jupyterlab`` on 127.0.0.1 (free port, random token, its own settings and
                 workspaces in a temporary directory) and stops it together with every kernel it started.
``NotebookPage`` one notebook opened in its own JupyterLab workspace: run all cells, type and run a new cell,
                 read its output, find a dashboard's controls, press keys on a slider, pick dropdown options,
                 wait for the redraw that follows (the dashboard's status counter, then fresh canvas pixels),
                 take screenshots.

Everything the page is asked about is found by CSS classes that JupyterLab, ipywidgets, ipympl and
``vglab.lab.dashboards`` put on their elements (``.jp-Cell``, ``.widget-slider``, ``.noUi-handle``,
``.widget-readout``, ``.jupyter-matplotlib``, ``.vglab-dashboard``, ``.vglab-control-<name>``,
``.vglab-status-text`` with its ``data-update`` counter and ``data-<state>`` attributes).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("VGLAB_CHROMIUM", "/usr/bin/chromium")
# Without the networking flags Chromium stalls on connections this machine refuses (RECIPES.md).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1400, "height": 1000}

# User settings the server reads instead of the developer's own: no news toast, no update check, every cell
# rendered (no windowing, so an output scrolled out of view still exists and paints), no autosave.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}

# Installed in every page before any script runs: counts paints of the figure canvases (ipympl copies each
# new image from its offscreen canvas onto the visible one with drawImage) and remembers when the last key
# went down, both on the page's performance.now() clock.
INSTRUMENTATION = """
(() => {
  const probe = window.__vglab = {keydownAt: 0, paints: 0};
  const drawImage = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    const result = drawImage.apply(this, args);
    const canvas = this.canvas;
    if (canvas && canvas.isConnected && canvas.closest('.jupyter-matplotlib')) {
      canvas.__vglabPaints = (canvas.__vglabPaints || 0) + 1;
      canvas.__vglabPaintedAt = performance.now();
      probe.paints += 1;
    }
    return result;
  };
  document.addEventListener('keydown', (event) => { probe.keydownAt = event.timeStamp; }, true);
})();
"""


OPEN_PAGES: list = []  # NotebookPages not yet closed (the suite screenshots them when a test fails)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------------------------- server
class LabServer:
    """A JupyterLab server serving ``root_dir``, stopped (with its kernels) by ``stop()``."""

    def __init__(self, root_dir: Path, state_dir: Path, *, python: str = sys.executable):
        self.root_dir, self.state_dir = Path(root_dir), Path(state_dir)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings_dir = self.state_dir / "settings"
        for name, values in LAB_SETTINGS.items():
            path = settings_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        (self.state_dir / "workspaces").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "runtime").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ,
                    "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
                    "JUPYTERLAB_WORKSPACES_DIR": str(self.state_dir / "workspaces"),
                    "JUPYTER_RUNTIME_DIR": str(self.state_dir / "runtime"),
                    "JAX_PLATFORMS": "cpu",  # the dashboards' numbers are CPU numbers; no GPU probe
                    # The kernels of one session share a (fresh) XLA compilation cache: a program the first
                    # notebook compiled is not compiled again by the next one (3x faster notebook runs).
                    "JAX_COMPILATION_CACHE_DIR": str(self.state_dir / "jax-cache"),
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
                    "PYTHONUNBUFFERED": "1"}
        self.command = [python, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                        f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root_dir}",
                        "--ServerApp.open_browser=False", "--LabApp.news_url=None"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            self.command.append("--allow-root")
        self.log_path = self.state_dir / "jupyterlab.log"
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 60.0) -> LabServer:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # Its own process group, so stop() can signal the server and anything it spawned in that group.
        self.process = subprocess.Popen(self.command, cwd=self.root_dir, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("GET", "/api/status")
                return self
            time.sleep(0.2)
        raise RuntimeError(f"JupyterLab did not answer on {self.url} within {timeout:.0f} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 10.0):
        """A REST call with the token; returns the decoded JSON (None for an empty answer)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def kernels(self) -> list[dict]:
        return self.api("GET", "/api/kernels")

    def sessions(self) -> list[dict]:
        return self.api("GET", "/api/sessions")

    def shutdown_kernel(self, kernel_id: str) -> None:
        with contextlib.suppress(OSError, urllib.error.URLError):
            self.api("DELETE", f"/api/kernels/{kernel_id}", timeout=30.0)

    def descendants(self) -> list:
        """The server's child processes, recursively (kernels run in sessions of their own)."""
        try:
            import psutil
        except ImportError:  # psutil comes with ipykernel; without it, stop() still kills the group
            return []
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.process.pid).children(recursive=True)
        return []

    def stop(self) -> None:
        """Shut every kernel down through the server, then the server; kill whatever is left."""
        if self.process is None:
            return
        try:
            children = self.descendants()
            if self.process.poll() is None:
                with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                    for kernel in self.kernels():
                        self.shutdown_kernel(kernel["id"])
                with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                    self.api("POST", "/api/shutdown")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=15)
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)  # stragglers in the server's group
            for child in children:  # kernels live in their own sessions: end each one by its pid
                with contextlib.suppress(Exception):
                    if child.is_running():
                        child.kill()
                        child.wait(timeout=5)
        finally:
            if self._log is not None:
                self._log.close()
            self.process = None


# --------------------------------------------------------------------------------------------- notebook
class NotebookPage:
    """One notebook in its own browser page and JupyterLab workspace (so it opens nothing else)."""

    def __init__(self, server: LabServer, context, name: str, artifacts: Path):
        self.server, self.name = server, name
        self.path = name if name.endswith(".ipynb") else f"{name}.ipynb"
        self.stem = Path(self.path).stem
        self.artifacts = Path(artifacts)
        self.page = context.new_page()
        self.page.set_default_timeout(30_000)
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        self.kernel_id: str | None = None
        OPEN_PAGES.append(self)

    # ---- opening and running
    def open(self, timeout: float = 90.0) -> NotebookPage:
        workspace = f"vglab-{self.stem}-{secrets.token_hex(3)}"
        url = f"{self.server.url}/lab/workspaces/{workspace}/tree/{self.path}?reset&token={self.server.token}"
        self.page.goto(url, wait_until="domcontentloaded", timeout=timeout * 1000)
        self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=timeout * 1000)
        self.accept_dialogs()
        self.wait_for_kernel_idle(timeout)
        for session in self.server.sessions():
            if session.get("path", "").endswith(self.path) and session.get("kernel"):
                self.kernel_id = session["kernel"]["id"]
        return self

    def accept_dialogs(self) -> None:
        """A kernel-selection (or other) dialog swallows clicks: accept it (notebooks have a kernelspec)."""
        dialog = self.page.locator(".jp-Dialog .jp-mod-accept")
        if dialog.count():
            dialog.first.click()

    def kernel_status(self) -> str:
        indicator = self.page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator").first
        return indicator.get_attribute("data-status") or ""

    def wait_for_kernel_idle(self, timeout: float = 60.0) -> None:
        """Wait for a connected, idle kernel: the status bar reads "Python 3 (ipykernel) | Idle" (the
        toolbar's execution indicator says idle already before a kernel exists)."""
        self.page.wait_for_function(
            """() => {
                const items = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
                    .map((e) => e.textContent);
                const kernel = items.some((t) => / \\| Idle$/.test(t) && !t.startsWith('No Kernel'));
                const el = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
                return kernel && el && el.getAttribute('data-status') === 'idle';
            }""", timeout=timeout * 1000, polling=100)

    def code_cells(self):
        return self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-CodeCell")

    def run_all(self, timeout: float = 600.0) -> None:
        """Run ▸ Run All Cells from the menu bar, then wait until every code cell has run (the timeout only
        bounds a hang: lesson 12 trains three networks, 52 s quiet and over 180 s on a loaded CI machine)."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator(".lm-Menu-item:visible .lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        self.wait_until_all_cells_ran(timeout)

    def wait_until_all_cells_ran(self, timeout: float) -> None:
        self.page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll(
                    '.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')];
                const ran = prompts.every((p) => /\\[\\d+\\]/.test(p.textContent));
                const el = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
                return prompts.length > 0 && ran && el && el.getAttribute('data-status') === 'idle';
            }""", timeout=timeout * 1000, polling=200)

    def error_outputs(self) -> list[str]:
        """Texts of the tracebacks in the notebook's outputs."""
        return self.page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()

    # ---- a cell of our own
    def execute(self, code: str, timeout: float = 30.0) -> str:
        """Append a code cell at the end, type ``code`` in, run it with Shift+Enter; returns its output."""
        cells = self.code_cells()
        before = cells.count()
        last = self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").last
        last.locator(".jp-InputArea-prompt").first.click()  # select the last cell (command mode)
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")  # insert a cell below and select it
        cell = cells.nth(before)
        cell.wait_for()
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.insert_text(code)  # as typed, but without the editor's bracket auto-closing
        self.page.keyboard.press("Shift+Enter")
        self.page.wait_for_function(
            """(cell) => /\\[\\d+\\]/.test(cell.querySelector('.jp-InputArea-prompt').textContent)""",
            arg=cell.element_handle(), timeout=timeout * 1000, polling=50)
        return "\n".join(cell.locator(".jp-OutputArea-output").all_inner_texts())

    def python(self, expression: str, timeout: float = 30.0):
        """The JSON value of a Python expression evaluated in the notebook's kernel (through a new cell)."""
        marker = f"VGLAB{secrets.token_hex(4)}"
        text = self.execute(f'import json as _json; print("{marker}" + _json.dumps({expression}))', timeout)
        for line in text.splitlines():
            if line.startswith(marker):
                return json.loads(line[len(marker):])
        raise AssertionError(f"no value printed by the cell for {expression!r}; its output:\n{text}")

    # ---- dashboards
    def dashboard(self, index: int = 0):
        return self.page.locator(".vglab-dashboard").nth(index)

    def control(self, name: str, index: int = 0):
        return self.dashboard(index).locator(f".vglab-control-{name.replace('_', '-')}").first

    def status(self, index: int = 0) -> dict:
        """The data-* attributes of the dashboard's status line (data-update counts completed redraws)."""
        return self.dashboard(index).locator(".vglab-status-text").first.evaluate(
            "(el) => Object.assign({}, el.dataset)")

    def status_text(self, index: int = 0) -> str:
        return self.dashboard(index).locator(".vglab-status").first.inner_text()

    def readout(self, name: str, index: int = 0) -> str:
        return self.control(name, index).locator(".widget-readout").first.inner_text().strip()

    def canvas(self, index: int = 0):
        """The visible ipympl figure canvas of the dashboard."""
        return self.dashboard(index).locator(".jupyter-matplotlib canvas").first

    def canvas_paints(self, index: int = 0) -> int:
        return self.canvas(index).evaluate("(c) => c.__vglabPaints || 0")

    def focus_slider(self, name: str, index: int = 0) -> None:
        handle = self.control(name, index).locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()

    def press(self, key: str, times: int = 1) -> None:
        for _ in range(times):
            self.page.keyboard.press(key)

    def wait_for_figure(self, index: int = 0, timeout: float = 60.0) -> dict:
        """Wait until the dashboard has drawn once and its canvas has been painted; returns the status."""
        status = self.dashboard(index).locator(".vglab-status-text[data-update]").first
        status.wait_for(timeout=timeout * 1000)
        self.page.wait_for_function(
            "(root) => (root.querySelector('.jupyter-matplotlib canvas')?.__vglabPaints || 0) > 0",
            arg=self.dashboard(index).element_handle(), timeout=timeout * 1000, polling=50)
        return self.status(index)

    def change(self, action, expect: dict | None = None, index: int = 0, timeout: float = 60.0) -> dict:
        """Do ``action()`` (press a key, pick an option…) and wait for the redraw it causes.

        Waits until the status counter passed its value from before the action, the plotted state (the
        status's data-* attributes) matches ``expect``, and the figure canvas was painted after the status
        last changed (ipympl asks for the new image only after the kernel's draw_idle, which the status
        follows).  Returns {"status": data-*, "ms": milliseconds from the action (the key going down, for
        a key) to that paint}.
        """
        expect = {k.replace("_", "-"): str(v) for k, v in (expect or {}).items()}
        root = self.dashboard(index)
        before = int(self.status(index)["update"])
        started = root.evaluate(
            """(root) => {
                const probe = window.__vglab;
                if (probe.observer) probe.observer.disconnect();
                probe.statusAt = 0;
                probe.keydownAt = 0;
                probe.observer = new MutationObserver(() => { probe.statusAt = performance.now(); });
                probe.observer.observe(root.querySelector('.vglab-status'),
                                       {subtree: true, childList: true, characterData: true,
                                        attributes: true});
                return performance.now();
            }""")
        action()
        self.page.wait_for_function(
            """([root, after, expect]) => {
                const text = root.querySelector('.vglab-status-text');
                if (!text || !(Number(text.dataset.update) > after)) return false;
                for (const [key, value] of Object.entries(expect)) {
                    if (text.getAttribute('data-' + key) !== value) return false;
                }
                const canvas = root.querySelector('.jupyter-matplotlib canvas');
                const statusAt = window.__vglab.statusAt;
                return statusAt > 0 && (canvas.__vglabPaintedAt || 0) > statusAt;
            }""", arg=[root.element_handle(), before, expect], timeout=timeout * 1000, polling="raf")
        painted_at, status_at, keydown_at = root.evaluate(
            """(root) => [root.querySelector('.jupyter-matplotlib canvas').__vglabPaintedAt,
                          window.__vglab.statusAt, window.__vglab.keydownAt]""")
        began = keydown_at or started
        return {"status": self.status(index), "ms": painted_at - began, "status_ms": status_at - began,
                "began_at": began, "status_at": status_at, "painted_at": painted_at}  # (performance.now ms)

    def choose(self, name: str, label: str, index: int = 0, timeout: float = 60.0) -> dict | None:
        """Pick ``label`` in dropdown ``name`` and wait for the redraw; nothing when it is already picked."""
        select = self.control(name, index).locator("select")
        if select.evaluate("(s) => s.options[s.selectedIndex].textContent") == label:
            return None
        return self.change(lambda: select.select_option(label=label), index=index, timeout=timeout)

    def set_checkbox(self, name: str, checked: bool, index: int = 0, timeout: float = 60.0) -> dict | None:
        """Click checkbox ``name`` if it is not ``checked`` already, and wait for the redraw."""
        box = self.control(name, index).locator("input[type=checkbox]")
        if box.is_checked() == checked:
            return None
        return self.change(lambda: box.click(), index=index, timeout=timeout)

    def press_and_wait(self, key: str, expect: dict | None = None, index: int = 0, timeout: float = 60.0):
        """Press ``key`` on the focused control and wait for the redraw (see ``change``)."""
        return self.change(lambda: self.page.keyboard.press(key), expect, index=index, timeout=timeout)

    # ---- pictures
    def canvas_png(self, index: int = 0) -> bytes:
        return self.canvas(index).screenshot()

    def screenshot(self, step: str, index: int = 0) -> Path:
        """A PNG of the dashboard at test-artifacts/screenshots/<notebook>-<step>.png."""
        path = self.artifacts / f"{self.stem}-{step}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        root = self.dashboard(index)
        root.scroll_into_view_if_needed()
        self.page.mouse.move(1, VIEWPORT["height"] - 1)  # no hover: ipympl's toolbar fades in under a mouse
        root.screenshot(path=str(path))
        return path

    def close(self) -> None:
        """Shut the notebook's kernel down through the server and close the page."""
        if self in OPEN_PAGES:
            OPEN_PAGES.remove(self)
        with contextlib.suppress(Exception):
            if self.kernel_id is not None:
                self.server.shutdown_kernel(self.kernel_id)
        with contextlib.suppress(Exception):
            self.page.close()


def pixels_differ(png_a: bytes, png_b: bytes) -> int:
    """How many pixels differ between two screenshots of the same size (PIL comes with matplotlib)."""
    from PIL import Image, ImageChops

    a = Image.open(io.BytesIO(png_a)).convert("RGB")
    b = Image.open(io.BytesIO(png_b)).convert("RGB")
    if a.size != b.size:
        return a.size[0] * a.size[1]
    difference = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v else 0)
    return int(sum(difference.histogram()[255:]))
