"""Every claim notebook 00 makes about what the engine and its dashboard show, as a test.

Each test quotes the sentence it checks; tolerances are stated in the test.  The dashboard is the notebook's
own: ``tests.notebook_replay`` runs its constructor and its ``dash.set(…)`` calls in order.
"""

import math

import numpy as np
import pytest

import vglab
from tests.notebook_replay import build, markdown
from vglab import theory

STEM = "00_start_here"


@pytest.fixture(scope="module")
def text():
    return markdown(STEM)


@pytest.fixture(scope="module")
def start():
    """The dashboard as its constructor leaves it (tanh, Xavier, depth 20, 4 seeds)."""
    dash = build(STEM, replay=False, warm_up=False)
    yield dash
    dash.close()


@pytest.fixture(scope="module")
def end():
    """The dashboard after Run All: constructor, then every dash.set(...) of the notebook."""
    dash = build(STEM, warm_up=False)
    yield dash
    dash.close()


def test_ten_layers_that_each_shrink_by_four_shrink_by_a_million(text):
    """"If each one shrinks it by a factor 4, ten layers shrink it by $4^{10} \\approx 10^6$"."""
    assert "ten layers shrink it by $4^{10} \\approx 10^6$" in text
    assert math.log10(4.0**10) == pytest.approx(6.0, abs=0.05)


def test_the_output_gradient_is_about_ten_to_the_0_9(text):
    """"The last column is the output gradient $\\|g\\| \\approx \\sqrt{64} = 8$, about $10^{0.9}$." (±0.05)"""
    assert "about $10^{0.9}$" in text
    result = vglab.gradient_norms(vglab.MLP(depth=20, width=64, activation="tanh"), seed=0, n_seeds=4)
    assert result.log10_activation_grad[:, -1].mean() == pytest.approx(math.log10(8.0), abs=0.05)


def test_even_ten_to_the_minus_600_is_a_number():
    """"It works in log space, so even $10^{-600}$ is a number, not an underflow to 0." (sigmoid, depth 1000)"""
    result = vglab.gradient_norms(vglab.MLP(depth=1000, width=64, activation="sigmoid"), seed=0)
    assert np.all(np.isfinite(result.log10_activation_grad))
    assert result.log10_gradient_ratio[0] < -600


def test_solid_line_and_band_are_the_typical_gradient_over_4_seeds(start, text):
    """"**Solid line and band**: the *typical* gradient — the mean over 4 random networks (seeds) of
    $\\log_{10}\\|\\partial L/\\partial h_l\\|$ — and the min–max band over them." (to 1e-12)"""
    assert "the mean over 4 random networks (seeds)" in text
    norms = start.result.norms
    assert norms.n_seeds == 4
    np.testing.assert_allclose(start.plotted()["gradient"]["mean"], norms.log10_activation_grad.mean(axis=0),
                               atol=1e-12)


def test_dash_dot_line_is_the_root_mean_square_over_the_seeds(start):
    """"**Dash-dot line**: the *root mean square* over the seeds, $\\tfrac12\\log_{10}$ of the mean of
    $\\|\\partial L/\\partial h_l\\|^2$." (float64 reference, to 1e-9)"""
    values = start.result.norms.log10_activation_grad
    reference = 0.5 * np.log10(np.mean(10.0 ** (2.0 * values), axis=0))
    np.testing.assert_allclose(start.plotted()["gradient"]["rms"], reference, atol=1e-9)


def test_dashed_black_is_the_theory_of_the_root_mean_square_started_at_the_output(start):
    """"**Dashed black**: the mean-field prediction (notebook 03) of that same quantity, … started from the
    measured value at the output." (exactly theory.predicted_log10_grad, to 1e-9)"""
    shown = start.plotted()["gradient"]
    expected = theory.predicted_log10_grad(start.network(), shown["rms"][-1])
    np.testing.assert_allclose(shown["theory"], expected, atol=1e-9)


def test_tanh_he_depth_100_theory_ends_about_a_decade_above_the_typical_line(text):
    """Try-this 5: "**tanh** with **he** at depth 100: the dashed theory ends about a decade above the solid
    typical line at the input. The dash-dot root mean square lies between them" (a decade: 0.7–1.5)."""
    assert "ends about a decade above the solid typical line" in text
    dash = build(STEM, replay=False, warm_up=False)
    try:
        dash.set(activation="tanh", init="he", depth=100)
        shown = dash.plotted()["gradient"]
        assert 0.7 <= shown["theory"][0] - shown["mean"][0] <= 1.5
        assert shown["mean"][0] < shown["rms"][0] < shown["theory"][0]
    finally:
        dash.close()


def test_dotted_red_bound_is_drawn_where_it_decays(start, end, text):
    """"**Dotted red**: $\\sup|\\varphi'|^{L-l}\\,\\|g\\|$ where it decays (sigmoid): the bound for weights that do
    not amplify, $\\|W_l\\|_2 \\le 1$". Drawn for sigmoid (0.25^(L−l) from the measured root-mean-square output
    value, to 1e-9), absent for tanh (sup|φ′| = 1); the legend says when it is a bound."""
    assert "the bound for weights that do not\n  amplify" in text
    assert end.plots["gradient"].references["bound"].get_label().endswith(r"(bound if $\|W\|_2 \leq 1$)")
    assert start.plotted()["gradient"]["bound"] is None
    shown = end.plotted()["gradient"]
    L = end.network().depth
    expected = shown["rms"][-1] + (L - np.arange(L + 1)) * math.log10(0.25)
    np.testing.assert_allclose(shown["bound"], expected, atol=1e-9)


def test_the_status_line_says_how_many_decades_the_gradient_lost(end):
    """"**Status line**: the update counter, how many decades the gradient lost from output to input"."""
    lost = end.result.norms.log10_gradient_ratio.mean()
    assert f"10^{lost:.1f}" in end.status.value


def test_sigmoid_loses_about_0_6_decades_per_layer(text):
    """Try-this 2: "Switch to **sigmoid**. Read off how many decades the gradient loses per layer (about 0.6: a
    factor of 4)." (0.55–0.68 decades per layer at depth 30; log10 4 = 0.60)"""
    assert "about 0.6: a factor of 4" in text
    result = vglab.gradient_norms(vglab.MLP(depth=30, width=64, activation="sigmoid"), seed=0, n_seeds=4)
    assert 0.55 <= -result.log10_gradient_ratio.mean() / 30 <= 0.68


def test_end_state_shows_a_gradient_vanishing_towards_the_input(end):
    """After Run All the dashboard shows sigmoid at depth 30: the lesson's picture of a line that "falls
    towards the left", 17–20 decades from output to input, monotonically (every layer loses ≥ 0.3 decades)."""
    assert end.state["activation"] == "sigmoid" and end.state["depth"] == 30
    mean = end.plotted()["gradient"]["mean"]
    assert -20 <= mean[0] - mean[-1] <= -17
    assert np.all(np.diff(mean) > 0.3)
