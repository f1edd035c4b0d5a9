"""The spectrum's row scales as ``GradedScales`` (one float64-accurate pair for the chain, float32 offsets):
exact at the deepest depth the engine accepts, and the pair arithmetic of ``vglab.core.logspace``'s graded
helpers exact on its own."""

import math

import jax.numpy as jnp
import numpy as np

import vglab
from tests import reference
from vglab.core.logspace import GradedScales, LogScale, graded_pairs, graded_renormalised, scale_to_float64
from vglab.models.mlp import MAX_DEPTH

# Measured at depth 10000, width 8 (2026-12-02): σ 1.24e-4, partial norms 7.5e-5 in log10 (the pair-per-row engine
# before: 1.13e-4, 7.1e-5); 1.4e-5 at depth 1000 (tests/test_exactness.py), so the QR steps' rounding grows ~linearly.
TOL_10000 = 3e-4


def test_depth_10000_chain_keeps_its_scale_to_float64():
    # 0.5^10000 = 10^-3010.3: the chain's scale is ~6900 natural-log units, where a float32 scale has spacing
    # 4.9e-4: summed in float32, each of its 20000 steps would round it by up to 2.4e-4.  The pair keeps it; what
    # remains is each layer's float32 QR step (~1e-7 relative a layer).
    net = vglab.MLP(depth=MAX_DEPTH, width=8, activation="linear", init="orthogonal", weight_std=0.5)
    s = vglab.jacobian_spectrum(net)
    sigma, partial = reference.linear_chain(net)
    assert abs(sigma[0] - MAX_DEPTH * math.log10(0.5)) < 0.01  # the float32 draws: orthogonal to ~1e-7 each
    np.testing.assert_allclose(s.log10_singular_values, sigma, rtol=0, atol=TOL_10000)
    np.testing.assert_allclose(s.log10_partial_norms, partial, rtol=0, atol=TOL_10000)


def test_renormalising_moves_the_largest_offset_into_the_pair_exactly():
    top = LogScale(np.float32(-6931.4717), np.float32(-1.3e-4))
    offsets = np.array([-3.25, 0.125, -1e3, -np.inf, 0.0625, -7000.0], np.float32)
    S = GradedScales(LogScale(jnp.float32(top.hi), jnp.float32(top.lo)), jnp.asarray(offsets))
    R = graded_renormalised(S)
    expected = float(top.hi) + float(top.lo) + offsets.astype(np.float64)
    assert float(np.max(np.asarray(R.relative))) == 0.0  # the largest offset is now the pair's
    got = scale_to_float64(*graded_pairs(R))
    assert np.isneginf(got[3])
    finite = np.isfinite(expected)
    # Each offset r_i − m is rounded once to float32 (exact within a factor 2 of m); the pair's sum is exact.
    allowed = np.abs(offsets[finite] - offsets.max()) * 2.0**-24 + 1e-12 * abs(expected[0])
    assert np.all(np.abs(got[finite] - expected[finite]) <= allowed)
    # A zero chain (every row −inf) stays as it is.
    Z = graded_renormalised(GradedScales(S.top, jnp.full((3,), -jnp.inf, jnp.float32)))
    assert np.all(np.isneginf(np.asarray(Z.relative))) and float(Z.top.hi) == float(top.hi)
