"""How big a hub: N simulated students, each a real kernel running a vglab dashboard (issue 16, `make bench-hub`).

Each student is a real IPython kernel started by jupyter_client, as a hub's single-user server starts one, with
ipympl as the notebooks use (``%matplotlib widget``).  Per student, in order, all N at once:

1. the kernel starts: resident memory (RSS, from /proc) of the kernel process;
2. ``import vglab``: RSS;
3. the first plot, ``GradientDashboard(depth=30, width=64, max_depth=40)`` rendered (the start-here notebook's
   dashboard): its time from the request (the cold start a student waits for) and RSS;
4. ``--updates`` slider moves, ``dash.set(depth=d)`` with d cycling 10..40 and the figure rendered, each
   followed by ``--think`` seconds of thinking: the round-trip latency of every update, as the student's
   browser would wait for it (without the network).

Then the cold start of one student's first plot alone, three ways: no compilation cache
(``VGLAB_COMPILATION_CACHE=off``), the first kernel with an empty persistent cache (vglab's default is one per
user, ``~/.cache/vglab/jax``; a hub may name one shared directory), and a later kernel with that cache filled.
The N-student runs use a filled cache (a student's second session, or one the instructor filled).

Results go to ``benchmarks/hub_sizing.json`` and into ``benchmarks/README.md`` (the section between the
``hub-sizing`` markers); the sizing guide in ``notebooks/coursework/README.md`` is computed from them by hand.
Times on a busy machine are upper bounds: the script records the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from jupyter_client import KernelManager

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "hub_sizing.json"
README = HERE / "README.md"
START, END = "<!-- hub-sizing:start -->", "<!-- hub-sizing:end -->"

SETUP = "%matplotlib widget"
IMPORT = "import vglab"
FIRST_PLOT = ("from vglab.lab import GradientDashboard\n"
              "dash = GradientDashboard(depth=30, width=64, max_depth=40)\n"
              "dash.figure.canvas.draw()")
UPDATE = "dash.set(depth={depth}); dash.figure.canvas.draw()"
DEPTHS = (10, 20, 30, 40, 25, 15, 35, 5)


def kernel_environment(cache: Path | None) -> dict[str, str]:
    """The environment of a student's kernel: JAX on the CPU, one host device, optionally a compilation cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION", "JAX_PERSISTENT"))}
    env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
               PYTHONWARNINGS="ignore::DeprecationWarning",
               # vglab turns JAX's persistent cache on by itself (~/.cache/vglab/jax): name it, or switch it off.
               VGLAB_COMPILATION_CACHE="off" if cache is None else str(cache))
    return env


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class Student:
    """One kernel, driven like a student's notebook."""

    def __init__(self, env: dict[str, str]):
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, stderr=subprocess.DEVNULL)  # errors come back over the channel
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=300)
        self.pid = self.manager.provisioner.process.pid
        self.record: dict[str, object] = {"rss_start_mb": rss_mb(self.pid)}

    def run(self, code: str) -> float:
        """Execute ``code``; returns the round-trip time in seconds.  A failing cell raises, with its traceback."""
        errors = []

        def hook(message):
            if message["msg_type"] == "error":
                errors.append("\n".join(message["content"]["traceback"]))

        start = time.perf_counter()
        reply = self.client.execute_interactive(code, timeout=600, output_hook=hook)
        elapsed = time.perf_counter() - start
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"cell failed: {code}\n" + "\n".join(errors))
        return elapsed

    def session(self, updates: int, think: float) -> None:
        self.run(SETUP)
        self.record["import_s"] = self.run(IMPORT)
        self.record["rss_import_mb"] = rss_mb(self.pid)
        self.record["first_plot_s"] = self.run(FIRST_PLOT)
        self.record["rss_plot_mb"] = rss_mb(self.pid)
        latencies = []
        for i in range(updates):
            time.sleep(think)
            latencies.append(self.run(UPDATE.format(depth=DEPTHS[i % len(DEPTHS)])))
        self.record["latencies_s"] = latencies
        self.record["rss_after_updates_mb"] = rss_mb(self.pid)

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def in_parallel(function, items):
    errors = []

    def call(item):
        try:
            function(item)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=call, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def class_of(n: int, cache: Path, updates: int, think: float) -> dict:
    """N students at once: memory and times of each, latency percentiles over all their updates."""
    students: list[Student] = []
    started = time.perf_counter()
    try:
        slots = [None] * n

        def start(i):
            slots[i] = Student(kernel_environment(cache))

        in_parallel(start, range(n))
        students = list(slots)
        ready = time.perf_counter() - started
        in_parallel(lambda s: s.session(updates, think), students)
    finally:
        for student in students:
            student.stop()
    records = [s.record for s in students]
    latencies = [t for r in records for t in r["latencies_s"]]

    def median_of(key):
        return statistics.median(r[key] for r in records)

    return {"students": n, "kernels_ready_s": ready, "updates_per_student": updates, "think_s": think,
            "rss_start_mb": median_of("rss_start_mb"), "rss_import_mb": median_of("rss_import_mb"),
            "rss_plot_mb": median_of("rss_plot_mb"), "rss_after_updates_mb": median_of("rss_after_updates_mb"),
            "rss_total_mb": sum(r["rss_after_updates_mb"] for r in records),
            "import_s": median_of("import_s"), "first_plot_s": median_of("first_plot_s"),
            "first_plot_max_s": max(r["first_plot_s"] for r in records),
            "latency_median_s": statistics.median(latencies), "latency_p95_s": percentile(latencies, 95),
            "latency_max_s": max(latencies)}


def cold_start(cache: Path | None) -> dict:
    """One student alone: import vglab and the first plot, from a fresh kernel."""
    student = Student(kernel_environment(cache))
    try:
        student.run(SETUP)
        imported = student.run(IMPORT)
        plotted = student.run(FIRST_PLOT)
    finally:
        student.stop()
    return {"import_s": imported, "first_plot_s": plotted, "total_s": imported + plotted}


def render(results: dict) -> str:
    rows = ["| students at once | kernel RSS: start / `import vglab` / first plot / after updates (MB, median) "
            "| all kernels (GB) | first plot (s, median / max) | update latency (ms, median / p95 / max) |",
            "|---|---|---|---|---|"]
    for r in results["classes"]:
        rows.append(f"| {r['students']} | {r['rss_start_mb']:.0f} / {r['rss_import_mb']:.0f} / {r['rss_plot_mb']:.0f}"
                    f" / {r['rss_after_updates_mb']:.0f} | {r['rss_total_mb'] / 1024:.1f} "
                    f"| {r['first_plot_s']:.1f} / {r['first_plot_max_s']:.1f} "
                    f"| {1e3 * r['latency_median_s']:.0f} / {1e3 * r['latency_p95_s']:.0f} / "
                    f"{1e3 * r['latency_max_s']:.0f} |")
    cold = results["cold_start"]
    lines = [
        START,
        f"Measured {results['date']} on {results['machine']} (load average {results['load_before']} before, "
        f"{results['load_after']} after: other work shared the cores, so times are upper bounds). "
        f"`make bench-hub` (`python benchmarks/hub_sizing.py {results['argv']}`), {results['wall_s']:.0f} s. "
        f"Each student: a real kernel, `%matplotlib widget`, the depth-30 width-64 gradient dashboard "
        f"(max_depth 40), then {results['classes'][0]['updates_per_student']} depth-slider moves, each rendered, "
        f"{results['classes'][0]['think_s']} s apart; all students at once.",
        "",
        *rows,
        "",
        "Cold start of one student's first plot (`import vglab` + the first dashboard), alone on the machine:",
        "",
        "| compilation cache | `import vglab` (s) | first plot (s) | total (s) |",
        "|---|---|---|---|",
        *(f"| {label} | {cold[key]['import_s']:.1f} | {cold[key]['first_plot_s']:.1f} | {cold[key]['total_s']:.1f} |"
          for key, label in (("none", "none (`VGLAB_COMPILATION_CACHE=off`)"),
                             ("shared_empty", "shared, empty (the hub's first kernel)"),
                             ("shared_filled", "shared, filled (every later kernel)"))),
        END,
    ]
    return "\n".join(lines)


def write_readme(section: str) -> None:
    text = README.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## How big a hub (`make bench-hub`)\n\n" + section + "\n"
    README.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--updates", type=int, default=12, help="slider moves per student")
    parser.add_argument("--think", type=float, default=0.5, help="seconds between a student's slider moves")
    parser.add_argument("--no-readme", action="store_true", help="write hub_sizing.json only")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="vglab-hub-sizing-") as tmp:
        kernels = Path(tmp) / "jupyter" / "kernels" / "python3"  # the kernel of this interpreter, nothing else
        kernels.mkdir(parents=True)
        (kernels / "kernel.json").write_text(json.dumps(
            {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
             "display_name": "Python 3", "language": "python"}))
        os.environ["JUPYTER_PATH"] = str(Path(tmp) / "jupyter")
        os.environ["MPLCONFIGDIR"] = str(Path(tmp) / "matplotlib")
        cache = Path(tmp) / "jax-cache"
        cold = {"none": cold_start(None), "shared_empty": cold_start(cache), "shared_filled": cold_start(cache)}
        print("cold start:", json.dumps(cold), flush=True)
        classes = []
        for n in args.students:
            classes.append(class_of(n, cache, args.updates, args.think))
            print(json.dumps(classes[-1]), flush=True)
    memory_gb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "machine": f"{os.cpu_count()} cores, {memory_gb:.0f} GB",
               "argv": " ".join(argv if argv is not None else sys.argv[1:]),
               "load_before": load_before, "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()),
               "wall_s": time.perf_counter() - start, "cold_start": cold, "classes": classes}
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_readme:
        write_readme(render(results))
    print(render(results))


if __name__ == "__main__":
    main()
