"""The teaching notebooks (notebooks/NN_topic.ipynb): executed by nbval, and held to the course's rules.

Every notebook found is covered, so new notebooks are tested without editing this file.  nbgrader
assignments under notebooks/coursework/ are not teaching notebooks (tests/test_coursework.py runs them).

Output policy (notebooks/README.md): a code cell keeps a stored output only when that output states a fact
nbval checks (an execution count and a small text output); every other cell, dashboards and figures
included, is stored without output or execution count, so nbval runs it without comparing anything.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))  # top level only: coursework/ is excluded
MAX_CODE_LINES = 15
MAX_BYTES = 1_500_000


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def joined(text) -> str:
    """nbformat stores multi-line strings either whole or as a list of lines."""
    return "".join(text) if isinstance(text, list) else text


def source(cell: dict) -> str:
    return joined(cell["source"])


def test_the_course_notebooks_exist():
    names = {path.name for path in NOTEBOOKS}
    for name in ("00_start_here", "01_chain_rule", "02_saturating_activations", "03_initialization",
                 "04_relu_family", "05_residual_connections", "06_layer_normalization",
                 "11_jacobian_spectra"):
        assert f"{name}.ipynb" in names


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_headless_and_its_stated_facts_hold(path):
    """nbval executes every cell in a fresh kernel of this environment and compares the stored outputs."""
    command = [sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--nbval-cell-timeout=300",
               "-p", "no:cacheprovider", "-q", str(path)]
    # On the CPU: the stored facts are CPU facts, and no GPU probe writes a warning into a checked cell.
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(command, cwd=NOTEBOOK_DIR, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"nbval failed on {path.name}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert re.search(r"\d+ passed", run.stdout), run.stdout[-2000:]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_follows_the_course_rules(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "name notebooks NN_topic.ipynb"
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes"
    notebook = load(path)
    kernelspec = notebook["metadata"].get("kernelspec", {})
    assert kernelspec.get("name") == "python3" and kernelspec.get("display_name") == "Python 3"
    assert "widgets" not in notebook["metadata"], "saved widget state: clear it before committing"
    opening = " ".join(source(cell) for cell in notebook["cells"][:2] if cell["cell_type"] == "markdown")
    assert "Learning goals" in opening, "state the learning goals at the top"
    cells = code_cells(notebook)
    for cell in cells:
        lines = [line for line in source(cell).splitlines() if line.strip()]
        assert len(lines) <= MAX_CODE_LINES, f"a {len(lines)}-line cell:\n{source(cell)}"
    assert any("Dashboard(" in source(cell) for cell in cells), "every notebook has a dashboard"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_outputs_are_clean_and_small(path):
    cells = code_cells(load(path))
    checked = [cell for cell in cells if cell.get("execution_count") is not None]
    assert checked, "keep at least one checked fact (a self-check) with its stored output"
    for cell in cells:
        if cell.get("execution_count") is None:
            assert cell["outputs"] == [], f"an unchecked cell with stored output:\n{source(cell)}"
        for output in cell["outputs"]:
            assert output["output_type"] in ("stream", "execute_result"), output["output_type"]
            assert output.get("name") != "stderr", f"stderr stored:\n{source(cell)}"
            data = output.get("data", {})
            assert set(data) <= {"text/plain"}, f"rich output stored ({set(data)}):\n{source(cell)}"
            text = joined(output.get("text", "")) + joined(data.get("text/plain", ""))
            assert len(text) < 2000, f"a long stored output:\n{source(cell)}"
        if "Dashboard(" in source(cell) or "plt.subplots" in source(cell):
            assert cell.get("execution_count") is None, "store dashboards and figures without output"
            assert "nbval-ignore-output" in cell["metadata"].get("tags", []), \
                f"tag widget/figure cells nbval-ignore-output:\n{source(cell)}"
