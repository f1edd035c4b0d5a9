"""Per-layer distributions over a batch of inputs, not only norms: histograms of activations, of
pre-activation saturation and of gradient entries, with dead units counted over the batch.

For an MLP (``vglab.models.mlp``), seed s and a batch of B inputs x_b (the seed's own input first, as in
``vglab.unit_activity``), with the loss L = ⟨g, h_L⟩ of ``gradient_norms`` (the seed's g for every input):

    activations   h_{l,i}(x_b), l = 1..L, in ``bins`` equal bins over a fixed range (default [0, 1] for
                  sigmoid, [−1, 1] for tanh, [−4, 4] otherwise); values beyond it fall in the end bins and are
                  counted in ``activation_outside`` (UvA DL tutorial 3, "activation distribution per layer").
    saturation    log10(|φ′(z_{l,i})| / sup|φ′|) in bins over [−6, 0]: how far below its steepest slope each
                  unit works.  makemore part 3 (Karpathy) calls a tanh unit saturated when |h| > 0.97, i.e.
                  φ′ = 1 − h² < 0.06; vglab uses the engine's rule for every activation, |φ′(z)| ≤ 0.1 sup|φ′|
                  (``saturated_fraction``, the share of entries at or below log10 0.1 = −1).  Entries with φ′ = 0
                  exactly (ReLU's flat side) have no logarithm: they are counted in ``saturation_zero``; a
                  smooth φ (sigmoid, tanh, GELU) has none, its most saturated units land in the first bin.
    gradients     log10|δ_{l,i}(x_b)| with δ_l = ∂L/∂h_l, l = 0..L, in bins over [⌊min⌋, ⌈max⌉] of the batch's
                  finite values (or a given range).  The engine carries δ_l = e^{R_l} ṽ_l with ‖ṽ_l‖ ≈ 1, so
                  log10|δ_{l,i}| = (R_l + ln|ṽ_{l,i}|)/ln 10 is finite for 1e-60 or 1e-600 alike; only an entry
                  that is exactly 0 (behind a dead unit) is −inf, and it is counted in ``gradient_zero``.
    dead units    a unit is dead when φ′ = 0 for every input of the batch (``vglab.unit_activity``, same
                  inputs): only activations with a flat side (ReLU) have any; sigmoid, tanh, GELU never.

Every count row sums to B × width (``entries``).  The forward and backward passes are the engine's own
(``vglab.models.jacobians``, in log space); the depth is a dynamic trip count, so moving it within a bucket
reuses the compiled program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core.activations import ACTIVATIONS
from vglab.core.compilation import exact_jit
from vglab.core.logspace import LN10
from vglab.core.validation import check_float, check_int, check_seeds
from vglab.models.activity import MAX_BATCH, batch_inputs, unit_activity
from vglab.models.jacobians import (
    SATURATION_LEVEL,
    _backward,
    _forward,
    _scalars,
    _structure,
    weight_bank,
)
from vglab.models.mlp import MLP, check_square_random

SATURATION_RANGE = (-6.0, 0.0)
MAX_BINS = 200
_LOG10_SATURATION = math.log10(SATURATION_LEVEL)


def default_activation_range(activation: str) -> tuple[float, float]:
    """The fixed range of the activation histogram: φ's own range where it is bounded, else [−4, 4]."""
    return {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}.get(activation, (-4.0, 4.0))


@dataclass(frozen=True)
class LayerDistributions:
    """Histograms of one network (``seed``) over ``batch`` inputs; see the module docstring.

    activation_edges (bins+1,), activation_counts (L, bins): h_1..h_L; activation_outside (L,): entries beyond
    the range (in the end bins).
    saturation_edges (bins+1,), saturation_counts (L, bins): log10(|φ′(z_l)|/sup|φ′|), values below −6 in the
    first bin; saturation_zero (L,): entries with φ′ = 0 exactly; saturated_fraction (L,): share with
    |φ′| ≤ 0.1 sup|φ′| (zeros included).
    gradient_edges (bins+1,), gradient_counts (L+1, bins): log10|∂L/∂h_l|, l = 0..L; gradient_zero (L+1,):
    entries exactly 0; gradient_mean_log10 (L+1,): mean of log10|δ_{l,i}| over the nonzero entries (NaN where
    none).
    dead_fraction, inactive_fraction (L,): ``vglab.unit_activity`` on the same batch.
    """

    net: MLP
    seed: int
    batch: int
    activation_edges: np.ndarray
    activation_counts: np.ndarray
    activation_outside: np.ndarray
    saturation_edges: np.ndarray
    saturation_counts: np.ndarray
    saturation_zero: np.ndarray
    saturated_fraction: np.ndarray
    gradient_edges: np.ndarray
    gradient_counts: np.ndarray
    gradient_zero: np.ndarray
    gradient_mean_log10: np.ndarray
    dead_fraction: np.ndarray
    inactive_fraction: np.ndarray

    @property
    def entries(self) -> int:
        """Entries per layer: batch × width (what every count row, with its zeros, sums to)."""
        return self.batch * self.net.width

    @property
    def activation_outside_share(self) -> float:
        """Share of all entries h_{l,i}, l = 1..L, beyond the activation histogram's range (drawn in its end bins):
        Σ_l activation_outside_l / (entries · L)."""
        return float(self.activation_outside.sum()) / max(self.entries * self.net.depth, 1)

    def to_code(self) -> str:
        return f"vglab.layer_distributions({self.net.to_code()}, seed={self.seed}, batch={self.batch})"


def _histogram(values, include, lo, hi, bins):
    """Per-row counts (rows, bins) of ``values`` (B, rows, n) where ``include``, equal bins over [lo, hi],
    values beyond the range in the end bins."""
    rows = values.shape[1]
    position = jnp.floor((values - lo) / (hi - lo) * bins)
    index = jnp.clip(jnp.nan_to_num(position, nan=0.0, posinf=bins, neginf=-1.0), 0, bins - 1).astype(jnp.int32)
    flat = (jnp.arange(rows, dtype=jnp.int32)[None, :, None] * bins + index).ravel()
    counts = jnp.bincount(flat, weights=include.ravel().astype(jnp.float32), length=rows * bins)
    return counts.reshape(rows, bins)


@partial(exact_jit, static_argnames=("structure", "bins"))
def _distributions_program(structure, scalars, sup_dphi, weights, biases, inputs, g, depth, activation_range,
                           gradient_range, bins, auto_gradient_range):
    weights, biases = weights[0], biases[0]
    capacity, n = biases.shape

    def one(x):
        trace = _forward(structure, scalars, weights, biases, x, depth, keep_outputs=True)
        _, _, vectors, scales = _backward(structure, scalars, weights, trace, g, depth, keep_vectors=True)
        return (trace.outputs, trace.log_output_scale.hi + trace.log_output_scale.lo, trace.dphi,
                trace.log_dphi_scale, vectors, scales.hi + scales.lo)

    outputs, log_output_scale, dphi, log_dphi_scale, vectors, log_grad = jax.vmap(one)(inputs)
    layer_rows = (jnp.arange(capacity) < depth)[None, :, None] & jnp.ones((inputs.shape[0], capacity, n), bool)
    grad_rows = (jnp.arange(capacity + 1) <= depth)[None, :, None] & jnp.ones(vectors.shape, bool)

    # activations h = e^S ũ (beyond float32's range they are ±inf, which lands in an end bin)
    h = jnp.where(outputs == 0.0, 0.0, jnp.sign(outputs) * jnp.exp(jnp.log(jnp.abs(outputs))
                                                                  + log_output_scale[..., None]))
    lo, hi = activation_range[0], activation_range[1]
    act_counts = _histogram(h, layer_rows, lo, hi, bins)
    act_outside = jnp.sum(layer_rows & ((h < lo) | (h > hi)), axis=(0, 2))

    # saturation: log10(|φ′|/sup|φ′|) with |φ′| = e^c |d̃|.  d̃ = 0 is φ′ = 0 exactly only for a flat side
    # (ReLU); for a smooth φ it is a unit whose φ′ is over 1e-45 below its layer's largest (c factors the layer
    # out), so far below the range's −6: it goes to the first bin, never to the zeros.
    flat = ACTIVATIONS[structure.activation].flat
    sat_nonzero = dphi != 0.0 if flat else jnp.ones(dphi.shape, bool)
    log10_sat = (jnp.log(jnp.abs(dphi)) + log_dphi_scale[..., None]) / LN10 - jnp.log10(sup_dphi)
    log10_sat = jnp.where(sat_nonzero, log10_sat, -jnp.inf)
    sat_counts = _histogram(log10_sat, layer_rows & sat_nonzero, SATURATION_RANGE[0], SATURATION_RANGE[1], bins)
    sat_zero = jnp.sum(layer_rows & ~sat_nonzero, axis=(0, 2))
    saturated = jnp.mean(log10_sat <= _LOG10_SATURATION, axis=(0, 2))

    # gradients: log10|δ_{l,i}| = (R_l + ln|ṽ_{l,i}|)/ln 10, finite unless δ_{l,i} = 0 exactly
    nonzero = vectors != 0.0
    log10_grad = (jnp.log(jnp.where(nonzero, jnp.abs(vectors), 1.0)) + log_grad[..., None]) / LN10
    counted = grad_rows & nonzero & jnp.isfinite(log10_grad)
    # the range: [⌊min⌋, ⌈max⌉] of the data, or the given one (a traced choice: one program for both)
    g_lo = jnp.floor(jnp.min(jnp.where(counted, log10_grad, jnp.inf)))
    g_hi = jnp.ceil(jnp.max(jnp.where(counted, log10_grad, -jnp.inf)))
    g_lo, g_hi = jnp.where(jnp.isfinite(g_lo), g_lo, -1.0), jnp.where(jnp.isfinite(g_hi), g_hi, 0.0)
    g_hi = jnp.where(g_hi > g_lo, g_hi, g_lo + 1.0)
    g_lo = jnp.where(auto_gradient_range, g_lo, gradient_range[0])
    g_hi = jnp.where(auto_gradient_range, g_hi, gradient_range[1])
    grad_counts = _histogram(log10_grad, counted, g_lo, g_hi, bins)
    grad_zero = jnp.sum(grad_rows & ~counted, axis=(0, 2))
    kept = jnp.sum(counted, axis=(0, 2))
    grad_mean = jnp.sum(jnp.where(counted, log10_grad, 0.0), axis=(0, 2)) / jnp.where(kept > 0, kept, 1)
    grad_mean = jnp.where(kept > 0, grad_mean, jnp.nan)
    return (act_counts, act_outside, sat_counts, sat_zero, saturated, grad_counts, grad_zero, grad_mean,
            jnp.stack([g_lo, g_hi]))


def _check_range(name, value):
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}")
    lo, hi = (check_float(name, v) for v in value)
    if not lo < hi:
        raise ValueError(f"{name} must have low < high, got {value!r}")
    return lo, hi


def layer_distributions(net: MLP, seed: int = 0, batch: int = 64, bins: int = 40, activation_range=None,
                        gradient_range=None) -> LayerDistributions:
    """Per-layer histograms of activations, saturation and gradient entries of ``net`` over a batch.

    batch: inputs, 1..1024 (the first is ``gradient_norms(net, seed)``'s x).  bins: per histogram, 2..200.
    activation_range, gradient_range: (low, high) of those histograms (default: see the module docstring;
    the gradient range is in log10).  See ``LayerDistributions``.
    """
    check_square_random(net, "layer_distributions")
    (seed,) = check_seeds(seed, 1)
    batch = check_int("batch", batch, 1, MAX_BATCH)
    bins = check_int("bins", bins, 2, MAX_BINS)
    activation_range = _check_range("activation_range", activation_range) or \
        default_activation_range(net.activation)
    fixed_gradient_range = _check_range("gradient_range", gradient_range)
    bank = weight_bank((seed,), net.width, net.orthogonal, net.depth)
    inputs = batch_inputs(bank, seed, batch)
    sup = np.float32(ACTIVATIONS[net.activation].sup_dphi(net.leaky_slope))
    out = _distributions_program(_structure(net), _scalars(net), sup, bank.weights, bank.biases, inputs,
                                 bank.directions[0], np.int32(net.depth), np.asarray(activation_range, np.float32),
                                 np.asarray(fixed_gradient_range or (0.0, 1.0), np.float32), bins,
                                 np.bool_(fixed_gradient_range is None))
    act, act_out, sat, sat_zero, saturated, grad, grad_zero, grad_mean, g_range = (np.asarray(a) for a in out)
    activity = unit_activity(net, seed, batch)
    L = net.depth
    as_int = np.rint  # float32 counts are whole numbers below 2^24
    g_lo, g_hi = (float(v) for v in (fixed_gradient_range or g_range))
    return LayerDistributions(
        net, seed, batch,
        np.linspace(*activation_range, bins + 1), as_int(act[:L]).astype(np.int64), act_out[:L].astype(np.int64),
        np.linspace(*SATURATION_RANGE, bins + 1), as_int(sat[:L]).astype(np.int64), sat_zero[:L].astype(np.int64),
        saturated[:L].astype(np.float64),
        np.linspace(g_lo, g_hi, bins + 1), as_int(grad[:L + 1]).astype(np.int64),
        grad_zero[:L + 1].astype(np.int64), grad_mean[:L + 1].astype(np.float64),
        activity.dead_fraction, activity.inactive_fraction)
