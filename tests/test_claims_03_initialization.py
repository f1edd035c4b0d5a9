"""Every claim notebook 03 makes about what the engine and its dashboard show, as a test (sentences quoted).

Tolerances for measured-vs-theory comparisons are tests.test_theory_overlay.tol (three standard deviations of
the log of a k-seed mean of a log-normal ‖δ‖² with σ² = 5L/n).
"""

import math

import numpy as np
import pytest

import vglab
from tests.notebook_replay import build, markdown
from tests.test_theory_overlay import tol
from vglab import theory

STEM = "03_initialization"
M = vglab.MLP


@pytest.fixture(scope="module")
def text():
    return markdown(STEM)


def test_relu_chi1_is_half_sigma_w_squared_and_he_gives_exactly_one(text):
    """"**ReLU**: $\\mathbb E[\\varphi'^2] = 1/2$, so $\\chi_1 = \\sigma_w^2/2$ and **He** … gives $\\chi_1 = 1$
    exactly" (to 1e-12, at σ_w = 0.5, 1, √2, 1.5)."""
    assert "so $\\chi_1 = \\sigma_w^2/2$" in text
    for sigma_w in (0.5, 1.0, math.sqrt(2.0), 1.5):
        assert theory.chi1("relu", sigma_w) == pytest.approx(sigma_w**2 / 2, abs=1e-12)


def test_tanh_xavier_sits_on_the_edge_of_chaos(text):
    """"**tanh** with $\\sigma_b = 0$: … $q^* = 0$ for $\\sigma_w \\le 1$, so **Xavier** … sits on the edge
    $\\chi_1 = 1$." (q* = 0 at σ_w = 0.8, ≤ 1e-12 at 1; χ₁ = 1 and the critical σ_w = 1, to 1e-6)"""
    assert "sits on the edge" in text
    assert theory.q_star("tanh", 0.8) == 0.0 and theory.q_star("tanh", 1.0) <= 1e-12  # q_l → 0 like 1/l there
    assert theory.chi1("tanh", 1.0) == pytest.approx(1.0, abs=1e-9)
    assert theory.critical_sigma_w("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)


def test_the_squared_norm_changes_by_e_every_xi_layers_the_norm_every_two_xi(text):
    """"the *squared* norm changes by a factor $e$ every $\\xi = 1/|\\log \\chi_1|$ layers, the norm itself every
    $2\\xi$ layers" — ReLU, Xavier (χ₁ = 1/2, ξ = 1/ln 2), depth 50, width 64, 16 seeds: the root mean square
    over seeds loses L/(2ξ) natural-log units of the norm, within TOL."""
    assert "the norm\nitself every $2\\xi$ layers" in text
    xi = theory.depth_scale("relu", 1.0)
    assert xi == pytest.approx(1 / math.log(2.0), rel=1e-12)
    rms = vglab.gradient_norms(M(depth=50, width=64, activation="relu"), seed=0, n_seeds=16).log10_rms_activation_grad
    assert rms[0] - rms[-1] == pytest.approx(-50 / (2 * xi) / math.log(10), abs=tol(50, 64, 16))


def test_halves_every_two_layers_and_50_layers_lose_ten_to_the_7_5(text):
    """"With ReLU and Xavier, $\\chi_1 = 1/2$: the gradient norm halves every two layers, so 50 layers lose
    $0.5^{25} \\approx 10^{-7.5}$" — the root mean square over 16 seeds, within TOL(50, 64, 16)."""
    assert "the gradient norm halves every two layers" in text
    assert 25 * math.log10(0.5) == pytest.approx(-7.5, abs=0.05)
    rms = vglab.gradient_norms(M(depth=50, width=64, activation="relu"), seed=0, n_seeds=16).log10_rms_activation_grad
    assert rms[0] - rms[-1] == pytest.approx(25 * math.log10(0.5), abs=tol(50, 64, 16))


def test_the_typical_relu_xavier_value_is_about_ten_to_the_8_3_below_the_prediction(text):
    """"for ReLU with Xavier about $10^{-8.3}$, below the prediction" (the notebook's 4 seeds: −8.3 ± 0.1)."""
    assert "about $10^{-8.3}$, below the prediction" in text
    lost = vglab.gradient_norms(M(depth=50, width=64, activation="relu"), seed=0, n_seeds=4).log10_gradient_ratio
    assert lost.mean() == pytest.approx(-8.3, abs=0.1)
    assert lost.mean() < 25 * math.log10(0.5)


def test_the_edge_moves_to_larger_sigma_w_with_a_bias(text):
    """Try-this 2: "Set $\\sigma_b = 0.3$: the edge moves to larger $\\sigma_w$." (critical σ_w 1.3–1.5)"""
    assert "the edge moves to larger $\\sigma_w$" in text
    assert 1.3 <= theory.critical_sigma_w("tanh", 0.3) <= 1.5


def test_orthogonal_weights_have_the_narrower_band(text):
    """"**Orthogonal** weights … the same $\\chi_1$, but no spread between directions"; try-this 4 asks which
    init has the narrower band: orthogonal's band at the input is under half of Gaussian's (tanh, σ_w = 1,
    depth 50, 4 seeds)."""
    assert "the same $\\chi_1$, but no spread between directions" in text
    bands = {}
    for init in ("gaussian", "orthogonal"):
        grads = vglab.gradient_norms(M(depth=50, width=64, init=init), seed=0, n_seeds=4).log10_activation_grad
        bands[init] = np.ptp(grads[:, 0])
    assert bands["orthogonal"] < 0.5 * bands["gaussian"]


@pytest.mark.slow
def test_depth_200_gap_is_about_0_6_at_width_64_and_0_2_at_256(text):
    """Try-this 5: "at width 64 the solid typical line ends about 0.6 decades below the dashed theory at the
    input. Set the width to 256: the gap shrinks to about 0.2." (0.45–0.8 and 0.1–0.3, the dashboard's 4 seeds)"""
    assert "ends about 0.6 decades below the dashed theory" in text
    dash = build(STEM, replay=False, warm_up=False)
    try:
        dash.set(activation="tanh", init="xavier", depth=200)
        shown = dash.plotted()["gradient"]
        assert 0.45 <= shown["theory"][0] - shown["mean"][0] <= 0.8
        dash.set(width=256)
        shown = dash.plotted()["gradient"]
        assert 0.1 <= shown["theory"][0] - shown["mean"][0] <= 0.3
    finally:
        dash.close()


def test_end_state_star_sits_in_the_chaotic_phase_and_the_theory_grows_to_the_input():
    """After Run All (the notebook's dash.set(tanh, xavier, σ_w = 1.5, σ_b = 0.3)): the star at (2.25, 0.09),
    χ₁ there > 1 (chaotic, red) and named in the title, and the mean-field curve rises towards the input, as
    the phase diagram says; the measured root mean square agrees with it within TOL(50, 64, 4)."""
    dash = build(STEM, warm_up=False)
    try:
        shown = dash.plotted()
        assert shown["phase"]["point"] == pytest.approx((2.25, 0.09))
        chi = theory.chi1("tanh", 1.5, 0.3)
        assert chi > 1.0
        assert f"χ₁ = {chi:.3g}" in dash.plots["phase"].ax.get_title()
        gradient = shown["gradient"]
        assert gradient["theory"][0] > gradient["theory"][-1] + 0.3
        assert np.max(np.abs(gradient["theory"] - gradient["rms"])) <= tol(50, 64, 4)
    finally:
        dash.close()
