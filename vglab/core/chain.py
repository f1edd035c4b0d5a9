"""The renormalised backward chain, written once: every model's backward pass is this loop around its own step.

A network (or a recurrence unrolled in time) is a chain h_l = f_l(h_{l-1}), l = 1..T, with the loss
L = ⟨g, h_T⟩, so backpropagation is

    δ_T = g,    δ_{l-1} = J_lᵀ δ_l,    J_l = ∂f_l/∂h_{l-1},

and the lab reports log ‖δ_l‖₂ for l = 0..T.  A thousand sigmoid layers take ‖δ_0‖ to ~1e-600, far below
float32, so the chain carries δ_l as a unit vector and a log scale, δ_l = e^{R_l} δ̂_l with ‖δ̂_l‖ ∈ [√½, √2)
and R_l a ``LogScale`` pair (``vglab.core.logspace``).  One step is

    (w, R_w) = step(l, δ̂_l, R_l):     e^{R_w} w = J_{l+1}ᵀ δ_{l+1}  (the model's own vector–Jacobian product)
    δ̂_l = w / 2^k,  R_l = R_w + k ln 2,  log ‖δ_l‖ = R_l + log ‖δ̂_l‖      (``normalise_unit``: 2^k nearest ‖w‖)

Dividing by a power of two is exact and k ln 2 enters the pair exactly, so the renormalisation adds no
rounding: only the model's own float32 product and one log of a number in [√½, √2) round, and the running
log scale is a TwoSum pair (relative error ~2⁻⁴⁸ after any number of steps).  A model plugs in by writing
``step`` only: a ``jax.vjp`` of its block (the transformer, a user's ``vglab.Stack``) or a hand-fused product
where XLA:CPU needs it for speed (the MLP's and the RNN's ``δ W`` row-vector products).  The step may keep a
state of its own (the MLP's ‖∂L/∂W_l‖, the LSTM's cell adjoint ∂L/∂c_t) and may carry several vectors (a
pytree) with a ``normalise`` of its own.

Two drivers share the step: ``backward_chain`` is a ``lax.fori_loop`` with the number of steps as a dynamic
trip count over arrays of a fixed capacity (a depth change reuses the compiled program: the engines over
weight banks), and ``backward_scan`` a ``lax.scan`` over stacked per-step inputs (a static number of steps:
a user's stack of blocks that share one parameter structure).

The forward pass is one skeleton too, ``forward_chain``: h_{l+1} = f_l(h_l) carried as h_l = e^{S_l} ũ_l, one
step of the model

    (w, S_w, trace) = step(l, ũ_l, S_l, trace):     e^{S_w} w = h_{l+1}   (not renormalised)
    ũ_{l+1} = w / 2^k,  S_{l+1} = S_w + k ln 2,  log RMS(h_{l+1}) = S_{l+1} + log RMS(ũ_{l+1})   (``normalise_rms``)

in a ``lax.fori_loop`` with a dynamic trip count over arrays of a fixed capacity; the skeleton renormalises
and records log RMS(h_l) as a ``LogScale`` pair per step, the model keeps what its backward step reads in
``trace``.  A bounded recurrence (the LSTM's and GRU's |h| < 1) passes ``measure_rms``, which only measures.
``retry_in_log_form`` is the one "φ′ direct, and again in log form only if some φ′ < 2⁻¹⁰⁰" branch: the
whole forward pass runs with the direct φ′ and a flag, and a ``lax.cond`` reruns it with the log-space φ′
(``vglab.models.jacobians.factored_derivative``) only when the flag is set — one branch per call, not per
step.  Every model's forward runs on it: the MLP, the RNN (vanilla; the LSTM and GRU with ``measure_rms``),
the transformer (its ``normalise`` the last sublayer's renormalisation over the real tokens; it takes log RMS(h_l)
from the kept states after the loop, in one reduction, which keeps its numbers bit for bit), the BatchNormMLP;
a user's ``vglab.Stack`` runs its own blocks at their true size (``vglab.models.stack``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core.logspace import (
    LN10,
    LogScale,
    ln2_multiple,
    log_scale,
    minus_inf_pairs,
    normalise_rms,
    normalise_unit,
    power_of_two_exponent,
    put_pair,
    scale_add,
    scale_to_float64,
    times_power_of_two,
)

__all__ = ["BackwardChain", "ForwardChain", "backward_chain", "backward_scan", "forward_chain",
           "log10_rows", "measure_rms", "normalise_unit_wide", "renormalised_step", "retry_in_log_form"]


class BackwardChain(NamedTuple):
    """What ``backward_chain`` returns.

    log_norms: (C+1,) ``LogScale``  log ‖δ_l‖₂ for l = 0..T (row T is log ‖g‖), −inf in rows T+1..C.
    v, R:      δ̂_0 and R_0 (δ_0 = e^{R_0} δ̂_0): where a chain continues (a width profile's first layers).
    state:     the step's own state after the last step.
    vectors:   with keep_vectors, every δ_l as the chain carries it: δ̂ (C+1, n) and R (C+1,), else None.
    """

    log_norms: LogScale
    v: Any
    R: LogScale
    state: Any
    vectors: tuple | None


def normalise_unit_wide(v, R: LogScale):
    """``normalise_unit`` for a vector whose entries may lie anywhere in float32's range (a user's block):
    v is first divided by the power of two nearest max|v| (exact), so its squared entries neither underflow
    nor overflow when the norm is taken.  Returns (v̂, R′, log ‖e^R v‖) as ``normalise_unit``."""
    k, _ = power_of_two_exponent(jnp.max(jnp.abs(v)))
    return normalise_unit(times_power_of_two(v, -k), scale_add(R, ln2_multiple(k)))


def renormalised_step(step: Callable, v, R: LogScale, xs, normalise: Callable = normalise_unit):
    """One step of the chain: (w, R_w) = step(v, R, xs), renormalised.  Returns (δ̂, R, log ‖δ‖) with
    δ = e^{R_w} w = e^R δ̂ (``normalise``, ``normalise_unit`` by default)."""
    w, R_w = step(v, R, xs)
    return normalise(w, R_w)


def backward_chain(step: Callable, g, steps, capacity: int, *, state=None, g_scale: LogScale | None = None,
                   normalise: Callable = normalise_unit, start: tuple | None = None,
                   keep_vectors: bool = False) -> BackwardChain:
    """δ_T = e^{g_scale} g back to δ_0 through ``steps`` steps (a traced integer ≤ ``capacity``).

    step(l, δ̂_{l+1}, R_{l+1}, state) → (w, R_w, state) with e^{R_w} w = δ_l = J_{l+1}ᵀ δ_{l+1}, for l = T−1
    down to 0 (l is the 0-based index of the block or step whose Jacobian is applied, and the row that receives
    log ‖δ_l‖); ``normalise(w, R_w)`` → (δ̂_l, R_l, log ‖δ_l‖).
    start: (δ̂_T, R_T, log ‖δ_T‖) already normalised (a chain whose vector is a pytree), instead of g.
    keep_vectors (static): also keep every δ̂_l and R_l (``BackwardChain.vectors``; g of shape (n,)).
    Returns a ``BackwardChain``: log_norms (C+1,) as a ``LogScale`` pair, −inf beyond row T."""
    if start is None:
        start = normalise(g, log_scale(0.0) if g_scale is None else g_scale)
    v, R, logged = start
    log_norms = LogScale(jnp.full((capacity + 1,), -jnp.inf, jnp.float32).at[steps].set(logged.hi),
                         jnp.zeros((capacity + 1,), jnp.float32).at[steps].set(logged.lo))
    vectors = None
    if keep_vectors:
        zeros = jnp.zeros((capacity + 1,), jnp.float32)
        vectors = (jnp.zeros((capacity + 1, v.shape[0]), jnp.float32).at[steps].set(v),
                   LogScale(zeros.at[steps].set(R.hi), zeros.at[steps].set(R.lo)))

    def body(i, carry):
        v, R, log_norms, state, vectors = carry
        l = steps - 1 - i
        w, R_w, state = step(l, v, R, state)
        v, R, logged = normalise(w, R_w)
        log_norms = put_pair(log_norms, l, logged)
        if keep_vectors:
            vs, Rs = vectors
            vectors = (vs.at[l].set(v), put_pair(Rs, l, R))
        return v, R, log_norms, state, vectors

    v, R, log_norms, state, vectors = jax.lax.fori_loop(0, steps, body, (v, R, log_norms, state, vectors))
    return BackwardChain(log_norms, v, R, state, vectors)


def backward_scan(step: Callable, v, R: LogScale, xs, normalise: Callable = normalise_unit):
    """The chain over stacked per-step inputs xs (leading axis: steps l = 1..T, run from T down to 1):
    step(δ̂, R, xs_l) → (w, R_w) as in ``renormalised_step``.  Returns (δ̂_0, R_0, (T,) log ‖δ_{l-1}‖ as a
    ``LogScale`` pair, row l−1 for step l).  The compiled program does not grow with T (one ``lax.scan``)."""
    def body(carry, x):
        v, R, logged = renormalised_step(step, *carry, x, normalise)
        return (v, R), logged

    (v, R), logged = jax.lax.scan(body, (v, R), xs, reverse=True)
    return v, R, logged


# --------------------------------------------------------------------------------------------- forward
class ForwardChain(NamedTuple):
    """What ``forward_chain`` returns.

    u, S:     ũ_T and S_T (h_T = e^{S_T} ũ_T) after the last step.
    log_rms:  (C,) ``LogScale``  row l: what ``normalise`` logged for h_{l+1} (log RMS), −inf in rows T..C−1.
    trace:    the step's own trace after the last step.
    states:   with keep_states, every ũ_{l+1} (C, ...) and S_{l+1} (C,) ``LogScale`` in row l, else None.
    """

    u: Any
    S: LogScale
    log_rms: LogScale
    trace: Any
    states: tuple | None


def forward_chain(step: Callable, u0, S0: LogScale, steps, capacity: int, *, trace=None,
                  normalise: Callable = normalise_rms, keep_states: bool = False) -> ForwardChain:
    """h_0 = e^{S0} u0 forward through ``steps`` steps (a traced integer ≤ ``capacity``).

    step(l, ũ_l, S_l, trace) → (w, S_w, trace) with e^{S_w} w = h_{l+1}, l = 0..T−1; ``normalise(w, S_w)`` →
    (ũ_{l+1}, S_{l+1}, logged), ``normalise_rms`` by default (logged = log RMS(h_{l+1}), −inf for h = 0).
    u0 is taken as given (normalise it first where the model wants it renormalised).
    keep_states (static): also keep every ũ_{l+1}, S_{l+1} (``ForwardChain.states``).
    Returns a ``ForwardChain``."""
    log_rms = minus_inf_pairs(capacity)
    states = None
    if keep_states:
        zeros = jnp.zeros((capacity,), jnp.float32)
        states = (jax.tree.map(lambda a: jnp.zeros((capacity,) + a.shape, a.dtype), u0), LogScale(zeros, zeros))

    def body(l, carry):
        u, S, log_rms, trace, states = carry
        w, S_w, trace = step(l, u, S, trace)
        u, S, logged = normalise(w, S_w)
        log_rms = put_pair(log_rms, l, logged)
        if keep_states:
            us, Ss = states
            states = (jax.tree.map(lambda a, x: a.at[l].set(x), us, u), put_pair(Ss, l, S))
        return u, S, log_rms, trace, states

    u, S, log_rms, trace, states = jax.lax.fori_loop(0, steps, body, (u0, S0, log_rms, trace, states))
    return ForwardChain(u, S, log_rms, trace, states)


def measure_rms(u, S: LogScale):
    """``forward_chain``'s ``normalise`` for a bounded state carried at its true size (the LSTM's and GRU's
    |h| < 1, S = 0 throughout): no renormalisation, (u, S, log RMS(h)) with h the first array of u (a pytree:
    the LSTM's (h, c)), in float32."""
    h = jax.tree.leaves(u)[0]
    return u, S, log_scale(jnp.log(jnp.sqrt(jnp.mean(h * h))))


def retry_in_log_form(run: Callable, log_form: bool = True):
    """run(mode) → (out, tiny): a whole forward pass with φ′ in ``mode`` ("direct" or "logs",
    ``vglab.models.jacobians.factored_derivative``) and tiny, whether some direct φ′ was below 2⁻¹⁰⁰ (any
    entry, when run batches several networks).  Returns run("direct")'s out, or run("logs")'s when tiny: one
    ``lax.cond`` per call (call it outside a ``vmap``: under vmap a cond is a select that runs both).
    log_form False (an activation without a log-space φ′): run("direct")'s out, no branch."""
    out, tiny = run("direct")
    if not log_form:
        return out
    return jax.lax.cond(jnp.any(tiny), lambda: run("logs")[0], lambda: out)


# --------------------------------------------------------------------------------------------- engine entries
def log10_rows(hi, lo, rows: int) -> np.ndarray:
    """A program's (n_seeds, C) natural-log ``LogScale`` pairs as float64 log10 values, rows 0..rows−1 of each seed
    (a chain of T steps fills T+1 of its C+1 rows)."""
    return scale_to_float64(hi, lo)[:, :rows] / LN10
