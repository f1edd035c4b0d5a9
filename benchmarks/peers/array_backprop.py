"""Hand-written backpropagation over an array module ``xp``: NumPy (``numpy_backprop``) or jax.numpy run
op by op without ``jax.jit`` (``jax_eager``).

This is the code a careful user writes instead of using vglab: a Python loop over layers (or time steps),
one matrix–vector product per layer forward and one backward, seeds batched in a leading axis, the backward
vector renormalised every layer (its log-scale carried in a scalar) so that deep nets do not underflow.
Forward activations stay in plain float32, which suffices for the benchmarked configurations (bounded or
He-scaled activations).  Every function returns NumPy arrays with vglab's names, shapes and units (log10).

Exact Jacobian spectra use the same graded QR chain as vglab (Benettin et al. 1980; rows sorted by |φ′|
before each QR, Cox & Higham 1998) and the same float64 final step
(``vglab.core.logspace.graded_log_singular_values``, plain NumPy), so the numbers can be compared.

The layout is the peer's own choice: weights are stored (L, S, n, n) so that layer l is one contiguous
block for all seeds.
"""

from __future__ import annotations

import math

import numpy as np

from vglab.core.logspace import graded_log_singular_values

LN10 = math.log(10.0)


def activation_pair(name: str, xp):
    """(φ, φ′ given φ(z) and z) for the activations the peers support."""
    if name == "tanh":
        return xp.tanh, lambda a, z: 1.0 - a * a
    if name == "sigmoid":
        return (lambda z: 1.0 / (1.0 + xp.exp(-z))), (lambda a, z: a * (1.0 - a))
    if name == "relu":
        return (lambda z: xp.maximum(z, 0.0)), (lambda a, z: (z > 0.0).astype(xp.float32))
    if name == "linear":
        return (lambda z: z), (lambda a, z: xp.ones_like(z))
    raise ValueError(f"the peers support tanh, sigmoid, relu and linear, got {name!r}")


def prepare_mlp(problem, xp):
    """The problem's arrays in ``xp``'s own type and the peer's layout (untimed)."""
    return {
        "weights": xp.asarray(np.ascontiguousarray(problem.weights.transpose(1, 0, 2, 3))),  # (L, S, n, n)
        "biases": xp.asarray(np.ascontiguousarray(problem.biases.transpose(1, 0, 2))),  # (L, S, n)
        "inputs": xp.asarray(problem.inputs),
        "directions": xp.asarray(problem.directions),
        "activation": problem.activation,
        "sup_dphi": problem.sup_dphi,
        "bias": bool(problem.net.bias_std > 0.0),
    }


def _norm(xp, v):
    return xp.sqrt(xp.sum(v * v, axis=-1))


def mlp_gradient_norms(p, xp):
    """Per-layer ‖∂L/∂h_l‖, ‖∂L/∂W_l‖_F, RMS(h_l), saturated and dead fractions of L = ⟨g, h_L⟩."""
    phi, dphi_of = activation_pair(p["activation"], xp)
    W, b = p["weights"], p["biases"]
    depth = W.shape[0]
    h = p["inputs"]
    dphis, layer_inputs, input_norms, rms = [], [], [], []
    for l in range(depth):
        z = xp.matmul(W[l], h[..., None])[..., 0]
        if p["bias"]:
            z = z + b[l]
        layer_inputs.append(h)
        h = phi(z)
        dphis.append(dphi_of(h, z))
        rms.append(xp.sqrt(xp.mean(h * h, axis=-1)))
    for h_in in layer_inputs:
        input_norms.append(_norm(xp, h_in))

    g = p["directions"]
    norm = _norm(xp, g)
    v, r = g / norm[:, None], xp.log(norm)
    log_grad_h, log_grad_w = [r], []
    for l in reversed(range(depth)):
        branch = dphis[l] * v
        log_grad_w.append(r + xp.log(_norm(xp, branch)) + xp.log(input_norms[l]))
        v = xp.matmul(branch[:, None, :], W[l])[:, 0]  # Wᵀ branch
        norm = _norm(xp, v)
        v, r = v / norm[:, None], r + xp.log(norm)
        log_grad_h.append(r)
    abs_dphi = xp.abs(xp.stack(dphis, axis=1))
    return {
        "log10_activation_grad": np.asarray(xp.stack(log_grad_h[::-1], axis=1)) / LN10,
        "log10_weight_grad": np.asarray(xp.stack(log_grad_w[::-1], axis=1)) / LN10,
        "log10_activation_rms": np.log10(np.asarray(xp.stack(rms, axis=1))),
        "saturated_fraction": np.asarray(xp.mean(abs_dphi <= 0.1 * p["sup_dphi"], axis=-1)),
        "dead_fraction": np.asarray(xp.mean(abs_dphi == 0.0, axis=-1)),
    }


def graded_left_multiply(xp, R, log_d, U):
    """R · diag(e^{log_d}) · U as (log_d′, U′) with unit rows of U′ (``vglab.core.logspace``'s formula)."""
    log_terms = xp.log(xp.abs(R)) + log_d[None, :]
    m = xp.max(log_terms, axis=1)
    m = xp.where(xp.isfinite(m), m, 0.0)
    rows = (xp.sign(R) * xp.exp(log_terms - m[:, None])) @ U
    norms = _norm(xp, rows)
    safe = xp.where(norms > 0.0, norms, 1.0)
    return m + xp.log(norms), rows / safe[:, None]


def mlp_spectrum(p, xp):
    """log10 singular values of ∂h_L/∂h_0 and log10 ‖∂h_L/∂h_l‖_F (first seed), by the graded QR chain."""
    phi, dphi_of = activation_pair(p["activation"], xp)
    W, b = p["weights"][:, 0], p["biases"][:, 0]
    depth, n = W.shape[0], W.shape[1]
    h, dphis = p["inputs"][0], []
    for l in range(depth):
        z = W[l] @ h + b[l] if p["bias"] else W[l] @ h
        h = phi(z)
        dphis.append(dphi_of(h, z))
    eye = xp.eye(n, dtype=xp.float32)
    Q, log_d, U = eye, xp.zeros((n,), dtype=xp.float32), eye
    partial = []
    with np.errstate(divide="ignore"):
        for l in reversed(range(depth)):
            d = dphis[l]
            order = xp.argsort(-xp.abs(d))
            Q1, R1 = xp.linalg.qr(d[order][:, None] * Q[order])
            log_d, U = graded_left_multiply(xp, R1, log_d, U)
            Q1 = Q1[xp.argsort(order)]  # undo the row permutation
            Q, R2 = xp.linalg.qr(W[l].T @ Q1)
            log_d, U = graded_left_multiply(xp, R2, log_d, U)
            top = xp.max(log_d)
            partial.append(top + 0.5 * xp.log(xp.sum(xp.exp(2.0 * (log_d - top)))))
    log_sv = graded_log_singular_values(np.asarray(log_d, np.float64), np.asarray(U, np.float64))
    return {"log10_singular_values": log_sv / LN10,
            "log10_partial_norms": np.asarray(xp.stack(partial[::-1]), np.float64) / LN10}


def prepare_rnn(problem, xp):
    return {
        "cell": problem.net.cell,
        "recurrent": xp.asarray(problem.recurrent),  # (S, kn, n)
        "input_weights_t": xp.asarray(np.ascontiguousarray(problem.input_weights.transpose(0, 2, 1))),
        "bias": xp.asarray(problem.bias),
        "inputs": xp.asarray(problem.inputs),  # (S, T, n)
        "directions": xp.asarray(problem.directions),
    }


def _sigmoid(xp, z):
    return 1.0 / (1.0 + xp.exp(-z))


def rnn_gradient_norms(p, xp):
    """‖∂L/∂h_t‖ for t = 0..T (and ‖∂L/∂c_t‖ for the LSTM) of L = ⟨g, h_T⟩, backpropagation through time."""
    W = p["recurrent"]
    drive = xp.matmul(p["inputs"], p["input_weights_t"]) + p["bias"][:, None, :]  # U x_t + b, all t at once
    S, T = drive.shape[0], drive.shape[1]
    n = W.shape[2]
    g = p["directions"]
    norm = _norm(xp, g)
    a, r = g / norm[:, None], xp.log(norm)
    log_h = [r]
    if p["cell"] == "vanilla":
        h, dphis = xp.zeros((S, n), dtype=xp.float32), []
        for t in range(T):
            h = xp.tanh(xp.matmul(W, h[..., None])[..., 0] + drive[:, t])
            dphis.append(1.0 - h * h)
        for t in reversed(range(T)):
            v = xp.matmul((dphis[t] * a)[:, None, :], W)[:, 0]
            norm = _norm(xp, v)
            a, r = v / norm[:, None], r + xp.log(norm)
            log_h.append(r)
        return {"log10_activation_grad": np.asarray(xp.stack(log_h[::-1], axis=1)) / LN10}

    h = c = xp.zeros((S, n), dtype=xp.float32)
    gates, cells, tanh_cells = [], [c], []
    for t in range(T):
        z = xp.matmul(W, h[..., None])[..., 0] + drive[:, t]
        i, f, o = (_sigmoid(xp, z[:, k * n:(k + 1) * n]) for k in range(3))
        gg = xp.tanh(z[:, 3 * n:])
        c = f * c + i * gg
        tc = xp.tanh(c)
        h = o * tc
        gates.append((i, f, o, gg))
        cells.append(c)
        tanh_cells.append(tc)
    b_c = xp.zeros((S, n), dtype=xp.float32)
    log_c = []
    for t in reversed(range(T)):  # step t+1 of the docstring's 1-based time
        i, f, o, gg = gates[t]
        tc = tanh_cells[t]
        delta_c = b_c + a * o * (1.0 - tc * tc)
        log_c.append(r + xp.log(_norm(xp, delta_c)))
        dz = xp.concatenate([delta_c * gg * i * (1.0 - i), delta_c * cells[t] * f * (1.0 - f),
                             a * tc * o * (1.0 - o), delta_c * i * (1.0 - gg * gg)], axis=-1)
        a_prev = xp.matmul(dz[:, None, :], W)[:, 0]
        b_prev = delta_c * f
        norm = xp.sqrt(xp.sum(a_prev * a_prev, axis=-1) + xp.sum(b_prev * b_prev, axis=-1))
        a, b_c, r = a_prev / norm[:, None], b_prev / norm[:, None], r + xp.log(norm)
        log_h.append(r + xp.log(_norm(xp, a)))
    log_c.append(r + xp.log(_norm(xp, b_c)))
    return {"log10_activation_grad": np.asarray(xp.stack(log_h[::-1], axis=1)) / LN10,
            "log10_cell_grad": np.asarray(xp.stack(log_c[::-1], axis=1)) / LN10}
