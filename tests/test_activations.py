"""Activations: φ′ against 50-digit arithmetic, stable in the saturated tails, and the sup|φ′| bounds."""

import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import vglab
from tests import reference  # noqa: F401  (enables float64 for the references below)
from vglab.core.activations import ACTIVATIONS, GELU_SUP_DERIVATIVE

X = np.concatenate([np.linspace(-60, 60, 2401), [-1e-30, 0.0, 1e-30]])


def _mp_derivative(name, x, slope=0.01):
    """φ′(x) in 50-digit arithmetic (float64 autodiff itself cancels: σ(1 − σ) at x = 26 loses 2e-5)."""
    mpmath.mp.dps = 50
    x = mpmath.mpf(float(x))
    if name == "sigmoid":
        s = 1 / (1 + mpmath.exp(-x))
        return s * (1 - s)
    if name == "tanh":
        return mpmath.sech(x) ** 2
    if name == "gelu":
        return mpmath.erfc(-x / mpmath.sqrt(2)) / 2 + x * mpmath.npdf(x)
    if name == "relu":
        return mpmath.mpf(1) if x > 0 else mpmath.mpf(0)
    if name == "leaky_relu":
        return mpmath.mpf(1) if x > 0 else mpmath.mpf(slope)
    if name == "elu":
        return mpmath.mpf(1) if x > 0 else mpmath.exp(x)
    if name == "silu":
        s = 1 / (1 + mpmath.exp(-x))
        return s * (1 + x * (1 - s))
    assert name == "linear", f"no 50-digit reference for {name}"
    return mpmath.mpf(1)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_derivative_matches_high_precision_including_the_saturated_tails(name):
    act = ACTIVATIONS[name]
    x32 = X.astype(np.float32)
    expected = np.array([float(_mp_derivative(name, x)) for x in x32])  # at the same float32 inputs
    actual = np.asarray(act.dphi(jnp.asarray(x32), 0.01), np.float64)
    # Within a few decades of float32's smallest normal (1.2e-38) intermediate factors underflow; above it the
    # derivative must be accurate to float32 precision (a few tens of ulps at most, from erfc deep in the tail).
    resolvable = np.abs(expected) > 1e-30
    np.testing.assert_allclose(actual[resolvable], expected[resolvable], rtol=5e-6)
    if name in ("tanh", "sigmoid"):
        assert np.all(actual[(np.abs(x32) > 10) & (np.abs(x32) < 40)] > 0)  # 1 − tanh² would give exactly 0


def test_sup_derivative():
    assert vglab.sup_derivative("sigmoid") == 0.25
    assert vglab.sup_derivative("leaky_relu", 1.5) == 1.5
    grid = np.linspace(-10, 10, 200001)
    gelu_prime = np.asarray(ACTIVATIONS["gelu"].dphi(jnp.asarray(grid, jnp.float64), 0.0))
    assert GELU_SUP_DERIVATIVE == pytest.approx(gelu_prime.max(), rel=1e-9)
    for name in ACTIVATIONS:
        d = np.abs(np.asarray(ACTIVATIONS[name].dphi(jnp.asarray(grid, jnp.float64), 0.01)))
        assert d.max() <= vglab.sup_derivative(name) * (1 + 1e-9)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("log_scale", [-150.0, -20.0, 0.0, 3.0, 120.0])
def test_scaled_evaluation_equals_direct_evaluation(name, log_scale):
    # φ(e^s z̃) = e^{s_a} ã, checked in float64 where e^s is representable.
    zt = jnp.asarray(np.linspace(-3, 3, 61), jnp.float64)
    s = jnp.float64(log_scale)
    at, sa, d = ACTIVATIONS[name].scaled(zt, s, 0.01)
    z = zt * np.exp(log_scale)
    direct = np.asarray(ACTIVATIONS[name].phi(z, 0.01))
    np.testing.assert_allclose(np.asarray(at) * np.exp(np.asarray(sa)), direct, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(np.asarray(d), np.asarray(ACTIVATIONS[name].dphi(z, 0.01)), rtol=1e-12,
                               atol=1e-300)
