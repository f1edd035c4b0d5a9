"""Log-space arithmetic for vectors and matrices whose scale escapes float32.

A quantity x is held as (x̃, s) with x = e^s · x̃ and x̃ of order one.  Every helper returns a renormalised
pair, so a product of a thousand factors of 0.25 (≈ 1e-602) is carried as s ≈ −1386 and never underflows.
Natural logarithms throughout; the public results convert to log10 at the edge.

Exact at any depth: a running scale of size |s| ~ 700 (depth 1000, a factor 0.5 a layer) has float32 spacing
6e-5, so adding each layer's log ρ in float32 would round a thousand times (a relative error of 1e-3 in the
norm).  The engine therefore carries its running scales as ``LogScale`` pairs s = hi + lo of float32 numbers
(a double-float, Dekker 1971), added with Knuth's error-free TwoSum: every addition is exact to ~2⁻⁴⁸
relative, and the host adds hi + lo in float64.  Wherever a scale enters arithmetic (e^{s−t}, a saturating
activation's argument) hi is used, whose error ≤ ulp(hi)/2 matters only where the scale is moderate.
Only float32 operations: fast, and the same on every device.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class LogScale(NamedTuple):
    """A natural-log scale s = hi + lo held as two float32 arrays with |lo| ≤ ulp(hi)/2 (or lo = 0 where hi is
    ±inf).  Arrays of any shape: a scalar per layer, or a vector of row scales in the spectrum."""

    hi: jax.Array
    lo: jax.Array


def log_scale(x) -> LogScale:
    """The exact float32 value(s) x as a ``LogScale`` (lo = 0)."""
    x = jnp.asarray(x, jnp.float32)
    return LogScale(x, jnp.zeros_like(x))


def minus_inf_pairs(size: int) -> LogScale:
    """(size,) pairs of log 0 = −inf (lo = 0): the rows of a log-norm record no step has reached yet."""
    return LogScale(jnp.full((size,), -jnp.inf, jnp.float32), jnp.zeros((size,), jnp.float32))


def put_pair(array: LogScale, l, value: LogScale) -> LogScale:
    """``array`` with row l set to ``value`` (both halves of the pair): ``array.at[l].set(value)`` for a
    ``LogScale`` of arrays."""
    return LogScale(array.hi.at[l].set(value.hi), array.lo.at[l].set(value.lo))


def split_float64(x: float) -> LogScale:
    """A float64 number as a ``LogScale`` hi + lo of float32 (hi = fl32(x), lo = fl32(x − hi); lo = 0 where x is
    not finite), so a scale that enters every layer or step is not rounded to float32 a thousand times."""
    hi = np.float32(x)
    lo = np.float32(x - float(hi)) if math.isfinite(x) else np.float32(0.0)
    return LogScale(hi, lo)


def _two_sum(a, b):
    """(s, e) with s = fl(a + b) and a + b = s + e exactly (Knuth 1969), e = 0 where s is not finite."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, jnp.where(jnp.isfinite(s), e, 0.0)


def _renormalised(s, e) -> LogScale:
    hi = s + e
    lo = e - (hi - s)
    finite = jnp.isfinite(hi)
    return LogScale(hi, jnp.where(finite, lo, 0.0))


def scale_add(S: LogScale, x) -> LogScale:
    """S + x for a float32 x (or another ``LogScale``), correctly rounded to ~2⁻⁴⁸ relative."""
    if isinstance(x, LogScale):
        s, e = _two_sum(S.hi, x.hi)
        return _renormalised(s, e + (S.lo + x.lo))
    s, e = _two_sum(S.hi, x)
    return _renormalised(s, e + S.lo)


def scale_neg(S: LogScale) -> LogScale:
    return LogScale(-S.hi, -S.lo)


def scale_diff(S: LogScale, T: LogScale):
    """S − T as a float32: exact when S and T are within a factor 2 of each other (Sterbenz), so e^{S−T} is
    accurate however large S and T are; 0 where they are the same infinity."""
    return jnp.where(S.hi == T.hi, S.lo - T.lo, (S.hi - T.hi) + (S.lo - T.lo))


def scale_sub(S: LogScale, T: LogScale) -> LogScale:
    """S − T as a ``LogScale`` pair (TwoSum), 0 where S and T are the same infinity (e^{S−T} = 1 there, as in
    ``scale_diff``)."""
    same = S.hi == T.hi
    D = scale_add(S, scale_neg(T))
    return LogScale(jnp.where(same, S.lo - T.lo, D.hi), jnp.where(same, 0.0, D.lo))


def scale_max(S: LogScale, T: LogScale) -> LogScale:
    """The larger of S and T (elementwise)."""
    first = (S.hi > T.hi) | ((S.hi == T.hi) & (S.lo >= T.lo))
    return LogScale(jnp.where(first, S.hi, T.hi), jnp.where(first, S.lo, T.lo))


def scale_where(condition, S: LogScale, T: LogScale) -> LogScale:
    return LogScale(jnp.where(condition, S.hi, T.hi), jnp.where(condition, S.lo, T.lo))


def follow(S: LogScale, new_hi) -> LogScale:
    """The scale a function returned for input scale S.hi, as a pair: S itself where it returned S.hi unchanged
    (homogeneous activations pass the scale through), else the fresh value ``new_hi`` (lo = 0)."""
    same = new_hi == S.hi
    return LogScale(jnp.where(same, S.hi, new_hi), jnp.where(same, S.lo, 0.0))


def scale_to_float64(hi, lo) -> np.ndarray:
    """hi + lo in float64 on the host (the value a ``LogScale`` stands for)."""
    hi = np.asarray(hi, np.float64)
    lo = np.asarray(lo, np.float64)
    return np.where(np.isfinite(hi), hi + lo, hi)


def normalise_rms(u, S: LogScale):
    """(u/2^k, S + k ln 2, S + log ρ) with ρ = RMS(u) and 2^k the power of two nearest ρ, so the returned u has
    RMS in [√½, √2) and e^S u is unchanged exactly (``_divide_out_scaled``); the last is −inf for u = 0 (where
    the scale stays S) and NaN for a NaN ρ."""
    return _divide_out_scaled(u, S, jnp.sqrt(jnp.mean(u * u)))


def normalise_unit(v, R: LogScale):
    """(v/2^k, R + k ln 2, R + log ‖v‖) with 2^k the power of two nearest ‖v‖ (so ‖v/2^k‖ ∈ [√½, √2)):
    ``renormalise_unit_logged`` on a ``LogScale``, exact in the scale (``_divide_out_scaled``)."""
    return _divide_out_scaled(v, R, jnp.linalg.norm(v))


# ln 2 = LN2_HI + LN2_LO with LN2_HI of 15 significant bits (Cody & Waite 1980): k·LN2_HI is exact for |k| < 512.
LN2_HI = np.float32(0.693145751953125)
LN2_LO = np.float32(math.log(2.0) - 0.693145751953125)
_SQRT_HALF = np.float32(math.sqrt(0.5))


def power_of_two_exponent(size):
    """(k, ok): the int32 k with size/2^k ∈ [√½, √2) (the power of two nearest ``size`` in log scale) where
    ``size`` is positive and finite (ok), k = 0 elsewhere."""
    ok = (size > 0.0) & jnp.isfinite(size)
    mantissa, exponent = jnp.frexp(jnp.where(ok, size, 1.0))
    return jnp.where(ok, jnp.where(mantissa < _SQRT_HALF, exponent - 1, exponent), 0), ok


def _power_of_two(k):
    """2^k as a float32 for an integer k in [−126, 127], built from its bits (exponent field k + 127): two
    integer operations, where ``jnp.ldexp`` lowers to XLA's ``power`` (a transcendental, and a kernel of its
    own in a loop body)."""
    biased = jnp.clip(jnp.asarray(k, jnp.int32) + 127, 1, 254)
    return jax.lax.bitcast_convert_type(jnp.left_shift(biased, 23), jnp.float32)


def times_power_of_two(x, k):
    """x · 2^k, exact wherever the result is a normal number: a product of two representable powers of two
    (2^⌊k/2⌋ · 2^{k−⌊k/2⌋}), so |k| up to 252 (2^{−k} of a tiny φ′ or norm never overflows on the way)."""
    k = jnp.asarray(k, jnp.int32)
    half = k // 2
    return x * _power_of_two(half) * _power_of_two(k - half)


def ln2_multiple(k) -> LogScale:
    """k ln 2 as a ``LogScale`` pair (k · LN2_HI, k · LN2_LO): exact to ~1e-13 relative for |k| < 512."""
    kf = jnp.asarray(k).astype(jnp.float32)
    return LogScale(kf * LN2_HI, kf * LN2_LO)


# Taylor coefficients of e^r − 1 − r = Σ_{j≥2} r^j/j! through r⁸: truncation < 2.2e-10 relative for |r| ≤ ln√2.
_EXPM1_TAIL = tuple(np.float32(1.0 / math.factorial(j)) for j in range(2, 9))
_INV_LN2 = np.float32(1.0 / math.log(2.0))


def exp_scaled(x, D: LogScale):
    """x · e^D for a ``LogScale`` D (scalar or broadcasting), rounding each entry on its own: no factor common to
    the entries is rounded (beyond ~1e-9 relative).

    D = k ln 2 + r with |r| ≤ ln√2 (Cody-Waite: r = (hi − k LN2_HI) − k LN2_LO + lo, the first difference
    exact), e^r = 1 + r_hi + t with t = q + (e^{r_lo} − 1)(1 + r_hi + q), q = e^{r_hi} − 1 − r_hi (a Taylor
    tail; t ≤ 0.066 summed in float32, ~5e-9 absolute), and x e^D = 2^k (x + (x r_hi + x t)): the power of two
    is exact, and the rest rounds entry by entry like a float32 product (measured: mean relative error ~1e-9,
    largest 1.8 half-ulps).  A float32 e^{D} times x (what the engine did) rounds
    the factor itself once for all entries, up to a few ulp (XLA's exp is not correctly rounded, nor unbiased):
    through 1000 layers that common-mode rounding was 5e-6 to 1.6e-5 in log10 of the gradient.  −inf gives 0;
    |D| beyond ±170 is clamped (x e^{±170} is 0 or ∞ for float32 x of order one anyway)."""
    finite = jnp.isfinite(D.hi)
    hi = jnp.clip(jnp.where(finite, D.hi, 0.0), -170.0, 170.0)
    lo = jnp.where(finite & (hi == D.hi), D.lo, 0.0)
    kf = jnp.round(hi * _INV_LN2)
    r_hi = hi - kf * LN2_HI  # exact: k LN2_HI has ≤ 23 significant bits and lies within a factor 2 of hi
    r_lo = lo - kf * LN2_LO
    tail = _EXPM1_TAIL[-1]
    for c in _EXPM1_TAIL[-2::-1]:
        tail = c + r_hi * tail
    q = r_hi * r_hi * tail  # e^{r_hi} = 1 + r_hi + q
    t = q + (r_lo + 0.5 * r_lo * r_lo) * (1.0 + r_hi + q)  # e^{r_hi + r_lo} = 1 + r_hi + t (|r_lo| < 4e-4)
    y = times_power_of_two(x + (x * r_hi + x * t), kf.astype(jnp.int32))
    return jnp.where(finite, y, jnp.where(D.hi < 0.0, jnp.zeros_like(y), x * D.hi))


# A factored scale c (φ′ = e^c d̃) below this size is a multiple k ln 2 of a power of two (``factor_scale``).
POWER_OF_TWO_SCALE_LIMIT = 300.0


def power_of_two_scale(k) -> tuple:
    """(c, C) for an exponent k: the float32 c = fl(k ln 2) a trace stores, and the exact pair C = k ln 2."""
    C = ln2_multiple(k)
    return C.hi + C.lo, C


def factor_scale(c) -> LogScale:
    """The exact scale a stored float32 factor scale c stands for: k ln 2 (a ``LogScale`` pair) where
    |c| < ``POWER_OF_TWO_SCALE_LIMIT`` (there c = fl(k ln 2), k = round(c/ln 2)), else c itself.  So a
    factor 2^k d̃ taken out exactly by a power of two is added back exactly, with nothing but c stored."""
    moderate = jnp.abs(c) < POWER_OF_TWO_SCALE_LIMIT
    kf = jnp.round(jnp.where(moderate, c, 0.0) * _INV_LN2)
    C = ln2_multiple(kf)
    return LogScale(jnp.where(moderate, C.hi, c), jnp.where(moderate, C.lo, 0.0))


def _divide_out_scaled(x, S, size):
    """(x/2^k, S + k ln 2, S + log size) with 2^k the power of two nearest ``size`` (size/2^k ∈ [√½, √2)).

    Dividing by a power of two is exact and k ln 2 enters the pair exactly (``LN2_HI``, ``LN2_LO``), so a
    renormalisation adds no rounding to the scale: only the vector's own float32 arithmetic rounds.  (Dividing
    by ``size`` itself and adding fl(log size) rounded the scale by ~ulp(log size) at every step, a drift that
    XLA's log, a few ulp off and not unbiased, made grow with depth.)  The third value, the log of the true
    size, is S + k ln 2 + log(size/2^k): the last term is at most 0.35, so rounds by < 3e-8."""
    k, ok = power_of_two_exponent(size)
    scaled = times_power_of_two(x, -k)  # exact
    new = scale_add(S, ln2_multiple(k))
    rest = jnp.log(times_power_of_two(jnp.where(ok, size, 1.0), -k))
    logged = scale_add(new, rest)
    logged = LogScale(jnp.where(ok, logged.hi, S.hi + jnp.log(size)), jnp.where(ok, logged.lo, 0.0))
    return jnp.where(ok, scaled, x / jnp.where(size > 0.0, size, 1.0)), new, logged


def scaled_add_pair(u, S: LogScale, v, T: LogScale):
    """e^S u + e^T v as (w, M) with M = max(S, T): ``scaled_add`` on ``LogScale`` pairs, the smaller term
    scaled by ``exp_scaled`` (no rounded factor common to its entries)."""
    M = scale_max(S, T)
    return exp_scaled(u, scale_sub(S, M)) + exp_scaled(v, scale_sub(T, M)), M


def renormalise_rms(u, s):
    """(u, s) → (u/ρ, s + log ρ) with ρ = RMS(u), so the returned u has RMS 1 (or stays 0 if u = 0)."""
    return renormalise_rms_logged(u, s)[:2]


def renormalise_rms_logged(u, s):
    """``renormalise_rms`` and log RMS(e^s u) from the same reduction: (u/ρ, s + log ρ, s + log ρ), the last
    −inf for u = 0 (where the scale stays s)."""
    rms = jnp.sqrt(jnp.mean(u * u))
    return _divide_out(u, s, rms)


def renormalise_unit(v, r):
    """(v, r) → (v/‖v‖, r + log ‖v‖), so the returned v has unit Euclidean norm (or stays 0 if v = 0)."""
    return renormalise_unit_logged(v, r)[:2]


def renormalise_unit_logged(v, r):
    """``renormalise_unit`` and log ‖e^r v‖₂ from the same reduction: (v/‖v‖, r + log ‖v‖, r + log ‖v‖), the
    last −inf for v = 0 (where the scale stays r)."""
    return _divide_out(v, r, jnp.linalg.norm(v))


def _divide_out(x, s, size):
    safe = jnp.where(size > 0.0, size, 1.0)
    return x / safe, s + jnp.log(safe), s + jnp.log(size)  # log 0 = −inf; a NaN size stays NaN


def log_norm(v, r):
    """log ‖e^r v‖₂ (−inf for an exact zero vector)."""
    return r + jnp.log(jnp.linalg.norm(v))


def scaled_add(u, s, v, t):
    """e^s u + e^t v as (w, m) with m = max(s, t), so neither term is exponentiated above 1."""
    m = jnp.maximum(s, t)
    return jnp.exp(s - m) * u + jnp.exp(t - m) * v, m


def graded_left_multiply(R, log_d, U):
    """R · diag(e^{log_d}) · U as diag(e^{log_d′}) · U′ with unit-norm rows of U′, never overflowing.

    Row i of the product is Σ_k R_ik e^{d_k} U_k.  With m_i = max_k (log|R_ik| + d_k) it equals
    e^{m_i} Σ_k C_ik U_k where C_ik = sign(R_ik) e^{log|R_ik| + d_k − m_i} has |C_ik| ≤ 1.
    R: (n, n), log_d: (n,), U: (n, n) with unit rows.
    """
    log_terms = jnp.log(jnp.abs(R)) + log_d[None, :]
    m = jnp.max(log_terms, axis=1)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    C = jnp.sign(R) * jnp.exp(log_terms - m[:, None])
    rows = C @ U
    norms = jnp.linalg.norm(rows, axis=1)
    safe = jnp.where(norms > 0.0, norms, 1.0)
    return m + jnp.log(norms), rows / safe[:, None]


class GradedScales(NamedTuple):
    """The row scales d_i = top + relative_i of a graded chain diag(e^d) U: one ``LogScale`` pair ``top`` for the
    whole chain (a scalar, float64-accurate: it carries the chain's running scale, thousands of natural-log
    units at depth 10000) and float32 offsets ``relative`` (n,) of the size of the rows' spread (−inf for an
    exactly zero row; max 0 after ``graded_renormalised``).

    All the pair arithmetic is on ``top``, O(1) a step; the n×n steps (``graded_left_multiply_offsets``) see
    plain float32 offsets.  The offsets are as exact as a pair per row would keep them: that form too fed
    each step the float32 differences d_i − max_k d_k (one rounding), as ``graded_renormalised`` does.  (A
    pair per row cost 6–20 % of the spectrum's time: XLA fused the O(n) pair arithmetic into the n×n
    elementwise work of ``graded_left_multiply`` and recomputed it for every entry, benchmarks/README.md.)"""

    top: LogScale
    relative: jax.Array


def graded_scales(n: int) -> GradedScales:
    """The row scales of the identity chain: top 0, every offset 0."""
    zero = jnp.zeros((), jnp.float32)
    return GradedScales(LogScale(zero, zero), jnp.zeros((n,), jnp.float32))


def graded_scale_add(S: GradedScales, x) -> GradedScales:
    """Every row scale plus the same x (a float32 or a ``LogScale``): exact, added to ``top`` by TwoSum."""
    return GradedScales(scale_add(S.top, x), S.relative)


def graded_renormalised(S: GradedScales) -> GradedScales:
    """The same row scales with the offsets' maximum m moved into ``top`` (TwoSum, exact) and the offsets
    r_i − m rounded once to float32 (exact for r_i within a factor 2 of m, Sterbenz), so the offsets do not
    drift with depth.  A zero chain (every offset −inf) is left as it is."""
    m = jnp.max(S.relative)
    m = jnp.where(jnp.isfinite(m), m, 0.0)
    return GradedScales(scale_add(S.top, m), S.relative - m)


def graded_left_multiply_offsets(R, S: GradedScales, U):
    """R · diag(e^d) · U for row scales d = top + relative (``GradedScales``) as diag(e^{d′}) U′ with unit rows:
    ``graded_left_multiply`` on the float32 offsets (the common factor e^top commutes with R), top unchanged.
    O(n²) float32 work and no pair arithmetic; renormalise the offsets (``graded_renormalised``, O(n)) before
    they drift far from 0."""
    relative, U = graded_left_multiply(R, S.relative, U)
    return GradedScales(S.top, relative), U


def graded_log_frobenius(S: GradedScales) -> LogScale:
    """log ‖diag(e^d) U‖_F = top + ½ log Σ_i e^{2 r_i} for U with unit rows (−inf for a zero chain)."""
    return scale_where(jnp.isfinite(S.top.hi), scale_add(S.top, 0.5 * jax.nn.logsumexp(2.0 * S.relative)), S.top)


def graded_pairs(S: GradedScales) -> LogScale:
    """The row scales top + relative_i as a ``LogScale`` vector (TwoSum, exact)."""
    shape = S.relative.shape
    return scale_add(LogScale(jnp.broadcast_to(S.top.hi, shape), jnp.broadcast_to(S.top.lo, shape)), S.relative)


def _graded_left_multiply_np(R, log_d, U=None):
    """``graded_left_multiply`` in float64 on the host; U = None for the identity (no product formed: C @ I is
    C, exactly)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = np.log(np.abs(R)) + log_d[None, :]
        m = np.max(log_terms, axis=1)
        m = np.where(np.isfinite(m), m, 0.0)
        C = np.sign(R) * np.exp(log_terms - m[:, None])
        rows = C if U is None else C @ U
        norms = np.linalg.norm(rows, axis=1)
        safe = np.where(norms > 0.0, norms, 1.0)
        return m + np.log(norms), rows / safe[:, None]


# Spread (natural log) of row scales below which a plain float64 SVD is accurate to ~1e-8 relative.
_DIRECT_SVD_SPREAD = 18.0


def graded_log_singular_values(log_d, U, tol=1e-12, max_sweeps=100):
    """log σ_i (descending) of T = diag(e^{log_d}) U, where U has unit rows.

    The row scales may span thousands of natural-log units, beyond float64.  Small spreads: one float64 SVD.
    Otherwise the zero-shift QR iteration on the triangular factor (Demmel & Kahan 1990): with the rows in
    descending scale, Tᵀ = Uᵀ D = Q (R₂ D), and T′ = R₂ D has the singular values of T.  After each sweep T′ is
    split into diagonal blocks wherever the rows above a boundary carry at most ``tol`` of their squared norm
    past it: for T = [[A, B], [0, C]] this changes every σ by a relative O(‖B‖²/σ_min(A)²) ≤ tol.  A block
    whose own spread is small is then finished by a float64 SVD, so clusters of nearly equal σ (where the
    iteration is slow) are resolved directly, and widely spread ones by the iteration.
    """
    log_d = np.asarray(log_d, np.float64)
    U = np.asarray(U, np.float64)
    finite = np.isfinite(log_d)  # −inf rows are exactly zero and contribute σ = 0
    zeros = np.full(int((~finite).sum()), -np.inf)
    log_d, U = log_d[finite], U[finite]
    if log_d.size == 0:
        return zeros
    if log_d.max() - log_d.min() <= _DIRECT_SVD_SPREAD:
        return np.concatenate([_direct_log_singular_values(log_d, U), zeros])
    n, width = log_d.size, U.shape[1]
    for _ in range(max_sweeps):
        order = np.argsort(-log_d, kind="stable")
        log_d, U = log_d[order], U[order]
        r2 = np.linalg.qr(U.T, mode="r")
        log_d, U = _graded_left_multiply_np(r2, log_d)  # R₂ D · I, and I's missing columns as zeros:
        U = np.pad(U, ((0, 0), (0, width - U.shape[1])))
        blocks = _deflated_blocks(U, tol)
        if all(np.ptp(log_d[a:b]) <= _DIRECT_SVD_SPREAD for a, b in blocks):
            break
    parts = []
    for a, b in blocks:
        if np.ptp(log_d[a:b]) <= _DIRECT_SVD_SPREAD:
            parts.append(_direct_log_singular_values(log_d[a:b], U[a:b, a:b]))
        else:  # not resolved within max_sweeps: the graded diagonal estimate
            with np.errstate(divide="ignore"):
                parts.append(log_d[a:b] + np.log(np.abs(np.diagonal(U)[a:b])))
    assert sum(len(p) for p in parts) == n
    return np.concatenate([np.sort(np.concatenate(parts))[::-1], zeros])


def _direct_log_singular_values(log_d, U):
    top = log_d.max()
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        return np.log(np.linalg.svd(np.exp(log_d - top)[:, None] * U, compute_uv=False)) + top


def _deflated_blocks(U, tol):
    """Split points of an upper-triangular U with unit rows: k is a boundary when every row i < k has
    Σ_{j ≥ k} U_ij² ≤ tol.  Returns the diagonal blocks as (start, stop) pairs."""
    n = U.shape[0]
    tail_mass = np.cumsum((U * U)[:, ::-1], axis=1)[:, ::-1]  # [i, k] = Σ_{j ≥ k} U_ij²
    above = np.triu(np.ones((n, n), bool), k=1)  # i < k
    worst = np.max(np.where(above, tail_mass[:, :n], 0.0), axis=0)
    cuts = [0, *[k for k in range(1, n) if worst[k] <= tol], n]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


LN10 = math.log(10.0)
