"""Code the browser tests type into a notebook (once per notebook) to read its dashboard back.

``_vglab_view(check=False)`` returns, JSON-ready, what the notebook's dashboard (``dash``, or the last
``Dashboard`` defined) shows: its state, the state of the plot on screen, the update and computation
counters, the error shown, the number of open matplotlib figures, a summary of every per-layer (or per-step)
curve read back from the artists, the measured gradient ratio log10 ‖∂L/∂h_0‖/‖∂L/∂h_L‖, and, with
``check=True``, how far the plotted curve is from a recomputation by the code the dashboard hands out
(``exec(dash.code)``): 0 when the plot is exactly what its state says.  ``_vglab_controls()`` returns each
control's type, kernel value and shown label (for comparing with what the browser's controls read).
"""

KERNEL_PROBE = '''
def _vglab_view(check=False):
    import numpy as np
    import matplotlib.pyplot as plt
    from vglab.lab.dashboards import Dashboard
    from vglab.lab.plots import mean_and_band
    given = globals().get("dash")
    board = given if isinstance(given, Dashboard) else [
        v for v in globals().values() if isinstance(v, Dashboard)][-1]
    plain = lambda s: None if s is None else {
        k: v for k, v in s.items() if isinstance(v, (bool, int, float, str))}
    number = lambda v: None if v is None else float(v)
    curves = {}
    for name, data in board.plotted().items():
        if isinstance(data, dict) and "x" in data and "mean" in data and len(data["x"]):
            y = np.asarray(data["mean"], float)
            curves[name] = {
                "n": int(len(data["x"])), "x": [float(data["x"][0]), float(data["x"][-1])],
                "y": [float(y[0]), float(y[-1])], "finite": bool(np.isfinite(y).all()),
                "bound": None if data.get("bound") is None else [
                    float(data["bound"][0]), float(data["bound"][-1])],
                "theory": None if data.get("theory") is None else [
                    float(data["theory"][0]), float(data["theory"][-1])]}
    result = getattr(board.result, "norms", board.result)
    ratio = getattr(result, "log10_gradient_ratio", None)
    view = {"state": plain(board.state), "computed": plain(board.computed_state),
            "updates": board.updates, "computations": board.computations, "error": board.error_message,
            "figures": len(plt.get_fignums()), "curves": curves,
            "ratio": None if ratio is None else [float(r) for r in np.ravel(ratio)],
            "net": getattr(getattr(result, "net", None), "to_code", lambda: None)(),
            "sigma_w": number(getattr(getattr(result, "net", None), "sigma_w", None))}
    if check:
        namespace = {}
        exec(board.code, namespace)
        again = namespace.get("result", namespace.get("spectrum"))
        if hasattr(again, "log10_activation_grad"):
            expected = mean_and_band(again.log10_activation_grad)[0]
        elif hasattr(again, "log10_singular_values"):
            expected = np.asarray(again.log10_singular_values, float)
        else:
            expected = None
        shown = [np.asarray(d.get("mean", d.get("log10_singular_values", [])), float)
                 for d in board.plotted().values() if isinstance(d, dict)]
        same = [s for s in shown if expected is not None and s.shape == expected.shape]
        view["code_vs_plot"] = None if not same else float(np.nanmax(np.abs(same[0] - expected)))
    return view


def _vglab_controls():
    """Each control of the dashboard: its widget type, its value as the kernel holds it (the dashboard's
    state), and, for a dropdown or selection slider, the label the browser should show for it."""
    import ipywidgets as widgets
    from vglab.lab.dashboards import Dashboard
    given = globals().get("dash")
    board = given if isinstance(given, Dashboard) else [
        v for v in globals().values() if isinstance(v, Dashboard)][-1]
    state, out = board.state, {}
    for name, widget in board.controls.items():
        entry = {"type": type(widget).__name__, "value": state[name]}
        if isinstance(widget, (widgets.FloatSlider, widgets.IntSlider)):
            entry.update(min=widget.min, max=widget.max, step=widget.step, raw=widget.value)
        if isinstance(widget, (widgets.Dropdown, widgets.SelectionSlider)):
            entry["label"] = widget.label
        out[name] = entry
    return out
'''
