"""Where a slider step's time goes, per lesson dashboard, without a browser (issue 14: ≤ 100 ms median).

The browser suite (tests/browser/test_browser_dashboards.py ``test_slider_to_plot_latency_is_measured``) times a
key press on a slider to the canvas repainted, for the slider values ``min(max, 200) − 10 … min(max, 200)``.  This
script runs the kernel's side of those same steps in one process: each lesson's dashboard built as its notebook
builds it (tests/notebook_replay.py: the constructor, then its ``dash.set`` calls) on the ipympl backend, inside a
running asyncio loop (the home loop, as in a kernel), with the canvas told that its front end is up (ipympl's
``initialized`` message; frames then go out as PNG diffs through a comm that sends nowhere).  Each step sets the
slider's value and waits for the frame to be handed to the comm, and records

    schedule   value set → the update starts (the hand-off to the home loop and the coalescing wait, which
               is ``Dashboard.coalesce_seconds`` of it)
    compute    the engine call (``dash.compute``)
    artists    the figure update (``dash.draw``: set_data, limits, texts)
    status     the status line and code view (the HTML widgets' messages)
    gap        status out → the frame's render starts (one turn of the loop)
    raster     the canvas draw (a full ``figure.draw``) or the blit (background restored, changing artists drawn)
    png        ipympl's diff image and its PNG encoding (``get_diff_image``), and the comm send
    total      value set → frame sent: what the kernel adds to the browser's key → paint

in two modes: ``home`` (the value is set on the home loop's thread: ipykernel's main shell) and ``handoff`` (set
from a second thread running its own asyncio loop, as a kernel subshell does in JupyterLab 4.6, so the update is
handed to the home loop with ``call_soon_threadsafe``).  Each mode steps through the values twice, ``first``
(values not shown since the notebook's end state) and ``again``.  Medians over the steps, in ms.

    nice -n 15 .venv/bin/python benchmarks/latency_breakdown.py [--only 09,10,13] [--json out.json]
        [--neighbours SECONDS]

The background warm-up is off (VGLAB_WARMUP=0) unless ``--neighbours``: the notebook's other dashboards are
built too, as its cells build them (lesson 10: ``trainer = TrainingDashboard(…)`` under the measured
``dash``), every warm-up runs, as in a kernel, and the steps start SECONDS after the last dashboard was
made (the browser suite's earlier tests of a class take about a minute); the warm-ups still to do are
printed.  Timings on a shared machine are upper bounds; the load is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

NEIGHBOURS = "--neighbours" in sys.argv  # (read before vglab is imported: the warm-up's switch)
os.environ.setdefault("VGLAB_WARMUP", "1" if NEIGHBOURS else "0")
import matplotlib  # noqa: E402

BACKEND = "module://ipympl.backend_nbagg"  # %matplotlib widget
matplotlib.use(BACKEND)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

NOTEBOOKS = ["00_start_here", "01_chain_rule", "02_saturating_activations", "03_initialization",
             "04_relu_family", "05_residual_connections", "06_layer_normalization",
             "07_exploding_gradients_and_clipping", "08_recurrent_networks", "09_transformers",
             "10_training_dynamics", "11_jacobian_spectra", "13_batch_normalization"]
SLIDER = {"08_recurrent_networks": "steps"}
CHANGES = 10  # the browser test's LATENCY_CHANGES
PARTS = ("schedule", "compute", "artists", "status", "gap", "raster", "png", "total")


class Probe:
    """Wraps a dashboard's update path (instance attributes only) and records one step's timestamps."""

    def __init__(self, dash):
        self.dash, self.marks, self.kinds = dash, {}, []
        self.done = None  # an asyncio.Event on the home loop, set when the frame went to the comm
        self.loop = asyncio.get_running_loop()
        canvas = dash.figure.canvas
        self._wrap(dash, "update_now", "update")
        self._wrap(dash, "compute", "compute")
        self._wrap(dash, "draw", "artists")
        self._wrap(dash, "_update_status", "status")
        self._wrap(dash._frames, "render", "render")
        self._wrap(canvas, "get_diff_image", "png")
        send = canvas.send_binary

        def sent(data, _send=send):
            result = _send(data)
            self.marks.setdefault("sent", time.perf_counter())
            if self.done is not None:
                self.loop.call_soon_threadsafe(self.done.set)
            return result

        canvas.send_binary = sent

    def _wrap(self, owner, name, part):
        method = getattr(owner, name)

        def timed(*args, _method=method, **kwargs):
            start = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                self.marks.setdefault(f"{part}_start", start)
                self.marks[f"{part}_end"] = time.perf_counter()
                if part == "render":
                    self.kinds.append(self.dash._frames.frames.copy())

        setattr(owner, name, timed)

    def start(self):
        self.marks, self.done = {"set": time.perf_counter()}, asyncio.Event()

    def parts(self) -> dict:
        m = self.marks

        def span(a, b):
            return 1000 * (m[b] - m[a]) if a in m and b in m else float("nan")

        png = span("png_start", "png_end")
        return {"schedule": span("set", "update_start"), "compute": span("compute_start", "compute_end"),
                "artists": span("artists_start", "artists_end"), "status": span("status_start", "status_end"),
                "gap": span("status_end", "render_start"),
                "raster": span("render_start", "render_end") - png, "png": png, "total": span("set", "sent")}


class Subshell:
    """A thread with its own running asyncio loop (a kernel subshell): ``call(fn)`` runs fn there."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="subshell", daemon=True)
        self.thread.start()

    def call(self, fn):
        self.loop.call_soon_threadsafe(fn)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def slider_of(dash, stem):
    import ipywidgets as widgets

    name = SLIDER.get(stem, "depth")
    widget = dash.controls.get(name)
    if widget is None:
        name, widget = next((n, w) for n, w in dash.controls.items() if isinstance(w, widgets.IntSlider))
    return name, widget


async def step(probe, slider, value, subshell):
    def set_value():
        probe.start()
        slider.value = value

    if subshell is None:
        set_value()
    else:
        subshell.call(set_value)
    await asyncio.wait_for(_until_set(probe), 120)
    await asyncio.wait_for(probe.done.wait(), 120)
    probe.done = None
    await asyncio.sleep(0.05)  # the next key comes after the paint
    frames = probe.dash._frames.frames
    return probe.parts(), frames


async def _until_set(probe):
    while probe.done is None:
        await asyncio.sleep(0.001)


def neighbours(stem) -> list:
    """The notebook's other dashboards (``name = …Dashboard(…)`` statements but ``dash``), as its cells make them."""
    import ast

    from tests import notebook_replay
    from vglab import lab
    from vglab.lab import training_dashboards

    namespace = {name: getattr(lab, name) for name in lab.__all__}
    namespace["TrainingDashboard"] = training_dashboards.TrainingDashboard
    made = []
    for source in notebook_replay.code_sources(stem):
        for stmt in notebook_replay._statements(source):
            if (isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call)
                    and getattr(stmt.value.func, "id", "").endswith("Dashboard")
                    and not notebook_replay._is_dashboard_assignment(stmt)):
                exec(compile(ast.Module([stmt], []), stem, "exec"), namespace)  # noqa: S102 - the notebook's
                made.append(namespace[stmt.targets[0].id])
    return made


async def measure(stem, subshell, settle: float = 0.0):
    from tests import notebook_replay

    matplotlib.use(BACKEND)  # (notebook_replay chose Agg when imported)
    dash = notebook_replay.build(stem)
    others = neighbours(stem) if NEIGHBOURS else []
    if NEIGHBOURS:
        await asyncio.sleep(settle)
    canvas = dash.figure.canvas
    canvas._handle_message(canvas, {"type": "initialized"}, [])  # the front end is up: frames are diffs
    name, slider = slider_of(dash, stem)
    top = min(slider.max, 200)
    start = max(slider.min, top - CHANGES)
    dash.set(**{name: start})
    canvas._force_full = True
    dash.figure.canvas.draw()  # the first frame, as the front end's first draw request renders it
    probe = Probe(dash)
    out = {"slider": f"{name} {start}→{top}", "modes": {}}
    if NEIGHBOURS:
        warming = [w.pending for w in (d.background_warmup for d in [dash, *others]) if w is not None]
        out["warmups_pending"] = warming
        print(f"{stem}: {len(others)} other dashboard(s), warm-ups still to do: {warming}", file=sys.stderr)
    try:
        for mode, shell in (("home", None), ("handoff", subshell)):
            for rep in ("first", "again"):
                dash.set(**{name: start})
                await asyncio.sleep(0.2)
                rows, before = [], dict(dash._frames.frames)
                for value in range(start + 1, top + 1):
                    parts, _ = await step(probe, slider, value, shell)
                    rows.append(parts)
                after = dash._frames.frames
                medians = {p: round(statistics.median(r[p] for r in rows), 1) for p in PARTS}
                medians["frames"] = {k: after[k] - before[k] for k in after}
                medians["computations"] = dash.computations
                out["modes"][f"{mode}/{rep}"] = medians
    finally:
        warmups = [d.background_warmup for d in [dash, *others] if d.background_warmup is not None]
        dash.close()
        for other in others:
            other.close()
        for warmup in warmups:  # (a compile cut off at exit aborts the interpreter)
            warmup._thread.join(120)
    return out


def table(results: dict) -> str:
    head = "| dashboard | slider | mode | " + " | ".join(PARTS) + " | frames full/blit |"
    lines = [head, "|" + "---|" * (len(PARTS) + 4)]
    for stem, entry in results.items():
        for mode, m in entry["modes"].items():
            cells = " | ".join(f"{m[p]:.1f}" for p in PARTS)
            lines.append(f"| {stem[:2]} | {entry['slider']} | {mode} | {cells} | "
                         f"{m['frames']['full']}/{m['frames']['blit']} |")
    return "\n".join(lines)


async def main_async(stems, settle: float = 0.0):
    subshell = Subshell()
    results = {}
    try:
        for stem in stems:
            began = time.perf_counter()
            results[stem] = await measure(stem, subshell, settle)
            print(f"{stem}: {time.perf_counter() - began:.0f} s, load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    finally:
        subshell.close()
    return results


def own_warmup_only() -> None:
    """Dashboard.update_now as it was before every warm-up waited for every dashboard's update."""
    from vglab.lab.dashboards import Dashboard

    def update_now(self, force=False):
        background = self.background_warmup
        if background is None:
            return self._update(force)
        background.update_started()
        try:
            return self._update(force)
        finally:
            background.update_finished(self.computed_state)

    Dashboard.update_now = update_now


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated notebook prefixes (09,10,13)")
    parser.add_argument("--json", default="", help="write the results here")
    parser.add_argument("--neighbours", type=float, default=None, metavar="SECONDS",
                        help="also build the notebook's other dashboards, warm-ups on; start SECONDS later")
    parser.add_argument("--own-warmup-only", action="store_true",
                        help="(the A of an A/B) an update pauses only its own dashboard's warm-up, as before")
    args = parser.parse_args(argv)
    wanted = [p for p in args.only.split(",") if p]
    stems = [s for s in NOTEBOOKS if not wanted or any(s.startswith(p) for p in wanted)]
    load_before = os.getloadavg()
    if args.own_warmup_only:
        own_warmup_only()
    results = asyncio.run(main_async(stems, args.neighbours or 0.0))
    meta = {"load_before": [round(v, 2) for v in load_before],
            "load_after": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count(),
            "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(f"{meta['at']}, load {meta['load_before']} → {meta['load_after']}; medians over {CHANGES} steps, ms")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
