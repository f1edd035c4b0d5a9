"""The lessons in Google Colab and VS Code: one setup cell, "Open in Colab" badges, and notebook 00 on Colab's versions.

Every lesson's first code cell installs vglab where it is missing (Colab) and calls ``vglab.lab.setup()``
(ipympl's live figures; Colab's custom widget manager; static figures and a one-line note without ipympl).

The ``colab`` test builds a venv pinned to what Colab's runtime ships (COLAB_PINS, from Colab's own list,
github.com/googlecolab/backend-info pip-freeze.txt, August 2026; Colab's Python is 3.13, this venv uses the
Python running the tests), lets notebook 00's unchanged setup cell install vglab into it with ``%pip`` (from this
checkout instead of GitHub: the one substitution), executes the whole notebook there, and checks pip upgraded
none of Colab's packages.  pip's own cache makes a second run fast; no system site-packages (they would hide a
version clash).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COLAB_PINS = {"ipython": "7.34.0", "ipykernel": "6.17.1", "ipywidgets": "7.7.1", "matplotlib": "3.10.0",
              "notebook": "6.5.7", "traitlets": "5.7.1", "jupyter-client": "7.4.9"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def repository() -> str:
    """owner/name of the course repository, as docs/conf.py defines it (the one place it is written)."""
    match = re.search(r'^REPOSITORY_URL = "https://github\.com/([\w.-]+/[\w.-]+)"$',
                      (ROOT / "docs" / "conf.py").read_text(), re.MULTILINE)
    assert match, "docs/conf.py defines REPOSITORY_URL"
    return match.group(1)


def setup_cell() -> str:
    return ("try:  # Colab: install vglab first (JupyterLab, VS Code: installed already)\n"
            "    import vglab\n"
            "except ImportError:\n"
            f'    %pip install -q "vglab @ git+https://github.com/{repository()}"\n'
            "from vglab.lab import setup; setup()  # live figures (ipympl)\n")


def colab_url(name: str) -> str:
    return f"https://colab.research.google.com/github/{repository()}/blob/main/notebooks/{name}"


def code_sources(notebook) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("path", LESSONS, ids=[path.stem for path in LESSONS])
def test_every_lesson_starts_with_the_one_setup_cell_and_its_colab_badge(path):
    notebook = nbformat.read(path, as_version=4)
    sources = code_sources(notebook)
    assert sources[0].startswith(setup_cell()), f"{path.name}: the first code cell is the setup cell"
    assert not any("%matplotlib" in source for source in sources), "setup() selects the backend, not a magic"
    assert not any("setup()" in source for source in sources[1:]), "one setup cell"
    title = notebook.cells[0]
    assert title.cell_type == "markdown" and title.source.startswith("# ")
    assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab_url(path.name)})" \
        in title.source


def test_readme_has_the_open_in_colab_badge():
    assert f"]({colab_url('00_start_here.ipynb')})" in (ROOT / "README.md").read_text()


def execute(cells: list[str], kernel_name="python3", cwd=None, timeout=600) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    NotebookClient(notebook, kernel_name=kernel_name, timeout=timeout,
                   resources={"metadata": {"path": str(cwd or ROOT)}}).execute()
    return notebook


def text_of(cell) -> str:
    return "".join(output.get("text", "") + output.get("data", {}).get("text/plain", "")
                   for output in cell.outputs)


def test_setup_selects_ipympl_and_enables_colabs_widget_manager_in_a_real_kernel():
    # google.colab exists only on Colab (not on PyPI): a stand-in module records the call Colab needs.
    notebook = execute([
        "import sys, types\n"
        "calls = []\n"
        "colab = types.ModuleType('google.colab')\n"
        "colab.output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append('enabled'))\n"
        "sys.modules['google.colab'] = colab",
        "from vglab.lab import setup; print(setup())",
        "import matplotlib.pyplot as plt\nwith plt.ioff():\n    print(calls, type(plt.figure().canvas).__module__)",
    ])
    assert text_of(notebook.cells[1]).strip() == "widget"
    assert text_of(notebook.cells[2]).strip() == "['enabled'] ipympl.backend_nbagg"


def test_without_ipympl_setup_says_so_in_one_line_and_dashboards_still_show_their_png():
    notebook = execute([
        "import sys; sys.modules['ipympl'] = None  # as if ipympl were not installed",
        "from vglab.lab import setup; print(setup())",
        "from vglab.lab import GradientDashboard\nGradientDashboard(depth=6, width=8, max_depth=10)",
    ])
    from vglab.lab.notebook import MISSING_IPYMPL

    assert text_of(notebook.cells[1]).splitlines() == [MISSING_IPYMPL, "inline"]
    outputs = notebook.cells[2].outputs
    assert [output.output_type for output in outputs if output.output_type in ("error", "stream")] == []
    bundle = next(output.data for output in outputs if "image/png" in output.get("data", {}))
    assert WIDGET_VIEW in bundle and bundle["text/plain"].startswith("GradientDashboard(")


def pip_versions(python: Path) -> dict[str, str]:
    listing = subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True,
                             check=True).stdout
    return {item["name"].lower().replace("_", "-"): item["version"] for item in json.loads(listing)}


@pytest.mark.colab
@pytest.mark.timeout(1800)  # 6 min with an empty pip cache (downloads jax, notebook 6.5 ...), ~1 min with it
def test_notebook_00_installs_and_runs_on_colabs_versions(tmp_path, monkeypatch):
    start = time.perf_counter()
    venv = tmp_path / "colab-venv"
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pins = [f"{name}=={version}" for name, version in COLAB_PINS.items()]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True, env=env, timeout=900)
    assert {name: pip_versions(python)[name] for name in COLAB_PINS} == COLAB_PINS
    assert "vglab" not in pip_versions(python)
    pinned = time.perf_counter()

    kernels = tmp_path / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab's versions", "language": "python",
        "env": {"JAX_PLATFORMS": "cpu", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("PYTHONPATH", raising=False)

    notebook = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    github = f"git+https://github.com/{repository()}"
    assert github in first.source
    first.source = first.source.replace(github, f"file://{ROOT}")  # this checkout, not the placeholder repo
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import json, matplotlib.pyplot as plt, vglab\n"
        "with plt.ioff():\n"
        "    print(json.dumps({'canvas': type(plt.figure().canvas).__module__, 'vglab': vglab.__file__}))"))
    NotebookClient(notebook, kernel_name="colab", timeout=900, resources={"metadata": {"path": str(tmp_path)}}
                   ).execute()

    print(f"Colab venv: pins installed in {pinned - start:.0f} s, notebook 00 (its %pip install of vglab "
          f"included) executed in {time.perf_counter() - pinned:.0f} s")
    installed = pip_versions(python)
    assert "vglab" in installed and "ipympl" in installed, "the setup cell installed vglab (and ipympl)"
    assert {name: installed[name] for name in COLAB_PINS} == COLAB_PINS, "pip upgraded a package Colab ships"
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    report = json.loads(text_of(notebook.cells[-1]))
    assert report["canvas"] == "ipympl.backend_nbagg"
    assert report["vglab"].startswith(str(venv)), "vglab imported from the venv, not from this checkout"
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    dashboards = [output.data for output in outputs if WIDGET_VIEW in output.get("data", {})]
    assert dashboards and all("image/png" in data for data in dashboards)
    assert not [output for output in outputs if output.output_type == "error"]
