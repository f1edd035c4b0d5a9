"""The dashboards without a browser: in-place redraws, latest-value-only updates, errors, code, saving.

Small nets (width 16, 2 seeds) keep every test on already compiled programs after the first one.
"""

import asyncio
import math
import textwrap
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vglab  # noqa: E402
from tests.live_canvas import (  # noqa: E402
    assert_frame_is_the_full_redraw,
    change,
    live_ipympl_canvas,
    pixels,
)
from vglab import theory  # noqa: E402
from vglab.lab import plots  # noqa: E402
from vglab.lab.dashboards import (  # noqa: E402
    Dashboard,
    GradientDashboard,
    PhaseDiagramDashboard,
    SpectrumDashboard,
    make_control,
)

SMALL = dict(width=16, n_seeds=2, max_depth=64)


@pytest.fixture
def dash():
    d = GradientDashboard(depth=10, activation="tanh", controls=("depth", "activation", "init", "sigma_w",
                                                                 "sigma_b", "residual", "norm", "seed"),
                          panels=("gradient", "dead"), **SMALL)
    yield d
    d.close()


def expected_mean(net, seed=0, n_seeds=2):
    return vglab.gradient_norms(net, seed=seed, n_seeds=n_seeds).log10_activation_grad.mean(axis=0)


# --------------------------------------------------------------------------------------------- in place
def test_depth_change_redraws_the_same_artists_with_the_engines_numbers(dash):
    figure, line = dash.figure, dash.plots["gradient"].mean_line
    n_artists = len(figure.axes[0].get_children())
    figures = plt.get_fignums()
    for depth in (3, 40, 64, 17):
        dash.set(depth=depth)
        assert dash.figure is figure and dash.plots["gradient"].mean_line is line
        net = vglab.MLP(depth=depth, width=16, activation="tanh")
        np.testing.assert_array_equal(line.get_xdata(), np.arange(depth + 1))
        np.testing.assert_allclose(line.get_ydata(), expected_mean(net), rtol=1e-12)
        np.testing.assert_array_equal(dash.result.norms.log10_activation_grad,
                                      vglab.gradient_norms(net, seed=0, n_seeds=2).log10_activation_grad)
    assert plt.get_fignums() == figures, "an update opened a figure"
    assert len(figure.axes[0].get_children()) == n_artists, "an update added artists"
    assert dash.updates == 5 and dash.computations == 5


def test_theory_curve_is_the_mean_field_prediction_from_the_measured_output_gradient(dash):
    dash.set(depth=33, sigma_w=1.3, sigma_b=0.2)
    net = vglab.MLP(depth=33, width=16, activation="tanh", weight_std=1.3, bias_std=0.2)
    log10_g = dash.result.norms.log10_rms_activation_grad[-1]
    np.testing.assert_allclose(dash.plotted()["gradient"]["theory"],
                               theory.predicted_log10_grad(net, log10_g), rtol=0, atol=1e-9)
    dash.set(norm="pre")  # LayerNorm: no mean-field curve, and none is drawn
    assert dash.plotted()["gradient"]["theory"] is None


def test_residual_relu_gets_the_mean_field_curve_with_its_rank_one_part():
    """ReLU's residual stream drifts (E[φ] > 0); the curve drawn is theory.predicted_log10_grad's, which
    includes the rank-one part Q_L/(n Q_l) that the recursion 1 + α²χ alone misses."""
    d = GradientDashboard(depth=40, activation="relu", residual=True, controls=("depth", "activation"),
                          **SMALL)
    net = d.network(d.state)
    log10_g = d.result.norms.log10_rms_activation_grad[-1]
    np.testing.assert_allclose(d.plotted()["gradient"]["theory"], theory.predicted_log10_grad(net, log10_g),
                               rtol=0, atol=1e-9)
    assert "theory = " in d.code
    d.close()


def test_sigmoid_bound_is_a_quarter_per_layer():
    d = GradientDashboard(depth=10, activation="sigmoid", controls=("depth",), **SMALL)
    bound = d.plotted()["gradient"]["bound"]
    np.testing.assert_allclose(bound[0] - bound[-1], 10 * math.log10(0.25))
    np.testing.assert_allclose(10 ** (bound[0] - bound[-1]), 0.25**10, rtol=1e-12)
    assert np.all(d.plotted()["gradient"]["mean"] <= bound + 1e-6)  # ‖W‖ small enough here
    d.close()


def test_sigmoid_at_depth_1000_is_plotted_near_1e_minus_630_not_zero():
    d = GradientDashboard(depth=1000, activation="sigmoid", controls=("depth",), width=16, n_seeds=1,
                          max_depth=1000)
    shown = d.plotted()["gradient"]
    assert -700 < shown["mean"][0] < -550 and np.all(np.isfinite(shown["mean"]))
    assert shown["zero_note"] == ""
    low, _ = d.figure.axes[0].get_ylim()
    assert low < shown["mean"][0]
    assert plots.power_of_ten_label(-630.0) == "$10^{-630}$"
    assert "10^-6" in d.status.value  # "‖∂L/∂h₀‖/‖∂L/∂h_L‖ ≈ 10^-6xx.x"
    d.close()


def test_exactly_zero_gradients_are_marked_and_explained():
    # 4 ReLUs per layer with biases dominating the weights: some layer is all dead in most seeds.
    d = GradientDashboard(depth=60, width=4, activation="relu", sigma_w=0.3, sigma_b=1.0, n_seeds=4,
                          controls=("depth",), max_depth=64)
    grads = d.result.norms.log10_activation_grad
    zero_seeds = np.isneginf(grads[:, 0])
    assert zero_seeds.any() and not zero_seeds.all()
    shown = d.plotted()["gradient"]
    assert "exactly 0 (every unit of a layer inactive)" in shown["zero_note"]
    assert f"in {zero_seeds.sum()} of 4 seeds" in shown["zero_note"]
    assert 0 in shown["zeros_at"]
    # The curve shows the seeds that are not zero, never NaN without a marker.
    nan_positions = np.flatnonzero(np.isnan(shown["mean"]))
    assert set(nan_positions) <= set(shown["zeros_at"].astype(int))
    np.testing.assert_allclose(shown["mean"][0], grads[~zero_seeds, 0].mean())
    d.close()


@pytest.mark.parametrize("panels", [("gradient",), ("gradient", "activations"), ("gradient", "dead"),
                                    ("weights", "saturated"), ("gradient", "phase")])
def test_every_panel_layout_gives_each_axes_its_share_of_the_figure(panels):
    d = GradientDashboard(depth=5, controls=("depth",), panels=panels, width=16, n_seeds=2, max_depth=8)
    for ax in d.figure.axes:
        if ax.get_label() != "<colorbar>":
            assert ax.get_position().width > 0.6 / len(panels), (panels, ax.get_position())
    d.close()


def test_mean_and_band_leave_zero_seeds_out():
    values = np.array([[-np.inf, -3.0, -1.0], [-5.0, -2.0, -1.0]])
    mean, low, high, zeros = plots.mean_and_band(values)
    np.testing.assert_array_equal(zeros, [1, 0, 0])
    np.testing.assert_array_equal(mean, [-5.0, -2.5, -1.0])
    np.testing.assert_array_equal(low, [-5.0, -3.0, -1.0])
    np.testing.assert_array_equal(high, [-5.0, -2.0, -1.0])


# ------------------------------------------------------------------------------------ latest value only
def test_a_burst_of_changes_in_the_event_loop_computes_once_with_the_final_value(dash):
    slider = dash.controls["depth"]

    async def burst():
        before = dash.computations
        for depth in range(11, 61):  # 50 slider messages, handled back to back
            slider.value = depth
        await asyncio.sleep(0.3)
        return dash.computations - before

    assert asyncio.run(burst()) == 1
    assert dash.result.net.depth == 60 == dash.computed_state["depth"]
    np.testing.assert_array_equal(dash.plotted()["gradient"]["x"], np.arange(61))
    np.testing.assert_allclose(dash.plotted()["gradient"]["mean"],
                               expected_mean(vglab.MLP(depth=60, width=16)), rtol=1e-12)


def test_a_long_drag_redraws_as_it_goes_but_skips_stale_values(dash):
    """Messages arrive every 5 ms for 0.4 s; those that arrived while a redraw ran are handled together."""
    slider = dash.controls["depth"]
    values = list(range(2, 65))

    async def drag():
        before, start, sent = dash.computations, time.perf_counter(), 0
        while sent < len(values):
            arrived = min(len(values), int((time.perf_counter() - start) / 0.005) + 1)
            for depth in values[sent:arrived]:  # the kernel drains its queue message by message
                slider.value = depth
            sent = arrived
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.3)
        return dash.computations - before

    computed = asyncio.run(drag())
    assert 2 <= computed < len(values) // 2, computed  # live (several redraws), yet far fewer than values
    assert dash.result.net.depth == values[-1]


def test_during_a_drag_a_slow_theory_curve_arrives_later_without_holding_back_the_plot(dash, monkeypatch):
    dash.set(residual=True, sigma_w=1.35)  # synchronous: theory included at once
    assert dash.plotted()["gradient"]["theory"] is not None and not dash.result.theory_pending
    monkeypatch.setattr(dash, "settle_seconds", 3600.0)  # the drag goes on (its end draws the view again)
    drawn, draw = [], dash.draw
    monkeypatch.setattr(dash, "draw", lambda view: (drawn.append(view), draw(view)))

    async def drag():
        dash.controls["sigma_b"].value = 0.37  # a network whose theory is not cached yet
        for _ in range(200):
            await asyncio.sleep(0.05)
            if drawn and not dash.result.theory_pending:
                break

    asyncio.run(drag())
    assert [view.theory_pending for view in drawn] == [True, False]  # measurement first, then theory
    assert drawn[0].theory is None and drawn[0].net.bias_std == 0.37
    net = vglab.MLP(depth=10, width=16, activation="tanh", weight_std=1.35, bias_std=0.37, residual=True)
    log10_g = dash.result.norms.log10_rms_activation_grad[-1]
    expected = theory.predicted_log10_grad(net, log10_g)
    np.testing.assert_allclose(dash.plotted()["gradient"]["theory"], expected, atol=1e-9)
    assert "computing" not in dash.status.value and dash.computations == 3  # no recompute for the theory


def test_programmatic_set_updates_once_for_several_controls(dash):
    before = dash.computations
    dash.set(depth=25, activation="relu", init="he", residual=True)
    assert dash.computations == before + 1
    assert dash.result.net == vglab.MLP(depth=25, width=16, activation="relu", init="he", residual=True)
    # Choosing He moved the σ_w slider to the grid point next to √2 (it reads 1.4); the net keeps He's √2.
    assert dash.state["sigma_w"] == 1.4 and dash.result.net.sigma_w == pytest.approx(math.sqrt(2))


def test_choosing_an_init_sets_sigma_w_and_the_slider_overrides_it(dash):
    dash.set(init="he")
    assert dash.result.net.sigma_w == pytest.approx(math.sqrt(2)) and dash.result.net.weight_std is None
    dash.set(sigma_w=1.8)
    assert dash.result.net.sigma_w == pytest.approx(1.8)
    dash.set(init="xavier")
    assert dash.state["sigma_w"] == 1.0 and dash.result.net.weight_std is None


def test_without_a_sigma_w_control_the_init_dropdown_sets_the_scale():
    # Notebooks 00/02 offer init but no σ_w slider: He must mean σ_w = √2 (He et al. 2015), not a σ_w frozen
    # at the first init's value.
    d = GradientDashboard(depth=50, activation="tanh", controls=("depth", "init"), width=128, n_seeds=4)
    xavier_ratio = d.result.norms.log10_gradient_ratio.mean()  # ≈ −1.1 (ordered side)
    d.set(init="he")
    assert d.result.net == vglab.MLP(depth=50, width=128, activation="tanh", init="he")
    assert d.result.net.sigma_w == pytest.approx(math.sqrt(2))
    assert d.result.norms.log10_gradient_ratio.mean() > xavier_ratio + 1  # ≈ +0.5: chaotic side at √2
    assert "init='he'" in d.code and "weight_std" not in d.code
    fixed = GradientDashboard(depth=30, sigma_w=0.5, controls=("depth", "init"), **SMALL)
    fixed.set(init="he")  # an explicitly given σ_w stays
    assert fixed.result.net.sigma_w == pytest.approx(0.5)
    d.close(), fixed.close()


def test_a_browser_snapping_a_slider_to_its_step_grid_costs_no_recomputation(dash):
    """JupyterLab's slider sends back 1.0000000000000002 for 1.0 (min 0.1, step 0.05) when it first renders,
    and 1.4000000000000001 for He's √2: neither is a new network."""
    before = dash.computations
    dash.controls["sigma_w"].value = 1.0000000000000002
    assert dash.computations == before
    dash.set(init="he")
    net = dash.result.net
    dash.controls["sigma_w"].value = 1.4000000000000001
    assert dash.computations == before + 1 and dash.result.net == net and net.weight_std is None
    dash.set(sigma_w=1.5000000000000002)
    assert dash.result.net.weight_std == 1.5 and "weight_std=1.5)" in dash.code
    assert dash.update_now(force=True) is dash.result and dash.computations == before + 3


# --------------------------------------------------------------------------------------------- errors
def test_an_invalid_value_shows_the_error_and_the_next_valid_value_recovers(dash):
    updates = dash.updates
    data_before = dash.plotted()["gradient"]["mean"].copy()
    dash.set(seed=-1)  # an IntText: the value reaches the engine, which refuses it
    assert dash.error_message == f"seed must be an integer in 0..{vglab.models.jacobians.MAX_SEED}, got -1"
    assert "seed must be an integer" in dash.error.value and dash.error.layout.display == "block"
    assert "error" in dash.status.value and dash.updates == updates
    np.testing.assert_array_equal(dash.plotted()["gradient"]["mean"], data_before)  # last good plot stays
    dash.set(seed=3)
    assert dash.error_message == "" and dash.error.layout.display == "none"
    assert dash.updates == updates + 1 and dash.result.norms.seed == 3


@pytest.mark.parametrize(("values", "message"), [
    (dict(depth=0), "depth must be an integer in 1..64 on this dashboard, got 0"),
    (dict(depth=2.5), "depth must be an integer in 1..64 on this dashboard, got 2.5"),
    (dict(activation="sigmod"), "unknown activation 'sigmod'; did you mean 'sigmoid'?"),
    (dict(norm="layer"), "unknown norm 'layer'"),
])
def test_values_a_control_cannot_take_are_shown_not_raised(dash, values, message):
    state = dash.state
    dash.set(**values)
    assert dash.error_message.startswith(message)
    assert dash.state == state
    dash.set(depth=12)
    assert dash.error_message == ""


def test_unknown_control_name_is_a_programming_error(dash):
    with pytest.raises(ValueError, match="unknown control 'dpth'; did you mean 'depth'?"):
        dash.set(dpth=3)


def test_an_exception_in_draw_is_shown_and_the_dashboard_keeps_working(dash, monkeypatch):
    original = dash.draw

    def broken(result):
        raise RuntimeError("the plot broke")

    monkeypatch.setattr(dash, "draw", broken)
    dash.set(depth=30)
    assert dash.error_message == "RuntimeError: the plot broke"
    monkeypatch.setattr(dash, "draw", original)
    dash.set(depth=31)
    assert dash.error_message == "" and dash.plotted()["gradient"]["x"][-1] == 31


def test_the_memory_bound_reached_by_sliders_is_a_readable_error():
    d = GradientDashboard(depth=10, width=16, n_seeds=2, controls=("depth", "width", "n_seeds"),
                          max_depth=10, widths=(16, 4096))
    d.set(width=4096, n_seeds=16)
    assert "above the 4 GiB bound; reduce depth, width or n_seeds" in d.error_message
    d.set(width=16, n_seeds=2)
    assert d.error_message == ""
    d.close()


# ------------------------------------------------------------------------------------ code, save, status
def test_code_reproduces_the_plotted_result(dash):
    dash.set(depth=21, activation="sigmoid", sigma_w=1.5, sigma_b=0.1, seed=5)
    namespace = {}
    exec(dash.code, namespace)
    np.testing.assert_array_equal(namespace["result"].log10_activation_grad,
                                  dash.result.norms.log10_activation_grad)
    np.testing.assert_allclose(namespace["theory"], dash.plotted()["gradient"]["theory"], atol=1e-9)
    assert namespace["net"] == dash.result.net
    assert "vglab.MLP(depth=21, width=16, activation='sigmoid', weight_std=1.5, bias_std=0.1)" in dash.code


def test_show_code_button_displays_the_code(dash):
    assert dash.code_view.layout.display == "none"
    dash.code_button.click()
    assert dash.code_view.layout.display == "block" and dash.code_button.description == "Hide code"
    assert "vglab.gradient_norms(net, seed=0, n_seeds=2)" in dash.code_view.value
    dash.set(depth=44)
    assert "depth=44" in dash.code_view.value  # kept current while shown
    dash.code_button.click()
    assert dash.code_view.layout.display == "none"


def test_save_writes_png_and_pdf(dash, tmp_path):
    png, pdf = dash.save(tmp_path / "gradients.png"), dash.save(tmp_path / "gradients.pdf")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    assert open(pdf, "rb").read(5) == b"%PDF-"
    with pytest.raises(ValueError, match="unknown figure format 'jpg'"):
        dash.save(tmp_path / "gradients.jpg")
    dash.save_path.value = str(tmp_path / "button.pdf")
    dash.save_button.click()
    assert (tmp_path / "button.pdf").stat().st_size > 1000 and "saved" in dash.status.value


def test_status_carries_the_update_counter_and_the_plotted_state(dash):
    dash.set(depth=7)
    assert f'data-update="{dash.updates}"' in dash.status.value
    assert 'data-depth="7"' in dash.status.value and "compute" in dash.status.value
    assert dash.timings["compute"] > 0 and dash.timings["draw"] > 0


def test_dashboard_root_and_controls_have_stable_classes_and_descriptions(dash):
    assert "vglab-dashboard" in dash.widget._dom_classes
    descriptions = {name: w.description for name, w in dash.controls.items()}
    assert descriptions == {"depth": "depth", "activation": "activation", "init": "init", "sigma_w": "σ_w",
                            "sigma_b": "σ_b", "residual": "residual", "norm": "norm", "seed": "seed"}
    assert "vglab-control-sigma-w" in dash.controls["sigma_w"]._dom_classes
    assert "vglab-status" in dash.status._dom_classes and "vglab-error" in dash.error._dom_classes
    bundle = dash._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget.model_id


def test_pins_keep_a_reference_curve(dash):
    dash.pin()
    pinned = dash.plots["gradient"].pins[0].get_ydata().copy()
    dash.set(depth=12, residual=True)
    assert len(dash.plots["gradient"].pins) == 1
    np.testing.assert_array_equal(dash.plots["gradient"].pins[0].get_ydata(), pinned)
    dash.clear_pins()
    assert dash.plots["gradient"].pins == []


def test_pins_past_the_last_colour_drop_the_oldest_in_the_gradient_and_the_spectrum_plot(dash):
    """Both pinning plots keep at most MAX_PINS faint copies, oldest dropped first, no two in one colour (the
    newest takes the dropped one's), each in the legend under its label; Clear pins removes them from the axes,
    not only from the list.  (Until stop 18 the newest took PIN_COLOURS[4] again: two pins alike.)"""
    spectrum = SpectrumDashboard(depth=4, width=8, max_depth=16, controls=("depth",), warm_up=False)
    for d, name, line in ((dash, "gradient", "mean_line"), (spectrum, "spectrum", "sorted_line")):
        plot = d.plots[name]
        pinned = []
        for depth in range(3, 4 + plots.MAX_PINS):
            d.set(depth=depth)
            pinned.append(getattr(plot, line).get_ydata().copy())
            d.pin()
        assert len(plot.pins) == plots.MAX_PINS
        for pin, expected in zip(plot.pins, pinned[1:], strict=True):
            np.testing.assert_array_equal(pin.get_ydata(), expected)  # the first pin was the one dropped
        colours = [pin.get_color() for pin in plot.pins]
        assert colours == [*plots.PIN_COLOURS[1:], plots.PIN_COLOURS[0]]
        legend_texts = [text.get_text() for text in plot.legend.get_texts()]
        assert [pin.get_label() for pin in plot.pins] == legend_texts[-plots.MAX_PINS:]
        assert all(f"L={depth}" in label for label, depth in zip(legend_texts[-plots.MAX_PINS:],
                                                                 range(4, 4 + plots.MAX_PINS), strict=True))
        axes_lines = {id(ln) for ax in d.figure.axes for ln in ax.get_lines()}
        kept = [id(pin) for pin in plot.pins]
        d.clear_pins()
        assert plot.pins == [] and not axes_lines.isdisjoint(kept)
        assert {id(ln) for ax in d.figure.axes for ln in ax.get_lines()}.isdisjoint(kept)
    spectrum.close()


# ------------------------------------------------------------------------------------ other dashboards
def test_spectrum_dashboard_plots_the_engines_singular_values():
    d = SpectrumDashboard(depth=8, width=16, max_depth=32, controls=("depth", "activation", "init"))
    for depth, init in ((20, "orthogonal"), (5, "xavier")):
        d.set(depth=depth, init=init)
        expected = vglab.jacobian_spectrum(vglab.MLP(depth=depth, width=16, init=init)).log10_singular_values
        np.testing.assert_array_equal(d.plotted()["spectrum"]["log10_singular_values"], expected)
        counts, edges = d.plotted()["spectrum"]["histogram"]
        assert counts.sum() == np.isfinite(expected).sum()
    namespace = {}
    exec(d.code, namespace)
    np.testing.assert_array_equal(namespace["spectrum"].log10_singular_values, expected)
    d.close()


def test_phase_diagram_marks_the_setting_and_draws_the_edge_of_chaos():
    d = PhaseDiagramDashboard(depth=10, width=16, n_seeds=1, max_depth=16)
    d.set(sigma_w=1.5, sigma_b=0.3)
    point = d.plotted()["phase"]["point"]
    assert point == pytest.approx((1.5**2, 0.3**2))
    edge_w2, edge_b2 = d.plotted()["phase"]["edge"]
    # Where the drawn χ₁ = 1 line crosses σ_b² = 0.5, σ_w² matches the bisection of theory.critical_sigma_w.
    finite = np.isfinite(edge_w2)
    order = np.argsort(edge_b2[finite])
    crossing = np.interp(0.5, edge_b2[finite][order], edge_w2[finite][order])
    assert crossing == pytest.approx(theory.critical_sigma_w("tanh", math.sqrt(0.5)) ** 2, rel=0.03)
    d.close()


def test_a_generic_dashboard_from_plain_functions():
    lines = {}

    def setup(figure):
        (lines["curve"],) = figure.add_subplot(1, 1, 1).plot([], [])

    def compute(state):
        return vglab.gradient_norms(vglab.MLP(depth=state["depth"], width=8), n_seeds=1)

    def draw(result):
        lines["curve"].set_data(np.arange(result.net.depth + 1), result.log10_activation_grad[0])

    d = Dashboard({"depth": make_control("depth", 5, low=1, high=20)}, setup=setup, compute=compute,
                  draw=draw, code=lambda s: f"vglab.gradient_norms(vglab.MLP(depth={s['depth']}, width=8))")
    d.set(depth=9)
    assert len(lines["curve"].get_xdata()) == 10 and d.code.endswith("depth=9, width=8))")
    d.close()


# --------------------------------------------------------------------------------------------- a real kernel
def test_a_burst_of_frontend_slider_messages_in_a_real_kernel_computes_only_a_few():
    """What JupyterLab sends while a slider is dragged: comm messages {method: update, state: {value}}."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")  # jupyter_client runs its "python" as sys.executable
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)

        def run(code):
            msg_id, output = client.execute(textwrap.dedent(code)), []
            while True:
                msg = client.get_iopub_msg(timeout=120)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "stream":
                    output.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    raise AssertionError("\n".join(msg["content"]["traceback"]))
                elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    return "".join(output)

        comm_id = run("""
            %matplotlib widget
            from vglab.lab.dashboards import GradientDashboard
            d = GradientDashboard(depth=5, width=16, n_seeds=2, max_depth=64, controls=("depth",))
            print(d.controls["depth"].comm.comm_id, end="")
        """)
        for depth in range(6, 56):
            client.session.send(client.shell_channel.socket, "comm_msg", {
                "comm_id": comm_id,
                "data": {"method": "update", "state": {"value": depth}, "buffer_paths": []}})
        time.sleep(0.5)
        report = run("""
            import asyncio
            await asyncio.sleep(0.5)
            shown = d.plotted()["gradient"]["x"][-1]
            print(d.computations, d.controls["depth"].value, d.result.net.depth, shown)
        """).split()
        computations, value, computed_depth, plotted_depth = (float(v) for v in report)
        assert value == computed_depth == plotted_depth == 55
        assert computations <= 1 + 10, f"{computations - 1:.0f} computations for 50 slider messages"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


LEGEND_CODES = {"upper right": 1, "upper left": 2, "lower left": 3, "lower right": 4}  # matplotlib's loc codes


@pytest.mark.parametrize("curve,expected", [
    (np.linspace(-30, 0, 51), "upper left"),  # vanishing: rises toward the output, the top right is taken
    (np.linspace(0, -30, 51), "upper right"),  # exploding toward the input: the top left is taken
    (np.r_[np.full(10, -20.0), np.full(41, 5.0)], "lower right"),  # high, after a dip at the lower left
])
def test_the_legend_goes_to_the_corner_the_curves_leave_empty(curve, expected):
    fig, ax = plt.subplots()
    plot = plots.LogProfilePlot(ax)
    plot.update(np.arange(51), curve)
    assert plot.legend._loc == LEGEND_CODES[expected]
    plt.close(fig)


def test_a_connected_ipympl_canvas_renders_right_after_the_status_without_a_browser_round_trip(dash, monkeypatch):
    # ipympl's draw_idle() asks the browser to ask back for a draw; once its view is up (syncing_data_url
    # False) the dashboard renders itself, once per coalesced update, after the status went out.
    frames = []
    live_ipympl_canvas(dash, monkeypatch)  # as under %matplotlib widget; draw_idle fails the test
    monkeypatch.setattr(dash.figure.canvas, "draw", lambda: frames.append(dash.status.value))

    async def drag():
        for depth in (21, 22, 23):
            dash.controls["depth"].value = depth
        await asyncio.sleep(0.3)

    asyncio.run(drag())
    assert len(frames) == 1 and 'data-depth="23"' in frames[0]


# --------------------------------------------------------------------------------------------- blitting
def _curve_pixels(rgba, colour=(31, 119, 180)) -> int:
    """Pixels of a colour (default tab:blue, the mean curve) in an RGBA frame or image."""
    return int(np.count_nonzero(np.abs(rgba[..., :3].astype(int) - np.array(colour)).sum(axis=-1) < 30))


@pytest.mark.parametrize("steps", [
    [dict(depth=39), dict(depth=38), dict(depth=150), dict(depth=149), dict(activation="tanh"),
     dict(depth=140), dict(init="xavier"), dict(depth=141)],
])
def test_every_rendered_frame_equals_a_full_redraw_and_unchanged_layouts_are_blitted(steps, monkeypatch):
    # The changing artists are drawn over a saved background when nothing else changed; every frame, blitted
    # or not, must be exactly what drawing the whole figure gives (no stale background under new data).
    d = GradientDashboard(depth=40, activation="relu", init="he", controls=("depth", "activation", "init"),
                          n_seeds=2, width=16, panels=("gradient", "dead"), max_depth=200, warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    for i, values in enumerate(steps):
        blits = d.frames["blit"]
        limits = [(ax.get_xlim(), ax.get_ylim()) for ax in d.figure.axes]
        change(d, **values)
        kept = limits == [(ax.get_xlim(), ax.get_ylim()) for ax in d.figure.axes]
        if i:  # (the first frame has no background yet: its legend was new)
            assert (d.frames["blit"] > blits) == kept, (values, limits, d.frames)
        assert d.plotted()["gradient"]["x"][-1] == d.state["depth"]
        assert _curve_pixels(pixels(d.figure)) > 50
        assert_frame_is_the_full_redraw(d)
    assert d.frames["blit"] >= 3  # depth steps inside the limits (38, 149, 141) were blitted
    d.close()


def test_a_change_outside_the_plots_changing_artists_renders_the_whole_figure(dash, monkeypatch):
    # Any artist that is not animated (a title, a pin, new limits) marks the figure stale: a full draw.
    live_ipympl_canvas(dash, monkeypatch)
    for depth in (11, 12, 11, 12):
        change(dash, depth=depth)
    blits = dash.frames["blit"]
    assert blits >= 2  # the last two steps keep every limit
    dash.figure.axes[0].set_title("changed by hand")
    change(dash, depth=11)
    assert dash.frames["blit"] == blits
    assert_frame_is_the_full_redraw(dash)

    async def click_pin():  # the Pin button, clicked in a live kernel
        dash.pin()
        await asyncio.sleep(0.1)

    asyncio.run(click_pin())  # a new (pinned) line: a full draw, then blits again with the pin drawn
    assert dash.frames["blit"] == blits
    for depth in (12, 11, 12):
        change(dash, depth=depth)
    assert dash.frames["blit"] > blits
    assert_frame_is_the_full_redraw(dash)


def test_saved_figures_and_plain_draws_show_the_animated_curves(dash, tmp_path):
    # The curves are animated (left out of the figure's own draw); savefig and a plain canvas.draw() still
    # show them, once.
    def counts():
        dash.figure.canvas.draw()
        drawn = _curve_pixels(pixels(dash.figure))  # before saving: savefig replaces the canvas's renderer
        path = dash.save(tmp_path / "x.png")
        saved = (plt.imread(path)[..., :3] * 255).astype(int)
        return drawn, _curve_pixels(saved)

    drawn, saved = counts()
    dash.plots["gradient"].mean_line.set_visible(False)
    dash.plots["gradient"].band.set_visible(False)
    drawn_without, saved_without = counts()
    assert drawn > drawn_without + 50 and saved > saved_without + 100


def test_the_spectrum_dashboard_blits_a_depth_step_that_keeps_its_limits(monkeypatch):
    d = SpectrumDashboard(depth=16, width=16, max_depth=32, controls=("depth",), warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    change(d, depth=15)
    limits = [(ax.get_xlim(), ax.get_ylim()) for ax in d.figure.axes]
    blits = d.frames["blit"]
    change(d, depth=16)  # limits kept: spectrum, histogram, notes and legend blitted
    assert [(ax.get_xlim(), ax.get_ylim()) for ax in d.figure.axes] == limits
    assert d.frames["blit"] == blits + 1
    assert_frame_is_the_full_redraw(d)
    change(d, depth=30)  # the spectrum widens beyond the limits: a full draw
    assert d.frames["blit"] == blits + 1
    shown = d.plotted()["spectrum"]["log10_singular_values"]
    ax = d.figure.axes[0]
    assert ax.get_ylim()[0] < np.nanmin(shown) and np.nanmax(shown) < ax.get_ylim()[1]
    assert_frame_is_the_full_redraw(d)
    d.close()


@pytest.mark.parametrize("current,x,expected", [
    (None, np.arange(41), (-0.8, 40.8)),  # extent 40, a nice end: 2% margins
    ((-0.8, 40.8), np.arange(21), (-0.8, 40.8)),  # 20 ≥ half of 40: kept
    ((-0.8, 40.8), np.arange(20), (-0.4, 20.4)),  # 19 < 20: re-chosen (not squeezed)
    ((-0.8, 40.8), np.arange(42), (-1.0, 51.0)),  # beyond: re-chosen, 41 → 50
    ((-0.8, 40.8), np.arange(1, 31), (0.4, 31.6)),  # another start: re-chosen, 29 → 30
])
def test_x_limits_stay_while_the_data_fill_half_of_them(current, x, expected):
    assert plots.sticky_x_limits(current, x) == pytest.approx(expected)


def test_y_limits_show_every_value_and_stay_while_the_data_fill_half_of_them():
    low, high = plots.sticky_limits(None, np.array([-31.3, -2.0]))
    assert low < -31.3 and high > -2.0 and (high - low) < 2 * 29.3
    assert plots.sticky_limits((low, high), np.array([-30.0, -3.0])) == (low, high)
    new = plots.sticky_limits((low, high), np.array([-40.0, -2.0]))
    assert new[0] < -40.0 and new != (low, high)
    shrunk = plots.sticky_limits((low, high), np.array([-3.0, -2.0]))
    assert shrunk[1] - shrunk[0] < 3


def test_the_legend_keeps_its_corner_unless_another_is_clearly_emptier():
    fig, ax = plt.subplots()
    ax.set_xlim(0, 50)
    ax.set_ylim(-31, 1)
    x = np.arange(51)
    curve = np.linspace(-30, 0, 51)  # the top right is taken, the top left is free
    curve[2] = 0.0  # one point in the upper left
    assert plots.emptiest_corner(ax, x, [curve], entries=3) == "lower right"
    assert plots.emptiest_corner(ax, x, [curve], entries=3, current="upper left") == "upper left"  # 1 point
    assert plots.emptiest_corner(ax, x, [curve], entries=3, current="upper right") == "lower right"  # many
    plt.close(fig)


def test_the_phase_diagram_dashboard_blits_depth_steps_with_its_changing_title(monkeypatch):
    # The phase panel's title carries χ₁ of the current setting; it is redrawn with the data, not by a
    # full frame on every step.
    d = PhaseDiagramDashboard(depth=150, width=16, n_seeds=2, max_depth=200, warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    for depth in (151, 152, 153, 154):
        change(d, depth=depth)
    assert d.frames["blit"] >= 2
    assert_frame_is_the_full_redraw(d)
    change(d, sigma_w=1.5)  # a new χ₁ in the title: still the same frame as a full redraw
    chi = theory.chi1("tanh", 1.5, d.network().bias_std, d.network().leaky_slope)
    assert d.plots["phase"].ax.get_title() == f"order/chaos: χ₁ = {chi:.3g} here"
    assert_frame_is_the_full_redraw(d)
    d.plots["phase"].set_title("order/chaos: χ₁ = 0.5 here")  # only the title changes: blitted, and exact
    assert d._frames.render() == "blit"
    assert_frame_is_the_full_redraw(d)
    d.close()


def test_draws_the_dashboard_did_not_start_never_leave_a_background_to_blit_over(monkeypatch):
    # draw_without_rendering() (matplotlib's way to measure text) fires the draw event over a cleared buffer,
    # and a browser's redraw request or a plain draw may run between updates: none of them may leave pixels
    # that a later frame is blitted over.
    d = GradientDashboard(depth=40, activation="relu", init="he", controls=("depth",), n_seeds=2, width=16,
                          panels=("gradient", "dead"), max_depth=200, warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    for depth in (39, 38, 37):
        change(d, depth=depth)
    assert d._frames.render() == "blit"  # the set-up reached the blit path

    def pin_then_plain_draw():  # a new artist drawn by the figure itself before the dashboard renders
        d.plots["gradient"].pin("pinned")
        d.figure.canvas.draw()

    for interloper in (d.figure.draw_without_rendering, d.figure.canvas.draw, pin_then_plain_draw):
        interloper()
        change(d, depth=d.state["depth"] - 1)
        assert d.frames["blit"] >= 1
        assert_frame_is_the_full_redraw(d)
    assert d.frames["blit"] >= 1
    d.close()
