"""Log-space arithmetic for vectors and matrices whose scale escapes float32.

A quantity x is held as (x̃, s) with x = e^s · x̃ and x̃ of order one.  Every helper returns a renormalised
pair, so a product of a thousand factors of 0.25 (≈ 1e-602) is carried as s ≈ −1386 and never underflows.
Natural logarithms throughout; the public results convert to log10 at the edge.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np


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


def _graded_left_multiply_np(R, log_d, U):
    with np.errstate(divide="ignore", invalid="ignore"):
        log_terms = np.log(np.abs(R)) + log_d[None, :]
        m = np.max(log_terms, axis=1)
        m = np.where(np.isfinite(m), m, 0.0)
        C = np.sign(R) * np.exp(log_terms - m[:, None])
        rows = C @ U
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
    n = log_d.size
    eye = np.eye(U.shape[1])
    for _ in range(max_sweeps):
        order = np.argsort(-log_d, kind="stable")
        log_d, U = log_d[order], U[order]
        r2 = np.linalg.qr(U.T, mode="r")
        log_d, U = _graded_left_multiply_np(r2, log_d, eye[: r2.shape[1]])
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
