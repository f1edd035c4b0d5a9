"""The mean-field overlay compares like with like (issue 13, section 2).

Mean-field theory predicts E‖δ_l‖² (δ_l = ∂L/∂h_l) at infinite width; what a finite-width net typically shows
is exp E log ‖δ_l‖², lower by Jensen's inequality.  The variance of log ‖δ_l‖² over random draws grows roughly
like c·(L − l)/n (Hanin 2018; Hanin & Nica 2019: c = 5 for ReLU at He scale), so

    typical − theory ≈ −c L /(4 n ln10) decades (of the norm),     and its seed-to-seed spread is
    s(L, n) = √(c L/n) / (2 ln10) decades per seed.

The dashboards draw √(mean over seeds of ‖δ_l‖²) next to the typical curve and start the theory from the same
quantity at the output.  ‖δ‖² is roughly log-normal with σ² = c L/n (natural log), so the mean of k seeds has
relative variance (e^{σ²} − 1)/k and its log a standard deviation √ln(1 + (e^{σ²} − 1)/k) (Fenton 1960),
≈ σ/√k for small σ².  The tolerance of every comparison below is three of those, in decades of the norm:

    TOL(L, n, k) = 0.03 + 3 √ln(1 + (e^{σ²} − 1)/k) / (2 ln10),   σ² = c L/n,  c = 5,

which tightens as the width grows.  The lessons' defaults are read from the notebooks' own constructors.
"""

import math

import numpy as np
import pytest

import vglab
from tests.notebook_replay import build
from vglab import theory
from vglab.models.jacobians import log10_root_mean_square

C_HANIN = 5.0
LN10 = math.log(10.0)


def spread(depth, width):
    """s(L, n): the per-seed standard deviation of log10 ‖δ_0‖ (decades) at depth L, width n."""
    return math.sqrt(C_HANIN * depth / width) / (2.0 * LN10)


def tol(depth, width, n_seeds):
    """TOL(L, n, k) of the module docstring (log-normal mean of k seeds, three standard deviations)."""
    variance = C_HANIN * depth / width
    # ln(1 + (e^{σ²} − 1)/k) without overflow: logaddexp(0, ln(e^{σ²} − 1) − ln k)
    log_excess = variance + math.log(-math.expm1(-variance)) - math.log(n_seeds)
    return 0.03 + 3.0 * math.sqrt(float(np.logaddexp(0.0, log_excess))) / (2.0 * LN10)


def jensen_gap(depth, width):
    """Expected typical − theory (decades, ≤ 0): half the variance of ln ‖δ‖², in log10 of the norm."""
    return -C_HANIN * depth / (4.0 * width * LN10)


# ------------------------------------------------------------------------------------------ the numerics
def test_log10_root_mean_square_is_half_log10_of_the_mean_square():
    rng = np.random.default_rng(0)
    values = rng.uniform(-30, 30, size=(7, 11))
    expected = 0.5 * np.log10(np.mean(10.0 ** (2.0 * values), axis=0))
    np.testing.assert_allclose(log10_root_mean_square(values, axis=0), expected, rtol=0, atol=1e-12)


def test_log10_root_mean_square_stays_in_log_space_at_1e_minus_600():
    """10^-600 underflows float64; the log-sum-exp keeps it: ½ log10((10^-1200 + 10^-1202)/2)."""
    out = log10_root_mean_square(np.array([-600.0, -601.0]))
    assert out == pytest.approx(-600.0 + 0.5 * math.log10((1.0 + 0.01) / 2.0), abs=1e-12)


def test_log10_root_mean_square_counts_exact_zeros_as_zero_and_all_zero_as_minus_inf():
    values = np.array([[0.0, -np.inf], [-np.inf, -np.inf]])
    out = log10_root_mean_square(values, axis=1)
    assert out[0] == pytest.approx(0.5 * math.log10(0.5), abs=1e-12)
    assert np.isneginf(out[1])


def test_the_mean_square_is_never_below_the_typical_value():
    """Jensen: log of a mean ≥ mean of logs, seed by seed of the engine's own result."""
    result = vglab.gradient_norms(vglab.MLP(depth=40, width=32, activation="relu", init="he"), n_seeds=8)
    assert np.all(result.log10_rms_activation_grad >= result.log10_typical_activation_grad - 1e-12)
    assert np.allclose(result.log10_typical_activation_grad, result.log10_activation_grad.mean(axis=0))


# ------------------------------------------------------------------------------------------ lesson defaults
# (notebook, the network its dashboard starts on, seeds used at widths 64 / 256 / 1024)
LESSON_DEFAULTS = {
    "00_start_here": vglab.MLP(depth=20, width=64, activation="tanh"),
    "01_chain_rule": vglab.MLP(depth=6, width=64, activation="tanh"),
    "02_saturating_activations": vglab.MLP(depth=10, width=64, activation="sigmoid"),
    "03_initialization": vglab.MLP(depth=50, width=64, activation="tanh"),
    "04_relu_family": vglab.MLP(depth=50, width=64, activation="relu", init="he"),
    "05_residual_connections": vglab.MLP(depth=100, width=64, activation="tanh"),
}
SEEDS = {64: 16, 256: 8, 1024: 4}


def test_the_lesson_defaults_here_are_the_notebooks_own():
    for stem, net in LESSON_DEFAULTS.items():
        dash = build(stem, replay=False, warm_up=False)
        try:
            assert dash.network() == net, stem
        finally:
            dash.close()


def _compare(net, width):
    net = net.replace(width=width)
    k = SEEDS[width]
    result = vglab.gradient_norms(net, seed=0, n_seeds=k)
    rms, typical = result.log10_rms_activation_grad, result.log10_typical_activation_grad
    predicted = theory.predicted_log10_grad(net, log10_output_grad=rms[-1])
    return rms, typical, predicted, k


def _width_cases():
    for stem, net in LESSON_DEFAULTS.items():
        for width in (64, 256, 1024):
            if width == 1024 and net.depth > 64:
                continue  # 4 seeds of 100 layers at width 1024 need 4 GiB of weights
            marks = [pytest.mark.slow] if width == 1024 else []
            yield pytest.param(stem, width, marks=marks, id=f"{stem}-width{width}")


@pytest.mark.parametrize(("stem", "width"), list(_width_cases()))
def test_theory_agrees_with_the_root_mean_square_within_a_tolerance_that_tightens_with_width(stem, width):
    """At the lesson's default depth and activation, √(mean over seeds of ‖δ_l‖²) matches the mean-field
    √E‖δ_l‖² at every layer within TOL(L, n, k), and the typical curve lies below by about the Jensen gap."""
    net = LESSON_DEFAULTS[stem]
    rms, typical, predicted, k = _compare(net, width)
    allowed = tol(net.depth, width, k)
    assert np.max(np.abs(rms - predicted)) <= allowed, (rms - predicted)[[0, -2]]
    gap = typical[0] - predicted[0]
    assert abs(gap - jensen_gap(net.depth, width)) <= allowed + abs(jensen_gap(net.depth, width)), gap


def test_the_tolerance_tightens_with_width():
    for net in LESSON_DEFAULTS.values():
        assert tol(net.depth, 1024, 4) < tol(net.depth, 256, 8) < tol(net.depth, 64, 16)


@pytest.mark.slow
def test_the_typical_gap_closes_as_the_width_grows_at_a_fixed_depth():
    """tanh at the edge of chaos, 200 layers: typical − theory shrinks from width 64 to 256 to 512, while
    the root mean square stays on the theory."""
    net = vglab.MLP(depth=200, width=64, activation="tanh")
    gaps = []
    for width, k in ((64, 8), (256, 4), (512, 2)):
        result = vglab.gradient_norms(net.replace(width=width), n_seeds=k)
        predicted = theory.predicted_log10_grad(net.replace(width=width), result.log10_rms_activation_grad[-1])
        gaps.append(result.log10_typical_activation_grad[0] - predicted[0])
        assert abs(result.log10_rms_activation_grad[0] - predicted[0]) <= tol(200, width, k)
        allowed = tol(200, width, k) + abs(jensen_gap(200, width))
        assert abs(gaps[-1] - jensen_gap(200, width)) <= allowed, gaps
    assert gaps[0] < gaps[1] and gaps[0] < gaps[2], gaps
    assert gaps[0] < -0.5  # the gap a student sees at the default width is large: worth explaining


# ------------------------------------------------------------------------------------------ the dashboards
THEORY_DASHBOARDS = ["00_start_here", "01_chain_rule", "02_saturating_activations", "03_initialization",
                     "04_relu_family", "05_residual_connections", "07_exploding_gradients_and_clipping",
                     "10_training_dynamics"]


@pytest.mark.parametrize("stem", THEORY_DASHBOARDS)
def test_each_lesson_dashboard_draws_the_theory_beside_the_quantity_it_predicts(stem):
    """The gradient panel at the notebook's own constructor state: the root-mean-square curve is the engine's
    log10_rms_activation_grad, the theory starts from its output value and agrees with it within
    TOL(L, n, k); the legend names the typical curve, the root mean square and the theory."""
    dash = build(stem, replay=False, warm_up=False)
    try:
        net, k = dash.network(), dash.state["n_seeds"]
        shown = dash.plotted()["gradient"]
        rms = dash.result.norms.log10_rms_activation_grad
        np.testing.assert_array_equal(shown["rms"], rms)
        np.testing.assert_allclose(shown["mean"], dash.result.norms.log10_typical_activation_grad, atol=1e-12)
        assert shown["theory"][-1] == pytest.approx(rms[-1], abs=1e-9)
        assert np.max(np.abs(shown["theory"] - rms)) <= tol(net.depth, net.width, k)
        labels = [text.get_text() for text in dash.plots["gradient"].legend.get_texts()]
        assert any("typical" in label for label in labels), labels
        assert any("√mean" in label for label in labels), labels
        assert any("mean-field" in label and "width → ∞" in label for label in labels), labels
        assert "log10_rms_activation_grad" in dash.code
    finally:
        dash.close()
