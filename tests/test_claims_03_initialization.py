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


# ------------------------------------------------------------- width profiles: why the compromise exists
# ReLU, σ_w² = 2 for every mode, widths (1024, 768, 512, 384, 256), 8 seeds (the notebook's cell); ratios per unit.
WIDE = (1024, 768, 512, 384, 256)
RATIO_TOL = 0.12  # in ln of a ratio: ~2σ of an 8-seed estimate at n ≥ 256 (tests/test_width_profiles.py)


def _ratios(init):
    net = M(widths=WIDE, activation="relu", init=init, weight_std=math.sqrt(2.0))
    r = vglab.gradient_norms(net, seed=0, n_seeds=8)
    q = np.r_[1.0, np.mean(10.0 ** (2 * r.log10_activation_rms), axis=0)]
    d = np.mean(10.0 ** (2 * r.log10_activation_grad), axis=0) / np.array(WIDE)
    return q[1:] / q[:-1], d[:-1] / d[1:]


@pytest.fixture(scope="module")
def ratios():
    return {init: _ratios(init) for init in ("he_fan_in", "xavier", "he_fan_out")}


def test_on_square_layers_xavier_is_lecun_and_he_modes_agree(text):
    """"Then fan-in and fan-out are equal, so Xavier's … is LeCun's $1/\\text{fan}_\\text{in}$, and He's fan-in and
    fan-out modes are the same init." (square net: identical gradient norms bit for bit at equal σ_w)"""
    assert "is LeCun's $1/\\text{fan}_\\text{in}$, and He's\nfan-in and fan-out modes are the same init" in text
    square = dict(widths=(16,) * 6, activation="tanh", weight_std=1.0)
    xavier = vglab.gradient_norms(M(init="xavier", **square)).log10_activation_grad
    np.testing.assert_array_equal(vglab.gradient_norms(M(init="lecun", **square)).log10_activation_grad, xavier)
    he_in = vglab.gradient_norms(M(init="he_fan_in", **square)).log10_activation_grad
    np.testing.assert_array_equal(vglab.gradient_norms(M(init="he_fan_out", **square)).log10_activation_grad, he_in)


def test_a_width_profile_makes_them_differ(text):
    """"A **width profile**, `vglab.MLP(widths=(1024, 768, 512, 384, 256), ...)`, makes them differ." (every
    layer's gradient differs by more than 0.01 in log10 between fan-in, Xavier and fan-out)"""
    assert "makes them differ" in text and "widths=(1024, 768, 512, 384, 256)" in text
    grads = [vglab.gradient_norms(M(widths=WIDE, activation="relu", init=i, weight_std=math.sqrt(2.0)))
             .log10_activation_grad[0, :-1] for i in ("he_fan_in", "xavier", "he_fan_out")]
    assert np.all(np.abs(grads[0] - grads[1]) > 0.01) and np.all(np.abs(grads[1] - grads[2]) > 0.01)


def test_forward_and_backward_multipliers_are_n_in_over_f_and_n_out_over_f(text, ratios):
    """"multiplies - the forward signal per unit … by $n_{l-1}/f$; - the backward signal per unit … by $n_l/f$."
    (each mode's measured per-layer ratios against the closed forms, |ln| ≤ RATIO_TOL)"""
    assert "by $n_{l-1}/f$;" in text and "by $n_l/f$." in text
    n = np.array(WIDE, np.float64)
    for init, (forward, backward) in ratios.items():
        f = np.array([vglab.core.init.fan(init, a, b) for a, b in zip(WIDE[:-1], WIDE[1:])])
        np.testing.assert_allclose(np.log(forward), np.log(n[:-1] / f), atol=RATIO_TOL)
        np.testing.assert_allclose(np.log(backward), np.log(n[1:] / f), atol=RATIO_TOL)


def test_he_fan_in_keeps_activations_and_gradients_shrink(text, ratios):
    """"**He fan-in** ($f = n_{l-1}$) keeps the activations at constant size, and the gradient per unit shrinks by
    $n_l/n_{l-1}$ (×0.75 and ×0.67 here) at every layer." """
    assert "the gradient per unit shrinks by\n$n_l/n_{l-1}$ (×0.75 and ×0.67 here) at every layer" in text
    forward, backward = ratios["he_fan_in"]
    np.testing.assert_allclose(np.log(forward), 0.0, atol=RATIO_TOL)
    assert (round(768 / 1024, 2), round(512 / 768, 2)) == (0.75, 0.67)
    np.testing.assert_allclose(np.log(backward), np.log([0.75, 2 / 3, 0.75, 2 / 3]), atol=RATIO_TOL)
    assert np.all(backward < 1.0)


def test_he_fan_out_keeps_gradients_and_activations_grow(text, ratios):
    """"**He fan-out** ($f = n_l$) keeps the gradient and lets the activations grow by $n_{l-1}/n_l$ (×1.33 and
    ×1.5)." """
    assert "keeps the gradient and lets the\nactivations grow by $n_{l-1}/n_l$ (×1.33 and ×1.5)" in text
    forward, backward = ratios["he_fan_out"]
    np.testing.assert_allclose(np.log(backward), 0.0, atol=RATIO_TOL)
    assert (round(1024 / 768, 2), round(768 / 512, 2)) == (1.33, 1.5)
    np.testing.assert_allclose(np.log(forward), np.log([4 / 3, 1.5, 4 / 3, 1.5]), atol=RATIO_TOL)
    assert np.all(forward > 1.0)


def test_no_fan_keeps_both_unless_square(text):
    """"No fan keeps both unless $n_{l-1} = n_l$." (forward ratio n_in/f = 1 and backward n_out/f = 1 together
    force n_in = n_out = f; checked for every fan mode on every tapering layer)"""
    assert "No fan keeps both unless $n_{l-1} = n_l$." in text
    for init in ("he_fan_in", "he_fan_out", "xavier", "lecun"):
        for a, b in zip(WIDE[:-1], WIDE[1:]):
            f = vglab.core.init.fan(init, a, b)
            assert max(abs(math.log(a / f)), abs(math.log(b / f))) > 0.1


def test_xavier_is_the_compromise(text, ratios):
    """"**Xavier**'s average fan … is the compromise: the activations grow less than with fan-out (×1.14 and ×1.2)
    and the gradients shrink less than with fan-in (×0.86 and ×0.8)." """
    assert "the activations grow less than with fan-out (×1.14 and ×1.2)" in text
    assert "gradients shrink less than with fan-in (×0.86 and ×0.8)" in text
    forward, backward = ratios["xavier"]
    assert (round(1024 / 896, 2), round(768 / 640, 2), round(768 / 896, 2), round(512 / 640, 2)) == \
        (1.14, 1.2, 0.86, 0.8)
    np.testing.assert_allclose(np.log(forward), np.log([1024 / 896, 1.2, 1024 / 896, 1.2]), atol=RATIO_TOL)
    np.testing.assert_allclose(np.log(backward), np.log([768 / 896, 0.8, 768 / 896, 0.8]), atol=RATIO_TOL)
    assert np.all((forward > 1.0) & (forward < ratios["he_fan_out"][0]))
    assert np.all((backward < 1.0) & (backward > ratios["he_fan_in"][1]))


def test_only_the_fan_differs(text):
    """"All three use $\\sigma_w^2 = 2$ here, so only the fan differs." (the cell's nets: same σ_w, same draws)"""
    assert "All three use $\\sigma_w^2 = 2$ here, so only the fan\ndiffers." in text
    nets = [M(widths=WIDE, activation="relu", init=i, weight_std=2**0.5) for i in ("he_fan_in", "xavier", "he_fan_out")]
    assert len({n.sigma_w for n in nets}) == 1 and len({n.replace(init="lecun") for n in nets}) == 1


# ------------------------------------------------------------- symmetry breaking: the constant init
SYM = M(widths=(16, 12, 12, 12, 8), activation="tanh", init="constant", bias_std=0.1)


def test_constant_init_weights_are_all_the_same(text):
    """"With `init="constant"` every weight of a layer is the same, $W_l = (\\sigma_w/n_{l-1})\\,\\mathbf 1\\mathbf
    1^\\top$ and $b_l = \\sigma_b \\mathbf 1$, so every unit of a layer computes the same function of its input."
    (vglab.mlp_blocks-style draw: Ŵ = 1, scale σ_w/n_in; every unit's RMS equals the layer's: checked via the
    float64 reference of tests/test_width_profiles.py on the notebook's net)"""
    assert "every weight of a layer is the same" in text
    assert np.all(np.asarray(vglab.core.init.unit_weight_rect(0, 0, 12, 16, constant=True)) == 1.0)
    assert np.all(np.asarray(vglab.core.init.unit_bias_const(0, 0, 12, constant=True)) == 1.0)
    from tests.test_width_profiles import reference

    ref_h, _, _ = reference(SYM, 0)
    np.testing.assert_allclose(vglab.gradient_norms(SYM, seed=0).log10_activation_grad[0], ref_h, atol=2e-6)


def test_unit_spread_is_zero_but_in_the_last_layer_and_of_order_one_with_xavier(text):
    """"With the constant init it is 0 in every layer but the last, whose units meet different output weights
    $g_i$; with Xavier's random weights it is of order one everywhere." (≤ 1e-6; last layer > 0.5; Xavier
    0.5–2, the largest a spread can be being 2)"""
    assert "it is 0 in every layer but the last" in text and "of order one everywhere" in text
    spread = vglab.gradient_norms(SYM, seed=0).unit_spread[0]
    assert np.all(spread[:-1] <= 1e-6) and spread[-1] > 0.5
    xavier = vglab.gradient_norms(SYM.replace(init="xavier"), seed=0).unit_spread[0]
    assert np.all((xavier > 0.5) & (xavier <= 2.0))


def test_training_cannot_separate_the_units(text):
    """"after 30 Adam steps on the digits the rows of $W_1, W_2, W_3$ are still exactly equal (the largest
    difference printed is 0.0), while the rows of $W_4$, next to the random readout, have moved apart." and
    "one unit in each of the layers 1 to $L-1$" (W_2..W_4 read identical units: their columns are equal too)."""
    assert "are still exactly\nequal (the largest difference printed is 0.0)" in text
    assert "have moved\napart" in text and "one unit in each of the layers 1 to $L-1$" in text
    square = M(depth=4, width=16, activation="tanh", init="constant", bias_std=0.1)
    W = np.asarray(vglab.train(square, "digits", steps=30, optimizer="adam", learning_rate=0.01,
                               batch_size=32).final_parameters.weights)
    assert all(np.ptp(W[l], axis=0).max() == 0.0 for l in range(3))
    assert np.ptp(W[3], axis=0).max() > 0.1
    assert all(np.ptp(W[l], axis=1).max() <= 1e-6 for l in range(1, 4))
    assert np.max(np.abs(W[:3] - 1.0 / 16)) > 1e-3  # they did train
