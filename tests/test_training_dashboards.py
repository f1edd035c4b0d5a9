"""The training dashboard without a browser: plotted numbers equal vglab.train's, in-place redraws, errors
shown and recovered, code that reproduces the plot, background runs that stop and keep their history.

Small nets (width 16, depth ≤ 6, tens of steps) on the digits keep each run well under a second once its
training step is compiled; most tests share one configuration (tanh, sgd, depth 4) and so one compile.
"""

import asyncio

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vglab  # noqa: E402
from vglab.lab import plots  # noqa: E402
from vglab.lab.training_dashboards import (  # noqa: E402
    TrainingDashboard,
    learning_layers_ratio,
    mean_update_ratio,
)

SMALL = dict(width=16, activation="tanh", steps=30, max_depth=8)
CONTROLS = ("depth", "activation", "init", "sigma_w", "residual", "norm", "optimizer", "learning_rate",
            "clip_norm", "steps", "seed")


@pytest.fixture
def dash():
    d = TrainingDashboard(depth=4, controls=CONTROLS, **SMALL)
    yield d
    d.close()


def engine(depth=4, steps=30, **kwargs):
    """vglab.train as the dashboard calls it (eval every steps/20 steps, as train's default)."""
    net_fields = {k: kwargs.pop(k) for k in ("activation", "init", "weight_std", "residual", "norm")
                  if k in kwargs}
    net = vglab.MLP(depth=depth, width=16, **{"activation": "tanh", **net_fields})
    return vglab.train(net, "digits", steps=steps, **kwargs)


def assert_plot_shows(d, history):
    shown = d.plotted()
    layers = np.arange(1, history.net.depth + 1)
    for panel, values in (("gradient", history.log10_grad_norms), ("ratio", history.log10_update_ratio)):
        np.testing.assert_array_equal(shown[panel]["x"], layers)
        np.testing.assert_allclose(shown[panel]["mean"], plots.mean_and_band(values)[0], rtol=1e-12)
    curves = shown["curves"]
    np.testing.assert_array_equal(curves["steps"], np.arange(history.steps_completed))
    np.testing.assert_allclose(curves["log10_loss"], np.log10(history.loss), rtol=1e-12)
    np.testing.assert_array_equal(curves["test_steps"], history.eval_steps)
    np.testing.assert_allclose(curves["test_accuracy"], history.test_accuracy, rtol=1e-12)


# --------------------------------------------------------------------------------------------- numbers
def test_plotted_profiles_and_curves_are_the_engines_numbers(dash):
    expected = engine()
    np.testing.assert_array_equal(dash.result.history.log10_grad_norms, expected.log10_grad_norms)
    np.testing.assert_array_equal(dash.result.history.update_ratio, expected.update_ratio)
    assert_plot_shows(dash, expected)
    # the profile is the mean over steps of log10 ‖∂loss/∂W_l‖_F, one value per layer l = 1..depth
    np.testing.assert_allclose(dash.plotted()["gradient"]["mean"], expected.log10_grad_norms.mean(axis=0),
                               rtol=1e-12)
    assert dash.plotted()["curves"]["note"] == "" and dash.plotted()["curves"]["end_step"] is None


def test_a_change_redraws_the_same_artists_in_place(dash):
    figure, line = dash.figure, dash.plots["ratio"].mean_line
    children = [len(ax.get_children()) for ax in figure.axes]
    figures = plt.get_fignums()
    dash.set(depth=6, optimizer="momentum")
    assert dash.figure is figure and dash.plots["ratio"].mean_line is line
    assert plt.get_fignums() == figures, "an update opened a figure"
    assert [len(ax.get_children()) for ax in figure.axes] == children, "an update added artists"
    assert dash.state["learning_rate"] == 0.01  # choosing momentum set its default learning rate
    assert_plot_shows(dash, engine(depth=6, optimizer="momentum", learning_rate=0.01))
    assert dash.updates == 2 and dash.computations == 2


def test_choosing_an_init_sets_sigma_w_and_the_slider_overrides_it(dash):
    dash.set(init="he")
    assert dash.result.net.weight_std is None and dash.result.net.sigma_w == pytest.approx(2**0.5)
    dash.set(sigma_w=0.5)
    assert dash.result.net.weight_std == 0.5


def test_without_a_sigma_w_control_the_init_picks_the_scale():
    d = TrainingDashboard(depth=4, controls=("depth", "init"), **SMALL)
    d.set(init="he")
    assert d.result.net.sigma_w == pytest.approx(2**0.5) and "weight_std" not in d.code
    d.close()


# --------------------------------------------------------------------------------------------- divergence
def test_a_diverging_run_is_shown_ending_where_nan_was_detected_and_clipping_rescues_it():
    """ReLU with σ_w = 2 (χ₁ = 2): the forward signal and the gradient grow ×√2 per layer; plain sgd blows up
    within a few steps, global-norm clipping (Pascanu et al. 2013) keeps every step finite."""
    d = TrainingDashboard(depth=20, width=32, activation="relu", init="he", sigma_w=2.0, steps=60,
                          controls=("depth", "clip_norm"), max_depth=20)
    wild = d.result.history
    assert wild.diverged and 0 < wild.diverged_at_step < 20
    assert d.plotted()["curves"]["end_step"] == wild.diverged_at_step
    assert "diverged at step" in d.plotted()["curves"]["note"] and "diverged at step" in d.status.value
    assert 'data-diverged="True"' in d.status.value
    assert all(np.isfinite(d.plotted()[p]["mean"]).all() for p in ("gradient", "ratio"))  # NaN not plotted
    d.set(clip_norm=1.0)
    tame = d.result.history
    assert not tame.diverged and tame.steps_completed == 60 and tame.clipped[:10].all()
    assert d.plotted()["curves"]["end_step"] is None and "% of steps clipped" in d.status.value
    assert "clip_norm=1.0" in d.code
    d.close()


# --------------------------------------------------------------------------------------------- errors
def test_an_engine_error_is_shown_and_the_next_valid_value_recovers(dash):
    before = dash.plotted()["ratio"]["mean"].copy()
    updates = dash.updates
    dash.set(seed=-1)  # an IntText: the value reaches vglab.train, which refuses it
    assert dash.error_message == "seed must be an integer in 0..2147483647, got -1"
    assert dash.error.layout.display == "block" and 'data-error="1"' in dash.status.value
    np.testing.assert_array_equal(dash.plotted()["ratio"]["mean"], before)  # the last good plot stays
    assert dash.updates == updates
    dash.set(seed=1)
    assert dash.error_message == "" and dash.result.history.seed == 1 and dash.updates == updates + 1


@pytest.mark.parametrize(("values", "message"), [
    (dict(learning_rate=7.0), "unknown learning_rate '7.0'"),
    (dict(optimizer="adma"), "unknown optimizer 'adma'; did you mean 'adam'?"),
    (dict(depth=9), "depth must be an integer in 1..8 on this dashboard, got 9"),
    (dict(steps=5), "steps must be an integer in 10..2000 on this dashboard, got 5"),
])
def test_values_a_control_cannot_take_are_shown_not_raised(dash, values, message):
    state = dash.state
    dash.set(**values)
    assert dash.error_message.startswith(message)
    assert dash.state == state
    dash.set(clip_norm=None)  # "off"
    assert dash.error_message == "" and dash.result.history.clip_norm is None


def test_an_exception_in_draw_is_shown_and_the_dashboard_keeps_working(dash, monkeypatch):
    original = dash.draw
    monkeypatch.setattr(dash, "draw", lambda view: (_ for _ in ()).throw(RuntimeError("the plot broke")))
    dash.set(steps=20)
    assert dash.error_message == "RuntimeError: the plot broke"
    monkeypatch.setattr(dash, "draw", original)
    dash.set(steps=30)
    assert dash.error_message == "" and dash.plotted()["curves"]["steps"][-1] == 29


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(depth=9), r"depth must be an integer in 1..8 \(max_depth\), got 9"),
    (dict(controls=("depht",)), "unknown control 'depht'; did you mean 'depth'?"),
    (dict(panels=("loss",)), "unknown panel 'loss'"),
    (dict(optimizer="rmsprop"), "unknown optimizer 'rmsprop'"),
    (dict(data="mnist"), "unknown data 'mnist'"),
    (dict(clip_norm=-1.0), r"clip_norm must be in \(0.0, 1000000.0\], got -1.0"),
    (dict(steps=5), r"steps must be an integer in 10..2000 \(max_steps\), got 5"),
])
def test_bad_constructor_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingDashboard(**{**dict(depth=4, **SMALL), **kwargs})


def test_helpers_reject_bad_arguments(dash):
    history = dash.result.history
    np.testing.assert_allclose(mean_update_ratio(history, skip=10), history.update_ratio[10:].mean(axis=0))
    expected = np.log10(history.update_ratio[10:, :2].mean() / history.update_ratio[10:, -2:].mean())
    assert learning_layers_ratio(history, layers=2) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="skip must be an integer in 0..29"):
        mean_update_ratio(history, skip=30)
    with pytest.raises(ValueError, match="layers must be an integer in 1..4"):
        learning_layers_ratio(history, layers=5)


# --------------------------------------------------------------------------------------------- code, status
def test_code_reproduces_the_plotted_run(dash):
    dash.set(residual=True, norm="pre", learning_rate=0.03, clip_norm=0.3, seed=2)
    namespace = {}
    exec(dash.code, namespace)
    again = namespace["history"]
    assert namespace["net"] == dash.result.net
    for name in ("loss", "log10_grad_norms", "update_ratio", "test_accuracy", "clipped"):
        np.testing.assert_array_equal(getattr(again, name), getattr(dash.result.history, name))
    assert_plot_shows(dash, again)


def test_status_and_controls_carry_stable_classes_and_the_plotted_state(dash):
    dash.set(steps=20)
    status = dash.status.value
    assert f'data-update="{dash.updates}"' in status and 'data-steps="20"' in status
    assert 'data-steps-completed="20"' in status and 'data-interrupted="False"' in status
    assert "update ratio first/last layer 10^" in status and "test accuracy" in status
    assert {"vglab-dashboard", "vglab-training-dashboard"} <= set(dash.widget._dom_classes)
    assert "vglab-control-learning-rate" in dash.controls["learning_rate"]._dom_classes
    assert dash.controls["clip_norm"].description == "clip ‖g‖ at"
    row = dash.widget.children[1]  # the Train / Stop / progress row sits right under the controls
    assert row is dash.training_row and "vglab-progress" in dash.progress._dom_classes
    assert dash.progress.value == dash.progress.max == 20


def test_save_and_pins(dash, tmp_path):
    assert open(dash.save(tmp_path / "run.pdf"), "rb").read(5) == b"%PDF-"
    dash.pin()
    dash.set(depth=6, optimizer="momentum")  # compiled by an earlier test
    assert len(dash.plots["ratio"].pins) == 1 and dash.plots["ratio"].pins[0].get_label().startswith("tanh")
    dash.clear_pins()
    assert dash.plots["gradient"].pins == []


# --------------------------------------------------------------------------------------------- live runs
async def _until(condition, timeout=120.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out waiting (the test's safety net, not a speed check)"
        await asyncio.sleep(0.01)


def test_stop_ends_a_background_run_and_keeps_its_history(dash):
    with dash.hold_updates():
        dash.controls["steps"].value = 2000
    ticks = []

    async def run():
        dash.train()  # a live event loop: the run goes to a worker thread
        assert dash.running and not dash.stop_button.disabled
        await _until(lambda: dash.progress.value >= 40)
        ticks.append(dash.progress.value)  # the loop kept running (and the progress bar moving) meanwhile
        dash.stop()
        await _until(lambda: not dash.running)

    asyncio.run(run())
    history = dash.result.history
    assert history.interrupted and not history.diverged
    assert ticks[0] <= history.steps_completed < 2000
    assert dash.computed_state["steps"] == 2000 and dash.stop_button.disabled
    assert "stopped after" in dash.plotted()["curves"]["note"] and 'data-interrupted="True"' in dash.status.value
    assert_plot_shows(dash, history)
    # The code is the same run cut at the steps completed: the same per-step records.
    assert f"steps={history.steps_completed}," in dash.code
    namespace = {}
    exec(dash.code, namespace)
    for name in ("loss", "log10_grad_norms", "update_ratio"):
        np.testing.assert_array_equal(getattr(namespace["history"], name), getattr(history, name))


def test_a_background_run_shows_its_partial_history_then_the_whole_run(dash, monkeypatch):
    from vglab.lab import training_dashboards

    monkeypatch.setattr(training_dashboards, "LIVE_REDRAW_SECONDS", 0.0)  # redraw after every step
    drawn, draw = [], dash.draw
    monkeypatch.setattr(dash, "draw", lambda view: (drawn.append(view), draw(view)))

    async def run():
        dash.controls["steps"].value = 40  # in a live loop this only marks the plot out of date
        dash.train()
        await _until(lambda: not dash.running)

    updates = dash.updates
    asyncio.run(run())
    partial = [view for view in drawn if view.running]
    assert len(partial) >= 2 and not drawn[-1].running
    assert [v.history.steps_completed for v in partial] == sorted(v.history.steps_completed for v in partial)
    np.testing.assert_array_equal(partial[-1].history.update_ratio,
                                  dash.result.history.update_ratio[: partial[-1].history.steps_completed])
    assert dash.updates == updates + 1 and dash.result.history.steps_completed == 40
    assert_plot_shows(dash, engine(steps=40))


def test_a_live_control_change_marks_the_plot_out_of_date_without_training(dash):
    before = dash.computations

    async def drag():
        for depth in (5, 6, 7):
            dash.controls["depth"].value = depth
        await asyncio.sleep(0.05)

    asyncio.run(drag())
    assert dash.computations == before and dash.stale
    assert "settings changed: press Train" in dash.status.value
    dash.controls["depth"].value = 4  # back to the plotted state (no event loop here: this trains → equal)
    assert not dash.stale


def test_auto_train_runs_once_for_a_burst_of_changes_with_the_final_value():
    d = TrainingDashboard(depth=4, controls=("depth", "seed"), auto_train=True, **SMALL)
    before = d.computations

    async def burst():
        for seed in range(1, 21):  # 20 messages back to back: the base class coalesces them
            d.controls["seed"].value = seed
        await asyncio.sleep(0.1)
        await _until(lambda: not d.running)

    asyncio.run(burst())
    assert d.computations == before + 1
    assert d.computed_state["seed"] == 20 == d.result.history.seed
    assert_plot_shows(d, engine(seed=20))
    d.close()

