"""Exact per-layer gradient norms of an MLP whose layers are not all square (a width profile), and of the
constant initialisation.

Layers h_l = φ(z_l), z_l = W_l h_{l-1} + b_l with W_l ∈ ℝ^{n_l × n_{l-1}} (``vglab.models.mlp``), loss
L = ⟨g, h_L⟩, g ~ N(0, I_{n_L}).  The chain is the MLP's (``vglab.models.jacobians``), in the same log-space
form: h_l = e^{S_l} ũ_l with RMS(ũ_l) = 1, backward δ_l = e^{R_l} ṽ_l with ‖ṽ_l‖ = 1, φ′(z_l) = e^{c_l} d̃_l,
and W_l = e^{w_l} Ŵ_l with w_l = log σ_w − ½ log fan_l held as a float64-accurate pair, so nothing underflows
and nothing is rounded to float32 once per layer:

    ∂L/∂z_l = δ_l ⊙ φ′(z_l),    δ_{l-1} = W_lᵀ ∂L/∂z_l,    ‖∂L/∂W_l‖_F = ‖∂L/∂z_l‖ · ‖h_{l-1}‖.

Layers of different shapes cannot share one loop, so the profile is cut into runs of equal shape (as
``vglab.Stack`` cuts a stack into runs of equal structure): the layers before the *body* (the profile's longest
run of equal sizes, ``vglab.models.mlp.profile_body``) and after it are applied one by one with the square MLP's
own steps on rectangular weights (``pre_activation`` and ``factored_derivative`` forward, ``backward_step``
back), and the body runs the square MLP's own loops (``_forward`` and ``_backward``, one ``lax.fori_loop`` each,
continuing from the prefix and from the suffix) with the body's length as a *dynamic* trip count over a bank of
pre-drawn m × m layers whose capacity is bucketed like the square MLP's.  So profiles that differ only in their
body's length (a *family*) share one compiled program.

``unit_spread`` (per layer) is (max_i ∂L/∂z_{l,i} − min_i ∂L/∂z_{l,i}) / max_i |∂L/∂z_{l,i}|, from the
renormalised ∂L/∂z_l: since ∂L/∂W_l = (∂L/∂z_l) h_{l-1}ᵀ, it is 0 exactly when every row of ∂L/∂W_l (every
unit's gradient) is the same, which is what the constant initialisation gives every layer but the last
(where g differs per unit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core import init as _init
from vglab.core.activations import ACTIVATIONS
from vglab.core.banks import BankCache
from vglab.core.compilation import exact_jit
from vglab.core.logspace import (
    LN10,
    LogScale,
    factor_scale,
    log_scale,
    normalise_rms,
    normalise_unit,
    scale_add,
    scale_to_float64,
    split_float64,
)
from vglab.core.validation import check_seeds
from vglab.models.jacobians import (
    BANK_BUDGET_BYTES,
    SATURATION_LEVEL,
    GradientNorms,
    Scalars,
    Structure,
    _backward,
    _forward,
    backward_step,
    depth_capacity,
    forward_step,
)
from vglab.models.mlp import MLP, profile_body


class ProfileStructure(NamedTuple):
    """What selects a compiled program: the activation and the family (layers around the body, body width)."""

    activation: str
    prefix: tuple  # ((n_in, n_out), ...) before the body
    body_width: int  # m (0: no body)
    suffix: tuple  # ((n_in, n_out), ...) after the body


def family(net: MLP):
    """(structure, body length, global layer index of the body's first layer) of a profile or square net."""
    widths = net.layer_widths
    start, stop = profile_body(widths)
    shapes = tuple((widths[l], widths[l + 1]) for l in range(net.depth))
    structure = ProfileStructure(net.activation, shapes[:start], widths[start] if stop > start else 0,
                                 shapes[stop:])
    return structure, stop - start, start


def _log_weight_scale(net: MLP, n_in: int, n_out: int) -> LogScale:
    """w_l = log of W_l / Ŵ_l: log σ_w − ½ log fan (constant: log σ_w − log n_in)."""
    if net.sigma_w <= 0:
        return split_float64(-math.inf)
    if net.init == "constant":
        return split_float64(math.log(net.sigma_w) - math.log(n_in))
    return split_float64(math.log(net.sigma_w) - 0.5 * math.log(_init.fan(net.init, n_in, n_out)))


@partial(exact_jit, static_argnames=("n_out", "n_in", "constant"))
def _draw(seeds, layers, n_out, n_in, constant):
    def one(seed, layer):
        return (_init.unit_weight_rect(seed, layer, n_out, n_in, constant),
                _init.unit_bias_const(seed, layer, n_out, constant))

    return jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))(seeds, layers)


@partial(exact_jit, static_argnames=("n_in", "n_out"))
def _endpoints(seeds, n_in, n_out):
    return jax.vmap(lambda s: (_init.network_input(s, n_in), _init.output_direction(s, n_out)))(seeds)


_BANKS = BankCache(size=2, budget_bytes=BANK_BUDGET_BYTES)  # (seeds, body start, m, constant) → body (W, b)


def _weights(net: MLP, seeds):
    """(prefix [(W, b)], body (W, b) with a bucketed capacity, suffix [(W, b)], x, g), seeds on axis 0."""
    structure, body_len, start = family(net)
    constant = net.init == "constant"
    seeds_array = jnp.asarray(seeds, jnp.uint32)
    m = structure.body_width
    if m:
        _BANKS.check(4 * len(seeds) * body_len * m * m,
                     f"the body's depth × width² × n_seeds = {body_len} × {m}² × {len(seeds)} float32 weights need",
                     "depth or n_seeds")
        capacity = depth_capacity(body_len, m, len(seeds))
        body = _BANKS.grown((seeds, start, m, constant), lambda body: body[0].shape[1] >= capacity,
                            lambda old: _draw(seeds_array, start + jnp.arange(capacity), m, m, constant))
    else:
        body = (jnp.zeros((len(seeds), 1, 1, 1), jnp.float32), jnp.zeros((len(seeds), 1, 1), jnp.float32))

    def rect(shapes, first):
        return [tuple(a[:, 0] for a in _draw(seeds_array, jnp.arange(first + i, first + i + 1), n_out, n_in,
                                             constant))
                for i, (n_in, n_out) in enumerate(shapes)]

    prefix = rect(structure.prefix, 0)
    suffix = rect(structure.suffix, start + body_len)
    x, g = _endpoints(seeds_array, net.layer_widths[0], net.layer_widths[-1])
    return prefix, body, suffix, x, g


def _forward_layer(activation, slope, W, b, u, S, log_ws, log_bs):
    """h_{l-1} = e^S ũ through layer l, the MLP's ``forward_step`` on a rectangular W and then renormalised:
    (ũ', S', (d̃, c, ũ, S, log RMS(h_l))), φ′(z_l) = e^c d̃."""
    at, S_a, dphi, c, *_ = forward_step(activation, W, b, u, S, log_ws, log_bs, slope)
    u_out, S_out, log_rms = normalise_rms(at, S_a)
    return u_out, S_out, (dphi, c, u, S, log_rms)


def _spread(x):
    """(max x − min x) / max|x| over the units (0 for x = 0): ``unit_spread``, the same for any positive multiple
    of x (so ∂L/∂z_l's renormalised form gives it, and φ′(z_l) ⊙ ṽ_l)."""
    top = jnp.max(jnp.abs(x))
    return jnp.where(top > 0.0, (jnp.max(x) - jnp.min(x)) / jnp.where(top > 0.0, top, 1.0), 0.0)


def _backward_layer(W, record, v, R, log_ws):
    """δ_l = e^R ṽ back through layer l, the MLP's ``backward_step`` on a rectangular W and then renormalised:
    (ṽ', R', log ‖δ_{l-1}‖, log ‖∂L/∂W_l‖, unit spread)."""
    dphi, c, u_in, S_in, _ = record
    branch, _, log_w, t, R_t = backward_step(W, dphi, factor_scale(c),
                                             scale_add(S_in, jnp.log(jnp.linalg.norm(u_in))), v, R, log_ws)
    v, R, log_v = normalise_unit(t, R_t)
    return v, R, log_v, log_w, _spread(branch)


def _stats(activation, sup, dphi, c):
    saturated = jnp.mean(jnp.abs(dphi) <= SATURATION_LEVEL * sup * jnp.exp(-c))
    dead = jnp.mean(dphi == 0.0) if activation.flat else jnp.zeros(())
    return saturated, dead


def _pair_stack(pairs):
    return LogScale(jnp.stack([p.hi for p in pairs]), jnp.stack([p.lo for p in pairs]))


def _body_scalars(log_ws: LogScale, log_bs: LogScale, slope) -> Scalars:
    """The square MLP's ``Scalars`` of the body's plain layers (no residual: α = 1)."""
    return Scalars(jnp.exp(log_ws.hi), log_bs.hi, jnp.zeros((), jnp.float32), slope, log_ws, log_bs,
                   log_scale(0.0))


@partial(exact_jit, static_argnames=("structure",))
def _program(structure, scales, log_bs, slope, sup, prefix, body, suffix, xs, gs, body_len):
    """Per seed: per-layer outputs laid out [prefix, body (capacity), suffix].  The body runs the square MLP's
    own loops (``_forward``, ``_backward`` of ``vglab.models.jacobians``), continuing from the prefix and the
    suffix; the layers around it take the same steps one by one on rectangular weights."""
    activation = ACTIVATIONS[structure.activation]
    scale_pre, scale_body, scale_suf = scales
    chain = Structure(structure.activation, False, None)
    scalars = _body_scalars(scale_body, log_bs, slope)

    def one(prefix, body, suffix, x, g):
        u, S, _ = normalise_rms(x, log_scale(0.0))
        pre_records = []
        for (W, b), ws in zip(prefix, scale_pre, strict=True):
            u, S, rec = _forward_layer(activation, slope, W, b, u, S, ws, log_bs)
            pre_records.append(rec)
        Wb, bb = body
        C = bb.shape[0]
        if structure.body_width:
            trace = _forward(chain, scalars, Wb, bb, u, body_len, keep_outputs=True, x_scale=S)
            last = body_len - 1
            u, S = trace.outputs[last], LogScale(trace.log_output_scale.hi[last], trace.log_output_scale.lo[last])
        suf_records = []
        for (W, b), ws in zip(suffix, scale_suf, strict=True):
            u, S, rec = _forward_layer(activation, slope, W, b, u, S, ws, log_bs)
            suf_records.append(rec)

        v, R, log_g = normalise_unit(g, log_scale(0.0))
        out_suf = []
        for (W, _), ws, rec in zip(reversed(suffix), reversed(scale_suf), reversed(suf_records), strict=True):
            v, R, log_v, log_w, spread = _backward_layer(W, rec, v, R, ws)
            out_suf.append((log_v, log_w, rec[4], *_stats(activation, sup, rec[0], rec[1]), spread))
        out_suf = out_suf[::-1]
        if structure.body_width:
            log_h, log_w, vs, Rs = _backward(chain, scalars, Wb, trace, v, body_len, keep_vectors=True, g_scale=R)
            v, R = vs[0], LogScale(Rs.hi[0], Rs.lo[0])
            # ∂L/∂z_l ∝ φ′(z_l) ⊙ ṽ_l, ṽ_l the δ_l that enters layer l (row l + 1: row l is δ_{l-1}).
            spread = jax.vmap(_spread)(trace.dphi * vs[1:])
            sat, dead = jax.vmap(lambda d, c: _stats(activation, sup, d, c))(trace.dphi, trace.log_dphi_scale)
            out_body = (LogScale(log_h.hi[:C], log_h.lo[:C]), log_w, trace.log_rms, sat, dead, spread)
        out_pre = []
        for (W, _), ws, rec in zip(reversed(prefix), reversed(scale_pre), reversed(pre_records), strict=True):
            v, R, log_v, log_w, spread = _backward_layer(W, rec, v, R, ws)
            out_pre.append((log_v, log_w, rec[4], *_stats(activation, sup, rec[0], rec[1]), spread))
        out_pre = out_pre[::-1]

        columns = []
        for k in range(6):
            parts = [r[k] for r in out_pre]
            pairs = k in (0, 1, 2)
            chunks = [_pair_stack(parts) if pairs else jnp.stack(parts)] if parts else []
            if structure.body_width:
                chunks.append(out_body[k])
            if out_suf:
                chunks.append(_pair_stack([r[k] for r in out_suf]) if pairs else jnp.stack([r[k] for r in out_suf]))
            if pairs:
                columns += [jnp.concatenate([c.hi for c in chunks]), jnp.concatenate([c.lo for c in chunks])]
            else:
                columns.append(jnp.concatenate(chunks))
        return (*columns, *log_g)

    return jax.vmap(one)(prefix, body, suffix, xs, gs)


@dataclass(frozen=True)
class ProfileGradientNorms(GradientNorms):
    """``GradientNorms`` of a width profile (or a constant-init net), plus

    unit_spread: (n_seeds, depth) relative spread of the units' gradients ∂L/∂z_l in layer l = 1..depth
                 (0 exactly when all rows of ∂L/∂W_l are equal; see the module docstring).
    """

    unit_spread: np.ndarray


def profile_gradient_norms(net: MLP, seed: int = 0, n_seeds: int = 1) -> ProfileGradientNorms:
    """Exact per-layer gradient norms of a width profile or constant-init MLP (see the module docstring)."""
    seeds = check_seeds(seed, n_seeds)
    structure, body_len, _ = family(net)
    prefix, body, suffix, x, g = _weights(net, seeds)
    m = structure.body_width
    scales = ([_log_weight_scale(net, *s) for s in structure.prefix],
              _log_weight_scale(net, m, m) if m else split_float64(0.0),
              [_log_weight_scale(net, *s) for s in structure.suffix])
    log_bs = split_float64(math.log(net.bias_std) if net.bias_std > 0 else -math.inf)  # as the MLP's
    sup = np.float32(ACTIVATIONS[net.activation].sup_dphi(net.leaky_slope))
    out = _program(structure, scales, log_bs, np.float32(net.leaky_slope), sup, prefix, body, suffix, x, g,
                   np.int32(body_len))
    out = [np.asarray(a) for a in out]
    P, C = len(structure.prefix), body[1].shape[1]
    keep = np.r_[np.arange(P), P + np.arange(body_len if m else 0),
                 P + (C if m else 0) + np.arange(len(structure.suffix))]
    log_h, log_w, rms = (scale_to_float64(out[k], out[k + 1])[:, keep] / LN10 for k in (0, 2, 4))
    saturated, dead, spread = (out[k][:, keep].astype(np.float64) for k in (6, 7, 8))
    log_g = scale_to_float64(out[9], out[10]) / LN10
    grad_h = np.concatenate([log_h, log_g[:, None]], axis=1)
    return ProfileGradientNorms(net, seed, n_seeds, grad_h, log_w, rms, saturated, dead, spread)


def compiled_programs() -> int:
    return _program._cache_size()
