"""Replay a teaching notebook's dashboard calls, so a claims test checks the state Run All ends in.

``replay(stem)`` reads the notebook's code cells, keeps the statements that build a dashboard
(``name = SomethingDashboard(...)``) and the calls on it (``name.set(...)``, ``name.pin()``), and runs
them in order on the Agg backend.  The test follows the notebook: change a constructor or a ``set`` there
and the replayed state changes with it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REPLAYED_METHODS = ("set", "pin", "clear_pins")


def notebook(stem: str) -> dict:
    return json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))


def markdown(stem: str) -> str:
    """Every markdown cell of the notebook, joined (claims tests assert the sentence they test is there)."""
    cells = notebook(stem)["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def dashboard_statements(stem: str) -> list[str]:
    """The notebook's dashboard constructions and the set/pin calls on them, as source, in order."""
    names: set[str] = set()
    kept = []
    for cell in notebook(stem)["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # IPython magics (the setup cell)
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and isinstance(node.value.func, ast.Name) and node.value.func.id.endswith("Dashboard")):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
                kept.append(ast.unparse(node))
            elif (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                  and isinstance(node.value.func, ast.Attribute)
                  and isinstance(node.value.func.value, ast.Name) and node.value.func.value.id in names
                  and node.value.func.attr in REPLAYED_METHODS):
                kept.append(ast.unparse(node))
    return kept


def replay(stem: str) -> dict:
    """Run the notebook's dashboard statements; returns the namespace (``ns["dash"]`` etc.)."""
    import numpy as np

    import vglab
    import vglab.lab
    from vglab.lab.training_dashboards import TrainingDashboard

    namespace = {"np": np, "vglab": vglab, "TrainingDashboard": TrainingDashboard,
                 **{name: getattr(vglab.lab, name) for name in dir(vglab.lab) if name.endswith("Dashboard")}}
    statements = dashboard_statements(stem)
    assert statements, f"{stem} builds no dashboard"
    for statement in statements:
        exec(statement, namespace)  # noqa: S102 - the notebook's own code
    return namespace
