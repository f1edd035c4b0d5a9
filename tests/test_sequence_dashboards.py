"""The RNN/LSTM and transformer dashboards without a browser: the engines' numbers drawn in place, bounds,
latest-value-only updates, errors shown and recovered, code that recomputes the plot, no recompilation.

Small models (hidden 16, width 32, 2 seeds) and one dashboard of each kind per module keep the compiled
programs few: after the first update of a setting, every other update reuses them.
"""

import asyncio
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vglab  # noqa: E402
from tests.live_canvas import assert_frame_is_the_full_redraw, change, live_ipympl_canvas  # noqa: E402
from tests.test_compilation import COUNTER  # noqa: E402
from vglab.lab.sequence_dashboards import (  # noqa: E402
    RecurrentDashboard,
    TransformerDashboard,
    linear_closed_form,
    pascanu_bound,
)
from vglab.models import recurrent, transformer  # noqa: E402

RNN_SMALL = dict(hidden=16, n_seeds=2, max_steps=300, hiddens=(16, 32))
TRANSFORMER_SMALL = dict(width=32, n_seeds=2, max_depth=20, widths=(32,))


@pytest.fixture(scope="module")
def rnn():
    d = RecurrentDashboard(steps=20, **RNN_SMALL)
    yield d
    d.close()


@pytest.fixture(scope="module")
def stack():
    d = TransformerDashboard(depth=6, **TRANSFORMER_SMALL)
    yield d
    d.close()


def rnn_net(**fields):
    return vglab.RNN(**{"hidden": 16, "spectral_radius": 1.0, **fields})


def engine(net, seed=0, n_seeds=2):
    return vglab.gradient_norms(net, seed=seed, n_seeds=n_seeds)


# --------------------------------------------------------------------------------------------- RNN
def test_steps_and_cell_changes_redraw_the_same_artists_with_the_engines_numbers(rnn):
    figure, line = rnn.figure, rnn.plots["gradient"].mean_line
    n_artists = [len(ax.get_children()) for ax in figure.axes]
    figures = plt.get_fignums()
    for cell, steps in (("vanilla", 3), ("lstm", 40), ("vanilla", 300), ("lstm", 17)):
        rnn.set(cell=cell, steps=steps)
        assert rnn.figure is figure and rnn.plots["gradient"].mean_line is line
        norms = engine(rnn_net(cell=cell, steps=steps))
        shown = rnn.plotted()
        np.testing.assert_array_equal(shown["gradient"]["x"], np.arange(steps + 1))
        np.testing.assert_allclose(shown["gradient"]["mean"], norms.log10_activation_grad.mean(axis=0),
                                   rtol=1e-12)
        np.testing.assert_array_equal(rnn.result.norms.log10_activation_grad, norms.log10_activation_grad)
        if cell == "lstm":
            np.testing.assert_allclose(shown["cell"]["mean"], norms.log10_cell_grad.mean(axis=0), rtol=1e-12)
            assert not rnn.plots["cell"].empty_note.get_visible()
        else:
            assert len(shown["cell"]["x"]) == 0 and rnn.plots["cell"].empty_note.get_visible()
            assert "no cell state" in rnn.plots["cell"].empty_note.get_text()
    assert plt.get_fignums() == figures, "an update opened a figure"
    assert [len(ax.get_children()) for ax in figure.axes] == n_artists, "an update added artists"


def test_linear_rnn_is_drawn_with_its_exact_closed_form(rnn):
    rnn.set(cell="vanilla", activation="linear", spectral_radius=0.8, steps=50)
    shown = rnn.plotted()["gradient"]
    assert shown["bound"] is None
    # ‖∂L/∂h_t‖ = ρ^{T−t}‖g‖ exactly for W = ρQ: the curve falls by log10 0.8 per step.
    np.testing.assert_allclose(shown["theory"][0] - shown["theory"][-1], 50 * math.log10(0.8), rtol=1e-12)
    np.testing.assert_allclose(shown["mean"], shown["theory"], atol=1e-4)


def test_vanilla_tanh_stays_below_the_pascanu_bound(rnn):
    rnn.set(cell="vanilla", activation="tanh", spectral_radius=0.9, steps=120)
    shown = rnn.plotted()["gradient"]
    assert shown["theory"] is None
    np.testing.assert_allclose(np.diff(shown["bound"]), -math.log10(0.9), rtol=1e-12)
    grads = rnn.result.norms.log10_activation_grad
    assert np.all(grads <= pascanu_bound(rnn.result.net, 0.0) + grads[:, -1:] + 1e-4)  # every seed
    rnn.set(spectral_radius=1.5)  # sup|φ′|·ρ ≥ 1: the bound shows no decay and is not drawn
    assert rnn.plotted()["gradient"]["bound"] is None


def test_bounds_apply_only_where_they_hold():
    assert pascanu_bound(rnn_net(cell="lstm", steps=5), 0.0) is None
    assert pascanu_bound(vglab.RNN(hidden=16, steps=5, weight_std=0.5), 0.0) is None  # ‖W‖₂ unknown
    sigmoid = pascanu_bound(rnn_net(activation="sigmoid", steps=4, spectral_radius=2.0), 0.0)
    np.testing.assert_allclose(sigmoid, math.log10(0.5) * np.arange(4, -1, -1), rtol=1e-12)  # (0.25·2)^{T−t}
    assert linear_closed_form(rnn_net(activation="tanh", steps=4), 0.0) is None


def test_an_open_forget_gate_carries_the_gradient_a_closed_one_loses(rnn):
    rnn.set(cell="lstm", steps=100, spectral_radius=1.0, forget_bias=-2.0)
    closed = rnn.result.norms.log10_gradient_ratio.mean()
    rnn.set(forget_bias=5.0)
    open_gate = rnn.result.norms.log10_gradient_ratio.mean()
    # f_t = σ(b_f + …) → 1: the cell path multiplies ∂L/∂c by f_t ≈ 1 per step instead of ≈ 0.12.
    assert closed < -20 and open_gate > -3, (closed, open_gate)
    assert np.mean(rnn.result.norms.forget_gate_mean) > 0.95
    assert "mean forget gate" in rnn.status.value and 'data-forget-bias="5.0"' in rnn.status.value


def test_settings_a_cell_ignores_are_not_recomputed(rnn):
    rnn.set(cell="vanilla", activation="tanh", steps=30)
    before = rnn.computations
    rnn.set(forget_bias=3.0)  # the vanilla cell has no forget gate
    assert rnn.computations == before
    rnn.set(cell="lstm")
    before = rnn.computations
    rnn.set(activation="relu")  # the LSTM's nonlinearities are fixed (σ and tanh)
    assert rnn.computations == before and rnn.result.net.activation == "tanh"
    rnn.set(activation="tanh")


def test_steps_changes_never_compile_after_the_first_update_of_a_setting(rnn):
    for cell in ("vanilla", "lstm"):
        rnn.set(cell=cell, steps=10, activation="tanh", hidden=16)
        before, programs = COUNTER.count, recurrent.compiled_programs()
        for steps in (1, 64, 65, 257, 300, 2, 199):  # across the engine's capacity buckets 64 / 256 / 1024
            rnn.set(steps=steps, spectral_radius=0.5 + steps / 1000, forget_bias=steps / 100)
            assert rnn.error_message == ""
        assert COUNTER.count == before, f"a steps change compiled a program ({cell})"
        assert recurrent.compiled_programs() == programs


def test_a_burst_of_steps_changes_in_the_event_loop_computes_once_with_the_final_value(rnn):
    rnn.set(cell="vanilla", steps=10)
    slider = rnn.controls["steps"]

    async def burst():
        before = rnn.computations
        for steps in range(11, 151):  # 140 slider messages, handled back to back
            slider.value = steps
        await asyncio.sleep(0.3)
        return rnn.computations - before

    assert asyncio.run(burst()) == 1
    assert rnn.computed_state["steps"] == 150 == rnn.result.net.steps
    np.testing.assert_array_equal(rnn.plotted()["gradient"]["x"], np.arange(151))


@pytest.mark.parametrize(("values", "message"), [
    (dict(steps=301), "steps must be an integer in 1..300 on this dashboard, got 301"),
    (dict(cell="elman"), "unknown cell 'elman'"),
    (dict(hidden=48), "unknown hidden '48' (valid: 16, 32)"),
    (dict(forget_bias=9.0), "forget_bias must be a number in -3.0..6.0 on this dashboard, got 9.0"),
    (dict(seed=-1), f"seed must be an integer in 0..{vglab.models.jacobians.MAX_SEED}, got -1"),
])
def test_impossible_settings_are_shown_and_the_next_valid_one_recovers(rnn, values, message):
    rnn.set(cell="vanilla", steps=25, seed=0)
    updates, shown = rnn.updates, rnn.plotted()["gradient"]["mean"].copy()
    rnn.set(**values)
    assert rnn.error_message.startswith(message), rnn.error_message
    assert rnn.error.layout.display == "block" and 'data-error="1"' in rnn.status.value
    np.testing.assert_array_equal(rnn.plotted()["gradient"]["mean"], shown)  # the last good plot stays
    rnn.set(seed=0, steps=26)
    assert rnn.error_message == "" and rnn.error.layout.display == "none" and rnn.updates == updates + 1


def test_an_exception_in_draw_is_shown_and_the_dashboard_keeps_working(rnn, monkeypatch):
    original = rnn.draw
    monkeypatch.setattr(rnn, "draw", lambda view: 1 / 0)
    rnn.set(steps=33)
    assert rnn.error_message == "ZeroDivisionError: division by zero"
    monkeypatch.setattr(rnn, "draw", original)
    rnn.set(steps=34)
    assert rnn.error_message == "" and rnn.plotted()["gradient"]["x"][-1] == 34


@pytest.mark.parametrize("setting", [dict(cell="lstm", forget_bias=2.5, seed=3),
                                     dict(cell="vanilla", activation="sigmoid", spectral_radius=1.6),
                                     dict(cell="vanilla", activation="linear", spectral_radius=1.1)])
def test_code_recomputes_the_plotted_numbers(rnn, setting):
    rnn.set(steps=45, **{"seed": 0, "activation": "tanh", **setting})
    namespace = {}
    exec(rnn.code, namespace)
    assert namespace["net"] == rnn.result.net
    np.testing.assert_array_equal(namespace["result"].log10_activation_grad,
                                  rnn.result.norms.log10_activation_grad)
    for name in ("theory", "bound"):
        if rnn.plotted()["gradient"][name] is not None:
            np.testing.assert_allclose(namespace[name], rnn.plotted()["gradient"][name], rtol=1e-12)
    rnn.set(seed=0, activation="tanh")


def test_recurrent_controls_status_and_pins(rnn, tmp_path):
    assert {"vglab-dashboard", "vglab-recurrent-dashboard"} <= set(rnn.widget._dom_classes)
    for name in ("cell", "steps", "hidden", "activation", "spectral-radius", "forget-bias", "seed"):
        control = rnn.controls[name.replace("-", "_")]
        assert f"vglab-control-{name}" in control._dom_classes
    assert [o for o in rnn.controls["cell"].options] == ["vanilla", "lstm", "gru"]
    rnn.set(cell="lstm", steps=12, forget_bias=1.5)
    for attribute in ('data-cell="lstm"', 'data-steps="12"', 'data-forget-bias="1.5"',
                      f'data-update="{rnn.updates}"'):
        assert attribute in rnn.status.value
    rnn.pin()
    assert len(rnn.plots["gradient"].pins) == 1
    rnn.clear_pins()
    assert rnn.plots["gradient"].pins == []
    assert open(rnn.save(tmp_path / "rnn.png"), "rb").read(4) == b"\x89PNG"


# --------------------------------------------------------------------------------------------- transformer
def transformer_net(**fields):
    return vglab.Transformer(**{"width": 32, "heads": 4, **fields})


def test_depth_changes_redraw_the_same_artists_with_the_engines_numbers(stack):
    figure, line = stack.figure, stack.plots["gradient"].mean_line
    n_artists = [len(ax.get_children()) for ax in figure.axes]
    for depth in (1, 20, 7):
        stack.set(depth=depth)
        assert stack.figure is figure and stack.plots["gradient"].mean_line is line
        net = transformer_net(depth=depth)
        norms = engine(net)
        shown = stack.plotted()
        np.testing.assert_array_equal(shown["gradient"]["x"], np.arange(depth + 1))
        np.testing.assert_allclose(shown["gradient"]["mean"], norms.log10_activation_grad.mean(axis=0),
                                   rtol=1e-12)
        tokens = [transformer.parameters(net, seed).tokens.astype(np.float64) for seed in (0, 1)]
        rms0 = np.mean([0.5 * np.log10(np.mean(x**2)) for x in tokens])
        np.testing.assert_allclose(shown["activations"]["mean"],
                                   np.concatenate([[rms0], norms.log10_activation_rms.mean(axis=0)]),
                                   rtol=1e-6)
    assert [len(ax.get_children()) for ax in figure.axes] == n_artists


def test_norm_dropdown_labels_values_and_status(stack):
    assert list(stack.controls["norm"].options) == [("none", "none"), ("pre-LN", "pre"), ("post-LN", "post")]
    for value in ("post", "none", "pre"):
        stack.set(norm=value, depth=5)
        assert f'data-norm="{value}"' in stack.status.value
        assert stack.result.net.norm == (None if value == "none" else value)
    stack.set(norm="batch")
    assert stack.error_message.startswith("unknown norm 'batch'")
    stack.set(norm="pre")
    assert stack.error_message == ""


def test_without_residuals_the_gradient_vanishes_block_by_block(stack):
    stack.set(depth=20, residual=True, norm="pre")
    pre = stack.result.norms.log10_gradient_ratio
    stack.set(residual=False, norm="none")
    plain = stack.result.norms.log10_gradient_ratio
    assert np.all(np.abs(pre) < 1.5) and np.all(plain < -3), (pre, plain)
    assert "no residual, no LayerNorm" in stack.status.value
    stack.set(residual=True, norm="pre")


def test_depth_changes_never_compile_after_the_first_update_of_a_setting(stack):
    stack.set(depth=3, residual=True, norm="pre")
    before, programs = COUNTER.count, transformer.compiled_programs()
    for depth in (1, 16, 17, 20, 2, 11):  # across the engine's capacity buckets 16 / 128
        stack.set(depth=depth)
    assert COUNTER.count == before and transformer.compiled_programs() == programs


def test_transformer_code_recomputes_the_plot(stack):
    stack.set(depth=9, norm="post", seed=2)
    namespace = {}
    exec(stack.code, namespace)
    np.testing.assert_array_equal(namespace["result"].log10_activation_grad,
                                  stack.result.norms.log10_activation_grad)
    assert "vglab.Transformer(depth=9, width=32, heads=4, norm='post')" in stack.code
    stack.set(norm="pre", seed=0)


def test_transformer_constructor_errors_name_the_bound():
    with pytest.raises(ValueError, match=r"depth must be an integer in 1..20 \(max_depth\), got 21"):
        TransformerDashboard(depth=21, **TRANSFORMER_SMALL)
    with pytest.raises(ValueError, match="every width must be divisible by heads=4, got 30"):
        TransformerDashboard(depth=2, width=32, widths=(30, 32), n_seeds=2, max_depth=20)
    with pytest.raises(ValueError, match="unknown control 'dept'; did you mean 'depth'?"):
        TransformerDashboard(depth=2, controls=("dept",), **TRANSFORMER_SMALL)
    with pytest.raises(ValueError, match=r"steps must be an integer in 1..300 \(max_steps\), got 400"):
        RecurrentDashboard(steps=400, **RNN_SMALL)


def test_every_frame_of_a_cell_switch_and_a_steps_drag_equals_a_full_redraw(monkeypatch):
    # Switching vanilla ↔ LSTM empties and refills the cell-state panel (its note and legend come and go);
    # blitted frames must still be exactly the figure drawn from scratch.
    d = RecurrentDashboard(steps=100, warm_up=False, **RNN_SMALL)
    live_ipympl_canvas(d, monkeypatch)
    for values in (dict(steps=99), dict(cell="lstm"), dict(steps=98), dict(steps=97), dict(cell="vanilla"),
                   dict(steps=96), dict(steps=95)):
        change(d, **values)
        assert d.plotted()["gradient"]["x"][-1] == d.state["steps"]
        assert_frame_is_the_full_redraw(d)
    assert d.frames["blit"] >= 2
    d.close()
