"""vglab.ConvNet: the 1-D convolution as im2col, exact per-layer gradients against float64 jax.jacfwd, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from vglab.core.compilation import CompileCounter
from vglab.models.convolutional import body_parameters, conv1d_same

# The reference runs in float64 (as in tests/reference.py); the engine keeps float32.
jax.config.update("jax_enable_x64", True)
LOG10_TOL = 4.3e-6  # 1e-5 relative in the norm


def test_the_im2col_convolution_is_laxs_same_convolution():
    key = jax.random.key(0)
    h = jax.random.normal(key, (3, 17, 6))
    W = jax.random.normal(jax.random.fold_in(key, 1), (5, 6, 4))
    b = jax.random.normal(jax.random.fold_in(key, 2), (4,))
    ours = conv1d_same(h, W, b)
    theirs = jax.lax.conv_general_dilated(h, W, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"),
                                          precision=jax.lax.Precision.HIGHEST) + b
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def float64_log10_gradients(net, seed):
    """log10 ‖∂⟨g, h_L⟩/∂h_l‖ from the full float64 Jacobian of h_l ↦ h_L (jax.jacfwd), written out directly."""
    W, b = (np.asarray(a, np.float64) for a in body_parameters(net, seed))
    x = np.asarray(vglab.core.init.network_input(seed, net.length * net.channels), np.float64)
    g = np.asarray(vglab.core.init.output_direction(seed, net.length * net.channels), np.float64)
    T, C, k = net.length, net.channels, net.kernel
    phi = {"relu": lambda z: jnp.where(z > 0, z, 0.0), "tanh": jnp.tanh}[net.activation]

    def layer(l, h):  # h (T·C,) flat, the convolution written as a sum over taps
        h2 = h.reshape(T, C)
        inp = h2
        if net.norm == "pre":
            c = h2 - h2.mean()
            inp = c / jnp.sqrt((c * c).mean() + 1e-5)
        padded = jnp.pad(inp, ((k // 2, k // 2), (0, 0)))
        z = sum(padded[j:j + T] @ W[l, j] for j in range(k)) + b[l]
        out = phi(z)
        return (h2 + net.residual_scale * out if net.residual else out).reshape(-1)

    hs = [jnp.asarray(x)]
    for l in range(net.depth):
        hs.append(layer(l, hs[-1]))
    out = []
    for l in range(net.depth + 1):
        def to_output(h, start=l):
            for m in range(start, net.depth):
                h = layer(m, h)
            return h

        J = np.asarray(jax.jacfwd(to_output)(hs[l]))
        out.append(np.log10(np.linalg.norm(J.T @ g)))
    return np.asarray(out)


@pytest.mark.parametrize("net", [
    vglab.ConvNet(depth=6, channels=4, kernel=3, length=10, bias_std=0.1),
    vglab.ConvNet(depth=5, channels=3, kernel=5, length=8, activation="tanh", init="xavier", residual=True,
                  residual_scale=0.5),
    vglab.ConvNet(depth=4, channels=3, kernel=3, length=9, residual=True, norm="pre"),
], ids=["plain-relu", "residual-tanh", "residual-prenorm"])
def test_per_layer_gradients_match_a_float64_jacobian_reference(net):
    ours = vglab.gradient_norms(net, seed=2).log10_activation_grad[0]
    np.testing.assert_allclose(ours, float64_log10_gradients(net, 2), rtol=0, atol=LOG10_TOL)


def test_a_new_seed_reuses_the_compiled_chain():
    net = vglab.ConvNet(depth=8, channels=8, length=16)
    vglab.gradient_norms(net, seed=0)
    counter = CompileCounter()
    result = vglab.gradient_norms(net, seed=5, n_seeds=3)
    assert counter.count == 0
    assert result.log10_activation_grad.shape == (3, 9) and np.all(np.isfinite(result.log10_activation_grad))


def test_the_spectrum_of_a_linear_identity_like_chain_is_exact():
    """A residual net with a vanishing branch (α = 1e-6) is the identity to 1e-6: every σ = 1."""
    net = vglab.ConvNet(depth=3, channels=2, kernel=3, length=5, activation="tanh", init="xavier", residual=True,
                        residual_scale=1e-6)
    spectrum = vglab.jacobian_spectrum(net)
    assert spectrum.net is net and spectrum.log10_singular_values.shape == (10,)
    np.testing.assert_allclose(spectrum.log10_singular_values, 0.0, atol=1e-5)


def test_training_lowers_the_loss_of_a_small_convnet():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 12)).astype(np.float32)
    y = (x[:, :6].sum(axis=1) > 0).astype(np.int32)
    history = vglab.train_convnet(vglab.ConvNet(depth=2, channels=4, length=12), (x, y, x, y), steps=60,
                                  learning_rate=1e-2, batch_size=32)
    assert history.loss.shape == (60,) and history.log10_grad_norms.shape == (60, 2)
    assert history.loss[-10:].mean() < 0.8 * history.loss[:10].mean()
    assert history.train_accuracy > 0.7


def test_bad_convnets_get_clear_errors():
    with pytest.raises(ValueError, match="kernel must be odd"):
        vglab.ConvNet(depth=2, kernel=4)
    with pytest.raises(ValueError, match=r"depth must be an integer in 1\.\.256, got 0"):
        vglab.ConvNet(depth=0)
    with pytest.raises(ValueError, match="norm must be None or 'pre'"):
        vglab.ConvNet(depth=2, norm="post")
    with pytest.raises(ValueError, match=r"data x_train must have shape \(examples, 40\)"):
        vglab.train_convnet(vglab.ConvNet(depth=2), (np.zeros((4, 3)), np.zeros(4, int), np.zeros((4, 3)),
                                                     np.zeros(4, int)))


def test_as_stack_is_kept_per_net_and_seed_in_a_bounded_lru():
    """ConvNet.as_stack draws parameters and builds a Stack once per (net, seed): an equal net gets the same
    Stack, another seed another; at most MAX_CACHED_STACKS are kept, the least recently used dropped; a kept
    Stack gives what a fresh draw gives."""
    from vglab.models import convolutional

    net = vglab.ConvNet(depth=3, channels=4, length=8)
    first = net.as_stack(0)
    assert vglab.ConvNet(depth=3, channels=4, length=8).as_stack(0) is first
    assert net.as_stack(1) is not first and net.replace(channels=5).as_stack(0) is not first
    cached = vglab.gradient_norms(net, seed=0).log10_activation_grad
    for seed in range(2, 2 + convolutional.MAX_CACHED_STACKS):
        net.as_stack(seed)
    assert len(convolutional._STACKS) <= convolutional.MAX_CACHED_STACKS
    fresh = net.as_stack(0)
    assert fresh is not first  # dropped, drawn again
    np.testing.assert_array_equal(vglab.gradient_norms(net, seed=0).log10_activation_grad, cached)
    for (W, b), block in zip(zip(*convolutional.body_parameters(net, 0), strict=True), fresh.blocks, strict=True):
        np.testing.assert_array_equal(block.args[0], W)
        np.testing.assert_array_equal(block.args[1], b)
