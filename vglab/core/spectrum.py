"""The spectrum chain, written once: every model's Jacobian spectrum is this loop around its own fold.

A network h_l = f_l(h_{l-1}), l = 1..L, on h ∈ ℝⁿ has the input–output Jacobian ∂h_L/∂h_0 = J_L ⋯ J_1
(J_l = ∂f_l/∂h_{l-1}).  Its singular values span thousands of natural-log units at depth 1000, so the product
is never formed.  The chain is accumulated from the output by backward QR iteration (Benettin et al. 1980):

    (J_L ⋯ J_{l+1})ᵀ = Q_l · diag(e^{d_l}) · U_l,     Q_L = I, d_L = 0, U_L = I,

with Q_l orthogonal, U_l upper triangular with unit rows and d_l the rows' log scales, held as
``GradedScales`` (one float64-accurate TwoSum pair ``top`` for the whole chain and float32 offsets), so no
scale is ever exponentiated.  One step folds the next Jacobian in:

    J_lᵀ Q_l = Q′ R   (a QR step)   ⇒   (J_L ⋯ J_l)ᵀ = Q′ · R diag(e^{d_l}) U_l = Q′ · diag(e^{d′}) U′

(``graded_left_multiply_offsets`` resolves R diag(e^d) U into row scales and unit rows).  A model plugs in
by writing ``fold(x, Q, log_d, U) → (Q′, log_d′, U′)`` only, where x is what selects the step (the layer
index l, or that block's stacked parameters and input): the model's own exact graded step (the MLP's QR
steps through diag(αφ′) with rows sorted by |φ′|, its LayerNorms folded in exactly) or the generic
``qr_fold`` of a matrix J_lᵀ Q (a user's block through ``jax.vjp``).  Around every fold the skeleton

    moves the offsets' maximum into ``top`` (``graded_renormalised``: exact, so the offsets never drift), and
    records log ‖∂h_L/∂h_{l-1}‖_F = log ‖diag(e^d) U‖_F (``graded_log_frobenius``; Q is orthogonal),

and at the end returns the row scales as a ``LogScale`` vector (``graded_pairs``), U, and the partial norms.
The singular values of ∂h_L/∂h_0 are those of diag(e^{d_0}) U_0, resolved in float64 on the host
(``vglab.core.logspace.graded_log_singular_values``).

Two drivers share the fold, as the backward chain's do (``vglab.core.chain``): ``spectrum_chain`` is a
``lax.fori_loop`` with the depth as a dynamic trip count over arrays of a fixed capacity (a depth change
reuses the compiled program: the MLP over its weight bank), and ``spectrum_scan`` a ``lax.scan`` over stacked
per-block inputs (a static number of blocks: a user's stack of blocks of one parameter structure);
``spectrum_step`` is one fold of either, for a block that is not part of a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vglab.core.logspace import (
    GradedScales,
    LogScale,
    graded_left_multiply_offsets,
    graded_log_frobenius,
    graded_pairs,
    graded_renormalised,
    graded_scales,
    minus_inf_pairs,
    put_pair,
)

__all__ = ["SpectrumChain", "qr_fold", "spectrum_chain", "spectrum_result", "spectrum_scan", "spectrum_start",
           "spectrum_step"]


class SpectrumChain(NamedTuple):
    """What the spectrum drivers return: ∂h_L/∂h_0 ᵀ = Q · diag(e^{log_d}) · U (Q dropped: it changes no singular
    value and no Frobenius norm).

    log_d:    (n,) ``LogScale``  the row scales d_i (natural log), −inf for an exactly zero row.
    U:        (n, n) float32    upper triangular with unit rows (up to the orthogonal Z of a split fold).
    partials: ``LogScale``       log ‖∂h_L/∂h_l‖_F, row l for l = 0..L−1 (``spectrum_chain``: (capacity,), −inf
              beyond the depth; ``spectrum_scan``: (T,), row l−1 for block l)."""

    log_d: LogScale
    U: jax.Array
    partials: LogScale


def spectrum_start(n: int) -> tuple:
    """The chain of no Jacobian: (Q, log_d, U) = (I, 0, I) on ℝⁿ."""
    eye = jnp.eye(n, dtype=jnp.float32)
    return eye, graded_scales(n), eye


def qr_fold(M, log_d: GradedScales, U) -> tuple:
    """The generic fold of a block whose J_lᵀ Q = M is formed (e.g. by ``jax.vjp``): M = Q′R, then
    R diag(e^d) U = diag(e^{d′}) U′.  Returns (Q′, d′, U′)."""
    Q, R = jnp.linalg.qr(M)
    return (Q, *graded_left_multiply_offsets(R, log_d, U))


def spectrum_step(fold: Callable, carry: tuple, x) -> tuple:
    """One step of the chain: (Q, d, U) ← fold(x, Q, d, U), the offsets renormalised.  Returns the new carry and
    log ‖diag(e^d) U‖_F (a ``LogScale``), the Frobenius norm of the partial product so far."""
    Q, log_d, U = fold(x, *carry)
    log_d = graded_renormalised(log_d)  # O(n) once a step: the n×n folds see plain float32 offsets
    return (Q, log_d, U), graded_log_frobenius(log_d)


def spectrum_result(carry: tuple, partials: LogScale) -> SpectrumChain:
    """The chain's (Q, d, U) and its partial norms as a ``SpectrumChain`` (d as a ``LogScale`` vector)."""
    _, log_d, U = carry
    return SpectrumChain(graded_pairs(log_d), U, partials)


def spectrum_chain(fold: Callable, n: int, steps, capacity: int) -> SpectrumChain:
    """The chain through ``steps`` folds (a traced integer ≤ ``capacity``), from the output: fold(l, Q, d, U) for
    l = steps−1 down to 0 (l the 0-based index of the layer whose Jacobian is folded in, and the row that
    receives log ‖∂h_L/∂h_l‖_F).  One ``lax.fori_loop``: the compiled program does not depend on ``steps``."""
    def body(i, carry):
        chain, partials = carry
        l = steps - 1 - i
        chain, logged = spectrum_step(fold, chain, l)
        return chain, put_pair(partials, l, logged)

    partials = minus_inf_pairs(capacity)
    chain, partials = jax.lax.fori_loop(0, steps, body, (spectrum_start(n), partials))
    return spectrum_result(chain, partials)


def spectrum_scan(fold: Callable, carry: tuple, xs) -> tuple:
    """The chain over stacked per-block inputs xs (leading axis: blocks l = 1..T, folded from T down to 1):
    fold(xs_l, Q, d, U).  Returns the carry and (T,) log ‖∂h_L/∂h_{l-1}‖_F as a ``LogScale`` pair, row l−1 for
    block l.  One ``lax.scan``: the compiled program does not grow with T."""
    return jax.lax.scan(lambda chain, x: spectrum_step(fold, chain, x), carry, xs, reverse=True)
