"""The state a dashboard holds is the state a browser shows (issue 13, section 3), without a browser.

The browser half of these checks is tests/browser/test_browser_dashboards.py (``test_state_…_agree``).
"""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as widgets  # noqa: E402
import pytest  # noqa: E402

from vglab.lab.dashboards import GradientDashboard, PhaseDiagramDashboard  # noqa: E402
from vglab.lab.sliders import GridFloatSlider, browser_snap, on_browser_grid  # noqa: E402

# What noUiSlider 15.4.0 (ipywidgets 8.1's slider) holds after set(value): computed with node from
# nouislider/dist/nouislider.js's toStepping/getStep/fromStepping (npm install nouislider@15.4.0), and
# seen in Chromium (the browser suite): (low, high, step, value) → the browser's value.
NOUISLIDER = [
    ((0.1, 4.0, 0.05), 1.0, 1.0000000000000002),
    ((0.1, 4.0, 0.05), 1.5, 1.5),
    ((0.1, 4.0, 0.05), 2 ** 0.5, 1.4000000000000001),
    ((0.1, 4.0, 0.05), 0.3, 0.30000000000000004),
    ((0.1, 4.0, 0.05), 2.0, 2.0),
    ((0.1, 4.0, 0.05), 4.2, 4.0),
    ((0.1, 4.0, 0.05), 0.0, 0.1),
]


@pytest.mark.parametrize(("grid", "value", "browser"), NOUISLIDER)
def test_browser_snap_reproduces_nouislider_to_the_last_bit(grid, value, browser):
    assert browser_snap(value, *grid) == browser


@pytest.mark.parametrize("grid", [(0.1, 4.0, 0.05), (0.0, 1.0, 0.01), (0.05, 2.0, 0.05), (-3.0, 6.0, 0.1)])
def test_every_grid_value_is_one_the_browser_keeps(grid):
    low, high, step = grid
    for k in range(round((high - low) / step) + 1):
        held = on_browser_grid(low + k * step, *grid)
        assert browser_snap(held, *grid) == held  # nothing for the browser's view to send back
        assert abs(held - (low + k * step)) < 1e-12


def test_a_grid_slider_holds_what_the_browser_would_and_clamps_like_a_float_slider():
    slider = GridFloatSlider(value=1.0, min=0.1, max=4.0, step=0.05)
    assert slider.value == 1.0000000000000002  # the browser's 1.00, bit for bit
    slider.value = 1.5
    assert slider.value == 1.5
    slider.value = 9.0
    assert slider.value == 4.0 and isinstance(slider, widgets.FloatSlider)


@pytest.fixture
def phase():
    d = PhaseDiagramDashboard(depth=10, width=16, n_seeds=2, max_depth=20)
    yield d
    d.close()


def test_the_lessons_set_keeps_sigma_w_and_the_state_reads_as_set(phase):
    """Notebook 03's cell: dash.set(activation="tanh", init="xavier", sigma_w=1.5, sigma_b=0.3)."""
    phase.set(init="he")
    phase.set(activation="tanh", init="xavier", sigma_w=1.5, sigma_b=0.3)
    assert phase.state["sigma_w"] == 1.5 and phase.state["sigma_b"] == 0.3
    assert phase.result.net.sigma_w == 1.5 and phase.result.net.bias_std == 0.3
    assert phase.plotted()["phase"]["point"] == pytest.approx((2.25, 0.09))
    for name in ("sigma_w", "sigma_b"):
        slider = phase.controls[name]
        assert browser_snap(slider.value, slider.min, slider.max, slider.step) == slider.value


def test_set_sends_the_browser_only_each_controls_final_value(phase, monkeypatch):
    """An init choice moves σ_w to the init's value on the way; the browser must not see that value."""
    sent = []
    slider = phase.controls["sigma_w"]
    original = slider.send_state
    monkeypatch.setattr(slider, "send_state", lambda key=None: (sent.append(slider.value), original(key)))
    phase.set(init="he", sigma_w=2.5)
    assert sent == [pytest.approx(2.5)]  # not first 1.4 (He) and then 2.5


def test_set_returns_none_so_a_cells_last_line_shows_no_second_dashboard(phase):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shown = []
    shell.display_pub.publish = lambda data, **kwargs: shown.append(data)
    shell.displayhook.write_format_data = lambda data, metadata=None: shown.append(data)
    shell.user_ns["dash"] = phase
    assert shell.run_cell("dash.set(depth=12)").result is None
    assert shown == [] and phase.computed_state["depth"] == 12  # the cell's last line displayed nothing
    assert phase.set(activation="sigmod") is None and "did you mean" in phase.error_message


def test_the_dashboard_says_what_to_rerun_once_its_kernel_is_gone(phase):
    note = phase.restart_note
    assert note in phase.widget.children and "vglab-restart" in note._dom_classes
    assert "jupyter-widgets-disconnected .vglab-restart-note{display:block}" in note.value
    assert "Run All Cells" in note.value and "restarted" in note.value


def test_without_a_sigma_w_control_state_keeps_none():
    d = GradientDashboard(depth=5, width=16, n_seeds=2, max_depth=10, controls=("depth", "init"))
    assert d.state["sigma_w"] is None
    d.close()
