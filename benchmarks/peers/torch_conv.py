"""Peer: ``vglab.ConvNet`` in PyTorch eager, as a PyTorch user writes it: ``torch.nn.functional.conv1d``
(channels first, (N, C, T); kernel (C_out, C_in, k); padding k//2), ``F.layer_norm`` over (C, T) without
affine parameters, autograd for the backward pass and ``torch.optim.Adam`` for the update.

Same weights as vglab: vglab's W[j, c, o] (offset j − ⌊k/2⌋, input c, output o) is torch's weight[o, c, j]
(conv1d is a cross-correlation, as vglab's convolution).  torch's default threads; on CUDA when JAX runs on a
GPU (float32 products stay float32, TF32 off).  Imports torch: ``benchmarks.peers.available_conv_peers`` skips
it when torch is not installed.
"""

from __future__ import annotations

import jax
import numpy as np
import torch
import torch.nn.functional as F

from vglab.models.mlp import LAYERNORM_EPS
from vglab.training import ADAM_BETAS, ADAM_EPS

DEVICE = torch.device("cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu")
torch.set_float32_matmul_precision("highest")
torch.backends.cudnn.allow_tf32 = False

NAME = "torch_autograd"
LABEL = "PyTorch eager (autograd, F.conv1d)"


def version() -> str:
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else f"{torch.get_num_threads()} threads"
    return f"torch {torch.__version__} ({where})"


def _t(array, dtype=np.float32):
    return torch.from_numpy(np.array(array, dtype, order="C")).to(DEVICE)


def _kernel(W):
    """vglab (..., k, C_in, C_out) → torch (..., C_out, C_in, k)."""
    return np.moveaxis(np.asarray(W), (-3, -2, -1), (-1, -2, -3))


def _phi(name):
    funs = {"relu": torch.relu, "tanh": torch.tanh, "linear": lambda z: z}
    if name not in funs:
        raise ValueError(f"the ConvNet peers support relu, tanh and linear, got {name!r}")
    return funs[name]


def _body(net, weights, biases, h, keep=None):
    """h (N, C, T) through the body; weights (L, C, C, k), biases (L, C); ``keep`` collects every h_l."""
    phi, pad = _phi(net.activation), net.kernel // 2
    for l in range(net.depth):
        u = F.layer_norm(h, h.shape[-2:], eps=LAYERNORM_EPS) if net.norm == "pre" else h
        out = phi(F.conv1d(u, weights[l], biases[l], padding=pad))
        h = h + net.residual_scale * out if net.residual else out
        if keep is not None:
            h.retain_grad()
            keep.append(h)
    return h


def prepare_conv(problem):
    return {"net": problem.net, "weights": [_t(_kernel(w)) for w in problem.weights],  # per seed (L, C, C, k)
            "biases": [_t(b) for b in problem.biases],
            "inputs": [_t(x.T[None]) for x in problem.inputs],  # (1, C, T)
            "directions": [_t(g.T[None]) for g in problem.directions]}


def conv_gradient_norms(p):
    """log10 ‖∂L/∂h_l‖ from autograd, L = ⟨g, h_L⟩, one seed at a time (each has its own weights): (S, L+1)."""
    rows = []
    for W, b, x, g in zip(p["weights"], p["biases"], p["inputs"], p["directions"], strict=True):
        h0 = x.clone().requires_grad_(True)
        hs = [h0]
        hL = _body(p["net"], W, b, h0, keep=hs)
        (g * hL).sum().backward()
        with torch.no_grad():
            rows.append(torch.stack([torch.linalg.vector_norm(h.grad) for h in hs]))
    return {"log10_activation_grad": torch.log10(torch.stack(rows)).cpu().numpy().astype(np.float64)}


def prepare_conv_training(problem):
    P = problem.params
    start = {"stem": _t(_kernel(P["stem"])), "stem_bias": _t(P["stem_bias"]),
             "weights": _t(_kernel(P["weights"])), "biases": _t(P["biases"]),
             "readout": _t(P["readout"]), "readout_bias": _t(P["readout_bias"])}
    params = {k: v.clone().requires_grad_(True) for k, v in start.items()}
    return {"net": problem.net, "learning_rate": problem.learning_rate, "start": start, "params": params,
            "x": _t(problem.x[:, None, :]), "y": _t(problem.y, np.int64)}


def conv_training_step(p):
    """One step of ``torch.optim.Adam`` (fresh, as at step 1) on the cross-entropy of the batch, from the
    problem's parameters (restored first, so that every call takes the same step)."""
    net, t = p["net"], p["params"]
    with torch.no_grad():
        for k, v in p["start"].items():
            t[k].copy_(v)
    optimizer = torch.optim.Adam(list(t.values()), lr=p["learning_rate"], betas=ADAM_BETAS, eps=ADAM_EPS)
    optimizer.zero_grad(set_to_none=True)
    h = torch.relu(F.conv1d(p["x"], t["stem"], t["stem_bias"], padding=net.kernel // 2))
    h = _body(net, t["weights"], t["biases"], h)
    logits = h.mean(dim=-1) @ t["readout"] + t["readout_bias"]
    loss = F.cross_entropy(logits, p["y"])
    loss.backward()
    with torch.no_grad():
        record = {"loss": loss.cpu().numpy(),
                  "accuracy": (logits.argmax(dim=1) == p["y"]).to(torch.float32).mean().cpu().numpy(),
                  "log10_grad_norms": torch.log10(torch.linalg.vector_norm(t["weights"].grad, dim=(1, 2, 3)))
                  .cpu().numpy()}
    optimizer.step()
    with torch.no_grad():
        for k, v in t.items():
            value = v.detach().cpu().numpy()
            record[f"new_{k}"] = _kernel_back(value) if k in ("stem", "weights") else value.copy()
    return record


def _kernel_back(W):
    """torch (..., C_out, C_in, k) → vglab (..., k, C_in, C_out)."""
    return np.ascontiguousarray(np.moveaxis(W, (-1, -2, -3), (-3, -2, -1)))

