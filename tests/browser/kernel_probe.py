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


# Typed into the notebook by the latency test before its steps: wraps the dashboard's update path (instance
# attributes only; a wrapper adds microseconds) and records, per plotted value of the slider, epoch-ms
# timestamps of the kernel's side of a step (as benchmarks/latency_breakdown.py does without a browser):
# the value set (the comm message handled, and on which thread), the update's start, compute, artists, status,
# the frame's render and PNG, and the frame handed to the comm; and whether a background warm-up variant or
# the theory worker was running.  ``_vglab_trace()`` returns them (JSON-ready) with every live dashboard's
# warm-up log in epoch ms.
KERNEL_TRACE = '''
def _vglab_trace_install(slider):
    import threading, time
    from vglab.lab import dashboards as _d
    given = globals().get("dash")
    board = given if isinstance(given, _d.Dashboard) else [
        v for v in globals().values() if isinstance(v, _d.Dashboard)][-1]
    now = lambda: time.time() * 1000.0
    trace = {"steps": [], "current": None, "offset_ms": (time.time() - time.monotonic()) * 1000.0}
    def busy():
        out = []
        for other in list(_d._LIVE):
            warm = getattr(other, "background_warmup", None)
            if warm is not None:
                out.append({"kind": other.kind, "running": bool(warm._running), "queued": len(warm._queue)})
        return out
    def on_value(change):
        step = {"value": change["new"], "value_at": now(), "thread": threading.current_thread().name,
                "warmups": busy()}
        pool = getattr(_d, "_THEORY_POOL", None)
        step["theory_queue"] = None if pool is None else pool._work_queue.qsize()
        trace["steps"].append(step)
        trace["current"] = step
    board.controls[slider].observe(on_value, names="value")
    def wrap(owner, name, part):
        method = getattr(owner, name, None)
        if method is None:
            return
        def timed(*args, _method=method, **kwargs):
            step = trace["current"]
            start = now()
            try:
                return _method(*args, **kwargs)
            finally:
                if step is not None:
                    step.setdefault(part + "_start", start)
                    step[part + "_end"] = now()
        setattr(owner, name, timed)
    for owner, name, part in ((board, "update_now", "update"), (board, "compute", "compute"),
                              (board, "draw", "artists"), (board, "_update_status", "status"),
                              (board._frames, "render", "render"), (board.figure.canvas, "get_diff_image", "png"),
                              (board, "end_drag", "end_drag")):
        wrap(owner, name, part)
    canvas = board.figure.canvas
    send = getattr(canvas, "send_binary", None)
    if send is not None:
        def sent(data, _send=send):
            result = _send(data)
            step = trace["current"]
            if step is not None:
                step.setdefault("sent", now())
                step["frames"] = dict(board.frames)
            return result
        canvas.send_binary = sent
    globals()["_vglab_trace_data"] = trace
    return True


def _vglab_trace():
    from vglab.lab import dashboards as _d
    trace = globals()["_vglab_trace_data"]
    logs = {}
    for other in list(_d._LIVE):
        warm = getattr(other, "background_warmup", None)
        if warm is not None:
            logs[other.kind] = [[trace["offset_ms"] + 1000 * a, trace["offset_ms"] + 1000 * b]
                                for _, a, b in warm.log]
    plain = lambda v: v if isinstance(v, (bool, int, float, str, type(None), list, dict)) else str(v)
    return {"steps": [{k: plain(v) for k, v in s.items()} for s in trace["steps"]], "warmup_logs": logs}
'''
