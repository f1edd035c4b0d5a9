"""The course website (``make site``: docs/build.py, Sphinx + MyST-NB + sphinx-book-theme), built from a clean clone.

Every lesson page must exist, carry its title, show its figures as PNG files of the site (the dashboards' own
``image/png``: nothing is stored in the notebooks, so a figure on the page proves the lesson was executed at
build time), contain math for MathJax (a copy inside the site, no CDN) and the launch buttons (Binder, Colab,
JupyterHub) for its own notebook.  A notebook with a failing cell must fail the build.
"""

import base64
import html
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def repository() -> str:
    match = re.search(r'^REPOSITORY_URL = "https://github\.com/([\w.-]+/[\w.-]+)"$',
                      (ROOT / "docs" / "conf.py").read_text(), re.MULTILINE)
    assert match, "docs/conf.py defines REPOSITORY_URL"
    return match.group(1)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built by docs/build.py in a fresh clone of this repository (what is committed, nothing else)."""
    base = tmp_path_factory.mktemp("site")
    clone = base / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    # The lessons' kernels share one compilation cache, as `make site` shares the user's (~/.cache/vglab/jax):
    # the test session's (tests/conftest.py: empty at the session's start, so nothing an earlier run compiled
    # is used), or a fresh one where the session runs without: a program a lesson compiled is loaded by the next.
    from vglab.core.compilation import compilation_cache_dir

    env = {**os.environ, "VGLAB_COMPILATION_CACHE": str(compilation_cache_dir() or base / "jax_cache")}
    start = time.perf_counter()
    build = subprocess.run([sys.executable, "docs/build.py", "--out", str(base / "out")], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=2400)
    seconds = time.perf_counter() - start
    assert build.returncode == 0, f"site build failed:\n{build.stdout[-6000:]}\n{build.stderr[-6000:]}"
    print(f"site built in {seconds:.0f} s")  # shown with pytest -s, and each lesson's execution time:
    print("\n".join(line for line in build.stdout.splitlines() if "Executed notebook" in line))
    return base / "out" / "html"


@pytest.mark.site
@pytest.mark.timeout(2400)  # the first test of the module pays for the build (4-7 min on 2 loaded cores)
def test_the_index_lists_every_lesson(site):
    index = (site / "index.html").read_text()
    for lesson in LESSONS:
        assert f'href="{lesson.stem}.html"' in index, f"{lesson.name} missing from the table of contents"


@pytest.mark.site
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.stem for lesson in LESSONS])
def test_every_lesson_page_shows_its_title_figures_math_and_launch_buttons(site, lesson):
    page = site / f"{lesson.stem}.html"
    assert page.exists(), f"no page for {lesson.name}"
    text = page.read_text()
    title = nbformat.read(lesson, as_version=4).cells[0].source.splitlines()[0].removeprefix("# ")
    assert html.escape(title.split("$")[0].strip(), quote=False) in text, f"title {title!r} not on the page"

    images = re.findall(r'<img[^>]*\bsrc="(_images/[^"]+\.png)"', text)
    assert images, "no figure on the page (was the lesson executed?)"
    for image in images:
        width, height = png_size((site / image).read_bytes())
        assert width >= 200 and height >= 100, f"{image}: {width}x{height}"

    assert re.search(r'class="math notranslate nohighlight">\\\(', text), "no inline math"
    if "$$" in lesson.read_text():
        assert re.search(r'class="math notranslate nohighlight">\s*\\\[', text), "no display math"
    assert '<script defer="defer" src="_static/mathjax/tex-chtml.js"></script>' in text
    assert (site / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000

    repo, path = repository(), f"notebooks/{lesson.name}"
    assert f"https://mybinder.org/v2/gh/{repo}/main?urlpath=lab/tree/{path}" in text
    assert f"https://colab.research.google.com/github/{repo}/blob/main/{path}" in text
    assert re.search(r'href="https://[^"]+/hub/user-redirect/git-pull\?repo=https%3A//github\.com/'
                     + re.escape(repo) + r"&(amp;)?urlpath=lab/tree/[\w.-]+/" + re.escape(path), text)


@pytest.mark.site
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)")
def test_math_is_typeset_by_the_bundled_mathjax_in_a_browser(site):
    """Chromium runs the page's scripts from file:// (no network) and prints the DOM MathJax left behind."""
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--virtual-time-budget=15000", "--dump-dom", (site / "00_start_here.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<mjx-container") >= 10, "MathJax typeset no formulas"
    assert re.search(r'<mjx-container[^>]*display="true"', dom), "no display formula typeset"
    assert "<mjx-merror" not in dom, "MathJax reported a TeX error"


@pytest.mark.site
def test_a_lesson_with_a_failing_cell_fails_the_build(tmp_path):
    lessons = tmp_path / "notebooks"
    lessons.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 00 · Broken"),
                                               nbformat.v4.new_code_cell("1 / 0")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lessons / "00_broken.ipynb")
    build = subprocess.run([sys.executable, str(ROOT / "docs" / "build.py"), "--notebooks", str(lessons),
                            "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=600)
    log = build.stdout + build.stderr
    assert build.returncode != 0, log[-3000:]
    assert "ZeroDivisionError" in log and "00_broken" in log, log[-3000:]
    assert not (tmp_path / "out" / "html" / "00_broken.html").exists()


def test_a_dashboards_display_data_has_its_widget_view_and_a_png_of_its_figure():
    from vglab.lab import GradientDashboard

    dash = GradientDashboard(depth=6, width=8, max_depth=10)
    try:
        bundle = dash._repr_mimebundle_()
        assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget.model_id
        width, height = png_size(base64.b64decode(bundle["image/png"]))
        figure_width, figure_height = dash.figure.get_size_inches() * dash.static_dpi
        assert (width, height) == (round(figure_width), round(figure_height))
        assert bundle["text/plain"].startswith("GradientDashboard(") and "depth=6" in bundle["text/plain"]
    finally:
        dash.close()
