"""The folder tree shows the architecture: core ← models ← lab, and the core draws nothing.

Read from the source (ast), not from sys.modules, so a lazy import inside a function counts too.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "vglab"
PLOTTING_OR_WIDGETS = ("matplotlib", "ipywidgets", "ipympl", "IPython")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute names (vglab.x.y), anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def files_of(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).glob("*.py"))


@pytest.mark.parametrize("path", files_of("core"), ids=lambda p: p.stem)
def test_the_core_imports_neither_models_nor_the_lab_nor_plotting(path):
    for name in imported_modules(path):
        assert not name.startswith(("vglab.models", "vglab.lab", "vglab.theory", "vglab.training")), (path, name)
        assert not name.startswith(PLOTTING_OR_WIDGETS), (path, name)


@pytest.mark.parametrize("path", files_of("models"), ids=lambda p: p.stem)
def test_models_import_the_core_but_never_the_lab_or_plotting(path):
    for name in imported_modules(path):
        assert not name.startswith("vglab.lab"), (path, name)
        assert not name.startswith(PLOTTING_OR_WIDGETS), (path, name)


def test_the_engine_modules_outside_the_lab_draw_nothing():
    for path in [*PACKAGE.glob("*.py"), *files_of("core"), *files_of("models")]:
        assert not any(name.startswith(("vglab.lab", *PLOTTING_OR_WIDGETS)) for name in imported_modules(path)), path


def test_the_experiments_import_neither_the_lab_nor_plotting():
    """vglab.experiments (the dashboards' state → network → result → summary) sits beside theory and training:
    the lab imports it, never the reverse."""
    names = imported_modules(PACKAGE / "experiments.py")
    assert "vglab.theory" in names  # the file was read
    for name in names:
        assert not name.startswith(("vglab.lab", *PLOTTING_OR_WIDGETS)), name


def test_the_subpackages_exist_and_the_flat_face_is_declared():
    import vglab

    for sub in ("core", "models", "lab"):
        assert (PACKAGE / sub / "__init__.py").is_file()
    assert set(vglab.__all__) <= set(dir(vglab))
    assert {"MLP", "RNN", "Transformer", "gradient_norms", "jacobian_spectrum", "train"} <= set(vglab.__all__)


def test_import_vglab_does_not_load_the_lab_layer():
    import subprocess
    import sys

    code = "import sys, vglab; print(sorted(m for m in sys.modules if m.startswith(('vglab.lab', 'matplotlib', 'ipywidgets'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_dashboards_living_elsewhere_are_reached_through_vglab_lab_dashboards():
    """``vglab.lab.dashboards.RecurrentDashboard`` etc. (an old import path) resolve to the classes in their own
    modules (until stop 18 the lazy lookup imported ``vglab.sequence_dashboards``: ModuleNotFoundError)."""
    import vglab.lab.dashboards as dashboards
    import vglab.lab.sequence_dashboards as sequence
    import vglab.lab.training_dashboards as training

    assert dashboards.RecurrentDashboard is sequence.RecurrentDashboard
    assert dashboards.TransformerDashboard is sequence.TransformerDashboard
    assert dashboards.TrainingDashboard is training.TrainingDashboard
