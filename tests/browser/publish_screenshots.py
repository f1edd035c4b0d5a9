"""Copy the browser suite's default-state screenshots to docs/screenshots/, small enough to commit.

Run after ``python -m pytest -m browser``: each notebook's ``test-artifacts/screenshots/<nb>-start.png``
(and ``<nb>-start-<i>.png`` for a notebook's further dashboards) becomes ``docs/screenshots/<nb>.png``
(``<nb>-<i>.png``), reduced to a 256-colour palette (lossless for these flat plots to the eye; < 150 kB).

    .venv/bin/python tests/browser/publish_screenshots.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "test-artifacts" / "screenshots"
TARGET = REPO / "docs" / "screenshots"
LIMIT = 150_000


def publish() -> list[Path]:
    TARGET.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(SOURCE.glob("*-start*.png")):
        found = re.fullmatch(r"(\d\d_\w+?)-start(?:-(\d+))?\.png", path.name)
        if not found:
            continue
        name = found.group(1) + (f"-{found.group(2)}" if found.group(2) else "") + ".png"
        image = Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        out = TARGET / name
        image.save(out, optimize=True)
        if out.stat().st_size > LIMIT:
            raise SystemExit(f"{out} is {out.stat().st_size} bytes (limit {LIMIT})")
        written.append(out)
    return written


if __name__ == "__main__":
    for out in publish():
        print(f"{out.relative_to(REPO)}  {out.stat().st_size // 1000} kB")
    sys.exit(0)
