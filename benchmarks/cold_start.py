"""Cold start: a fresh kernel's first plot, and the first switch to another activation, before and after the
persistent compilation cache and the background warm-up (issue 15).  Run by hand: ``make bench-cold``.

Real kernels (ipykernel through jupyter_client), running what notebook 00 runs under ``%matplotlib widget``:

    import vglab; from vglab.lab import GradientDashboard
    dash = GradientDashboard(depth=20, width=64, controls=("depth", "activation", "init"), max_depth=100)

Measured (wall time of each cell, from the execute request to the kernel going idle; switches and slider steps
timed inside the kernel around ``dash.set(...)``, which computes and draws synchronously):

    before   VGLAB_COMPILATION_CACHE=off, VGLAB_WARMUP=off: one kernel
    after    a fresh cache directory, warm-up on: a first kernel (fills the cache), then a second kernel
    steps    depth ±1 slider steps 0.4 s apart while the warm-up runs (each pause lets a variant's compile
             start, so the next step arrives during it) and after it finished

Writes benchmarks/cold_start.json and prints a Markdown table (pasted into benchmarks/README.md).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import KernelManager

HERE = Path(__file__).resolve().parent
DASHBOARD = 'GradientDashboard(depth=20, width=64, controls=("depth", "activation", "init"), max_depth=100)'


class Kernel:
    def __init__(self, env: dict):
        start = time.perf_counter()
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=str(HERE.parent / "notebooks"))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=120)
        self.started = time.perf_counter() - start

    def run(self, code: str, timeout: float = 900) -> tuple[float, str]:
        """(wall seconds, stdout) of one cell; raises on an error in it."""
        start = time.perf_counter()
        msg_id = self.client.execute(code)
        out = []
        while True:
            msg = self.client.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise RuntimeError("\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return time.perf_counter() - start, "".join(out)

    def value(self, code: str):
        """The JSON a cell prints on its last line."""
        _, out = self.run(code)
        return json.loads(out.strip().splitlines()[-1])

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


SWITCH = """import time, json
_t = time.perf_counter(); dash.set(activation={name!r}); _dt = time.perf_counter() - _t
print(json.dumps({{"seconds": _dt, "compute": dash.timings["compute"], "error": dash.error_message}}))"""

STEPS = """import time, json
_times = []
for _d in list(range(21, 31)) + list(range(29, 19, -1)):
    time.sleep({pause})  # a student's pause: longer than the warm-up's quiet time, so a variant starts
    _t = time.perf_counter(); dash.set(depth=_d); _times.append(time.perf_counter() - _t)
_w = dash.background_warmup
print(json.dumps({{"times": _times, "warm_pending": None if _w is None else _w.pending,
                  "warm_pauses": None if _w is None else _w.pauses}}))"""

WAIT = """import json, time
_t = time.perf_counter(); _w = dash.background_warmup
_done = True if _w is None else _w.wait(900)
print(json.dumps({"seconds": time.perf_counter() - _t, "done": _done,
                  "variants": 0 if _w is None else len(_w.warmed)}))"""


def first_plot(kernel: Kernel) -> dict:
    setup, _ = kernel.run("%matplotlib widget")
    imported, _ = kernel.run("import vglab")
    lab, _ = kernel.run("from vglab.lab import GradientDashboard")
    plot, _ = kernel.run(f"dash = {DASHBOARD}\ndash")
    return {"kernel_start": kernel.started, "matplotlib_widget": setup, "import_vglab": imported,
            "import_lab": lab, "dashboard": plot, "first_plot": imported + lab + plot}


def steps(kernel: Kernel, pause: float = 0.4) -> dict:
    """20 depth steps, each after ``pause`` seconds; with a warm-up running, most arrive during a compile."""
    seen = kernel.value(STEPS.format(pause=pause))
    times = seen["times"]
    return {"median": statistics.median(times), "max": max(times), "warm_pending": seen["warm_pending"],
            "warm_pauses": seen["warm_pauses"], "times": times}


def environment(**values) -> dict:
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env.update({k: str(v) for k, v in values.items()})
    return env


def main() -> dict:
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start",
               "python": sys.version.split()[0]}
    # before: no cache, no warm-up
    kernel = Kernel(environment(VGLAB_COMPILATION_CACHE="off", VGLAB_WARMUP="off"))
    try:
        results["before"] = first_plot(kernel)
        results["before"]["switch_relu"] = kernel.value(SWITCH.format(name="relu"))
        results["before"]["steps"] = steps(kernel)
    finally:
        kernel.close()
    with tempfile.TemporaryDirectory(prefix="vglab-cold-") as cache:
        env = environment(VGLAB_COMPILATION_CACHE=cache)
        kernel = Kernel(env)  # first kernel: empty cache
        try:
            first = results["after_first_kernel"] = first_plot(kernel)
            first["steps_during_warmup"] = steps(kernel)
            first["warmup"] = kernel.value(WAIT)
            first["steps_after_warmup"] = steps(kernel)
            first["switch_relu"] = kernel.value(SWITCH.format(name="relu"))
        finally:
            kernel.close()
        kernel = Kernel(env)  # second kernel: the cache the first one filled
        try:
            second = results["after_second_kernel"] = first_plot(kernel)
            second["switch_relu_before_warmup"] = kernel.value(SWITCH.format(name="relu"))
            second["warmup"] = kernel.value(WAIT)
            second["switch_sigmoid"] = kernel.value(SWITCH.format(name="sigmoid"))
        finally:
            kernel.close()
        results["cache_entries"] = len(list(Path(cache).iterdir()))
    results["load_at_end"] = round(os.getloadavg()[0], 1)
    return results


def table(r: dict) -> str:
    b, f, s = r["before"], r["after_first_kernel"], r["after_second_kernel"]

    def ms(x):
        return f"{1000 * x:.0f} ms"

    def sec(x):
        return f"{x:.1f} s"

    rows = [
        ("kernel start (not vglab)", sec(b["kernel_start"]), sec(f["kernel_start"]), sec(s["kernel_start"])),
        ("`import vglab`", sec(b["import_vglab"]), sec(f["import_vglab"]), sec(s["import_vglab"])),
        ("`from vglab.lab import GradientDashboard`", sec(b["import_lab"]), sec(f["import_lab"]),
         sec(s["import_lab"])),
        ("the dashboard's first plot (cell)", sec(b["dashboard"]), sec(f["dashboard"]), sec(s["dashboard"])),
        ("**cold kernel → first plot** (the three cells)", f"**{sec(b['first_plot'])}**",
         f"**{sec(f['first_plot'])}**", f"**{sec(s['first_plot'])}**"),
        ("first switch to relu", ms(b["switch_relu"]["seconds"]),
         f"{ms(f['switch_relu']['seconds'])} (warm-up done)",
         f"{ms(s['switch_relu_before_warmup']['seconds'])} (from the cache, warm-up not done)"),
        ("first switch to sigmoid, warm-up done", "", "", ms(s["switch_sigmoid"]["seconds"])),
        ("background warm-up (variants, wall time)", "off",
         f"{f['warmup']['variants']}, done {sec(f['warmup']['seconds'])} after the step test",
         f"{s['warmup']['variants']} in {sec(s['warmup']['seconds'])}"),
        ("depth step, median / max (warm-up running)", f"{ms(b['steps']['median'])} / {ms(b['steps']['max'])}",
         f"{ms(f['steps_during_warmup']['median'])} / {ms(f['steps_during_warmup']['max'])}", ""),
        ("depth step, median / max (warm-up done)", "",
         f"{ms(f['steps_after_warmup']['median'])} / {ms(f['steps_after_warmup']['max'])}", ""),
    ]
    lines = ["| | before (no cache, no warm-up) | after: first kernel (empty cache) | after: second kernel |",
             "|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    results = main()
    (HERE / "cold_start.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    print()
    print(table(results))
