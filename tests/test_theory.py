"""Mean-field theory: closed forms, and agreement with measurement on wide random nets."""

import math

import numpy as np
import pytest

import vglab
from vglab import theory


def test_closed_forms():
    assert theory.chi1("relu", math.sqrt(2.0)) == pytest.approx(1.0, rel=1e-12)  # He init is critical
    assert theory.chi1("linear", 0.5) == pytest.approx(0.25)
    assert theory.chi1("leaky_relu", 1.0, leaky_slope=0.5) == pytest.approx(0.625)
    assert theory.q_star("tanh", 1.0, 0.0) < 1e-12  # critical point at σ_b = 0: q* = 0
    assert theory.chi1("tanh", 1.0, 0.0) == pytest.approx(1.0, abs=1e-12)
    assert theory.q_star("relu", 2.0) == math.inf
    assert theory.q_star("relu", 1.0, 0.5) == pytest.approx(0.25 / (1 - 0.5))  # σ_b²/(1 − σ_w²/2)
    assert theory.critical_sigma_w("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)  # Poole et al. 2016
    assert theory.critical_sigma_w("relu", 0.3) == pytest.approx(math.sqrt(2.0), rel=1e-9)
    assert 10 ** theory.log10_derivative_bound("sigmoid", 10) == pytest.approx(0.25**10, rel=1e-12)
    assert 10 ** theory.log10_derivative_bound("sigmoid", 50) == pytest.approx(0.25**50, rel=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu"])
@pytest.mark.parametrize("q", [0.01, 0.1, 1.0, 7.0, 100.0, 1e4, 1e8])
def test_gaussian_expectations_against_adaptive_quadrature(activation, q):
    from scipy import integrate

    def expect(f):
        # In u-space, E[f(√q u)²] = ∫ f(√q u)² N(u) du, split where √q·u = ±1, ±40 (kinks of saturation).
        sd = math.sqrt(q)
        density = lambda u: math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)  # noqa: E731
        cuts = sorted({-40 / sd, -1 / sd, 0.0, 1 / sd, 40 / sd})
        edges = [-np.inf, *[c for c in cuts if -12 < c < 12], np.inf]
        return sum(integrate.quad(lambda u: f(sd * u) ** 2 * density(u), a, b, limit=500, epsabs=0,
                                  epsrel=1e-12)[0] for a, b in zip(edges[:-1], edges[1:], strict=True))

    phi = lambda x: float(theory._phi_np(activation, np.float64(x), 0.0))  # noqa: E731
    dphi = lambda x: float(theory._dphi_np(activation, np.float64(x), 0.0))  # noqa: E731
    assert theory.mean_square_activation(activation, q) == pytest.approx(expect(phi), rel=1e-8)
    assert theory.mean_square_derivative(activation, q) == pytest.approx(expect(dphi), rel=1e-8, abs=1e-300)


@pytest.mark.parametrize("activation,sigma_w,sigma_b", [
    ("tanh", 1.3, 0.0), ("tanh", 1.05, 0.0), ("tanh", 2.5, 0.4), ("sigmoid", 3.0, 0.2), ("gelu", 1.0, 0.3),
    ("gelu", 1.6, 0.0), ("tanh", 0.7, 0.1),
])
def test_q_star_is_the_limit_of_the_length_map(activation, sigma_w, sigma_b):
    # Reference: iterate q ← σ_w² E[φ(√q u)²] + σ_b² from q0 = 1 until it stops moving (Poole et al. 2016).
    q = 1.0
    for _ in range(200_000):
        q_next = theory.length_map(q, activation, sigma_w, sigma_b)
        if q_next > 1e12:  # diverges
            q_next = math.inf
            break
        if abs(q_next - q) <= 1e-14 * q:
            break
        q = q_next
    assert theory.q_star(activation, sigma_w, sigma_b) == pytest.approx(q_next, rel=1e-8)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "gelu", "relu", "leaky_relu", "linear"])
@pytest.mark.parametrize("q", [0.01, 1.0, 30.0])
def test_mean_activation_against_quadrature(activation, q):
    from scipy import integrate
    phi = lambda u: float(theory._phi_np(activation, np.float64(math.sqrt(q) * u), 0.01))  # noqa: E731
    density = lambda u: math.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)  # noqa: E731
    expected = sum(integrate.quad(lambda u: phi(u) * density(u), a, b, epsabs=1e-13, epsrel=1e-12)[0]
                   for a, b in [(-np.inf, 0.0), (0.0, np.inf)])
    assert theory.mean_activation(activation, q) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_tanh_edge_of_chaos_matches_schoenholz():
    # Schoenholz et al. 2017, Fig. 1: for tanh with σ_b² = 0.05 the critical σ_w² is ≈ 1.76.
    sw = theory.critical_sigma_w("tanh", sigma_b=math.sqrt(0.05))
    assert sw**2 == pytest.approx(1.76, abs=0.03)
    assert theory.chi1("tanh", sw, math.sqrt(0.05)) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("activation,sigma_w,sigma_b", [
    ("tanh", 1.0, 0.05), ("tanh", 1.5, 0.2), ("tanh", 0.8, 0.0), ("relu", math.sqrt(2), 0.0),
    ("relu", 1.2, 0.1), ("sigmoid", 4.0, 0.0), ("gelu", 1.4, 0.1),
])
def test_measured_decay_agrees_with_mean_field_for_wide_nets(activation, sigma_w, sigma_b):
    # Each layer multiplies ‖δ‖² by χ times a fluctuation of relative size ~√(2/n), which random-walks in the
    # log over the depth, plus an O(1/n) finite-width bias per layer.  Allow 4 standard errors of the seed
    # mean and a bias of 2/n decades per layer.
    depth, width, n_seeds = 20, 1024, 6
    net = vglab.MLP(depth=depth, width=width, activation=activation, weight_std=sigma_w, bias_std=sigma_b)
    runs = vglab.gradient_norms(net, n_seeds=n_seeds).log10_activation_grad
    measured = runs.mean(axis=0)
    standard_error = runs.std(axis=0, ddof=1) / np.sqrt(n_seeds)
    predicted = theory.predicted_log10_grad(net, log10_output_grad=measured[-1])
    allowed = 4 * standard_error + 2.0 * (depth - np.arange(depth + 1)) / width + 1e-3
    assert np.all(np.abs(measured - predicted) <= allowed)
    assert abs(predicted[0] - predicted[-1]) > 0.05 or activation == "relu" or abs(sigma_w - 1.0) < 1e-9


def test_residual_theory_matches_measurement():
    net = vglab.MLP(depth=40, width=512, activation="tanh", residual=True, residual_scale=0.5)
    measured = np.mean(vglab.gradient_norms(net, n_seeds=4).log10_activation_grad, axis=0)
    predicted = theory.predicted_log10_grad(net, measured[-1])
    assert np.max(np.abs(measured - predicted)) < 0.1
    assert theory.predicted_log10_grad(net.replace(norm="pre")) is None


@pytest.mark.parametrize("activation,sigma_w,sigma_b,alpha,width", [
    ("relu", math.sqrt(2.0), 0.0, 1.0, 512), ("relu", 1.0, 0.1, 0.5, 256), ("leaky_relu", 1.0, 0.0, 1.0, 128),
    ("gelu", 1.2, 0.0, 1.0, 512), ("sigmoid", 1.0, 0.0, 1.0, 256),
])
def test_residual_theory_with_a_drifting_mean_matches_measurement(activation, sigma_w, sigma_b, alpha, width):
    # E[φ] > 0: the stream drifts along the all-ones direction and grows faster than the gradient recursion
    # 1 + α²χ; the rank-one part Q_L/(n Q_l) then carries ∂L/∂h_l.  Without it ReLU (σ_w = √2, α = 1,
    # width 512) would be predicted 15 decades of growth over 100 layers where 21.7 are measured.
    net = vglab.MLP(depth=100, width=width, activation=activation, weight_std=sigma_w, bias_std=sigma_b,
                    residual=True, residual_scale=alpha)
    runs = vglab.gradient_norms(net, n_seeds=4).log10_activation_grad
    relative = runs - runs[:, -1:]
    measured = 0.5 * np.log10(np.mean(10.0 ** (2 * relative), axis=0))  # log10 √E‖∂L/∂h_l‖² / ‖g‖
    predicted = theory.predicted_log10_grad(net, 0.0)
    # Seed-to-seed spread of the growth is ~0.1-0.3 decades at these sizes; allow 3% of the growth + 0.25.
    assert np.all(np.abs(measured - predicted) <= 0.03 * np.abs(measured) + 0.25)


def test_theory_stays_finite_where_the_stream_leaves_float64():
    # Residual ReLU with σ_w = 2 grows its stream ~10^0.6 per layer: E[h²] passes 1e308 near depth 500.
    deep = theory.predicted_log10_grad(vglab.MLP(depth=10_000, width=256, activation="relu", weight_std=2.0,
                                                 residual=True))
    assert np.all(np.isfinite(deep)) and deep[0] > 1000
    assert np.all(np.diff(deep) < 0)  # the gradient grows toward the input at every layer


def test_chi1_grid_marks_the_phase():
    grid = theory.chi1_grid("tanh", np.array([0.5, 1.0, 4.0]), np.array([0.0, 0.05]))
    assert grid.shape == (2, 3)
    assert grid[0, 0] < 1 < grid[0, 2]


def test_the_profile_cache_keeps_none_profiles_and_drops_the_least_recently_used():
    """cached_mean_field_profile caches a LayerNorm net's None profile (a dashboard asks again on every update and
    must not recompute), returns the very object it cached, and keeps at most MAX_CACHED_PROFILES networks,
    dropping the least recently used first."""
    layer_norm_net = vglab.MLP(depth=3, width=8, norm="pre", activation="relu", init="he")
    assert not theory.mean_field_profile_is_cached(layer_norm_net)
    assert theory.cached_mean_field_profile(layer_norm_net) is None
    assert theory.mean_field_profile_is_cached(layer_norm_net)
    first = vglab.MLP(depth=2, width=8, activation="relu", init="he", bias_std=0.0)
    profile = theory.cached_mean_field_profile(first)
    assert profile is not None and theory.cached_mean_field_profile(first) is profile
    others = [vglab.MLP(depth=2, width=8, activation="relu", init="he", bias_std=0.001 * (k + 1))
              for k in range(theory.MAX_CACHED_PROFILES)]
    theory.cached_mean_field_profile(others[0])
    theory.cached_mean_field_profile(first)  # used again: now the most recent
    for net in others[1:]:
        theory.cached_mean_field_profile(net)
    assert theory.mean_field_profile_is_cached(first)  # 128 entries: first and others[1:]
    assert not theory.mean_field_profile_is_cached(others[0])  # the least recently used, dropped
    assert not theory.mean_field_profile_is_cached(layer_norm_net)
