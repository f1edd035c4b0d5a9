"""vglab.BatchNormMLP: exact gradients through BatchNorm's batch Jacobian, and the gradient explosion at
initialisation that Yang et al. (2019) predict.

The reference is the network written out directly in float64 and differentiated by jax.grad; it shares only
the random draws with the engine.  Timings on the shared 2-core machine: the file takes ~1 min."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from vglab.core.compilation import CompileCounter
from vglab.models import batchnorm

jax.config.update("jax_enable_x64", True)  # the reference runs in float64; the engine keeps float32
EPS = batchnorm.BATCHNORM_EPS
COUNTER = CompileCounter()


def _phi(name, x):
    return {"relu": lambda: jnp.where(x > 0, x, 0.0), "tanh": lambda: jnp.tanh(x), "linear": lambda: x}[name]()


def _reference_stream(net, seed):
    """float64 H_0..H_L and the per-layer BN outputs Y_1..Y_L, written out directly."""
    W = np.asarray(net.weights(seed), np.float64)
    X, G = (np.asarray(a, np.float64) for a in net.batch_inputs(seed))

    def layer(l, H):
        Z = H @ W[l].T
        Y = (Z - Z.mean(axis=0)) / jnp.sqrt(Z.var(axis=0) + EPS)
        A = _phi(net.activation, Y)
        return (H + net.residual_scale * A if net.residual else A), Y

    return W, X, G, layer


def _reference_norms(net, seed):
    """log10 ‖∂L/∂H_l‖_F (l = 0..L) and log10 ‖∂L/∂W_l‖_F by jax.grad in float64."""
    W, X, G, layer = _reference_stream(net, seed)
    Hs = [jnp.asarray(X)]
    for l in range(net.depth):
        Hs.append(layer(l, Hs[-1])[0])

    def loss_from(l, H, Wl=None):
        for k in range(l, net.depth):
            if k == l and Wl is not None:
                Z = H @ Wl.T
                Y = (Z - Z.mean(axis=0)) / jnp.sqrt(Z.var(axis=0) + EPS)
                A = _phi(net.activation, Y)
                H = H + net.residual_scale * A if net.residual else A
            else:
                H = layer(k, H)[0]
        return jnp.sum(jnp.asarray(G) * H)

    grad_h = [np.linalg.norm(jax.grad(lambda h: loss_from(l, h))(Hs[l])) for l in range(net.depth)]
    grad_w = [np.linalg.norm(jax.grad(lambda w: loss_from(l, Hs[l], w))(jnp.asarray(W[l])))
              for l in range(net.depth)]
    return np.log10(grad_h + [np.linalg.norm(G)]), np.log10(grad_w)


@pytest.mark.parametrize("options", [dict(activation="relu"), dict(activation="tanh"),
                                     dict(activation="relu", residual=True, residual_scale=0.7),
                                     dict(activation="linear", weight_std=0.3)],
                         ids=["relu", "tanh", "relu-residual", "linear"])
def test_gradient_norms_match_float64_jax_grad(options):
    """Every ‖∂L/∂H_l‖_F and ‖∂L/∂W_l‖_F of a depth-6 net (width 24, batch 12), two seeds, agrees with jax.grad
    in float64 to rtol 1e-5."""
    net = vglab.BatchNormMLP(depth=6, width=24, batch=12, **options)
    result = vglab.gradient_norms(net, seed=5, n_seeds=2)
    assert isinstance(result, vglab.GradientNorms) and result.net is net
    for k, seed in enumerate((5, 6)):
        ref_h, ref_w = _reference_norms(net, seed)
        np.testing.assert_allclose(10 ** result.log10_activation_grad[k], 10 ** ref_h, rtol=1e-5)
        np.testing.assert_allclose(10 ** result.log10_weight_grad[k], 10 ** ref_w, rtol=1e-5)


def test_forward_activations_stay_at_unit_scale_per_feature():
    """BN makes every unit of every layer mean 0 and variance 1 over the batch (1 − ε/s² exactly), at any σ_w;
    the engine's RMS(H_l) of a linear BN net is 1 at every layer of 300, of a ReLU one √½ (a ReLU of a unit
    Gaussian has mean square ½), within 0.03 decades (the sampling noise of B·n = 1024 numbers: measured
    ≤ 0.016)."""
    net = vglab.BatchNormMLP(depth=8, width=32, batch=16, activation="relu", weight_std=3.0)
    _, X, _, layer = _reference_stream(net, 0)
    H = jnp.asarray(X)
    for l in range(net.depth):
        H, Y = layer(l, H)
        np.testing.assert_allclose(np.mean(Y, axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(np.var(Y, axis=0), 1.0, atol=1e-4)
    linear = vglab.gradient_norms(vglab.BatchNormMLP(depth=300, width=64, batch=16, activation="linear"))
    np.testing.assert_allclose(linear.log10_activation_rms, 0.0, atol=1e-4)
    relu = vglab.gradient_norms(vglab.BatchNormMLP(depth=300, width=64, batch=16, activation="relu"))
    np.testing.assert_allclose(relu.log10_activation_rms, math.log10(math.sqrt(0.5)), atol=0.03)


def _growth_per_layer(net, n_seeds=4, first=5, last=35):
    """Measured log10 growth of √E‖∂L/∂H_l‖² per layer (root mean square over seeds), from layer ``last``
    down to layer ``first`` (past the first layers, where the batch's Gram matrix has reached its fixed point)."""
    g = vglab.gradient_norms(net, seed=0, n_seeds=n_seeds).log10_rms_activation_grad
    return (g[first] - g[last]) / (last - first)


def test_plain_relu_batchnorm_gradient_explodes_at_the_mean_field_rate():
    """Yang et al. (2019): in a plain ReLU BN net the squared gradient grows by λ = π/(π−1) per layer (large
    batch, width ≫ batch).  At batch 128, width 256, 40 layers, 4 seeds: the measured √λ per layer agrees
    within 5 % in log (measured 0.5 % off); the ReLU net without BN (He) does not grow (< 0.01 decade/layer)."""
    predicted = 0.5 * math.log10(vglab.theory.batchnorm_gradient_growth("relu"))
    measured = _growth_per_layer(vglab.BatchNormMLP(depth=40, width=256, batch=128, activation="relu"))
    assert measured == pytest.approx(predicted, rel=0.05)
    plain = vglab.gradient_norms(vglab.MLP(depth=40, width=256, activation="relu", init="he"), n_seeds=4)
    assert abs(plain.log10_rms_activation_grad[5] - plain.log10_rms_activation_grad[35]) / 30 < 0.01


def test_plain_linear_batchnorm_growth_is_the_finite_batch_formula():
    """Linear BN net: λ = (B−2)/(B−3) at width ≫ B.  Batch 8, width 256: measured within 10 % in log (3.8 %
    off); B/(B−2) or (B−1)/(B−3) would be 58 % and 85 % above it, so the tolerance separates them."""
    predicted = 0.5 * math.log10(vglab.theory.batchnorm_gradient_growth("linear", batch=8))
    measured = _growth_per_layer(vglab.BatchNormMLP(depth=40, width=256, batch=8, activation="linear"))
    assert measured == pytest.approx(predicted, rel=0.10)


def test_residual_connections_remove_the_exponential_growth():
    """ReLU, width 128, batch 32, 2 seeds: plain BN grows > 4 decades over 50 layers; with residual
    connections (α = 1) under 1.5 decades, and its growth per layer over layers 25..50 is under a quarter of
    the plain net's."""
    plain = vglab.BatchNormMLP(depth=50, width=128, batch=32)
    residual = plain.replace(residual=True)
    p, r = (vglab.gradient_norms(n, seed=0, n_seeds=2) for n in (plain, residual))
    assert np.all(p.log10_gradient_ratio > 4.0)
    assert np.all(r.log10_gradient_ratio < 1.5)
    late = (lambda g: (g[25] - g[50]) / 25)
    assert late(r.log10_rms_activation_grad) < 0.25 * late(p.log10_rms_activation_grad)


def test_depth_1000_is_finite_and_exact_in_log_space():
    """A 1000-layer plain ReLU BN net: the input gradient is ~10^80 times the output's, every norm is finite
    (float32 would overflow at 10^38)."""
    result = vglab.gradient_norms(vglab.BatchNormMLP(depth=1000, width=32, batch=16))
    assert np.all(np.isfinite(result.log10_activation_grad)) and np.all(np.isfinite(result.log10_weight_grad))
    assert result.log10_gradient_ratio[0] > 38


def test_depth_and_numeric_options_do_not_recompile():
    """Depth within a bucket, σ_w and α are traced: one program per structure."""
    base = vglab.BatchNormMLP(depth=10, width=16, batch=8, residual=True)
    vglab.gradient_norms(base)
    before, programs = COUNTER.count, batchnorm.compiled_programs()
    for depth in (1, 3, 17, 40, 64):
        vglab.gradient_norms(base.replace(depth=depth))
    for alpha in (0.1, 0.5, 2.0):
        vglab.gradient_norms(base.replace(residual_scale=alpha, weight_std=alpha))
    assert COUNTER.count == before and batchnorm.compiled_programs() == programs


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="batch must be an integer in 4..1024, got 2"):
        vglab.BatchNormMLP(depth=3, width=8, batch=2)
    with pytest.raises(ValueError, match="did you mean 'relu'"):
        vglab.BatchNormMLP(depth=3, width=8, activation="rellu")
    with pytest.raises(ValueError, match="did you mean 'batch'"):
        vglab.BatchNormMLP(depth=3, width=8, bacth=16)
    with pytest.raises(ValueError, match="depth must be an integer in 1..10000, got 0"):
        vglab.BatchNormMLP(depth=0, width=8)
    with pytest.raises(ValueError, match="residual must be True or False"):
        vglab.BatchNormMLP(depth=3, width=8, residual="yes")
    with pytest.raises(ValueError, match="batch must be an integer > 3, got 3"):
        vglab.theory.batchnorm_gradient_growth("linear", batch=3)
    with pytest.raises(ValueError, match="did you mean 'relu'"):
        vglab.theory.batchnorm_gradient_growth("rel")


def test_theory_values_and_code_round_trip():
    assert vglab.theory.batchnorm_gradient_growth("relu") == pytest.approx(1.4669, abs=1e-4)
    assert vglab.theory.batchnorm_gradient_growth("linear", batch=8) == pytest.approx(1.2)
    net = vglab.BatchNormMLP(depth=7, width=16, batch=8, activation="tanh", residual=True)
    assert eval(net.to_code(), {"vglab": vglab}) == net
    assert vglab.gradient_norms(net).to_code() == f"vglab.gradient_norms({net.to_code()}, seed=0)"
