"""Build the course website: ``python docs/build.py [--notebooks DIR] [--out DIR]`` (``make site``).

Sphinx reads one source folder, so the lessons (``notebooks/NN_*.ipynb``: a new lesson is picked up by its
name) and ``docs/index.md`` are copied into ``OUT/src``; Sphinx then builds ``OUT/html`` with the configuration
in ``docs/`` (conf.py), executing every lesson.  Exit status: Sphinx's (non-zero on any cell error or warning).
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LESSONS = "[0-9][0-9]_*.ipynb"


def stage(notebooks: Path, src: Path) -> list[Path]:
    """Copy docs/index.md and the lessons into ``src`` (emptied first); returns the lessons copied."""
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    shutil.copy2(ROOT / "docs" / "index.md", src)
    lessons = sorted(notebooks.glob(LESSONS))
    if not lessons:
        raise SystemExit(f"no lessons ({LESSONS}) in {notebooks}")
    for lesson in lessons:
        shutil.copy2(lesson, src)
    return lessons


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks")
    parser.add_argument("--out", type=Path, default=ROOT / "_site")
    parser.add_argument("--jobs", default="1", help="Sphinx's -j (notebooks executed in parallel)")
    args = parser.parse_args(argv)
    src, html = args.out / "src", args.out / "html"
    stage(args.notebooks.resolve(), src)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-E", "-W", "--keep-going", "-T", "-j", args.jobs,
               "-c", str(ROOT / "docs"), str(src), str(html)]
    # The kernels import this checkout's vglab, whatever the environment has installed.  A page is static: no
    # control of its dashboards ever moves, so their background warm-up (vglab.lab.warmup: compiling what each
    # control reaches) would only take the CPU from the cells still to run; the figures do not depend on it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "VGLAB_WARMUP": "off"}
    status = subprocess.call(command, env=env)
    if status == 0:
        print(f"site: {html / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
