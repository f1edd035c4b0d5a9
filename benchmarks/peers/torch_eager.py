"""Peer: PyTorch eager, two ways, on the device JAX computes on (the CPU, or CUDA when JAX runs on a GPU).

- ``torch`` (hand-written backprop): the same loop as ``array_backprop`` in torch ops under ``no_grad``;
- ``torch_autograd``: what most PyTorch users write: the forward pass with ``retain_grad()`` on every
  hidden state, ``loss.backward()``, then the norms of ``h_l.grad`` and ``W_l.grad`` (autograd forms the
  full n×n weight gradients, the hand-written version only their rank-one norms).

Both run with torch's default threads on the CPU; on a GPU, float32 products stay full float32 (TF32 off, as
vglab's ``exact_jit``).  Arrays are float32.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import torch

from vglab.core.logspace import graded_log_singular_values

DEVICE = torch.device("cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu")
torch.set_float32_matmul_precision("highest")  # no TF32 on CUDA (torch's default; stated, not assumed)

NAME = "torch"
LABEL = "PyTorch eager (hand-written backprop)"
LN10 = math.log(10.0)


def version() -> str:
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"{torch.get_num_threads()} threads"
    return f"torch {torch.__version__} ({where})"


def _t(array):
    return torch.from_numpy(np.array(array, np.float32, order="C")).to(DEVICE)  # a writable copy


def _activation(name):
    if name == "tanh":
        return torch.tanh, lambda a, z: 1.0 - a * a
    if name == "sigmoid":
        return torch.sigmoid, lambda a, z: a * (1.0 - a)
    if name == "relu":
        return torch.relu, lambda a, z: (z > 0.0).to(torch.float32)
    if name == "linear":
        return (lambda z: z), (lambda a, z: torch.ones_like(z))
    raise ValueError(f"the peers support tanh, sigmoid, relu and linear, got {name!r}")


def _norm(v):
    return torch.linalg.vector_norm(v, dim=-1)


def prepare_mlp(problem):
    return {
        "weights": _t(problem.weights.transpose(1, 0, 2, 3)),  # (L, S, n, n)
        "biases": _t(problem.biases.transpose(1, 0, 2)),
        "inputs": _t(problem.inputs),
        "directions": _t(problem.directions),
        "activation": problem.activation,
        "sup_dphi": problem.sup_dphi,
        "bias": bool(problem.net.bias_std > 0.0),
    }


@torch.no_grad()
def mlp_gradient_norms(p):
    phi, dphi_of = _activation(p["activation"])
    W, b = p["weights"], p["biases"]
    depth = W.shape[0]
    h = p["inputs"]
    dphis, input_norms, rms = [], [], []
    for l in range(depth):
        z = torch.matmul(W[l], h.unsqueeze(-1)).squeeze(-1)
        if p["bias"]:
            z = z + b[l]
        input_norms.append(_norm(h))
        h = phi(z)
        dphis.append(dphi_of(h, z))
        rms.append(torch.sqrt(torch.mean(h * h, dim=-1)))
    g = p["directions"]
    norm = _norm(g)
    v, r = g / norm[:, None], torch.log(norm)
    log_grad_h, log_grad_w = [r], []
    for l in reversed(range(depth)):
        branch = dphis[l] * v
        log_grad_w.append(r + torch.log(_norm(branch)) + torch.log(input_norms[l]))
        v = torch.matmul(branch.unsqueeze(1), W[l]).squeeze(1)  # Wᵀ branch
        norm = _norm(v)
        v, r = v / norm[:, None], r + torch.log(norm)
        log_grad_h.append(r)
    abs_dphi = torch.stack(dphis, dim=1).abs()
    return {
        "log10_activation_grad": torch.stack(log_grad_h[::-1], dim=1).cpu().numpy() / LN10,
        "log10_weight_grad": torch.stack(log_grad_w[::-1], dim=1).cpu().numpy() / LN10,
        "log10_activation_rms": np.log10(torch.stack(rms, dim=1).cpu().numpy()),
        "saturated_fraction": (abs_dphi <= 0.1 * p["sup_dphi"]).to(torch.float32).mean(dim=-1).cpu().numpy(),
        "dead_fraction": (abs_dphi == 0.0).to(torch.float32).mean(dim=-1).cpu().numpy(),
    }


def _graded_left_multiply(R, log_d, U):
    log_terms = torch.log(R.abs()) + log_d[None, :]
    m = log_terms.max(dim=1).values
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    rows = (torch.sign(R) * torch.exp(log_terms - m[:, None])) @ U
    norms = _norm(rows)
    safe = torch.where(norms > 0.0, norms, torch.ones_like(norms))
    return m + torch.log(norms), rows / safe[:, None]


@torch.no_grad()
def mlp_spectrum(p):
    """The graded QR chain of ``array_backprop.mlp_spectrum`` in torch ops (first seed)."""
    phi, dphi_of = _activation(p["activation"])
    W, b = p["weights"][:, 0], p["biases"][:, 0]
    depth, n = W.shape[0], W.shape[1]
    h, dphis = p["inputs"][0], []
    for l in range(depth):
        z = W[l] @ h + b[l] if p["bias"] else W[l] @ h
        h = phi(z)
        dphis.append(dphi_of(h, z))
    eye = torch.eye(n, dtype=torch.float32, device=DEVICE)
    Q, log_d, U = eye, torch.zeros(n, dtype=torch.float32, device=DEVICE), eye
    partial = []
    for l in reversed(range(depth)):
        d = dphis[l]
        order = torch.argsort(-d.abs())
        Q1, R1 = torch.linalg.qr(d[order][:, None] * Q[order])
        log_d, U = _graded_left_multiply(R1, log_d, U)
        Q1 = Q1[torch.argsort(order)]
        Q, R2 = torch.linalg.qr(W[l].T @ Q1)
        log_d, U = _graded_left_multiply(R2, log_d, U)
        partial.append(0.5 * torch.logsumexp(2.0 * log_d, dim=0))
    log_sv = graded_log_singular_values(log_d.cpu().numpy().astype(np.float64), U.cpu().numpy().astype(np.float64))
    return {"log10_singular_values": log_sv / LN10,
            "log10_partial_norms": torch.stack(partial[::-1]).cpu().numpy().astype(np.float64) / LN10}


def prepare_rnn(problem):
    return {
        "cell": problem.net.cell,
        "recurrent": _t(problem.recurrent),
        "input_weights_t": _t(problem.input_weights.transpose(0, 2, 1)),
        "bias": _t(problem.bias),
        "inputs": _t(problem.inputs),
        "directions": _t(problem.directions),
    }


@torch.no_grad()
def rnn_gradient_norms(p):
    W = p["recurrent"]
    drive = torch.matmul(p["inputs"], p["input_weights_t"]) + p["bias"][:, None, :]
    S, T = drive.shape[0], drive.shape[1]
    n = W.shape[2]
    g = p["directions"]
    norm = _norm(g)
    a, r = g / norm[:, None], torch.log(norm)
    log_h = [r]
    if p["cell"] == "vanilla":
        h, dphis = torch.zeros(S, n, device=DEVICE), []
        for t in range(T):
            h = torch.tanh(torch.matmul(W, h.unsqueeze(-1)).squeeze(-1) + drive[:, t])
            dphis.append(1.0 - h * h)
        for t in reversed(range(T)):
            v = torch.matmul((dphis[t] * a).unsqueeze(1), W).squeeze(1)
            norm = _norm(v)
            a, r = v / norm[:, None], r + torch.log(norm)
            log_h.append(r)
        return {"log10_activation_grad": torch.stack(log_h[::-1], dim=1).cpu().numpy() / LN10}

    h = c = torch.zeros(S, n, device=DEVICE)
    gates, cells, tanh_cells = [], [c], []
    for t in range(T):
        z = torch.matmul(W, h.unsqueeze(-1)).squeeze(-1) + drive[:, t]
        i, f, o = (torch.sigmoid(z[:, k * n:(k + 1) * n]) for k in range(3))
        gg = torch.tanh(z[:, 3 * n:])
        c = f * c + i * gg
        tc = torch.tanh(c)
        h = o * tc
        gates.append((i, f, o, gg))
        cells.append(c)
        tanh_cells.append(tc)
    b_c = torch.zeros(S, n, device=DEVICE)
    log_c = []
    for t in reversed(range(T)):
        i, f, o, gg = gates[t]
        tc = tanh_cells[t]
        delta_c = b_c + a * o * (1.0 - tc * tc)
        log_c.append(r + torch.log(_norm(delta_c)))
        dz = torch.cat([delta_c * gg * i * (1.0 - i), delta_c * cells[t] * f * (1.0 - f),
                        a * tc * o * (1.0 - o), delta_c * i * (1.0 - gg * gg)], dim=-1)
        a_prev = torch.matmul(dz.unsqueeze(1), W).squeeze(1)
        b_prev = delta_c * f
        norm = torch.sqrt((a_prev * a_prev).sum(-1) + (b_prev * b_prev).sum(-1))
        a, b_c, r = a_prev / norm[:, None], b_prev / norm[:, None], r + torch.log(norm)
        log_h.append(r + torch.log(_norm(a)))
    log_c.append(r + torch.log(_norm(b_c)))
    return {"log10_activation_grad": torch.stack(log_h[::-1], dim=1).cpu().numpy() / LN10,
            "log10_cell_grad": torch.stack(log_c[::-1], dim=1).cpu().numpy() / LN10}


class Autograd:
    """The ``torch_autograd`` peer (MLP gradient norms only): autograd does the backward pass."""

    NAME = "torch_autograd"
    LABEL = "PyTorch eager (autograd)"
    version = staticmethod(version)

    @staticmethod
    def prepare_mlp(problem):
        p = prepare_mlp(problem)
        p["weights"] = [w.clone().requires_grad_(True) for w in p["weights"]]  # one leaf (S, n, n) per layer
        return p

    @staticmethod
    def mlp_gradient_norms(p):
        phi, dphi_of = _activation(p["activation"])
        weights, b = p["weights"], p["biases"]
        for w in weights:
            w.grad = None
        h = p["inputs"].clone().requires_grad_(True)
        hs, dphis = [h], []
        for l, w in enumerate(weights):
            z = torch.matmul(w, h.unsqueeze(-1)).squeeze(-1)
            if p["bias"]:
                z = z + b[l]
            h = phi(z)
            h.retain_grad()
            hs.append(h)
            dphis.append(dphi_of(h.detach(), z.detach()))
        loss = (p["directions"] * h).sum()
        loss.backward()
        with torch.no_grad():
            grad_h = torch.stack([_norm(x.grad) for x in hs], dim=1)
            grad_w = torch.stack([torch.linalg.vector_norm(w.grad, dim=(-2, -1)) for w in weights], dim=1)
            acts = torch.stack([x.detach() for x in hs[1:]], dim=1)
            rms = torch.sqrt(torch.mean(acts * acts, dim=-1))
            abs_dphi = torch.stack(dphis, dim=1).abs()
            return {
                "log10_activation_grad": torch.log10(grad_h).cpu().numpy(),
                "log10_weight_grad": torch.log10(grad_w).cpu().numpy(),
                "log10_activation_rms": torch.log10(rms).cpu().numpy(),
                "saturated_fraction": (abs_dphi <= 0.1 * p["sup_dphi"]).to(torch.float32).mean(-1).cpu().numpy(),
                "dead_fraction": (abs_dphi == 0.0).to(torch.float32).mean(-1).cpu().numpy(),
            }

    @staticmethod
    def training_step(net, data, params, learning_rate: float):
        """One full-batch SGD step of ``vglab.train``'s classifier (ReLU body, no residual or norm) from
        ``params``, recording what ``vglab.train`` records for a step: loss and accuracy before the update,
        ‖∂loss/∂W_l‖_F per body layer and over all parameters, ‖ΔW_l‖_F/‖W_l‖_F, the share of units with
        φ′(z) = 0 on the whole batch, and whether loss, gradient and new parameters are finite.  Returns a
        callable; every call restarts from ``params`` (restored from a copy on the same device)."""
        if net.activation != "relu" or net.residual or net.norm is not None:
            raise ValueError("the training-step peer implements the plain ReLU body")
        t = {k: torch.tensor(np.asarray(v), requires_grad=True, device=DEVICE) for k, v in params._asdict().items()}
        start = {k: v.detach().clone() for k, v in t.items()}
        x = torch.from_numpy(np.asarray(data.x_train, np.float32)).to(DEVICE)
        y = torch.from_numpy(np.asarray(data.y_train, np.int64)).to(DEVICE)

        def step():
            for v in t.values():
                v.grad = None
            h = x @ t["inputs"]
            dead = []
            for layer in range(net.depth):
                z = h @ t["weights"][layer].T + t["biases"][layer]
                dead.append(~(z.detach() > 0.0).any(dim=0))  # ReLU′(z) = 0 on every example
                h = torch.relu(z)
            logits = h @ t["readout"] + t["readout_bias"]
            loss = torch.nn.functional.cross_entropy(logits, y)
            loss.backward()
            with torch.no_grad():
                grad_norms = torch.linalg.vector_norm(t["weights"].grad, dim=(1, 2))
                global_norm = torch.sqrt(sum(torch.sum(v.grad * v.grad) for v in t.values()))
                update_ratio = learning_rate * grad_norms / torch.linalg.vector_norm(t["weights"], dim=(1, 2))
                for v in t.values():
                    v -= learning_rate * v.grad
                finite = torch.isfinite(loss) & torch.isfinite(global_norm) \
                    & torch.isfinite(torch.sqrt(sum(torch.sum(v * v) for v in t.values())))
                record = {
                    "loss": loss.reshape(1),
                    "accuracy": (logits.argmax(dim=1) == y).to(torch.float32).mean().reshape(1),
                    "log10_grad_norms": torch.log10(grad_norms)[None],
                    "log10_global_grad_norm": torch.log10(global_norm).reshape(1),
                    "update_ratio": update_ratio[None],
                    "dead_fraction": torch.stack(dead).to(torch.float32).mean(dim=1)[None],
                }
                record = {k: v.cpu().numpy() for k, v in record.items()}
                if not bool(finite):
                    raise FloatingPointError("the step diverged")
                for k, v in start.items():  # restart from the same point each call
                    t[k].copy_(v)
            return record

        return step
