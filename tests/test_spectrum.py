"""jacobian_spectrum against float64 jax.jacfwd SVDs and closed forms."""

import math

import numpy as np
import pytest

import vglab
from tests import reference


@pytest.mark.parametrize("config", [
    dict(activation="tanh", init="xavier"),
    dict(activation="relu", init="he", bias_std=0.1),
    dict(activation="sigmoid", init="orthogonal"),
    dict(activation="gelu", init="gaussian", weight_std=1.5, residual=True, norm="pre"),
    dict(activation="tanh", init="xavier", norm="post"),
    dict(activation="leaky_relu", init="he", residual=True, norm="post", bias_std=0.2),
], ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("depth,width", [(1, 4), (4, 8), (6, 6)])
def test_spectrum_matches_float64_svd_of_jacfwd(config, depth, width):
    net = vglab.MLP(depth=depth, width=width, **config)
    spectrum = vglab.jacobian_spectrum(net, seed=1)
    J = reference.jacobian(net, seed=1)
    with np.errstate(divide="ignore"):
        expected = np.log10(np.linalg.svd(J, compute_uv=False))
    if not np.isfinite(expected[0]):  # every unit of some layer dead: the Jacobian is exactly zero
        assert np.all(spectrum.log10_singular_values == -np.inf)
        return
    # Below 1e-12·σ_max the float64 reference shows only its own roundoff (of an exact zero from dead ReLUs
    # or LayerNorm's mean, or of a product of ε-sized LayerNorm directions): there the engine's values must be
    # below that resolution too.  Exact zeros are counted by the structural tests below.
    unresolved = expected < expected[0] - 12
    assert np.all(spectrum.log10_singular_values[unresolved] < expected[0] - 11)
    expected, spectrum_values = expected[~unresolved], spectrum.log10_singular_values[~unresolved]
    # A float32 backward-stable step per layer gives σ_i to 1e-5 relative plus an absolute part of order
    # eps32·σ_max (visible only for σ_i far below σ_max, e.g. LayerNorm's ε-sized direction).
    eps32 = np.finfo(np.float32).eps
    allowed = 1e-5 * np.abs(expected) + 2e-6 + 30 * depth * eps32 * 10 ** (expected[0] - expected) / np.log(10)
    assert np.all(np.abs(spectrum_values - expected) <= allowed)
    with np.errstate(divide="ignore"):
        partial = [np.log10(np.linalg.norm(reference.jacobian(net, seed=1, start=l))) for l in range(depth)]
    np.testing.assert_allclose(spectrum.log10_partial_norms, partial, rtol=1e-5, atol=2e-6)


def test_orthogonal_linear_chain_is_an_exact_isometry_times_sigma_w():
    net = vglab.MLP(depth=400, width=16, activation="linear", init="orthogonal", weight_std=0.25)
    s = vglab.jacobian_spectrum(net)
    np.testing.assert_allclose(s.log10_singular_values, 400 * math.log10(0.25), atol=1e-3)  # 1e-240
    np.testing.assert_allclose(s.log10_partial_norms,
                               np.arange(400, 0, -1) * math.log10(0.25) + 0.5 * math.log10(16), atol=1e-3)


def test_deep_graded_spectrum_matches_high_precision_product():
    # Depth 60 sigmoid spans 40 orders of magnitude between σ_max and σ_min: beyond float64 too (a float64
    # product resolves only σ ≥ 1e-16·σ_max).  Reference: the float64 layer Jacobians multiplied and
    # decomposed in 50-digit arithmetic (mpmath).
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    net = vglab.MLP(depth=60, width=6, activation="sigmoid", weight_std=2.0)
    s = vglab.jacobian_spectrum(net, seed=4)
    product = mpmath.eye(6)
    for J_l in reference.all_layer_jacobians(net, seed=4):
        product = mpmath.matrix(J_l.tolist()) * product
    expected = sorted((float(mpmath.log10(v)) for v in mpmath.svd_r(product, compute_uv=False)), reverse=True)
    assert expected[0] - expected[-1] > 20
    np.testing.assert_allclose(s.log10_singular_values, expected, rtol=1e-5, atol=1e-4)


def test_graded_resolver_on_a_known_spectrum_spanning_2000_decades():
    from vglab.core.logspace import graded_log_singular_values

    rng = np.random.default_rng(0)
    log_d = rng.permutation(np.linspace(0.0, -4600.0, 12))  # e^-4600 ≈ 1e-2000
    Q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    # diag(e^d)·Q has exactly the singular values e^d (Q orthogonal).
    np.testing.assert_allclose(graded_log_singular_values(log_d, Q), np.sort(log_d)[::-1], rtol=1e-10, atol=1e-8)


def test_depth_1000_sigmoid_spectrum_is_finite():
    s = vglab.jacobian_spectrum(vglab.MLP(depth=1000, width=16, activation="sigmoid"))
    assert np.all(np.isfinite(s.log10_singular_values)) and np.all(np.isfinite(s.log10_partial_norms))
    assert s.log10_singular_values[0] < -300
    assert np.all(np.diff(s.log10_singular_values) <= 1e-9)  # descending


def test_top_singular_value_bounds_gradient_and_partial_norm_matches_gradients_on_average():
    net = vglab.MLP(depth=8, width=64, activation="tanh")
    s = vglab.jacobian_spectrum(net, seed=2)
    g = vglab.gradient_norms(net, seed=2).log10_activation_grad[0]
    assert g[0] - g[-1] <= s.log10_singular_values[0] + 1e-6  # ‖Jᵀg‖ ≤ σ_max ‖g‖


@pytest.mark.parametrize("seed", range(4))
def test_dead_relus_give_exactly_zero_singular_values(seed):
    # Rank-deficient chain: σ = 0 exactly (−inf), as many as the float64 reference's numerical rank says.
    net = vglab.MLP(depth=3, width=8, activation="relu", init="he", bias_std=0.5)
    s = vglab.jacobian_spectrum(net, seed=seed)
    sv = np.linalg.svd(reference.jacobian(net, seed=seed), compute_uv=False)
    rank = int(np.sum(sv > 1e-12 * sv[0]))
    assert rank < 8
    assert np.sum(np.isneginf(s.log10_singular_values)) == 8 - rank
    np.testing.assert_allclose(s.log10_singular_values[:rank], np.log10(sv[:rank]), rtol=1e-5, atol=1e-5)


def test_saturated_tanh_units_are_resolved_not_lost_in_roundoff():
    # σ_w = 6 saturates most tanh units (φ′ down to ~1e-30): the small singular values are real and must
    # match a high-precision reference instead of sitting at float32 roundoff (~1e-7·σ_max).
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    net = vglab.MLP(depth=3, width=6, activation="tanh", weight_std=6.0)
    s = vglab.jacobian_spectrum(net, seed=2)
    product = mpmath.eye(6)
    for J_l in reference.all_layer_jacobians(net, seed=2):
        product = mpmath.matrix(J_l.tolist()) * product
    expected = sorted((float(mpmath.log10(v)) for v in mpmath.svd_r(product, compute_uv=False)), reverse=True)
    assert expected[0] - expected[-1] > 8  # beyond what a float32 product can resolve
    np.testing.assert_allclose(s.log10_singular_values, expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_layernorm_removes_the_mean_exactly_one_zero_singular_value(norm):
    # LN(x + c·1) = LN(x): the chain through a LayerNorm has rank n − 1, so exactly one σ = 0.
    net = vglab.MLP(depth=5, width=8, activation="tanh", norm=norm)
    values = vglab.jacobian_spectrum(net, seed=3).log10_singular_values
    assert np.sum(np.isneginf(values)) == 1
    assert np.all(np.isfinite(values[:-1]))
