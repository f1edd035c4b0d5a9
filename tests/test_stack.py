"""vglab.Stack: a user's own blocks (plain JAX functions, Equinox modules, Flax NNX modules) through the exact,
log-space chain.  References: vglab's own MLP built from the same weights (the engine's reference tests hold
it to float64 jax.jacfwd), and a float64 NumPy backward pass renormalised in log space."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab

eqx = pytest.importorskip("equinox")
nnx = pytest.importorskip("flax.nnx")

LOG10_TOL = 4.3e-6  # |Δ log10| ≤ 4.3e-6 is a relative error of 1e-5 in the norm


class EquinoxLayer(eqx.Module):
    """A hand-written Equinox layer h ↦ tanh(W h + b)."""

    weight: jax.Array
    bias: jax.Array

    def __call__(self, h):
        return jnp.tanh(self.weight @ h + self.bias)


class FlaxResidual(nnx.Module):
    """A hand-written Flax NNX residual block h ↦ h + α tanh(W h + b)."""

    def __init__(self, weight, bias, alpha):
        self.weight = nnx.Param(jnp.asarray(weight))
        self.bias = nnx.Param(jnp.asarray(bias))
        self.alpha = alpha

    def __call__(self, h):
        return h + self.alpha * jnp.tanh(self.weight[...] @ h + self.bias[...])


def test_an_equinox_mlp_from_the_same_weights_reproduces_vglabs_mlp():
    net = vglab.MLP(depth=40, width=32, activation="tanh", init="xavier", bias_std=0.2)
    layers, x = vglab.mlp_blocks(net, seed=3)
    stack = vglab.Stack([EquinoxLayer(jnp.asarray(W), jnp.asarray(b)) for W, b in layers], x)
    ours = vglab.gradient_norms(stack, seed=3, n_seeds=2).log10_activation_grad
    mlp = vglab.gradient_norms(net, seed=3, n_seeds=2).log10_activation_grad
    np.testing.assert_allclose(ours[0], mlp[0], rtol=0, atol=LOG10_TOL)
    # Seed 4's output direction, but seed 3's weights and input: a different row than the MLP's seed 4.
    assert ours.shape == (2, 41) and np.max(np.abs(ours[1] - mlp[1])) > 1e-3
    spectrum = vglab.jacobian_spectrum(stack)
    reference = vglab.jacobian_spectrum(net, seed=3)
    np.testing.assert_allclose(spectrum.log10_partial_norms, reference.log10_partial_norms, rtol=0, atol=LOG10_TOL)
    np.testing.assert_allclose(spectrum.log10_singular_values[:16], reference.log10_singular_values[:16],
                               rtol=0, atol=1e-4)


def test_a_flax_nnx_residual_stack_from_the_same_weights_reproduces_vglabs_residual_mlp():
    net = vglab.MLP(depth=30, width=24, activation="tanh", init="he", residual=True, residual_scale=0.5)
    layers, x = vglab.mlp_blocks(net, seed=0)
    stack = vglab.Stack([FlaxResidual(W, b, 0.5) for W, b in layers], x)
    assert [run.length for run in stack._runs] == [30]  # one NNX graph: one scan
    np.testing.assert_allclose(vglab.gradient_norms(stack).log10_activation_grad,
                               vglab.gradient_norms(net).log10_activation_grad, rtol=0, atol=LOG10_TOL)


def test_blocks_of_one_structure_run_as_one_scan_whose_program_does_not_grow_with_their_number():
    def traced_size(depth):
        net = vglab.MLP(depth=depth, width=8)
        layers, x = vglab.mlp_blocks(net)
        stack = vglab.Stack([EquinoxLayer(jnp.asarray(W), jnp.asarray(b)) for W, b in layers], x)
        assert len(stack._runs) == 1 and stack._runs[0].scanned and stack._runs[0].length == depth
        g = jnp.ones((8,), jnp.float32)
        from vglab.models.stack import _backward, _forward

        jaxpr = jax.make_jaxpr(lambda x, g: _backward(stack._runs, _forward(stack._runs, x)[1], g))(stack.x, g)
        return len(jaxpr.jaxpr.eqns)

    assert traced_size(5) == traced_size(200)


def float64_log_gradients(weights, biases, x, g):
    """log10 ‖δ_l‖ of h_l = sigmoid(W_l h_{l-1} + b_l) in float64, the backward pass renormalised every block."""
    h, dphis = np.asarray(x, np.float64), []
    for W, b in zip(weights, biases, strict=True):
        z = W.astype(np.float64) @ h + b
        h = 1.0 / (1.0 + np.exp(-z))
        dphis.append(h * (1.0 - h))
    v = np.asarray(g, np.float64)
    log_norm = math.log(np.linalg.norm(v))
    v = v / np.linalg.norm(v)
    out = [log_norm]
    for W, dphi in zip(weights[::-1], dphis[::-1], strict=True):
        v = W.astype(np.float64).T @ (dphi * v)
        size = np.linalg.norm(v)
        log_norm += math.log(size)
        v = v / size
        out.append(log_norm)
    return np.asarray(out[::-1]) / math.log(10.0)


def test_five_hundred_sigmoid_blocks_stay_finite_and_match_a_float64_reference():
    width, depth = 16, 500
    net = vglab.MLP(depth=depth, width=width, activation="sigmoid", bias_std=0.1)
    layers, x = vglab.mlp_blocks(net, seed=1)
    weights = [jnp.asarray(W) for W, _ in layers]
    biases = [jnp.asarray(b) for _, b in layers]

    def block(params, h):
        W, b = params
        return jax.nn.sigmoid(W @ h + b)

    blocks = [eqx.Partial(block, (W, b)) for W, b in zip(weights, biases, strict=True)]
    result = vglab.gradient_norms(vglab.Stack(blocks, x), seed=1).log10_activation_grad[0]
    g = np.asarray(vglab.core.init.output_direction(1, width))
    reference = float64_log_gradients([np.asarray(W) for W in weights], [np.asarray(b, np.float64) for b in biases],
                                      x, g)
    assert np.all(np.isfinite(result)) and result[0] < -200  # far below float32's 1e-38, still a number
    np.testing.assert_allclose(result, reference, rtol=0, atol=LOG10_TOL)


def test_a_users_loss_replaces_the_random_output_direction():
    net = vglab.MLP(depth=6, width=8)
    layers, x = vglab.mlp_blocks(net)
    blocks = [EquinoxLayer(jnp.asarray(W), jnp.asarray(b)) for W, b in layers]
    target = jnp.linspace(-1.0, 1.0, 8)
    result = vglab.gradient_norms(vglab.Stack(blocks, x), loss=lambda h: 0.5 * jnp.sum((h - target) ** 2))

    def loss_of_input(h0):
        h = h0
        for block in blocks:
            h = block(h)
        return 0.5 * jnp.sum((h - target) ** 2)

    expected = np.log10(np.linalg.norm(np.asarray(jax.grad(loss_of_input)(jnp.asarray(x)))))
    assert result.log10_activation_grad[0, 0] == pytest.approx(expected, abs=1e-5)


def test_shape_changing_blocks_have_gradients_but_no_square_spectrum():
    readout = jnp.ones((3, 8), jnp.float32) / 8
    stack = vglab.Stack([jnp.tanh, lambda h: readout @ h], jnp.arange(8.0) / 8)
    result = vglab.gradient_norms(stack)
    assert result.log10_activation_grad.shape == (1, 3)
    with pytest.raises(ValueError, match=r"jacobian_spectrum needs blocks that map h of shape \(8,\) to the same "
                                         r"shape; a block returns shape \(3,\)"):
        vglab.jacobian_spectrum(stack)


def test_bad_stacks_get_clear_errors():
    x = jnp.ones(4)
    with pytest.raises(ValueError, match=r"blocks\[1\] must be a callable h -> h'.*got int"):
        vglab.Stack([jnp.tanh, 3], x)
    with pytest.raises(ValueError, match="blocks must be a sequence"):
        vglab.Stack(jnp.tanh, x)
    with pytest.raises(ValueError, match="blocks must hold 1..10000 callables, got 0"):
        vglab.Stack([], x)
    with pytest.raises(ValueError, match="x must be finite"):
        vglab.Stack([jnp.tanh], jnp.array([1.0, jnp.nan]))
    with pytest.raises(ValueError, match="cannot be applied to an input of shape"):
        vglab.Stack([lambda h: jnp.ones((3, 3)) @ h], x)
    with pytest.raises(ValueError, match=r"the forward pass is not finite: block 2 \(of 3\)"):
        vglab.gradient_norms(vglab.Stack([jnp.tanh, lambda h: h / 0.0, jnp.tanh], x))
    with pytest.raises(ValueError, match="loss must be a callable"):
        vglab.gradient_norms(vglab.Stack([jnp.tanh], x), loss=3.0)
    with pytest.raises(ValueError, match="loss= is for a vglab.Stack"):
        vglab.gradient_norms(vglab.MLP(depth=2, width=2), loss=jnp.sum)
