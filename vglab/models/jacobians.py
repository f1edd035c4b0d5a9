"""Exact per-layer gradients and input–output Jacobian spectra of an MLP, accumulated in log space.

Conventions (see ``vglab.models.mlp``): layers l = 1..L map h_{l-1} ↦ h_l, the loss is L = ⟨g, h_L⟩ so
∂L/∂h_L = g, and the layer Jacobian is J_l = ∂h_l/∂h_{l-1}.  Backpropagation is the chain
∂L/∂h_{l-1} = J_lᵀ ∂L/∂h_l, and for the weights ∂L/∂W_l = (α φ′(z_l) ⊙ δ_l) ⊗ (input of W_l), a rank-one
matrix whose Frobenius norm is the product of the two vectors' norms.

Every activation, gradient and partial Jacobian product is carried as (x̃, s) with x = e^s x̃
(``vglab.core.logspace``) and renormalised after each layer, so sigmoid at depth 1000 (‖∂L/∂h_0‖ ~ 1e-600) and
ReLU with σ_w = 4 at depth 500 (activations ~ 1e225) are computed in float32 without underflow or overflow.

Speed: the loops over layers are ``lax.fori_loop`` with the depth as a *dynamic* trip count over a bank of
pre-drawn weights whose layer capacity is bucketed (64, 256, 1024, 4096, 10000).  Changing the depth within
a bucket, or σ_w, σ_b, α or the leaky slope, reuses the compiled program; only the activation, init family,
residual and norm options (and the width and bucket) select a different one.  Seeds are vmapped.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core import init as _init
from vglab.core.activations import _MAX_EXP, _TINY_DERIVATIVE, ACTIVATIONS, scaled_log_dphi
from vglab.core.banks import LARGE_BANK_BYTES, BankCache, append_rows, capacity
from vglab.core.chain import backward_chain, forward_chain, retry_in_log_form
from vglab.core.compilation import exact_jit
from vglab.core.logspace import (
    LN10,
    POWER_OF_TWO_SCALE_LIMIT,
    GradedScales,
    LogScale,
    exp_scaled,
    factor_scale,
    follow,
    graded_left_multiply_offsets,
    graded_log_singular_values,
    graded_renormalised,
    graded_scale_add,
    log_scale,
    minus_inf_pairs,
    normalise_rms,
    normalise_unit,
    power_of_two_exponent,
    power_of_two_scale,
    put_pair,
    scale_add,
    scale_max,
    scale_neg,
    scale_sub,
    scale_to_float64,
    scale_where,
    scaled_add_pair,
    split_float64,
    times_power_of_two,
)
from vglab.core.results import GradientProfile, SpectrumModel, log10_root_mean_square  # noqa: F401 - its old home
from vglab.core.spectrum import qr_fold, spectrum_chain
from vglab.core.validation import MAX_SEED, MAX_SEEDS, check_seeds  # noqa: F401 - MAX_SEED(S) stay named here
from vglab.models.mlp import LAYERNORM_EPS, MAX_DEPTH, MLP, check_memory, check_square_random

# Largest float32 weight bank one call may hold (all seeds together).
BANK_BUDGET_BYTES = 4 * 2**30
DEPTH_BUCKETS = (64, 256, 1024, 4096, MAX_DEPTH)
SATURATION_LEVEL = 0.1  # a unit counts as saturated where |φ′(z)| ≤ 0.1 · sup|φ′|


# --------------------------------------------------------------------------------------------- weights
class WeightBank(NamedTuple):
    """Unit-variance draws for ``capacity`` layers of ``len(seeds)`` networks (see ``vglab.core.init``)."""

    weights: jax.Array  # (S, C, n, n)  Ŵ_l
    biases: jax.Array  # (S, C, n)     b̂_l
    inputs: jax.Array  # (S, n)        x
    directions: jax.Array  # (S, n)    g

    @property
    def capacity(self) -> int:
        return self.weights.shape[1]


@partial(exact_jit, static_argnames=("width", "orthogonal"))
def _draw_layers(seeds, layers, width, orthogonal):
    def one(seed, layer):
        return _init.unit_weight(seed, layer, width, orthogonal), _init.unit_bias(seed, layer, width)

    per_seed = jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))
    return per_seed(seeds, layers)


@partial(exact_jit, static_argnames=("width",))
def _draw_endpoints(seeds, width):
    draw = jax.vmap(lambda s: (_init.network_input(s, width), _init.output_direction(s, width)))
    return draw(seeds)


_BANKS = BankCache(size=2, budget_bytes=BANK_BUDGET_BYTES)  # (seeds, width, orthogonal) → WeightBank


def depth_capacity(depth: int, width: int, n_seeds: int) -> int:
    """The layer capacity of the bank that serves ``depth`` (``vglab.core.banks.capacity``): the smallest bucket
    ≥ depth that fits the budget, on the finer ladder once a bank exceeds ``LARGE_BANK_BYTES``: a call never
    holds more than max(256 MiB, 1.25× its own weights) in a bank, nor above ``BANK_BUDGET_BYTES`` (4 GiB)."""
    return capacity(depth, DEPTH_BUCKETS, 4 * n_seeds * width * width, BANK_BUDGET_BYTES, LARGE_BANK_BYTES)


def weight_bank(seeds: tuple[int, ...], width: int, orthogonal: bool, depth: int) -> WeightBank:
    """The cached bank for (seeds, width, init family) holding at least ``depth`` layers.

    A deeper request extends the bank with newly drawn layers; the existing layers are kept as they are.
    """
    check_memory(depth, width, len(seeds), BANK_BUDGET_BYTES)

    def make(old: WeightBank | None) -> WeightBank:
        seeds_array = jnp.asarray(seeds, jnp.uint32)
        start = 0 if old is None else old.capacity
        layers = jnp.arange(start, depth_capacity(depth, width, len(seeds)))
        weights, biases = _draw_layers(seeds_array, layers, width, orthogonal)
        if old is None:
            return WeightBank(weights, biases, *_draw_endpoints(seeds_array, width))
        return append_rows(old, weights=weights, biases=biases)

    return _BANKS.grown((seeds, width, orthogonal), lambda bank: bank.capacity >= depth, make)


def clear_weight_cache() -> None:
    """Forget every cached weight bank (frees memory)."""
    _BANKS.clear()


# --------------------------------------------------------------------------------------------- layers
class Structure(NamedTuple):
    """The options that select a compiled program (hashable, static under jit)."""

    activation: str
    residual: bool
    norm: str | None


class Scalars(NamedTuple):
    """The options that are plain numbers (traced: changing them does not recompile)."""

    weight_scale: jax.Array  # σ_w / √n
    log_bias_std: jax.Array  # log σ_b (−inf for σ_b = 0)
    log_alpha: jax.Array  # log α of the residual branch (0 without residual)
    leaky_slope: jax.Array
    log_weight_scale: LogScale  # log(σ_w/√n) to float64 accuracy: W_l = e^{log_weight_scale} Ŵ_l exactly
    log_bias_scale: LogScale  # log σ_b to float64 accuracy (−inf for σ_b = 0): b_l = e^{this} b̂_l
    log_residual_scale: LogScale  # log α to float64 accuracy (0 without residual)


def _structure(net: MLP) -> Structure:
    return Structure(net.activation, net.residual, net.norm)


def program_key(net: MLP, n_seeds: int) -> tuple:
    """What selects the compiled programs ``gradient_norms(net, n_seeds=n_seeds)`` runs on a square MLP: the
    static ``Structure``, the weight bank's shape (width, seeds) and its draw (orthogonal or Gaussian).  Depth,
    σ_w, σ_b, α and the leaky slope are traced or served by the same bank, so they never change the key."""
    return (_structure(net), net.width, n_seeds, net.init == "orthogonal")


def _scalars(net: MLP) -> Scalars:
    with np.errstate(divide="ignore"):
        log_bias_std = np.log(np.float32(net.bias_std))
    # NumPy scalars, not jnp ones: creating a jax.Array costs ~30 µs of host time each, every call.
    return Scalars(
        np.float32(net.sigma_w / math.sqrt(net.width)),
        np.float32(log_bias_std),
        np.float32(math.log(net.residual_scale) if net.residual else 0.0),
        np.float32(net.leaky_slope),
        split_float64(math.log(net.sigma_w) - 0.5 * math.log(net.width) if net.sigma_w > 0 else -math.inf),
        split_float64(math.log(net.bias_std) if net.bias_std > 0 else -math.inf),
        split_float64(math.log(net.residual_scale) if net.residual else 0.0),
    )


def _layernorm(u, S: LogScale):
    """LN(e^S u) = e^{S−ρ}(u − ū) with e^ρ = √(e^{2S} var(u) + ε).  Returns (ỹ, S_y, y, ρ), y the true output,
    S_y = S − ρ and ρ as ``LogScale`` pairs.

    e^{2S} var + ε = e^{2 max(S,0)} (var e^{2 min(S,0)} + ε e^{−2 max(S,0)}), so ρ = max(S, 0) + t and
    S − ρ = min(S, 0) − t with t of order one: a stream of size e^{700} never rounds its scale to float32."""
    centred = u - jnp.mean(u)
    s = S.hi
    t = 0.5 * jnp.logaddexp(jnp.log(jnp.mean(centred * centred)) + 2.0 * jnp.minimum(s, 0.0),
                            math.log(LAYERNORM_EPS) - 2.0 * jnp.maximum(s, 0.0))
    zero = log_scale(0.0)
    rho = scale_add(scale_where(s > 0.0, S, zero), t)
    S_y = scale_add(scale_where(s > 0.0, zero, S), -t)
    return centred, S_y, jnp.exp(S_y.hi) * centred, rho


def _reflect_vector(w, v):
    return v - 2.0 * w * jnp.dot(w, v)


def _layernorm_transpose_exact(v, y, rho: LogScale):
    """σ J_LNᵀ v for J_LN = (1/σ)(I − 11ᵀ/n − yyᵀ/n), without the cancellation of 1 − ‖y‖²/n = ε/σ².

    σJ_LN = V diag(1, …, 1, ε/σ², 0) Vᵀ with V = H₁H₂ orthogonal, its last columns ŷ and 1/√n (as in
    ``_layernorm_chain_step``): the ŷ component is scaled by ε/σ² exactly instead of being left to roundoff
    (at width 2 it is the whole answer, and 1 − ‖y‖²/2 in float32 was 2.7 % off)."""
    n = y.shape[0]
    if n == 1:  # LN of one unit is the constant 0
        return jnp.zeros_like(v)
    w1, w2 = _layernorm_reflectors(y)
    rotated = _reflect_vector(w2, _reflect_vector(w1, v))  # Vᵀv = H₂H₁v
    small = LAYERNORM_EPS * jnp.exp(-2.0 * rho.hi)  # ε/σ² ≤ 1
    rotated = rotated.at[n - 2].multiply(small).at[n - 1].set(0.0)
    return _reflect_vector(w1, _reflect_vector(w2, rotated))


def _stable_reflector(a, b):
    """Unit w with (I − 2wwᵀ) a = ±b for unit vectors a, b: w ∝ a − b or a + b, whichever is longer (≥ √2), so
    w is never a rounding-sized difference normalised (a ≈ b made w a random direction in float32)."""
    w = a - jnp.where(jnp.dot(a, b) > 0.0, -1.0, 1.0) * b
    return w / jnp.linalg.norm(w)


def _layernorm_reflectors(y):
    """Unit vectors w₁, w₂ such that V = H₁H₂ has V e_{n−1} = ±ŷ and V e_n = ±1/√n (the signs do not matter:
    those two coordinates are scaled by ε/σ² and 0)."""
    n = y.shape[0]
    e_last, e_prev = jnp.eye(n, dtype=y.dtype)[n - 1], jnp.eye(n, dtype=y.dtype)[n - 2]
    ones = jnp.full((n,), 1.0 / jnp.sqrt(jnp.float32(n)), y.dtype)
    y_norm = jnp.linalg.norm(y)
    fallback = (e_prev - e_prev.mean()) / jnp.linalg.norm(e_prev - e_prev.mean())  # any unit vector ⟂ 1
    y_hat = jnp.where(y_norm > 0.0, y / jnp.where(y_norm > 0.0, y_norm, 1.0), fallback)
    w1 = _stable_reflector(e_last, ones)
    w2 = _stable_reflector(e_prev, _reflect_vector(w1, y_hat))  # ⟂ e_n, since (H₁ŷ)_n = ±⟨1/√n, ŷ⟩ = 0
    return w1, w2


def _layernorm_transpose(v, y):
    """σ · J_LNᵀ v = v − mean(v) − y (y·v)/n, where J_LN = (1/σ)(I − 11ᵀ/n − y yᵀ/n) is symmetric.

    Works on a vector (n,) or on the columns of a matrix (n, k)."""
    n = y.shape[0]
    if v.ndim == 1:
        return v - jnp.mean(v) - y * (jnp.dot(y, v) / n)
    return v - jnp.mean(v, axis=0, keepdims=True) - y[:, None] * ((y @ v) / n)[None, :]


class Trace(NamedTuple):
    """What the forward pass keeps of each layer for the backward pass and for the statistics."""

    dphi: jax.Array  # (C, n) d̃_l with φ′(z_l) = e^{c_l} d̃_l, max|d̃_l| ∈ [√½, √2) (``factored_derivative``)
    log_dphi_scale: jax.Array  # (C,) c_l = fl(k_l ln 2) (``vglab.core.logspace.factor_scale`` gives it exactly)
    inputs: jax.Array  # (C, n) input of W_l, scaled form
    log_input_scale: LogScale  # (C,)
    pre_y: jax.Array  # (C, n) output of the pre-LN (true values)
    pre_rho: LogScale  # (C,) log σ of the pre-LN
    post_y: jax.Array  # (C, n)
    post_rho: LogScale  # (C,)
    log_rms: LogScale  # (C,) log RMS(h_l)
    outputs: jax.Array | None = None  # (C, n) h_l scaled (RMS 1), only with keep_outputs
    log_output_scale: LogScale | None = None  # (C,) S_l with h_l = e^{S_l} outputs[l]
    log_abs_dphi: jax.Array | None = None  # (C, n) log|φ′(z_l)| unit by unit, only with keep_log_dphi
    sign_dphi: jax.Array | None = None  # (C, n) sign φ′(z_l), only with keep_log_dphi
    tiny_dphi: jax.Array | None = None  # () some φ′ below 2⁻¹⁰⁰ (dphi_mode="direct": the trace is then unusable)


def _at(array: LogScale, l) -> LogScale:
    return LogScale(array.hi[l], array.lo[l])


# Pre-activations whose scale is within e^{±40} are taken at their true size (scale 0), so a saturating φ
# sees z itself, rounded unit by unit; beyond, z̃ keeps its scale (tiny signals, saturated layers).
_FOLD_LIMIT = 40.0


def pre_activation(y, S_y: LogScale, b, S_b: LogScale):
    """z = e^{S_y} y + e^{S_b} b as (z̃, M) with z = e^M z̃: M = 0 (true values) where the larger scale is
    within e^{±40}, else M = max(S_y, S_b).  Both terms are scaled by ``exp_scaled``, so no rounded factor is
    common to a layer's units: each z_i rounds on its own, as a float32 forward pass does (the float32
    e^{s} that multiplied every z̃_i of a layer alike, and a float32 log σ_b, were systematic per-layer
    errors that 1000 layers added up).  y (n,), b (n,)."""
    S_z = scale_max(S_y, S_b)
    fold = (S_z.hi > -_FOLD_LIMIT) & (S_z.hi < _FOLD_LIMIT)
    M = scale_where(fold, log_scale(0.0), S_z)
    return exp_scaled(y, scale_sub(S_y, M)) + exp_scaled(b, scale_sub(S_b, M)), M


def factored_derivative(activation, zt, s, d, slope, mode: str = "cond"):
    """φ′ = e^c d̃ over a layer's units with c = k ln 2 (``power_of_two_scale``): (d̃, c, C), C the exact pair.

    Where every direct φ′ d is representable (|d| ≥ 2⁻¹⁰⁰), 2^k is the power of two nearest max|d| and
    d̃ = d 2^{−k} exactly: no rounding (a float32 e^{−c} rounded every unit's φ′ of a layer alike).  Where some
    φ′ is not (tanh at σ_w = 40, GELU far on its negative side) those units take d̃ = sign · e^{log|φ′| − k ln 2}
    from ``activation.log_dphi`` (a ``lax.cond``: the log-space form costs three transcendentals a unit and is
    evaluated only then); if every one is below, k rounds max log|φ′| (or c = max log|φ′| itself beyond
    ``POWER_OF_TWO_SCALE_LIMIT``).  Only the piecewise-linear ReLU side is exactly 0.

    mode (static): "cond" decides per layer as above; "direct" always takes the direct form (exact only where
    no φ′ is below 2⁻¹⁰⁰: the caller checks, see ``_forward``'s ``dphi_mode``); "logs" always the log-space one."""
    if activation.log_dphi is None:
        zero = jnp.zeros((), d.dtype)
        return d, zero, LogScale(zero, zero)
    absd = jnp.abs(d)
    top = jnp.max(absd)
    k, _ = power_of_two_exponent(top)

    def direct(_):
        c, C = power_of_two_scale(k)
        return times_power_of_two(d, -k), c, C

    def from_logs(_):
        log_abs, sign = activation.log_dphi(zt * jnp.exp(jnp.minimum(s, _MAX_EXP)), slope)
        log_top = jnp.max(log_abs)
        log_top = jnp.where(jnp.isfinite(log_top), log_top, 0.0)
        use_d = top >= _TINY_DERIVATIVE
        kf = jnp.where(use_d, k.astype(jnp.float32), jnp.round(log_top * np.float32(1.0 / math.log(2.0))))
        c2, C2 = power_of_two_scale(kf)
        moderate = jnp.abs(c2) < POWER_OF_TWO_SCALE_LIMIT
        rel = jnp.where(moderate, (log_abs - C2.hi) - C2.lo, log_abs - log_top)
        d_tilde = jnp.where(absd >= _TINY_DERIVATIVE, times_power_of_two(d, -k), sign * jnp.exp(rel))
        c = jnp.where(moderate, c2, log_top)
        return d_tilde, c, LogScale(jnp.where(moderate, C2.hi, log_top), jnp.where(moderate, C2.lo, 0.0))

    if mode == "direct":
        return direct(None)
    if mode == "logs":
        return from_logs(None)
    return jax.lax.cond(jnp.min(absd) < _TINY_DERIVATIVE, from_logs, direct, None)


def forward_step(activation, weight, bias, u, S: LogScale, log_weight_scale: LogScale, log_bias_scale: LogScale,
                 slope, dphi_mode: str = "cond"):
    """One plain layer forward from h = e^S ũ (the MLP's, and a width profile's, ``profile``).

    z = e^{S + w} Ŵũ + e^{log σ_b} b̂ as e^M z̃ (``pre_activation``), φ(z) = e^{S_a} ã (``activation.scaled``) and
    φ′(z) = e^c d̃ (``factored_derivative`` in ``dphi_mode``), not renormalised (a residual or a LayerNorm acts
    on φ(z) first).  weight Ŵ (n_out, n_in), rectangular in a profile; bias b̂ (n_out,); ũ (n_in,).
    Returns (ã, S_a, d̃, c, z̃, M, d), d the direct φ′ (``dphi_mode="direct"`` checks it)."""
    zt, M = pre_activation(weight @ u, scale_add(S, log_weight_scale), bias, log_bias_scale)
    at, s_a, d = activation.scaled(zt, M.hi, slope)
    dphi, c, _ = factored_derivative(activation, zt, M.hi, d, slope, dphi_mode)
    return at, follow(M, s_a), dphi, c, zt, M, d


def _forward(structure: Structure, scalars: Scalars, weights, biases, x, depth, keep_outputs: bool = False,
             keep_log_dphi: bool = False, dphi_mode: str = "cond", x_scale: LogScale | None = None):
    """h_0 = x through ``depth`` layers.  weights (C, n, n), biases (C, n), x (n,) → Trace.

    x_scale: h_0 = e^{x_scale} x, x already RMS-normalised (``normalise_rms``, which then leaves it as it is): a
    width profile's body continues from its first layers (``vglab.models.profile``).

    keep_outputs (static): also keep every layer's output h_l = e^{S_l} ũ_l (``Trace.outputs``,
    ``log_output_scale``).  keep_log_dphi (static): also keep log|φ′| and sign φ′ of every unit
    (``scaled_log_dphi``; the spectrum's row scales, which may span beyond float32 within a layer).
    dphi_mode (static, ``factored_derivative``): "cond" (a branch per layer), or "direct", which records in
    ``Trace.tiny_dphi`` whether some φ′ was below 2⁻¹⁰⁰ — then run it again with "logs" (``_traced``): one
    branch per call instead of one per layer."""
    activation = ACTIVATIONS[structure.activation]
    capacity, n = biases.shape
    zeros_cn = jnp.zeros((capacity, n), jnp.float32)
    zeros_c = jnp.zeros((capacity,), jnp.float32)
    pairs = LogScale(zeros_c, zeros_c)
    trace = Trace(zeros_cn, zeros_c, zeros_cn, pairs, zeros_cn, pairs, zeros_cn, pairs, None, None, None,
                  zeros_cn if keep_log_dphi else None, zeros_cn if keep_log_dphi else None,
                  jnp.zeros((), bool) if dphi_mode != "cond" else None)

    def layer(l, u, S, trace):  # one step of the forward chain (vglab.core.chain): h_l = e^S u to h_{l+1}
        if structure.norm == "pre":
            u_in, S_in, pre_y, pre_rho = _layernorm(u, S)
            trace = trace._replace(pre_y=trace.pre_y.at[l].set(pre_y), pre_rho=put_pair(trace.pre_rho, l, pre_rho))
        else:
            u_in, S_in = u, S
        # z = e^{s_w} Ŵ u_in + σ_b b̂ with s_w = s_in + log(σ_w/√n), held as e^{M} z̃, and φ(z), φ′(z).
        at, S_a, dphi, log_dphi_scale, zt, M, d = forward_step(
            activation, weights[l], biases[l], u_in, S_in, scalars.log_weight_scale, scalars.log_bias_scale,
            scalars.leaky_slope, dphi_mode)
        if dphi_mode == "direct" and activation.log_dphi is not None:
            trace = trace._replace(tiny_dphi=trace.tiny_dphi | (jnp.min(jnp.abs(d)) < _TINY_DERIVATIVE))
        if keep_log_dphi:
            log_abs, sign = scaled_log_dphi(activation, zt, M.hi, scalars.leaky_slope)
            trace = trace._replace(log_abs_dphi=trace.log_abs_dphi.at[l].set(log_abs),
                                   sign_dphi=trace.sign_dphi.at[l].set(sign))
        if structure.residual:
            u, S = scaled_add_pair(u, S, at, scale_add(S_a, scalars.log_residual_scale))
        else:
            u, S = at, S_a
        if structure.norm == "post":
            u, S, post_y, post_rho = _layernorm(u, S)
            trace = trace._replace(post_y=trace.post_y.at[l].set(post_y),
                                   post_rho=put_pair(trace.post_rho, l, post_rho))
        trace = trace._replace(dphi=trace.dphi.at[l].set(dphi),
                               log_dphi_scale=trace.log_dphi_scale.at[l].set(log_dphi_scale),
                               inputs=trace.inputs.at[l].set(u_in),
                               log_input_scale=put_pair(trace.log_input_scale, l, S_in))
        return u, S, trace  # the chain renormalises (normalise_rms) and logs log RMS(h_{l+1})

    u0, S0, _ = normalise_rms(x, log_scale(0.0) if x_scale is None else x_scale)
    chain = forward_chain(layer, u0, S0, depth, capacity, trace=trace, keep_states=keep_outputs)
    trace = chain.trace._replace(log_rms=chain.log_rms)
    if keep_outputs:
        trace = trace._replace(outputs=chain.states[0], log_output_scale=chain.states[1])
    return trace


def backward_step(weight, dphi, log_branch_factor: LogScale, log_input_norm: LogScale, v, R: LogScale,
                  log_weight_scale: LogScale):
    """One plain layer back from δ = e^R ṽ at its output (the MLP's, and a width profile's, ``profile``).

    ∂L/∂z = e^{R + log_branch_factor} (d̃ ⊙ ṽ) renormalised: (b̃, R_b, log ‖∂L/∂z‖); ‖∂L/∂W‖_F = ‖∂L/∂z‖ · ‖input‖
    (a rank-one matrix) from log_input_norm; and Wᵀ ∂L/∂z = e^{R_b + w} Ŵᵀ b̃ as (t̃, R_t), not renormalised (a
    residual or a LayerNorm acts on it first).  weight Ŵ (n_out, n_in), rectangular in a profile; dphi, v
    (n_out,) → b̃ (n_out,), t̃ (n_in,).  Returns (b̃, log ‖∂L/∂z‖, log ‖∂L/∂W‖_F, t̃, R_t).
    Ŵᵀ b̃ is written b̃ Ŵ: XLA:CPU runs a transposed matvec ~4x slower than a row-vector product."""
    branch, R_b, log_branch = normalise_unit(dphi * v, scale_add(R, log_branch_factor))
    return branch, log_branch, scale_add(log_branch, log_input_norm), branch @ weight, \
        scale_add(R_b, log_weight_scale)


def _backward(structure: Structure, scalars: Scalars, weights, trace: Trace, g, depth,
              keep_vectors: bool = False, g_scale: LogScale | None = None):
    """δ_L = g back to δ_0 (δ_L = e^{g_scale} g with g already unit-normalised, given g_scale: a width profile's
    body continues from its last layers, ``vglab.models.profile``).  Returns natural-log norms as ``LogScale``
    pairs: (C+1,) ‖∂L/∂h_l‖₂ and (C,) ‖∂L/∂W_l‖_F; with keep_vectors (static) also every δ_l as the engine carries it,
    δ_l = e^{R_l} ṽ_l entry by entry: ṽ (C+1, n) and R (C+1,) as a ``LogScale`` pair.  Every norm is taken
    of a renormalised vector (a tiny branch ∂L/∂z_l is divided by its own norm before it is multiplied by
    W_l), so nothing squares below float32's range."""
    capacity = weights.shape[0]
    log_grad_w = minus_inf_pairs(capacity)
    # log ‖x_l‖ of every layer's input (e^{s_l} x̃_l), one reduction over the whole trace instead of one per step.
    log_input_norms = scale_add(trace.log_input_scale, jnp.log(jnp.linalg.norm(trace.inputs, axis=1)))
    # log α + c_l: the branch's factor α φ′(z_l) = e^{log α + c_l} d̃_l, both exact pairs.
    log_branch_factor = scale_add(factor_scale(trace.log_dphi_scale), scalars.log_residual_scale)

    def layer(l, v, R, log_grad_w):  # one step of the renormalised chain (vglab.core.chain)
        if structure.norm == "post":
            v, R = _layernorm_transpose_exact(v, trace.post_y[l], _at(trace.post_rho, l)), \
                scale_add(R, scale_neg(_at(trace.post_rho, l)))
        # ∂L/∂z_l = e^{R + log α + c_l} (d̃_l ⊙ v), renormalised, and t = W_lᵀ ∂L/∂z_l.
        _, _, log_w, t, R_t = backward_step(weights[l], trace.dphi[l], _at(log_branch_factor, l),
                                            _at(log_input_norms, l), v, R, scalars.log_weight_scale)
        if structure.norm == "pre":
            t, R_t = _layernorm_transpose_exact(t, trace.pre_y[l], _at(trace.pre_rho, l)), \
                scale_add(R_t, scale_neg(_at(trace.pre_rho, l)))
        if structure.residual:
            v, R = scaled_add_pair(v, R, t, R_t)
        else:
            v, R = t, R_t
        return v, R, put_pair(log_grad_w, l, log_w)

    chain = backward_chain(layer, g, depth, capacity, state=log_grad_w, g_scale=g_scale, keep_vectors=keep_vectors)
    if keep_vectors:
        return chain.log_norms, chain.state, *chain.vectors
    return chain.log_norms, chain.state


def _traced(structure, scalars, weights, biases, inputs, depth):
    """Every seed's forward ``Trace`` (vmapped over the leading axis), φ′ in its direct form; if some φ′ of some
    seed and layer was below 2⁻¹⁰⁰ the forward pass runs again with the log-space φ′ (``factored_derivative``).
    The branch is taken once per call, outside the seeds' vmap, so it stays a branch (a per-layer
    ``lax.cond`` under vmap is a select that computes both forms every layer)."""
    def run(mode):
        trace = _per_seed(lambda w, b, x: _forward(structure, scalars, w, b, x, depth, dphi_mode=mode),
                          weights, biases, inputs)
        return trace, trace.tiny_dphi

    return retry_in_log_form(run, ACTIVATIONS[structure.activation].log_dphi is not None)  # vglab.core.chain


@partial(exact_jit, static_argnames=("structure",))
def _gradient_norms_program(structure, scalars, sup_dphi, weights, biases, inputs, directions, depth):
    traces = _traced(structure, scalars, weights, biases, inputs, depth)

    def one_seed(w, g, trace):
        log_grad_h, log_grad_w = _backward(structure, scalars, w, trace, g, depth)
        abs_dphi = jnp.abs(trace.dphi)  # |φ′| = e^c |d̃|
        threshold = SATURATION_LEVEL * sup_dphi * jnp.exp(-trace.log_dphi_scale)[:, None]
        saturated = jnp.mean(abs_dphi <= threshold, axis=1)
        # Dead: φ′ = 0 exactly, which only a flat side (ReLU) has; a saturated sigmoid/tanh/GELU unit is not dead.
        dead = jnp.mean(abs_dphi == 0.0, axis=1) if ACTIVATIONS[structure.activation].flat \
            else jnp.zeros_like(saturated)
        return (*log_grad_h, *log_grad_w, *trace.log_rms, saturated, dead)

    return _per_seed(one_seed, weights, directions, traces)


def _per_seed(one_seed, *arrays):
    """``jax.vmap(one_seed)(*arrays)``, but a single network runs unbatched: under vmap a ``lax.cond`` becomes
    a select that evaluates both branches (``factored_derivative``'s log-space φ′ every layer)."""
    if jax.tree.leaves(arrays)[0].shape[0] == 1:
        return jax.tree.map(lambda a: a[None], one_seed(*jax.tree.map(lambda a: a[0], arrays)))
    return jax.vmap(one_seed)(*arrays)


# --------------------------------------------------------------------------------------------- results
# The results' base (net, seed, n_seeds, log10_activation_grad and what derives from them) is
# vglab.core.results.GradientProfile; SeededGradients is its old name here.
SeededGradients = GradientProfile


@dataclass(frozen=True)
class GradientNorms(GradientProfile):
    """Per-layer gradient magnitudes of ``n_seeds`` independently drawn copies of ``net``.

    log10_activation_grad: (n_seeds, depth+1)  log10 ‖∂L/∂h_l‖₂, l = 0..depth (l = depth is ‖g‖).
    log10_weight_grad:     (n_seeds, depth)    log10 ‖∂L/∂W_l‖_F, l = 1..depth.
    log10_activation_rms:  (n_seeds, depth)    log10 RMS(h_l), l = 1..depth (the forward signal scale).
    saturated_fraction:    (n_seeds, depth)    share of units with |φ′(z_l)| ≤ 0.1 · sup|φ′|.
    dead_fraction:         (n_seeds, depth)    share of units with φ′(z_l) = 0 exactly (inactive ReLUs).
    An exactly zero gradient (every unit of a layer dead) is −inf: it is zero, not underflow.
    """

    log10_weight_grad: np.ndarray
    log10_activation_rms: np.ndarray
    saturated_fraction: np.ndarray
    dead_fraction: np.ndarray


def gradient_norms(net: MLP, seed: int = 0, n_seeds: int = 1, loss=None) -> GradientNorms:
    """Exact per-layer gradient norms of L = ⟨g, h_L⟩ for networks drawn with seeds seed..seed+n_seeds−1.

    Seed i fixes the weights, biases, the input x ~ N(0, I) and g ~ N(0, I).  See ``GradientNorms``.
    """
    if not isinstance(net, MLP):
        # Every other model brings its own exact engine through the GradientModel protocol
        # (vglab.core.results): net.gradient_profile(seed, n_seeds) returns a GradientProfile.
        own_engine = getattr(net, "gradient_profile", None)
        if own_engine is None:
            raise ValueError(f"gradient_norms expects a vglab.MLP, RNN, Transformer or Stack, "
                             f"got {type(net).__name__}")
        if loss is not None:
            if not hasattr(net, "blocks"):
                raise ValueError("loss= is for a vglab.Stack; other models use L = <g, h_L>")
            return own_engine(seed=seed, n_seeds=n_seeds, loss=loss)
        return own_engine(seed=seed, n_seeds=n_seeds)
    if loss is not None:
        raise ValueError("loss= is for a vglab.Stack; a vglab.MLP uses L = <g, h_L>")
    if net.widths is not None or net.init == "constant":  # non-square layers or the constant init
        from vglab.models.profile import profile_gradient_norms

        return profile_gradient_norms(net, seed=seed, n_seeds=n_seeds)
    seeds = check_seeds(seed, n_seeds)
    bank = weight_bank(seeds, net.width, net.orthogonal, net.depth)
    sup = np.float32(ACTIVATIONS[net.activation].sup_dphi(net.leaky_slope))
    out = _gradient_norms_program(_structure(net), _scalars(net), sup, bank.weights, bank.biases,
                                  bank.inputs, bank.directions, np.int32(net.depth))
    out = [np.asarray(a) for a in out]
    grad_h, grad_w, rms = (scale_to_float64(out[k], out[k + 1]) / LN10 for k in (0, 2, 4))
    saturated, dead = out[6:]
    L = net.depth
    return GradientNorms(net, seed, n_seeds, grad_h[:, : L + 1].astype(np.float64),
                         grad_w[:, :L].astype(np.float64), rms[:, :L].astype(np.float64),
                         saturated[:, :L].astype(np.float64), dead[:, :L].astype(np.float64))


# --------------------------------------------------------------------------------------------- spectra
def _reflect(w, M):
    """(I − 2wwᵀ) M for a unit vector w (or w = 0, the identity)."""
    return M - 2.0 * w[:, None] * (w @ M)[None, :]


def _unit_reflector(a, b):
    """w with (I − 2wwᵀ) a = b for unit vectors a, b (w = 0 when a = b)."""
    w = a - b
    norm = jnp.linalg.norm(w)
    return jnp.where(norm > 1e-30, w / jnp.where(norm > 1e-30, norm, 1.0), 0.0)


def _layernorm_chain_step(Q, y, rho: LogScale, log_d: GradedScales, U):
    """Fold a LayerNorm into the chain: J_LN Q · diag(e^d) U, exactly.

    J_LN = (1/σ)(I − 11ᵀ/n − yyᵀ/n) = (1/σ) V diag(1, …, 1, ε/σ², 0) Vᵀ, with V orthogonal whose last two
    columns are ŷ = y/‖y‖ and 1/√n (‖y‖² = n(1 − ε/σ²)).  V = H₁H₂ from two Householder reflectors.  The QR of
    the row-graded diag(s)·VᵀQ gives an exactly zero last row (LN removes the mean exactly) and resolves the
    ε/σ²-sized direction instead of leaving both to roundoff.  σ = e^ρ.
    """
    n = y.shape[0]
    w1, w2 = _layernorm_reflectors(y)  # H₁ e_n = 1/√n;  H₂ e_{n−1} = H₁ ŷ, H₂ e_n = e_n
    small = LAYERNORM_EPS * jnp.exp(-2.0 * rho.hi)  # ε/σ² ≤ 1
    scales = jnp.ones((n,), Q.dtype).at[n - 2].set(small).at[n - 1].set(0.0)
    rotated = _reflect(w2, _reflect(w1, Q))  # VᵀQ = H₂H₁Q
    Q1, R1 = jnp.linalg.qr(scales[:, None] * rotated)
    log_d, U = graded_left_multiply_offsets(R1, log_d, U)
    return _reflect(w1, _reflect(w2, Q1)), graded_scale_add(log_d, scale_neg(rho)), U  # V Q₁


# Largest spread (natural log) of one factor's row scales in a float32 QR step: e^-64 ≈ 1.6e-28 stays a normal
# float32 (smallest 1.2e-38) with room for LAPACK's scaling.  A layer whose φ′ spans more is split into factors.
CHUNK_SPREAD = 64.0


def _sorted_chain(Q, log_d: GradedScales, U):
    """The same chain Q · diag(e^d) U with the rows of T = diag(e^d) U in decreasing scale: Q's columns and T's
    rows permuted alike, then T re-triangularised from the right, T = T̂ Z (an RQ step on the unit rows of U:
    each row is rotated by the same orthogonal Z, so no row mixes with another and every row keeps its own
    scale).  Z is dropped: the singular values and Frobenius norms of Q T are those of Q T Zᵀ.  A triangular
    factor multiplied onto sorted rows keeps each row's diagonal term its largest (up to that factor's own
    spread), so a row never needs entries beyond float32's range around it.  The offsets are renormalised
    (``graded_renormalised``), so the many factors of one layer do not drift them from 0."""
    log_d = graded_renormalised(log_d)
    order = jnp.argsort(-log_d.relative)
    A = U[order]
    R = jnp.linalg.qr(A[::-1].T, mode="r")  # (F A)ᵀ = Q̃ R̃  ⇒  A = (F R̃ᵀ F)(F Q̃ᵀ), F the reversal
    return Q[:, order], GradedScales(log_d.top, log_d.relative[order]), R.T[::-1, ::-1]


def _dphi_factor_step(factor, Q, log_d: GradedScales, U):
    """Fold diag(factor) into the chain: QR of the rows of diag(factor)·Q sorted by |factor| (Householder QR is
    row-wise stable for sorted graded rows, Cox & Higham 1998), R multiplied onto diag(e^d) U."""
    order = jnp.argsort(-jnp.abs(factor))
    Q1, R1 = jnp.linalg.qr(factor[order][:, None] * Q[order])
    log_d, U = graded_left_multiply_offsets(R1, log_d, U)
    return jnp.zeros_like(Q1).at[order].set(Q1), log_d, U  # undo the row permutation


def _graded_dphi_steps(dphi, relative, sign, Q, log_d: GradedScales, U):
    """Fold diag(d̃) into the chain when d̃ = sign·e^{r} spans beyond float32 (r = log|φ′| − c down to −7000):
    as the product of diagonal factors diag(f_k), k = 0..m−1, each within ``CHUNK_SPREAD`` (f_0 = d̃ where
    r ≥ −CHUNK_SPREAD, sign·e^{−CHUNK_SPREAD} beyond, 0 for an exact zero; f_k = e^{clip(r + k·CHUNK_SPREAD,
    −CHUNK_SPREAD, 0)}, so Σ_k log f_k = r), one float32 QR step each on a re-sorted chain
    (``_sorted_chain``).  No row ever underflows, so a tiny φ′ gives a tiny σ, never a false 0."""
    finite = jnp.isfinite(relative)
    spread = -jnp.min(jnp.where(finite, relative, 0.0))
    steps = jnp.ceil(spread / CHUNK_SPREAD).astype(jnp.int32)
    first = jnp.where(relative >= -CHUNK_SPREAD, dphi, jnp.where(finite, sign * math.exp(-CHUNK_SPREAD), 0.0))

    def factor_step(k, carry):
        Q, log_d, U = _sorted_chain(*carry)
        rest = jnp.exp(jnp.clip(relative + k.astype(jnp.float32) * CHUNK_SPREAD, -CHUNK_SPREAD, 0.0))
        return _dphi_factor_step(jnp.where(k == 0, first, rest), Q, log_d, U)

    return _sorted_chain(*jax.lax.fori_loop(0, steps, factor_step, (Q, log_d, U)))


def _chain_step(structure, scalars, weights, trace, l, Q, log_d, U):
    """Fold layer l into the chain: J_lᵀ Q · diag(e^d) U = Q′ · diag(e^d′) U′.

    Plain layers factor J_lᵀ = [J_LN,pre] Ŵ_lᵀ diag(α φ′(z_l)) [J_LN,post] (J_LN is symmetric) and take one
    QR step per factor.  The step through diag(αφ′) is the QR of the row-graded diag(αφ′)·Y with rows sorted
    by |φ′| (Householder QR is row-wise stable for sorted graded rows, Cox & Higham 1998), so a saturated
    unit (φ′ ~ 1e-20) is resolved rather than lost in roundoff and a dead ReLU (φ′ = 0) gives an exactly zero
    row: an exactly zero singular value, not noise.  A layer whose φ′ spans beyond float32 (GELU′ from 1 down
    to 1e-3000) takes that step as several, each within float32's range (``_graded_dphi_steps``, selected by
    ``lax.cond`` inside the program, so no recompile): a tiny φ′ gives a tiny σ, never a false 0.  LayerNorms
    are folded in exactly by ``_layernorm_chain_step``.  Residual layers (I + α J_branch) take one QR of the sum.
    """
    if structure.norm == "post":
        Q, log_d, U = _layernorm_chain_step(Q, trace.post_y[l], _at(trace.post_rho, l), log_d, U)
    if structure.residual:
        alpha_dphi = jnp.exp(scalars.log_alpha + trace.log_dphi_scale[l]) * trace.dphi[l]
        branch = scalars.weight_scale * (weights[l].T @ (alpha_dphi[:, None] * Q))
        if structure.norm == "pre":
            branch = jnp.exp(-trace.pre_rho.hi[l]) * _layernorm_transpose(branch, trace.pre_y[l])
        return qr_fold(Q + branch, log_d, U)
    # α φ′ = e^{log α + c_l} d̃_l: the scale goes into the row scales exactly.  Where φ′ spans beyond float32
    # within the layer (d̃ would underflow), diag(d̃) is folded in as several factors (``_graded_dphi_steps``).
    c = trace.log_dphi_scale[l]
    relative = trace.log_abs_dphi[l] - c  # log|φ′_i| − c_l ≤ 0
    beyond = jnp.any(jnp.isfinite(relative) & (relative < -CHUNK_SPREAD))
    Q1, log_d, U = jax.lax.cond(beyond, _graded_dphi_steps,
                                lambda dphi, relative, sign, *chain: _dphi_factor_step(dphi, *chain),
                                trace.dphi[l], relative, trace.sign_dphi[l], Q, log_d, U)
    log_d = graded_scale_add(log_d, scalars.log_alpha + c)
    Q, log_d, U = qr_fold(weights[l].T @ Q1, log_d, U)
    log_d = graded_scale_add(log_d, scalars.log_weight_scale)
    if structure.norm == "pre":
        Q, log_d, U = _layernorm_chain_step(Q, trace.pre_y[l], _at(trace.pre_rho, l), log_d, U)
    return Q, log_d, U


@partial(exact_jit, static_argnames=("structure",))
def _spectrum_program(structure, scalars, weights, biases, x, depth):
    """Backward QR iteration over the chain (``vglab.core.spectrum.spectrum_chain`` around this model's exact graded
    fold ``_chain_step``): after layer l, (∂h_L/∂h_{l-1})ᵀ = Q diag(e^d) U Z for an orthogonal Z
    (Z = I but after a layer split by ``_graded_dphi_steps``; never formed: it changes no singular value and
    no Frobenius norm).  The row scales d are ``GradedScales``: one float64-accurate pair for the chain and
    float32 offsets, so the n×n steps do plain float32 work; returned as a ``LogScale`` vector.

    weights (1, C, n, n), biases (1, C, n), x (1, n): a one-seed bank, indexed here rather than by the
    caller (``bank.weights[0]`` outside jit copies the whole bank, 0.3 s at width 512, on every call)."""
    weights, biases, x = weights[0], biases[0], x[0]
    trace = _forward(structure, scalars, weights, biases, x, depth, keep_log_dphi=not structure.residual)
    capacity, n = biases.shape
    fold = partial(_chain_step, structure, scalars, weights, trace)  # fold(l, Q, log_d, U): layer l's exact step
    return spectrum_chain(fold, n, depth, capacity)  # the one spectrum skeleton (vglab.core.spectrum)


@dataclass(frozen=True)
class JacobianSpectrum:
    """The input–output Jacobian ∂h_L/∂h_0 = J_L ⋯ J_1 of one network.

    log10_singular_values: (width,) log10 σ_i, descending; −inf for an exactly zero σ (e.g. dead ReLUs make
                           the Jacobian rank-deficient).
    log10_partial_norms:   (depth,) log10 ‖∂h_L/∂h_l‖_F for l = 0..depth−1; its square is E_g ‖∂L/∂h_l‖²
                           for g ~ N(0, I), the quantity mean-field theory predicts.
    """

    net: MLP
    seed: int
    log10_singular_values: np.ndarray
    log10_partial_norms: np.ndarray

    def to_code(self) -> str:
        return f"vglab.jacobian_spectrum({self.net.to_code()}, seed={self.seed})"


_LAPACK_CONTROLLER: list = []


def single_threaded_lapack():
    """A context in which OpenBLAS/LAPACK (behind jax's CPU QR and NumPy's float64 linear algebra) runs on
    one thread.  The spectrum is a chain of n×n QR factorisations; threaded OpenBLAS spends most of a
    512×512 geqrf synchronising its threads, and on a shared 2-core machine it was measured 10–20x slower
    than one thread (benchmarks/README.md).  XLA's own matrix products keep their thread pool.  Without
    threadpoolctl (a dependency of scikit-learn) this is a no-op."""
    if not _LAPACK_CONTROLLER:
        try:
            import scipy.linalg  # noqa: F401  (loads the OpenBLAS that jax's CPU LAPACK kernels call)
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _LAPACK_CONTROLLER.append(None)
        else:
            _LAPACK_CONTROLLER.append(ThreadpoolController())
    controller = _LAPACK_CONTROLLER[0]
    if controller is None or jax.default_backend() != "cpu":
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


def jacobian_spectrum(net: MLP, seed: int = 0) -> JacobianSpectrum:
    """Exact singular values of ∂h_L/∂h_0 and Frobenius norms of the partial products, in log10.

    The chain is accumulated from the output with a QR step per layer (Benettin et al. 1980):
    (J_L⋯J_l)ᵀ = Q_l T_l with T_l upper triangular held as diag(e^d) U, so no scale is ever formed; the
    final T is resolved in float64 (``vglab.core.logspace.graded_log_singular_values``).
    """
    if not isinstance(net, MLP):
        # Every other model brings its own spectrum engine through the SpectrumModel protocol
        # (vglab.core.results): net.jacobian_spectrum(seed) returns its JacobianSpectrum.
        if not isinstance(net, SpectrumModel):
            raise ValueError(f"jacobian_spectrum expects a model with a jacobian_spectrum(seed) method (the "
                             f"vglab.SpectrumModel protocol: vglab.MLP, Stack or ConvNet), got "
                             f"{type(net).__name__}")
        return net.jacobian_spectrum(seed=seed)
    check_square_random(net, "jacobian_spectrum", instead="use gradient_norms, or depth= and width=")
    (seed,) = check_seeds(seed, 1)
    bank = weight_bank((seed,), net.width, net.orthogonal, net.depth)
    with single_threaded_lapack():
        log_d, U, partial = _spectrum_program(_structure(net), _scalars(net), bank.weights, bank.biases,
                                              bank.inputs, np.int32(net.depth))
        log_sv = graded_log_singular_values(scale_to_float64(*log_d), np.asarray(U))
    return JacobianSpectrum(net, seed, log_sv / LN10, scale_to_float64(*partial)[: net.depth] / LN10)


def compiled_programs() -> int:
    """How many programs the engine has compiled so far (a depth change must not add one)."""
    return _gradient_norms_program._cache_size() + _spectrum_program._cache_size()
