"""Replay a lesson's dashboard as the notebook builds and drives it, without a kernel or a browser.

The claims tests follow the notebook: they read its code cells, run the cell that builds ``dash = …Dashboard(…)``
and then every later ``dash.set(…)`` statement in order, so the state they check is the notebook's end state
after Run All.  Figures are Agg (no display); nothing else of the notebook runs.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def code_sources(stem: str) -> list[str]:
    notebook = json.loads((NOTEBOOK_DIR / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for c in notebook["cells"] if c["cell_type"] == "code"]


def markdown(stem: str) -> str:
    """Every markdown cell of the notebook, joined (for tests that quote the lesson's text)."""
    notebook = json.loads((NOTEBOOK_DIR / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in notebook["cells"] if c["cell_type"] == "markdown")


def _statements(source: str) -> list[ast.stmt]:
    lines = [line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]  # IPython magics and shell lines become no-ops
    return ast.parse("\n".join(lines)).body


def _is_dashboard_assignment(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "dash" for t in stmt.targets)
            and isinstance(stmt.value, ast.Call) and getattr(stmt.value.func, "id", "").endswith("Dashboard"))


def _is_dash_set(stmt: ast.stmt) -> bool:
    call = stmt.value if isinstance(stmt, ast.Expr) else None
    return (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "set"
            and getattr(call.func.value, "id", "") == "dash")


def constructor_source(stem: str) -> str:
    """The notebook's ``dash = …Dashboard(…)`` statement, as written."""
    for source in code_sources(stem):
        for stmt in _statements(source):
            if _is_dashboard_assignment(stmt):
                return ast.unparse(stmt)
    raise AssertionError(f"{stem} builds no `dash = …Dashboard(…)`")


def set_calls(stem: str) -> list[str]:
    """Every ``dash.set(…)`` statement after the constructor, in notebook order."""
    calls, built = [], False
    for source in code_sources(stem):
        for stmt in _statements(source):
            built = built or _is_dashboard_assignment(stmt)
            if built and _is_dash_set(stmt):
                calls.append(ast.unparse(stmt))
    return calls


def build(stem: str, replay: bool = True, **overrides):
    """The notebook's dashboard: its constructor, then (``replay``) its ``dash.set`` calls in order.

    overrides: keyword arguments added to the constructor call (e.g. ``warm_up=False``)."""
    import numpy as np

    import vglab
    from vglab import lab

    namespace = {"np": np, "vglab": vglab, **{name: getattr(lab, name) for name in lab.__all__}}
    tree = ast.parse(constructor_source(stem))
    call = tree.body[0].value
    call.keywords += [ast.keyword(arg=k, value=ast.Constant(v)) for k, v in overrides.items()]
    exec(compile(ast.fix_missing_locations(tree), stem, "exec"), namespace)  # noqa: S102 - the notebook's own code
    if replay:
        for statement in set_calls(stem):
            exec(statement, namespace)  # noqa: S102
    return namespace["dash"]
