"""Independent float64 references: the network written out directly and differentiated by jax.jacfwd/grad.

Shares nothing with the engine except the random draws (read from the same weight bank, then cast to
float64), so a wrong sign, scale or LayerNorm placement in the engine shows up as a mismatch.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vglab.models import jacobians
from vglab.models.mlp import LAYERNORM_EPS

jax.config.update("jax_enable_x64", True)  # the references run in float64; the engine keeps float32


def _phi(name, x, slope):
    return {
        "sigmoid": lambda: jax.nn.sigmoid(x),
        "tanh": lambda: jnp.tanh(x),
        # ReLU′(0) = 0 (as jax.nn.relu and PyTorch): jnp.maximum would differentiate to ½ at the tie, which a
        # layer fed by an all-dead layer (zero bias) hits exactly.
        "relu": lambda: jnp.where(x > 0, x, 0.0),
        "leaky_relu": lambda: jnp.where(x > 0, x, slope * x),
        "gelu": lambda: jax.nn.gelu(x, approximate=False),
        "elu": lambda: jax.nn.elu(x),
        "silu": lambda: jax.nn.silu(x),
        "linear": lambda: x,
    }[name]()


def _layernorm(x):
    c = x - jnp.mean(x)
    return c / jnp.sqrt(jnp.mean(c * c) + LAYERNORM_EPS)


def parameters(net, seed):
    """float64 copies of the engine's draws: Ws (L, n, n), bs (L, n), x (n,), g (n,)."""
    bank = jacobians.weight_bank((seed,), net.width, net.orthogonal, net.depth)
    L, n = net.depth, net.width
    Ws = np.asarray(bank.weights[0, :L], np.float64) * (net.sigma_w / np.sqrt(n))
    bs = np.asarray(bank.biases[0, :L], np.float64) * net.bias_std
    return Ws, bs, np.asarray(bank.inputs[0], np.float64), np.asarray(bank.directions[0], np.float64)


def layer(net, W, b, h):
    inp = _layernorm(h) if net.norm == "pre" else h
    out = _phi(net.activation, W @ inp + b, net.leaky_slope)
    if net.residual:
        out = h + net.residual_scale * out
    return _layernorm(out) if net.norm == "post" else out


def forward_from(net, Ws, bs, start):
    def f(h):
        for l in range(start, net.depth):
            h = layer(net, Ws[l], bs[l], h)
        return h

    return f


def activations(net, Ws, bs, x):
    hs = [x]
    for l in range(net.depth):
        hs.append(layer(net, Ws[l], bs[l], hs[-1]))
    return hs


def layer_jacobians(net, Ws, bs, hs):
    """[∂h_l/∂h_{l-1} for l = 1..L] by jax.jacfwd of one layer (compiled once, reused for every layer)."""
    jac = jax.jit(jax.jacfwd(lambda W, b, h: layer(net, W, b, h), argnums=2))
    return [np.asarray(jac(Ws[l], bs[l], hs[l])) for l in range(net.depth)]


def all_layer_jacobians(net, seed=0):
    """The float64 layer Jacobians [J_1, …, J_L] of the network drawn with ``seed``."""
    Ws, bs, x, _ = (jnp.asarray(a) for a in parameters(net, seed))
    return layer_jacobians(net, Ws, bs, activations(net, Ws, bs, x))


def gradient_norms(net, seed=0):
    """log10 ‖∂L/∂h_l‖ (l = 0..L) and log10 ‖∂L/∂W_l‖_F (l = 1..L) in float64, from jacfwd and grad."""
    Ws, bs, x, g = (jnp.asarray(a) for a in parameters(net, seed))
    hs = activations(net, Ws, bs, x)
    delta = np.asarray(g)
    grad_h = [np.log10(np.linalg.norm(delta))]
    for J in reversed(layer_jacobians(net, Ws, bs, hs)):  # ∂L/∂h_{l-1} = J_lᵀ ∂L/∂h_l
        delta = J.T @ delta
        grad_h.append(np.log10(np.linalg.norm(delta)))

    def loss(Ws):
        return jnp.dot(g, forward_from(net, Ws, bs, 0)(x))

    dW = jax.grad(loss)(Ws)
    grad_w = np.log10(np.linalg.norm(np.asarray(dW).reshape(net.depth, -1), axis=1))
    rms = np.log10([np.sqrt(np.mean(np.asarray(h) ** 2)) for h in hs[1:]])
    return np.array(grad_h[::-1]), grad_w, rms


def jacobian(net, seed=0, start=0):
    """∂h_L/∂h_start in float64: the product of the per-layer jacfwd Jacobians J_L ⋯ J_{start+1}."""
    Ws, bs, x, _ = (jnp.asarray(a) for a in parameters(net, seed))
    hs = activations(net, Ws, bs, x)
    product = np.eye(net.width)
    for J in layer_jacobians(net, Ws, bs, hs)[start:]:
        product = J @ product
    return product


def worst_cancellation(net, seed=0) -> float:
    """min over layers of ‖J_lᵀ δ_l‖ / (‖J_l‖₂ ‖δ_l‖), δ_l = ∂L/∂h_l, in float64 (≤ 1; layers with
    ‖J_l‖‖δ_l‖ = 0, e.g. all units dead, are skipped: they pass on an exact zero, not a cancellation).

    Near 0, the layer's backward step cancels: the gradient it passes on is far smaller than its inputs
    allow, and float32 (relative rounding ~6e-8 of ‖J_l‖‖δ_l‖) cannot resolve it to the tests' tolerance.
    """
    Ws, bs, x, g = (jnp.asarray(a) for a in parameters(net, seed))
    delta, worst = np.asarray(g), 1.0
    for J in reversed(layer_jacobians(net, Ws, bs, activations(net, Ws, bs, x))):
        scale = np.linalg.norm(J, 2) * np.linalg.norm(delta)
        delta = J.T @ delta
        if scale > 0:
            worst = min(worst, float(np.linalg.norm(delta) / scale))
    return worst


def linear_chain(net, seed=0):
    """float64 (log10 σ_i descending, log10 ‖∂h_L/∂h_l‖_F for l = 0..L−1) of a linear net on the engine's own
    float32 draws: the product accumulated from the output, renormalised each layer, its log scale in float64."""
    Ws, _, _, _ = parameters(net, seed)
    M, scale, partial = np.eye(net.width), 0.0, []
    for W in Ws[::-1]:
        M = M @ W
        norm = np.linalg.norm(M)
        scale, M = scale + np.log(norm), M / norm
        partial.append(scale)
    sigma = scale + np.log(np.linalg.svd(M, compute_uv=False))
    return sigma / np.log(10.0), np.array(partial[::-1]) / np.log(10.0)
