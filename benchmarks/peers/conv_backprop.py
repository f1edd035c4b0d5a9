"""Hand-written backpropagation of ``vglab.ConvNet`` over an array module ``xp``: NumPy (``NumPy``) or
jax.numpy run op by op without ``jax.jit`` (``JaxEager``).

What a careful user writes without vglab or autograd, formulated independently of vglab's im2col: the 'same'
convolution (p = ⌊k/2⌋, zero padding) as a sum of k shifted matrix products,

    conv(h)[t] = b + Σ_j S_j(h)[t] W[j],        S_j(h)[t] = h[t + j − p]  (0 outside 0..T−1),

its input gradient as the transposed sum dh[t] = Σ_j (dz W[j]ᵀ)[t − j + p], its kernel gradient
dW[j] = Σ_t S_j(h)[t]ᵀ dz[t]; LayerNorm over the T·C numbers of an example, y = (h − μ)/s with
s = √(mean((h − μ)²) + ε), backward dh = (dy − mean(dy) − y·mean(dy·y)) / s; residual h + α φ(z).
Everything is plain float32 (no log-scale carried): enough at the lesson's sizes (He-scaled ReLU bodies,
depth ≤ 24), where nothing under- or overflows.

Workloads (the names ``benchmarks.run`` calls): ``conv_gradient_norms`` (log10 ‖∂L/∂h_l‖, l = 0..L, of
L = ⟨g, h_L⟩, one row per seed) and ``conv_training_step`` (one step of ``vglab.train_convnet``: stem, body,
mean over positions, readout, cross-entropy, Adam at step 1 with β = (0.9, 0.999), ε = 1e-8).
"""

from __future__ import annotations

import math

import numpy as np

from vglab.core.compilation import exact_precision
from vglab.models.mlp import LAYERNORM_EPS
from vglab.training import ADAM_BETAS, ADAM_EPS

LN10 = math.log(10.0)


def _phi(name: str, xp):
    """(φ, φ′(z)) of the activations this peer supports."""
    if name == "relu":
        return (lambda z: xp.maximum(z, 0.0)), (lambda z: (z > 0.0).astype(xp.float32))
    if name == "tanh":
        return xp.tanh, (lambda z: 1.0 - xp.tanh(z) ** 2)
    if name == "linear":
        return (lambda z: z), (lambda z: xp.ones_like(z))
    raise ValueError(f"the ConvNet peers support relu, tanh and linear, got {name!r}")


def _pad(xp, h, p):
    """Zero-pad the position axis (−2) of h (..., T, C) by p on both sides."""
    return xp.pad(h, [(0, 0)] * (h.ndim - 2) + [(p, p), (0, 0)])


def conv(xp, h, W, b):
    """Σ_j S_j(h) W[j] + b: h (..., T, C_in), W (..., k, C_in, C_out) (leading axes broadcast), b (..., C_out)."""
    k, T = W.shape[-3], h.shape[-2]
    padded = _pad(xp, h, k // 2)
    out = padded[..., 0:T, :] @ W[..., 0, :, :]
    for j in range(1, k):
        out = out + padded[..., j:j + T, :] @ W[..., j, :, :]
    return out + b[..., None, :]


def conv_input_grad(xp, dz, W):
    """∂/∂h of ⟨dz, conv(h)⟩: Σ_j (dz W[j]ᵀ) shifted back by j − p."""
    k, T = W.shape[-3], dz.shape[-2]
    padded = _pad(xp, dz, k // 2)
    out = 0.0
    for j in range(k):
        out = out + padded[..., k - 1 - j:k - 1 - j + T, :] @ xp.swapaxes(W[..., j, :, :], -1, -2)
    return out


def conv_kernel_grad(xp, h, dz, k):
    """∂/∂W of ⟨dz, conv(h)⟩ for a kernel shared by the batch: (k, C_in, C_out), summed over batch and T."""
    T = h.shape[-2]
    padded = _pad(xp, h, k // 2)
    flat = lambda a: a.reshape(-1, a.shape[-1])  # noqa: E731
    return xp.stack([flat(padded[..., j:j + T, :]).T @ flat(dz) for j in range(k)])


def layernorm(xp, h):
    """(y, s): y = (h − μ)/s over the last two axes (T, C), s = √(mean((h − μ)²) + ε) of shape (..., 1, 1)."""
    c = h - xp.mean(h, axis=(-2, -1), keepdims=True)
    s = xp.sqrt(xp.mean(c * c, axis=(-2, -1), keepdims=True) + LAYERNORM_EPS)
    return c / s, s


def layernorm_grad(xp, dy, y, s):
    return (dy - xp.mean(dy, axis=(-2, -1), keepdims=True) - y * xp.mean(dy * y, axis=(-2, -1), keepdims=True)) / s


def body_forward(xp, net, weights, biases, h):
    """h_L and the per-layer records the backward pass needs.  weights (L, ..., k, C, C), biases (L, ..., C)."""
    phi, _ = _phi(net.activation, xp)
    tape = []
    for l in range(net.depth):
        y, s = layernorm(xp, h) if net.norm == "pre" else (h, None)
        z = conv(xp, y, weights[l], biases[l])
        tape.append((h, y, s, z))
        h = h + net.residual_scale * phi(z) if net.residual else phi(z)
    return h, tape


def body_backward(xp, net, weights, tape, v, kernel_grads: bool = False):
    """Back from v = ∂L/∂h_L: ([∂L/∂h_l for l = L..0], [(∂L/∂W_l, ∂L/∂b_l) for l = L..1] if kernel_grads)."""
    _, dphi = _phi(net.activation, xp)
    grads_h, grads_w = [v], []
    for l in reversed(range(net.depth)):
        h, y, s, z = tape[l]
        dz = v * dphi(z) * (net.residual_scale if net.residual else 1.0)
        if kernel_grads:
            grads_w.append((conv_kernel_grad(xp, y, dz, net.kernel), xp.sum(dz.reshape(-1, dz.shape[-1]), axis=0)))
        du = conv_input_grad(xp, dz, weights[l])
        if net.norm == "pre":
            du = layernorm_grad(xp, du, y, s)
        v = v + du if net.residual else du
        grads_h.append(v)
    return grads_h, grads_w


# --------------------------------------------------------------------------------------------- workloads
def prepare_conv(problem, xp):
    """Layers first, seeds batched in the next axis: weights (L, S, k, C, C), biases (L, S, C)."""
    return {"net": problem.net,
            "weights": xp.asarray(np.ascontiguousarray(problem.weights.swapaxes(0, 1))),
            "biases": xp.asarray(np.ascontiguousarray(problem.biases.swapaxes(0, 1))),
            "inputs": xp.asarray(problem.inputs), "directions": xp.asarray(problem.directions)}


def conv_gradient_norms(p, xp):
    """log10 ‖∂L/∂h_l‖₂ over the T·C numbers of h_l, l = 0..L, L = ⟨g, h_L⟩: (S, L+1)."""
    _, tape = body_forward(xp, p["net"], p["weights"], p["biases"], p["inputs"])
    grads_h, _ = body_backward(xp, p["net"], p["weights"], tape, p["directions"])
    norms = xp.stack([xp.sqrt(xp.sum(g * g, axis=(-2, -1))) for g in grads_h[::-1]], axis=1)
    return {"log10_activation_grad": np.log10(np.asarray(norms, np.float64))}


def prepare_conv_training(problem, xp):
    return {"net": problem.net, "learning_rate": problem.learning_rate,
            "params": {k: xp.asarray(v) for k, v in problem.params.items()},
            "x": xp.asarray(problem.x), "y": np.asarray(problem.y), "classes": problem.classes}


def conv_training_step(p, xp):
    """One Adam step (moments from zero, step 1) of the MNIST-1D classifier on the batch (x, y): the loss and
    accuracy before the update, log10 ‖∂loss/∂W_l‖_F per body layer and the parameters after the update."""
    net, P, x, y = p["net"], p["params"], p["x"], p["y"]
    B, T = x.shape
    a0 = conv(xp, x[..., None], P["stem"], P["stem_bias"])  # (B, T, C)
    h0 = xp.maximum(a0, 0.0)
    hL, tape = body_forward(xp, net, P["weights"], P["biases"], h0)
    pooled = xp.mean(hL, axis=-2)  # (B, C)
    logits = pooled @ P["readout"] + P["readout_bias"]
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    onehot = (np.arange(p["classes"])[None, :] == y[:, None]).astype(np.float32)
    loss = -xp.sum(log_p * onehot) / B
    accuracy = np.mean(np.asarray(xp.argmax(logits, axis=-1)) == y)
    d_logits = (xp.exp(log_p) - onehot) / B
    grads = {"readout": pooled.T @ d_logits, "readout_bias": xp.sum(d_logits, axis=0)}
    d_hL = xp.broadcast_to((d_logits @ P["readout"].T)[:, None, :] / T, hL.shape)
    grads_h, grads_w = body_backward(xp, net, P["weights"], tape, d_hL, kernel_grads=True)
    grads["weights"] = xp.stack([w for w, _ in grads_w[::-1]])
    grads["biases"] = xp.stack([b for _, b in grads_w[::-1]])
    d_a0 = grads_h[-1] * (a0 > 0.0)
    grads["stem"] = conv_kernel_grad(xp, x[..., None], d_a0, net.kernel)
    grads["stem_bias"] = xp.sum(d_a0.reshape(-1, d_a0.shape[-1]), axis=0)
    b1, b2 = ADAM_BETAS
    c1, c2 = np.float32(1 - b1), np.float32(1 - b2)  # bias corrections at step 1
    out = {"loss": np.asarray(loss), "accuracy": np.asarray(accuracy, np.float32),
           "log10_grad_norms": np.log10(np.asarray(xp.sqrt(xp.sum(grads["weights"] ** 2, axis=(1, 2, 3)))))}
    for name, g in grads.items():
        m, s = (1 - b1) * g, (1 - b2) * g * g  # the moments after step 1, from zero
        out[f"new_{name}"] = np.asarray(P[name] - p["learning_rate"] * (m / c1) / (xp.sqrt(s / c2) + ADAM_EPS))
    return out


class NumPy:
    """Peer: NumPy, hand-written backprop of the ConvNet."""

    NAME = "numpy"
    LABEL = "NumPy (hand-written backprop)"

    @staticmethod
    def version():
        return f"numpy {np.__version__}"

    prepare_conv = staticmethod(lambda problem: prepare_conv(problem, np))
    conv_gradient_norms = staticmethod(lambda p: conv_gradient_norms(p, np))
    prepare_conv_training = staticmethod(lambda problem: prepare_conv_training(problem, np))
    conv_training_step = staticmethod(lambda p: conv_training_step(p, np))


class JaxEager:
    """Peer: the same hand-written code on jax.numpy, op by op (no ``jax.jit``), products at full float32."""

    NAME = "jax_eager"
    LABEL = "JAX without jit"

    @staticmethod
    def version():
        import jax

        return f"jax {jax.__version__} ({jax.devices()[0].platform})"

    @staticmethod
    def prepare_conv(problem):
        import jax.numpy as jnp

        return prepare_conv(problem, jnp)

    @staticmethod
    def conv_gradient_norms(p):
        import jax.numpy as jnp

        with exact_precision():
            return conv_gradient_norms(p, jnp)

    @staticmethod
    def prepare_conv_training(problem):
        import jax.numpy as jnp

        return prepare_conv_training(problem, jnp)

    @staticmethod
    def conv_training_step(p):
        import jax.numpy as jnp

        with exact_precision():
            return conv_training_step(p, jnp)
