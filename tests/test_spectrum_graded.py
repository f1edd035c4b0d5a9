"""jacobian_spectrum where φ′ spans beyond float32 within one layer (issue 18 §2).

A 5-layer Gaussian GELU net at σ_w = 4 has units with GELU′(z) ~ 1e-3000 beside units with GELU′ ~ 1: formed
as float32 rows the small ones underflowed and the spectrum reported σ = 0 (−inf) for a Jacobian of full rank.
Reference: the same float32 weights in 400-digit mpmath arithmetic (unlimited exponent, so nothing underflows)
and no QR chain at all: σ_1⋯σ_k = ‖C_k(J)‖₂, the top singular value of the k-th compound matrix (k×k minors),
with C_k(J) = C_k(J_L)⋯C_k(J_1) by Cauchy–Binet.  A top singular value is perfectly conditioned, so a 400-digit
product and SVD give it to ~1e-390 relative however far the σ_i spread (a 400-digit Householder QR chain over the
same product, tried first, was 5,000 decades off on the two smallest σ of one net: grading of 1e-25000 within a
layer is beyond 400 digits too), and Σ log σ_i = Σ_l log|det J_l| checks the whole set.
"""

import math
from itertools import combinations

import numpy as np
import pytest

import vglab
from vglab.models import jacobians

mpmath = pytest.importorskip("mpmath")
DPS = 400


# --------------------------------------------------------------------------------------------- reference
def _phi_and_derivative(activation, z):
    if activation == "gelu":
        return z * mpmath.ncdf(z), mpmath.ncdf(z) + z * mpmath.npdf(z)
    if activation == "tanh":
        return mpmath.tanh(z), mpmath.sech(z) ** 2
    if activation == "elu":
        return (z, mpmath.mpf(1)) if z > 0 else (mpmath.expm1(z), mpmath.exp(z))
    if activation == "relu":
        return (z, mpmath.mpf(1)) if z > 0 else (mpmath.mpf(0), mpmath.mpf(0))
    raise NotImplementedError(activation)


def _draws(net, seed):
    """The engine's own float32 draws (from its weight bank) as 400-digit matrices: Ws, bs, x."""
    bank = jacobians.weight_bank((seed,), net.width, net.orthogonal, net.depth)
    scale = mpmath.mpf(net.sigma_w) / mpmath.sqrt(net.width)
    bias_std = mpmath.mpf(float(np.float32(net.bias_std)))
    Ws = [mpmath.matrix(np.asarray(bank.weights[0, l], np.float64).tolist()) * scale for l in range(net.depth)]
    bs = [mpmath.matrix(np.asarray(bank.biases[0, l], np.float64).tolist()) * bias_std for l in range(net.depth)]
    return Ws, bs, mpmath.matrix(np.asarray(bank.inputs[0], np.float64).tolist())


def _layer_factors(net, seed):
    """[(W_l, φ′(z_l))] for l = 1..L, J_l = diag(φ′(z_l)) W_l, forward pass in 400 digits."""
    Ws, bs, h = _draws(net, seed)
    factors = []
    for W, b in zip(Ws, bs, strict=True):
        z = W * h + b
        pairs = [_phi_and_derivative(net.activation, z[i]) for i in range(net.width)]
        h = mpmath.matrix([p[0] for p in pairs])
        factors.append((W, [p[1] for p in pairs]))
    return factors


def reference(net, seed, ks=None):
    """(log10 σ_k for k in ``ks`` (all when None) from ‖C_k(J)‖₂ / ‖C_{k−1}(J)‖₂, Σ_l log10|det J_l|, the most
    negative log10 min|φ′|/max|φ′| of a layer) in 400 digits on the engine's own float32 draws.  ks must hold
    each k with k − 1 (or k = 1); C_k has C(n, k)² entries, so small widths only."""
    n = net.width
    ks = list(range(1, n + 1)) if ks is None else list(ks)
    with mpmath.workdps(DPS):
        factors = _layer_factors(net, seed)
        log10_det = sum(float(mpmath.log10(abs(mpmath.det(W)))) for W, _ in factors)
        log10_det += sum(float(mpmath.log10(abs(d))) if d != 0 else -math.inf for _, ds in factors for d in ds)
        spread = min(float(mpmath.log10(min(abs(d) for d in ds) / max(abs(d) for d in ds)))
                     if min(abs(d) for d in ds) > 0 else -math.inf for _, ds in factors)
        log10_products = {0: 0.0}
        for k in sorted({*ks, *(k - 1 for k in ks)} - {0}):
            subsets = list(combinations(range(n), k))
            C = mpmath.eye(len(subsets))
            for W, ds in factors:  # C_k(J_l) C = C_k(D_l) C_k(W_l) C
                CW = mpmath.matrix([[mpmath.det(mpmath.matrix([[W[i, j] for j in cols] for i in rows]))
                                     for cols in subsets] for rows in subsets])
                CD = [mpmath.fprod(ds[i] for i in rows) for rows in subsets]
                C = mpmath.matrix([[CD[a] * x for x in row] for a, row in enumerate((CW * C).tolist())])
            top = max(mpmath.svd_r(C, compute_uv=False))
            log10_products[k] = float(mpmath.log10(top)) if top > 0 else -math.inf
        with np.errstate(invalid="ignore"):  # −inf − (−inf) for k beyond the rank: σ_k = 0 there
            values = np.array([log10_products[k] - log10_products[k - 1] if math.isfinite(log10_products[k])
                               else -math.inf for k in ks])
        return values, log10_det, spread


# --------------------------------------------------------------------------------------------- engine
# log10 σ from float32 weights: the pre-activations z carry float32 rounding (~1e-7 relative, grown over the
# layers), and log|φ′(z)| (≈ −z²/2 for GELU, −2|z| for tanh, z for ELU) turns that into an error ∝ |log σ|
# (float32 also holds log|φ′| ~ −7000 only to ~5e-4): a tolerance relative to |log10 σ|, plus an absolute part
# for the ordinary σ.
RTOL_LOG10, ATOL_LOG10 = 2e-6, 1e-4

CASES = {  # net, seed, the k of σ_k to compare (None: all)
    "gelu-w6": (vglab.MLP(depth=5, width=6, activation="gelu", init="gaussian", weight_std=4.0), 0, None),
    "gelu-w8": (vglab.MLP(depth=5, width=8, activation="gelu", init="gaussian", weight_std=4.0), 1,
                (1, 2, 7, 8)),  # C_3..C_5 (56 × 56) would take minutes
    "tanh-sw40": (vglab.MLP(depth=3, width=6, activation="tanh", weight_std=40.0), 1, None),
    "elu-sw40": (vglab.MLP(depth=3, width=6, activation="elu", weight_std=40.0), 2, None),
}


@pytest.mark.parametrize("case", CASES)
def test_full_rank_jacobian_beyond_float32_has_every_singular_value_finite_and_exact(case):
    net, seed, ks = CASES[case]
    expected, log10_det, spread = reference(net, seed, ks)
    # Some layer's φ′ spans beyond e^-64 (the step's float range) within the layer: the case that gave −inf.
    assert spread < -jacobians.CHUNK_SPREAD / math.log(10.0) and np.all(np.isfinite(expected))
    values = vglab.jacobian_spectrum(net, seed=seed).log10_singular_values
    assert np.all(np.isfinite(values))
    picked = values if ks is None else values[np.array(ks) - 1]
    np.testing.assert_allclose(picked, expected, rtol=RTOL_LOG10, atol=ATOL_LOG10)
    # Σ log σ_i = log |det J|, from the layers' determinants alone.
    assert abs(values.sum() - log10_det) <= RTOL_LOG10 * abs(log10_det) + net.width * ATOL_LOG10


@pytest.mark.parametrize("seed", [0, 1])
def test_dead_relus_still_give_exact_zeros_of_the_reference_rank(seed):
    # ReLU's flat side: D_l has exact zeros; the Jacobian's rank is where ‖C_k(J)‖ vanishes in 400 digits
    # (exactly, or at 1e-400 roundoff of a composition's cancellation).
    net = vglab.MLP(depth=3, width=6, activation="relu", init="he", bias_std=0.5)
    expected, _, _ = reference(net, seed)
    rank = int(np.sum(expected > expected[0] - 300))
    assert rank < 6
    values = vglab.jacobian_spectrum(net, seed=seed).log10_singular_values
    assert np.sum(np.isneginf(values)) == 6 - rank
    np.testing.assert_allclose(values[:rank], expected[:rank], rtol=1e-5, atol=1e-5)


def test_graded_layers_do_not_recompile():
    # The split step is chosen inside the compiled program (lax.cond, a dynamic trip count): σ_w = 1 (one
    # float32 step a layer) and σ_w = 4 (layers split into many) share one program.
    vglab.jacobian_spectrum(vglab.MLP(depth=5, width=8, activation="gelu", init="gaussian", weight_std=1.0))
    before = jacobians.compiled_programs()
    values = vglab.jacobian_spectrum(vglab.MLP(depth=5, width=8, activation="gelu", init="gaussian",
                                               weight_std=4.0)).log10_singular_values
    assert jacobians.compiled_programs() == before
    assert np.all(np.isfinite(values))
