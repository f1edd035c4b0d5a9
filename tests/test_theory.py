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
    assert theory.q_star("tanh", 1.0, 0.0) < 1e-3  # ordered phase: q → 0 (slowly, at the critical point)
    assert theory.chi1("tanh", 1.0, 0.0) == pytest.approx(1.0, abs=1e-3)
    assert theory.q_star("relu", 2.0) == math.inf
    assert 10 ** theory.log10_derivative_bound("sigmoid", 10) == pytest.approx(0.25**10, rel=1e-12)
    assert 10 ** theory.log10_derivative_bound("sigmoid", 50) == pytest.approx(0.25**50, rel=1e-12)


def test_gaussian_expectations_against_quadrature_by_scipy():
    from scipy import integrate

    for act in ["tanh", "sigmoid", "gelu"]:
        for q in [0.1, 1.0, 7.0]:
            pdf = lambda u: math.exp(-u * u / 2) / math.sqrt(2 * math.pi)  # noqa: E731
            f = lambda u: theory._phi_np(act, math.sqrt(q) * u, 0.0) ** 2 * pdf(u)  # noqa: E731
            expected, _ = integrate.quad(f, -40, 40, limit=200)
            assert theory.mean_square_activation(act, q) == pytest.approx(expected, rel=1e-9)


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
    net = vglab.MLP(depth=30, width=512, activation=activation, weight_std=sigma_w, bias_std=sigma_b)
    r = vglab.gradient_norms(net, n_seeds=4)
    # Mean of log-norms vs log of the RMS prediction: finite width gives O(1/n) per layer (≈6% over 30
    # layers at n = 512); we allow 0.06 decades over 30 layers in the average per-layer slope.
    measured = np.mean(r.log10_activation_grad, axis=0)
    predicted = theory.predicted_log10_grad(net, log10_output_grad=measured[-1])
    assert np.max(np.abs(measured - predicted)) < 0.08 + 0.01 * net.depth * 0.1


def test_residual_theory_matches_measurement():
    net = vglab.MLP(depth=40, width=512, activation="tanh", residual=True, residual_scale=0.5)
    measured = np.mean(vglab.gradient_norms(net, n_seeds=4).log10_activation_grad, axis=0)
    predicted = theory.predicted_log10_grad(net, measured[-1])
    assert np.max(np.abs(measured - predicted)) < 0.1
    assert theory.predicted_log10_grad(net.replace(norm="pre")) is None


def test_chi1_grid_marks_the_phase():
    grid = theory.chi1_grid("tanh", np.array([0.5, 1.0, 4.0]), np.array([0.0, 0.05]))
    assert grid.shape == (2, 3)
    assert grid[0, 0] < 1 < grid[0, 2]
