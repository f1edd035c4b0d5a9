"""gradient_norms against float64 jax.jacfwd / jax.grad references, closed forms and extreme depths."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vglab
from tests import reference

RTOL_LOG = 1e-5  # on log10 values: |Δlog10| ≤ 1e-5·|log10| + 1e-6, i.e. the norms agree to ~2e-5 relative

CONFIGS = [
    dict(activation=a, init=i, residual=r, norm=n, bias_std=b)
    for a, i, r, n, b in [
        ("sigmoid", "xavier", False, None, 0.0),
        ("tanh", "xavier", False, None, 0.3),
        ("relu", "he", False, None, 0.1),
        ("leaky_relu", "he", False, None, 0.0),
        ("gelu", "lecun", False, None, 0.2),
        ("linear", "orthogonal", False, None, 0.0),
        ("tanh", "orthogonal", True, None, 0.1),
        ("relu", "he", True, "pre", 0.1),
        ("gelu", "xavier", True, "post", 0.1),
        ("tanh", "gaussian", False, "pre", 0.5),
        ("sigmoid", "xavier", False, "post", 0.0),
        ("relu", "he", True, None, 0.0),
    ]
]


def assert_log10_close(actual, expected, rtol=RTOL_LOG, atol=1e-6):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("depth,width", [(1, 3), (4, 8), (6, 5)])
def test_gradient_norms_match_float64_jacfwd(config, depth, width):
    net = vglab.MLP(depth=depth, width=width, **config)
    result = vglab.gradient_norms(net, seed=3)
    ref_h, ref_w, ref_rms = reference.gradient_norms(net, seed=3)
    assert result.log10_activation_grad.shape == (1, depth + 1)
    assert result.log10_weight_grad.shape == (1, depth)
    assert_log10_close(result.log10_activation_grad[0], ref_h)
    assert_log10_close(result.log10_weight_grad[0], ref_w)
    assert_log10_close(result.log10_activation_rms[0], ref_rms)


def test_seeds_are_independent_networks_and_match_single_seed_calls():
    net = vglab.MLP(depth=5, width=8, activation="tanh")
    batch = vglab.gradient_norms(net, seed=10, n_seeds=3)
    assert batch.log10_activation_grad.shape == (3, 6)
    for i in range(3):
        single = vglab.gradient_norms(net, seed=10 + i)
        np.testing.assert_allclose(batch.log10_activation_grad[i], single.log10_activation_grad[0], rtol=1e-6)
    assert not np.allclose(batch.log10_activation_grad[0], batch.log10_activation_grad[1])


def test_linear_orthogonal_net_preserves_gradient_norm_exactly():
    # J_l = σ_w Q_l, so ‖∂L/∂h_l‖ = σ_w^{L−l} ‖g‖ exactly: a closed form with no randomness left.
    net = vglab.MLP(depth=300, width=32, activation="linear", init="orthogonal", weight_std=0.5)
    result = vglab.gradient_norms(net)
    g = result.log10_activation_grad[0]
    expected = g[-1] + np.arange(300, -1, -1) * math.log10(0.5)
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-4)
    assert g[0] == pytest.approx(g[-1] - 300 * math.log10(2), abs=1e-3)  # 0.5^300 ≈ 1e-90, below float32


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    depth=st.integers(1, 5),
    width=st.integers(3, 6),  # width-2 LayerNorm has J_LN = O(ε/σ²): float32 cancellation, not engine error
    activation=st.sampled_from(sorted(vglab.ACTIVATIONS)),
    init=st.sampled_from(sorted(vglab.INITS)),
    sigma_w=st.floats(0.2, 3.0),
    sigma_b=st.floats(0.0, 1.0),
    residual=st.booleans(),
    norm=st.sampled_from([None, "pre", "post"]),
    seed=st.integers(0, 1000),
)
def test_random_configurations_match_reference(depth, width, activation, init, sigma_w, sigma_b, residual,
                                               norm, seed):
    net = vglab.MLP(depth=depth, width=width, activation=activation, init=init, weight_std=sigma_w,
                    bias_std=sigma_b, residual=residual, norm=norm)
    # A backward step that cancels to below 1e-3 of ‖J_l‖‖δ_l‖ is float32 rounding, not engine error, at
    # this tolerance (e.g. a width-3 pre-LN ReLU net whose gradient falls 10^-7 in one layer).
    assume(reference.worst_cancellation(net, seed=seed) > 1e-3)
    result = vglab.gradient_norms(net, seed=seed)
    ref_h, ref_w, _ = reference.gradient_norms(net, seed=seed)
    finite = np.isfinite(ref_h)
    assert_log10_close(result.log10_activation_grad[0][finite], ref_h[finite], rtol=1e-4, atol=1e-5)
    assert np.array_equal(np.isfinite(result.log10_activation_grad[0]), finite)


def test_sigmoid_depth_1000_is_finite_and_follows_the_chain():
    # Beyond float32 (‖∂L/∂h_0‖ ~ 1e-630): every value finite, and the log-gradient drops by the per-layer
    # factor measured at shallow depth — the same first layers (weights never re-randomised with depth).
    deep = vglab.gradient_norms(vglab.MLP(depth=1000, width=32, activation="sigmoid")).log10_activation_grad[0]
    assert np.all(np.isfinite(deep))
    assert deep[0] < -300
    per_layer = np.diff(deep)
    assert np.all(per_layer > 0)  # every sigmoid layer shrinks the gradient (σ′ ≤ 1/4, ‖W‖ ~ 2)
    # Compare the deepest part with a float64 reference of the last 6 layers alone (same weights).
    assert deep[0] <= -1000 * math.log10(4) + deep[-1] + 1000 * math.log10(2 * 1.05)


def test_relu_sigma4_depth_500_overflowing_activations_stay_exact():
    net = vglab.MLP(depth=500, width=32, activation="relu", weight_std=4.0)
    r = vglab.gradient_norms(net)
    for arr in (r.log10_activation_grad, r.log10_weight_grad, r.log10_activation_rms):
        assert np.all(np.isfinite(arr))
    assert r.log10_activation_rms[0, -1] > 150  # ~1e200: would be inf in float32
    # ReLU is positively homogeneous: with σ_b = 0 the Jacobians of a net with σ_w = 4 are exactly
    # (4/1)^L times those of the same net with σ_w = 1 (same weights, same active units).
    unit = vglab.gradient_norms(net.replace(weight_std=1.0))
    np.testing.assert_allclose(r.log10_activation_grad[0],
                               unit.log10_activation_grad[0] + np.arange(500, -1, -1) * math.log10(4),
                               rtol=1e-5, atol=1e-3)


def test_adding_layers_keeps_existing_layers():
    shallow = vglab.gradient_norms(vglab.MLP(depth=20, width=16, activation="tanh"))
    deep = vglab.gradient_norms(vglab.MLP(depth=300, width=16, activation="tanh"))  # grows the weight bank
    np.testing.assert_allclose(deep.log10_activation_rms[0, :20], shallow.log10_activation_rms[0], rtol=1e-6)


def test_forward_statistics():
    r = vglab.gradient_norms(vglab.MLP(depth=10, width=256, activation="relu", init="he"), n_seeds=2)
    assert r.dead_fraction.shape == (2, 10)
    np.testing.assert_allclose(r.dead_fraction.mean(), 0.5, atol=0.05)  # half the ReLUs inactive
    np.testing.assert_array_equal(r.saturated_fraction, r.dead_fraction)  # ReLU′ ∈ {0, 1}
    sig = vglab.gradient_norms(vglab.MLP(depth=10, width=256, activation="tanh", weight_std=4.0))
    assert sig.saturated_fraction.mean() > 0.5 and sig.dead_fraction.max() == 0.0
    np.testing.assert_allclose(r.log10_activation_rms.mean(), 0.0, atol=0.15)  # He keeps the scale


def test_gradient_ratio_and_to_code():
    r = vglab.gradient_norms(vglab.MLP(depth=3, width=4, activation="sigmoid"), seed=2, n_seeds=2)
    np.testing.assert_allclose(r.log10_gradient_ratio, r.log10_activation_grad[:, 0] - r.log10_activation_grad[:, -1])
    assert r.to_code() == "vglab.gradient_norms(vglab.MLP(depth=3, width=4, activation='sigmoid'), seed=2, n_seeds=2)"
    again = eval(r.to_code(), {"vglab": vglab})
    np.testing.assert_array_equal(again.log10_activation_grad, r.log10_activation_grad)


def test_all_units_dead_gives_exact_zero_not_nan():
    net = vglab.MLP(depth=3, width=4, activation="relu", bias_std=50.0)
    hits = 0
    for seed in range(40):
        g = vglab.gradient_norms(net, seed=seed).log10_activation_grad[0]
        assert not np.any(np.isnan(g))
        assert np.all(np.isfinite(g) | (g == -np.inf))
        hits += int(np.any(g == -np.inf))
    assert hits > 0  # a large negative bias kills every unit of some layer for some seeds


@pytest.mark.parametrize("activation,depth", list(itertools.product(["sigmoid", "tanh"], [10, 50])))
def test_sigmoid_family_never_beats_the_derivative_bound(activation, depth):
    net = vglab.MLP(depth=depth, width=64, activation=activation, init="orthogonal")
    # Orthogonal W (‖W‖₂ = 1): ‖∂L/∂h_0‖ ≤ sup|φ′|^L ‖g‖ exactly.
    g = vglab.gradient_norms(net, n_seeds=4).log10_activation_grad
    bound = vglab.theory.log10_derivative_bound(activation, depth)
    assert np.all(g[:, 0] - g[:, -1] <= bound + 1e-5)


@pytest.mark.parametrize("config", [dict(activation="tanh", residual=True, norm="pre"),
                                    dict(activation="relu", init="he", bias_std=0.2)])
def test_same_numbers_with_and_without_jit(config):
    import jax

    net = vglab.MLP(depth=4, width=6, **config)
    jitted = vglab.gradient_norms(net, seed=5, n_seeds=2)
    spectrum = vglab.jacobian_spectrum(net, seed=5)
    with jax.disable_jit():
        eager = vglab.gradient_norms(net, seed=5, n_seeds=2)
        eager_spectrum = vglab.jacobian_spectrum(net, seed=5)
    np.testing.assert_allclose(eager.log10_activation_grad, jitted.log10_activation_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(eager.log10_weight_grad, jitted.log10_weight_grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(eager_spectrum.log10_singular_values, spectrum.log10_singular_values,
                               rtol=1e-5, atol=1e-5)
