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
    rms = jnp.sqrt(jnp.mean(u * u))
    safe = jnp.where(rms > 0.0, rms, 1.0)
    return u / safe, s + jnp.log(safe)


def renormalise_unit(v, r):
    """(v, r) → (v/‖v‖, r + log ‖v‖), so the returned v has unit Euclidean norm (or stays 0 if v = 0)."""
    norm = jnp.linalg.norm(v)
    safe = jnp.where(norm > 0.0, norm, 1.0)
    return v / safe, r + jnp.log(safe)


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

    U may be any matrix with unit rows (the engine passes an upper-triangular one).  The row scales may span
    thousands of natural-log units, beyond float64.  Small spreads: one float64 SVD.
    Otherwise the zero-shift QR iteration on the triangular factor (Demmel & Kahan 1990): write Tᵀ = Uᵀ D,
    take the QR factorisation Uᵀ = Q R₂, and T′ = R₂ D has the singular values of T; T′ is rescaled row-wise
    with ``graded_left_multiply``.  Off-diagonal mass decays like (σ_j/σ_i)^{2k}, so the triangular factor
    becomes diagonal and σ_i = e^{d_i} |U_ii|.  Rows in clusters of nearly equal σ that have not converged
    are finished by a float64 SVD of their diagonal block, whose spread is then small.
    """
    log_d = np.asarray(log_d, np.float64)
    U = np.asarray(U, np.float64)
    n = log_d.shape[0]
    finite = np.isfinite(log_d)
    if not finite.any():
        return np.full(n, -np.inf)
    top = log_d[finite].max()
    if top - log_d[finite].min() <= _DIRECT_SVD_SPREAD:
        with np.errstate(over="ignore", under="ignore"):
            T = np.exp(log_d - top)[:, None] * U
        with np.errstate(divide="ignore"):
            return np.log(np.linalg.svd(T, compute_uv=False)) + top
    for _ in range(max_sweeps):
        # Rows in descending scale first (a row permutation keeps σ): then roundoff in R₂_ik, k > i, is
        # multiplied by e^{d_k} ≤ e^{d_i} and cannot swamp a small row.
        order = np.argsort(-log_d, kind="stable")
        log_d, U = log_d[order], U[order]
        # Tᵀ = Uᵀ D = Q (R₂ D): the next triangular factor is R₂ D, rescaled row by row.
        r2 = np.linalg.qr(U.T, mode="r")
        log_d, U = _graded_left_multiply_np(r2, log_d, np.eye(n))
        off_mass = 1.0 - np.minimum(np.abs(np.diagonal(U)), 1.0) ** 2
        if np.all(off_mass <= tol):
            break
    diag = np.abs(np.diagonal(U))
    with np.errstate(divide="ignore"):
        result = log_d + np.log(diag)
    stuck = (1.0 - np.minimum(diag, 1.0) ** 2) > tol
    for start, stop in _runs(stuck):
        stop = min(stop + 1, n)  # a stuck row couples into the next one
        block_top = log_d[start:stop].max()
        with np.errstate(over="ignore", under="ignore"):
            block = np.exp(log_d[start:stop] - block_top)[:, None] * U[start:stop, start:stop]
        with np.errstate(divide="ignore"):
            result[start:stop] = np.log(np.linalg.svd(block, compute_uv=False)) + block_top
    return np.sort(result)[::-1]


def _runs(mask):
    """(start, stop) of each maximal run of True in a boolean vector."""
    runs, start = [], None
    for i, flag in enumerate(mask):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(mask)))
    return runs


LN10 = math.log(10.0)
