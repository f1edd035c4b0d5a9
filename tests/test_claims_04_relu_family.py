"""Every claim notebook 04 makes about what the engine and its dashboard show, as a test (sentences quoted).

Inactive: φ′(z) = 0 for one input (``GradientNorms.dead_fraction``, per seed's input).  Dead: inactive for every
input of a batch (``vglab.unit_activity``).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from tests.notebook_replay import build, markdown
from tests.test_theory_overlay import tol
from vglab import theory
from vglab.core.activations import ACTIVATIONS

STEM = "04_relu_family"
M = vglab.MLP
HE = M(depth=50, width=64, activation="relu", init="he")


@pytest.fixture(scope="module")
def text():
    return markdown(STEM)


@pytest.fixture(scope="module")
def activity():
    return vglab.unit_activity(HE, seed=0, batch=256)


def test_unit_activity_for_one_input_is_the_engines_per_input_fraction():
    """The batch measure agrees with the engine: its first input is gradient_norms' input (exactly)."""
    one = vglab.unit_activity(HE, seed=3, batch=1)
    engine = vglab.gradient_norms(HE, seed=3)
    np.testing.assert_array_equal(one.inactive_fraction, engine.dead_fraction[0])
    np.testing.assert_array_equal(one.dead_fraction, engine.dead_fraction[0])
    with pytest.raises(ValueError, match="batch must be an integer in 1..1024, got 0"):
        vglab.unit_activity(HE, batch=0)


def test_relu_derivative_is_exactly_one_on_the_active_side(text):
    """"Through an active unit the gradient passes unchanged" — ReLU′ = 1 exactly for z > 0, 0 for z < 0."""
    assert "Through an active unit the gradient passes unchanged" in text
    z = jnp.array([-3.0, -1e-6, 1e-6, 7.0])
    assert np.asarray(ACTIVATIONS["relu"].dphi(z, 0.0)).tolist() == [0.0, 0.0, 1.0, 1.0]


def test_he_compensates_the_halving_exactly(text):
    """"With He initialisation ($\\sigma_w^2 = 2$) the halving by inactive units is compensated exactly:
    $\\chi_1 = \\sigma_w^2/2 = 1$" (to 1e-12)."""
    assert "is compensated exactly" in text
    assert theory.chi1("relu", np.sqrt(2.0)) == pytest.approx(1.0, abs=1e-12)


def test_about_half_of_the_units_are_inactive_for_any_one_input(text, activity):
    """"At He initialisation about half of the units are inactive for any one input" (mean over layers and 256
    inputs 0.45–0.55; a single layer of one network ranges 0.41–0.71, its share fixed mostly by its weights
    once the inputs align, which is why the dashboard averages seeds)."""
    assert "about half of the units are inactive for any one input" in text
    assert 0.45 <= activity.inactive_fraction.mean() <= 0.55


def test_almost_no_unit_is_dead_in_the_first_layers_and_half_are_in_layers_41_to_50(text, activity):
    """"In the first layers almost no unit is dead; deeper, … about half of the units of layers 41–50 are dead
    for the whole batch" (layers 1–5: ≤ 5 %; layers 41–50: 40–60 %; batch of 256)."""
    assert "about half of the units of layers 41–50 are dead" in text
    assert activity.dead_fraction[:5].mean() <= 0.05
    assert 0.40 <= activity.dead_fraction[40:].mean() <= 0.60


def test_with_dominant_biases_units_are_inactive_for_every_input(text):
    """"a unit with a negative bias is then inactive for every input" (σ_w = 0.3, σ_b = 1, width 64: from
    layer 3 on, the dead share over 256 inputs is within 0.05 of the per-input inactive share)."""
    assert "a unit with a\nnegative bias is then inactive for every input" in text
    act = vglab.unit_activity(M(depth=50, width=64, activation="relu", weight_std=0.3, bias_std=1.0), batch=256)
    assert np.all(np.abs(act.dead_fraction[2:] - act.inactive_fraction[2:]) <= 0.05)


def test_an_all_inactive_layer_gives_an_exactly_zero_gradient_below_it(text):
    """"Then $J_l$ is exactly 0, and so is every gradient below it — not $10^{-40}$, but 0." (width 4,
    σ_w = 0.3, σ_b = 1, depth 60, 4 seeds: −inf at l = 0 exactly where some layer is all inactive; above the
    deepest such layer the gradient is finite)"""
    assert "not $10^{-40}$, but 0" in text
    result = vglab.gradient_norms(M(depth=60, width=4, activation="relu", weight_std=0.3, bias_std=1.0), n_seeds=4)
    zero = np.isneginf(result.log10_activation_grad[:, 0])
    all_inactive = (result.dead_fraction == 1.0).any(axis=1)
    assert zero.any() and np.array_equal(zero, all_inactive)
    for seed in np.flatnonzero(zero):
        deepest = np.flatnonzero(result.dead_fraction[seed] == 1.0).max()  # layer deepest + 1 (0-based index)
        assert np.all(np.isneginf(result.log10_activation_grad[seed, : deepest + 1]))
        assert np.all(np.isfinite(result.log10_activation_grad[seed, deepest + 1:]))


def test_leaky_relu_has_no_dead_unit_and_its_chi1(text):
    """"**Leaky ReLU** … $\\varphi'(z) \\in \\{a, 1\\}$: no unit is ever dead, and $\\chi_1 = \\sigma_w^2 (1 + a^2)/2$."
    (a = 0.1, He: no inactive unit for any of 256 inputs; χ₁ to 1e-12)"""
    assert "no unit is ever dead" in text
    act = vglab.unit_activity(M(depth=50, width=64, activation="leaky_relu", init="he", leaky_slope=0.1), batch=256)
    assert np.all(act.inactive_fraction == 0.0)
    for a in (0.1, 0.2, 0.5):
        assert theory.chi1("leaky_relu", np.sqrt(2.0), 0.0, a) == pytest.approx(1 + a * a, abs=1e-12)


def test_gelu_derivative_goes_from_0_through_half_to_about_1_13_and_back_to_1(text):
    """"$\\varphi'$ goes from 0 through $1/2$ at $z = 0$ to about $1.13$ and back to 1" (max 1.13 ± 0.005)."""
    assert "to about $1.13$ and back to 1" in text
    z = jnp.linspace(-10.0, 10.0, 20001)
    d = np.asarray(ACTIVATIONS["gelu"].dphi(z, 0.0))
    assert abs(d[0]) < 1e-6 and float(ACTIVATIONS["gelu"].dphi(jnp.array(0.0), 0.0)) == pytest.approx(0.5)
    assert d.max() == pytest.approx(1.13, abs=0.005) and d[-1] == pytest.approx(1.0, abs=1e-6)


def test_no_elu_unit_is_ever_dead(text):
    """"$\\varphi' = e^z > 0$ on the negative side: no ELU unit is ever dead" (ELU′ > 0 down to z = −1e4 in log
    space; no unit dead over 256 inputs at He, nor where σ_b = 3 pushes units far left)."""
    assert "no ELU unit is ever dead" in text
    log_abs, sign = ACTIVATIONS["elu"].log_dphi(jnp.array([-1e4, -200.0, -1.0, 0.5]), 0.0)
    assert np.all(np.asarray(sign) == 1.0) and np.all(np.isfinite(np.asarray(log_abs)))
    for kwargs in (dict(init="he"), dict(init="gaussian", weight_std=3.0, bias_std=3.0)):
        net = M(depth=50, width=64, activation="elu", **kwargs)
        assert vglab.unit_activity(net, seed=0, batch=256).dead_fraction.max() == 0.0


def test_silu_derivative_dips_crosses_zero_once_and_peaks_at_1_10(text):
    """"$\\varphi'$ dips to about $-0.10$ at $z \\approx -2.40$, is 0 only at $z \\approx -1.28$, and peaks at about
    $1.10$ at $z \\approx 2.40$" (to the stated digits, on a 1e-4 grid)."""
    assert "dips to about $-0.10$ at $z \\approx -2.40$, is 0 only" in text
    assert "peaks at about $1.10$ at $z \\approx 2.40$" in text
    z = np.linspace(-20.0, 20.0, 400_001)
    d = np.asarray(ACTIVATIONS["silu"].dphi(jnp.asarray(z), 0.0))
    assert d.min() == pytest.approx(-0.10, abs=0.005) and z[np.argmin(d)] == pytest.approx(-2.40, abs=0.005)
    assert d.max() == pytest.approx(1.10, abs=0.005) and z[np.argmax(d)] == pytest.approx(2.40, abs=0.005)
    crossings = z[:-1][np.diff(np.sign(d)) != 0]
    assert len(crossings) == 1 and crossings[0] == pytest.approx(-1.28, abs=0.005)


@pytest.fixture(scope="module")
def zoo_at_he():
    nets = {name: M(depth=50, width=64, activation=name, init="he") for name in ("elu", "silu")}
    runs = {name: vglab.gradient_norms(net, seed=0, n_seeds=4) for name, net in nets.items()}
    return {name: r.log10_activation_grad[:, 0] - r.log10_activation_grad[:, -1] for name, r in runs.items()}


def test_elu_at_he_has_chi1_1_and_ends_slightly_above(text, zoo_at_he):
    """"ELU grows the signal like ReLU on its positive side, $\\chi_1 = 1$, and over 50 layers (width 64, 4 seeds)
    the input gradient ends slightly *above* the output's, by 0.3 to 0.9 decades" (χ₁ to 1e-6; measured per
    seed 0.30, 0.64, 0.87, 0.88: each in [0.25, 0.95]; the stream's q grows without bound)."""
    assert "ends slightly *above* the output's, by 0.3 to 0.9 decades" in text and "$\\chi_1 = 1$, and over 50" in text
    assert theory.chi1("elu", np.sqrt(2.0)) == pytest.approx(1.0, abs=1e-6)
    assert theory.q_star("elu", np.sqrt(2.0)) == np.inf
    assert np.all((zoo_at_he["elu"] >= 0.25) & (zoo_at_he["elu"] <= 0.95)), zoo_at_he["elu"]


def test_silu_at_he_has_chi1_half_and_vanishes_about_7_decades(text, zoo_at_he):
    """"SiLU is about $z/2$ near 0, so the signal shrinks toward 0, where $\\varphi' = 1/2$:
    $\\chi_1 = \\sigma_w^2/4 = 1/2$, and the gradient vanishes by about 7 decades over 50 layers. GELU, also about
    $z/2$ near 0, has the same $\\chi_1 = 1/2$ at He." (q* = 0; χ₁ = 1/2 to 1e-9 for both; measured per seed
    −7.30, −7.19, −6.63, −7.33: mean within 7 ± 0.5, each within 7 ± 0.6; mean field −6.88.)"""
    assert "$\\chi_1 = \\sigma_w^2/4 = 1/2$, and the gradient vanishes by about 7 decades" in text
    assert "has the same $\\chi_1 = 1/2$ at He" in text
    for name in ("silu", "gelu"):
        assert theory.q_star(name, np.sqrt(2.0)) == 0.0
        assert theory.chi1(name, np.sqrt(2.0)) == pytest.approx(0.5, abs=1e-9)
    assert float(ACTIVATIONS["silu"].dphi(jnp.array(0.0), 0.0)) == 0.5
    silu = zoo_at_he["silu"]
    assert abs(silu.mean() + 7.0) <= 0.5 and np.all(np.abs(silu + 7.0) <= 0.6), silu
    predicted = theory.predicted_log10_grad(M(depth=50, width=64, activation="silu", init="he"), 0.0)
    assert abs(predicted[0] + 7.0) <= 0.5


@pytest.fixture(scope="module")
def end():
    dash = build(STEM, warm_up=False)
    yield dash
    dash.close()


def test_end_state_theory_flat_rms_within_0_2_typical_drops_0_6_half_inactive(end, text):
    """End state after Run All (relu, He, depth 50, width 64) and try-this 1: "the mean-field line is flat
    ($\\chi_1 = 1$) and the dash-dot root mean square stays within half a decade of it (four seeds are few),
    while the solid typical line drops about 0.6 decades over 50 layers … About 50 % of the units are inactive
    in every layer." (theory flat to 1e-9; RMS within 0.5, measured 0.41; typical drop 0.4–0.8; inactive panel,
    mean of 4 seeds, 0.4–0.6 in every layer)"""
    assert "stays within half a\n   decade of it" in text
    shown = end.plotted()
    g = shown["gradient"]
    assert np.max(np.abs(g["theory"] - g["theory"][-1])) <= 1e-9
    assert np.max(np.abs(g["rms"] - g["theory"])) <= 0.5
    assert -0.8 <= g["mean"][0] - g["mean"][-1] <= -0.4
    assert np.all((0.4 <= shown["dead"]["mean"]) & (shown["dead"]["mean"] <= 0.6))
    assert "inactive" in end.plots["dead"].ax.get_ylabel()


def test_at_width_256_the_typical_line_drops_about_0_3(text):
    """Try-this 1: "(set the width to 256: it drops about 0.3)" (0.15–0.45) and the RMS meets the theory
    within TOL(50, 256, 4)."""
    assert "set the width to 256: it drops about 0.3" in text
    dash = build(STEM, replay=False, warm_up=False)
    try:
        dash.set(width=256)
        g = dash.plotted()["gradient"]
        assert -0.45 <= g["mean"][0] - g["mean"][-1] <= -0.15
        assert np.max(np.abs(g["rms"] - g["theory"])) <= tol(50, 256, 4)
    finally:
        dash.close()


def test_dominant_biases_make_the_inactive_share_vary_and_width_4_gives_exact_zeros(text):
    """Try-this 2: "Raise $\\sigma_b$ to 1 and lower $\\sigma_w$ to 0.3: the inactive fraction varies from layer
    to layer and the gradient decays. Now set the width to 4: in some seeds a whole layer is inactive and the
    gradient below it is exactly 0 (▼)." (std over layers > 0.02; decay > 5 decades; ▼ shown at width 4)"""
    assert "in some seeds a whole layer is inactive" in text
    dash = build(STEM, replay=False, warm_up=False)
    try:
        dash.set(sigma_b=1.0, sigma_w=0.3)
        shown = dash.plotted()
        assert np.std(shown["dead"]["mean"]) > 0.02
        assert shown["gradient"]["mean"][0] - shown["gradient"]["mean"][-1] < -5
        dash.set(width=4)
        assert dash.plotted()["gradient"]["zeros_at"].size > 0
    finally:
        dash.close()


def test_leaky_slope_from_0_to_0_5_removes_the_inactive_units(text):
    """Try-this 3: "move the slope from 0 to 0.5: does the inactive fraction drop?" — at slope 0 leaky ReLU is
    ReLU (about half inactive), at any slope > 0 none is (exactly 0)."""
    assert "does the inactive fraction drop" in text
    dash = build(STEM, replay=False, warm_up=False)
    try:
        dash.set(activation="leaky_relu", leaky_slope=0.0)
        assert 0.4 <= dash.plotted()["dead"]["mean"].mean() <= 0.6
        dash.set(leaky_slope=0.5)
        assert np.all(dash.plotted()["dead"]["mean"] == 0.0)
    finally:
        dash.close()
