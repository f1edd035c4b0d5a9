"""The harness itself, on a scratch notebook (an IntSlider and an ipympl figure that replots on change).

If this fails, the browser set-up is broken (server, Chromium, widgets, ipympl), not a dashboard.
"""

from __future__ import annotations

import json
import sys

import pytest
from lab_driver import pixels_differ

SCRATCH_CELLS = [
    "%matplotlib widget\nimport ipywidgets as widgets\nimport matplotlib.pyplot as plt\nimport numpy as np",
    "with plt.ioff():\n    fig, ax = plt.subplots(figsize=(4, 3))\n"
    "(line,) = ax.plot(np.arange(4), np.arange(4) ** 1.0)\nax.set_ylim(0, 30)\n"
    "slider = widgets.IntSlider(value=1, min=1, max=3, description='power')\n"
    "label = widgets.HTML()\nlabel.add_class('vglab-status')\n"
    "def replot(change=None):\n    line.set_ydata(np.arange(4) ** slider.value)\n"
    "    fig.canvas.draw_idle()\n"
    "    label.value = f'<span class=\"vglab-status-text\" data-update=\"{slider.value}\" "
    "data-power=\"{slider.value}\">power {slider.value}</span>'\n"
    "slider.observe(replot, names='value'); replot()\n"
    "box = widgets.VBox([slider, fig.canvas, label]); box.add_class('vglab-dashboard')\n"
    "slider.add_class('vglab-control-power'); box",
]


def scratch_notebook() -> dict:
    return {"nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [{"cell_type": "code", "id": f"cell{i}", "metadata": {}, "source": source,
                       "outputs": [], "execution_count": None} for i, source in enumerate(SCRATCH_CELLS)]}


@pytest.mark.browser
def test_server_browser_widgets_and_ipympl_work_together(lab_root, lab_server, open_notebook):
    (lab_root / "scratch_harness.ipynb").write_text(json.dumps(scratch_notebook()), encoding="utf-8")
    nb = open_notebook("scratch_harness")
    try:
        nb.run_all(timeout=60)
        assert nb.error_outputs() == []
        assert nb.page.locator(".widget-slider").count() == 1
        assert nb.page.locator(".jupyter-matplotlib").count() == 1
        assert nb.readout("power") == "1"
        nb.wait_for_figure()
        before = nb.canvas_png()

        nb.focus_slider("power")
        nb.press_and_wait("ArrowRight", {"power": 2})
        assert nb.readout("power") == "2"
        after = nb.canvas_png()
        assert pixels_differ(before, after) > 50, "the figure did not repaint after the slider moved"

        nb.press_and_wait("End", {"power": 3})  # noUiSlider's keyboard: End jumps to the maximum
        assert nb.readout("power") == "3"
        assert nb.python("[slider.value, list(map(float, line.get_ydata()))]") == [3, [0.0, 1.0, 8.0, 27.0]]
        assert nb.execute("1+1").strip() == "2"
        assert nb.python("__import__('sys').prefix") == sys.prefix  # the kernel runs in this environment
    finally:
        nb.close()
