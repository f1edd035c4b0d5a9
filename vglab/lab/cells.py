"""Which notebook cell made a dashboard, so that running the cell again replaces the dashboard it made.

Running a cell again clears its output: the dashboard it showed is gone from the page, but its figure would
stay open in pyplot (and count toward matplotlib's "More than 20 figures" warning) and its warm-up thread would
keep running.  ``adopt(dashboard)``, called as a dashboard is made, closes the dashboards an earlier run of the
same cell made.  Dashboards made by other cells stay, and so do the others this run of the cell makes (a cell
may show two).

A cell is known by the id the frontend sends with it (JupyterLab, Notebook 7 and VS Code put ``cellId`` in the
execute request's metadata; ipykernel hands it to IPython >= 8, whose ``ExecutionInfo.cell_id`` holds it for the
cell running now), else by its source text; a run by IPython's execution count.  Outside IPython nothing is
tracked.
"""

from __future__ import annotations

import weakref

_RUNS: dict = {}  # cell key → (execution count of the run that made them, [weakref(dashboard)])


def _shell():
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def current_cell(shell) -> tuple | None:
    """(cell key, run) of the cell running now in ``shell``, or None when it cannot be told."""
    result = getattr(getattr(shell, "displayhook", None), "exec_result", None)  # set while a cell runs
    info = getattr(result, "info", None)
    parent = getattr(shell, "parent_header", None) or {}
    cell_id = getattr(info, "cell_id", None) or (parent.get("metadata") or {}).get("cellId")
    if cell_id:
        key = ("cell", cell_id)
    else:
        source = getattr(info, "raw_cell", None)
        if source is None:
            history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
            source = history[-1] if history else None
        if not source:
            return None
        key = ("source", source)
    return key, getattr(shell, "execution_count", None)


def adopt(dashboard) -> None:
    """Record that the running cell made ``dashboard``; close what an earlier run of that cell made."""
    shell = _shell()
    if shell is None:
        return
    cell = current_cell(shell)
    if cell is None:
        return
    key, run = cell
    made_in, made = _RUNS.get(key, (None, []))
    if made_in != run:
        for ref in made:
            old = ref()
            if old is not None and old is not dashboard:
                old.close()
        made = []
    made.append(weakref.ref(dashboard))
    _RUNS[key] = (run, made)
