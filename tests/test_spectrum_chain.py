"""The spectrum chain is written once (vglab.core.spectrum): each engine is its fold around that skeleton.

The skeleton is checked against a float64 product of the Jacobians, and every spectrum engine's source against
the rule that it calls the skeleton and has no loop over its layers of its own.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pytest

from vglab.core.compilation import exact_jit
from vglab.core.logspace import graded_log_singular_values, graded_scale_add, scale_to_float64
from vglab.core.spectrum import qr_fold, spectrum_chain, spectrum_result, spectrum_scan, spectrum_start
from vglab.models import jacobians, stack

SCALE = 0.05  # every J_l is SCALE·A_l: after 300 steps the product is ~1e-390, far below float32 (and float64)
LOG_SCALE = np.float32(np.log(SCALE))  # what the fold adds to the row scales (the reference adds the same)


def _matrices(steps, n, seed=0):
    """A_l = orthogonal · diag(e^{u}), u ~ U(−1, 1): well conditioned, so ∏A_l is representable in float64."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        q, _ = np.linalg.qr(rng.standard_normal((n, n)))
        out.append(q * np.exp(rng.uniform(-1.0, 1.0, n))[None, :])
    return np.stack(out).astype(np.float32)


def _reference(A):
    """float64 log10 σ of J_L⋯J_1 and log10 ‖J_L⋯J_{l+1}‖_F for l = 0..L−1 (J_l = SCALE·A_l, the scale added
    in log as the fold adds it)."""
    steps, n, _ = A.shape
    P, partial = np.eye(n), np.zeros(steps)
    for l in range(steps - 1, -1, -1):
        P = P @ A[l].astype(np.float64)
        partial[l] = np.log10(np.linalg.norm(P)) + (steps - l) * LOG_SCALE / np.log(10.0)
    return np.log10(np.linalg.svd(P, compute_uv=False)) + steps * LOG_SCALE / np.log(10.0), partial


def _fold(A, l, Q, log_d, U):  # J_lᵀ Q with J_l = SCALE·A_l: the scale enters the row scales exactly
    Q, log_d, U = qr_fold(A[l].T @ Q, log_d, U)
    return Q, graded_scale_add(log_d, LOG_SCALE), U


@exact_jit
def _chain_program(A, steps):
    return spectrum_chain(lambda l, *chain: _fold(A, l, *chain), A.shape[1], steps, A.shape[0])


@exact_jit
def _scan_program(A):
    return spectrum_scan(lambda a, *chain: _fold(a[None], 0, *chain), spectrum_start(A.shape[1]), A)


def _log10_singular_values(chain):
    return graded_log_singular_values(scale_to_float64(*chain.log_d), np.asarray(chain.U)) / np.log(10.0)


@pytest.mark.parametrize("steps", [300, 120, 40])
def test_the_skeleton_matches_a_float64_product_far_below_float32(steps):
    """σ of ∏J_l (the product formed in float64 resolves σ_i/σ_1 down to ~1e-16, so σ within 12 decades of the
    largest are compared: all 24 at 40 steps) and every partial Frobenius norm, to 2e-4 in log10."""
    capacity, n = 300, 24
    A = _matrices(capacity, n)
    bank = np.concatenate([A[:steps], np.zeros((capacity - steps, n, n), np.float32)])
    chain = _chain_program(bank, np.int32(steps))
    sv, partial = _reference(A[:steps])
    got_sv = _log10_singular_values(chain)
    assert got_sv[0] < -38  # the product is below float32's smallest normal number (1.2e-38)
    keep = sv > sv[0] - 12.0
    assert keep.all() if steps == 40 else keep.sum() >= 3
    np.testing.assert_allclose(got_sv[keep], sv[keep], rtol=0, atol=2e-4)
    got_partial = scale_to_float64(*chain.partials) / np.log(10.0)
    np.testing.assert_allclose(got_partial[:steps], partial, rtol=0, atol=2e-4)
    assert np.all(got_partial[steps:] == -np.inf)  # rows beyond the depth stay empty


def test_a_depth_change_reuses_the_compiled_chain():
    A = _matrices(300, 24)
    before = _chain_program._cache_size()
    for steps in (7, 300, 150):
        _chain_program(A, np.int32(steps))
    assert _chain_program._cache_size() <= max(before, 1)


def test_the_scan_driver_is_the_fori_driver_over_stacked_inputs():
    A = _matrices(40, 16, seed=1)
    by_index = _chain_program(A, np.int32(40))
    carry, partials = _scan_program(A)
    by_scan = spectrum_result(carry, partials)
    np.testing.assert_array_equal(_log10_singular_values(by_scan), _log10_singular_values(by_index))
    np.testing.assert_array_equal(scale_to_float64(*by_scan.partials), scale_to_float64(*by_index.partials))


def _calls(function) -> set[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


LOOPS = {"fori_loop", "scan", "while_loop", "map"}  # a loop over layers or blocks of the engine's own
BOOKKEEPING = {"graded_renormalised", "graded_log_frobenius", "graded_pairs", "logsumexp"}  # the skeleton's job


@pytest.mark.parametrize("engine", [inspect.unwrap(jacobians._spectrum_program), stack._spectrum], ids=["MLP", "Stack"])
def test_each_spectrum_engine_calls_the_skeleton_and_has_no_loop_of_its_own(engine):
    calls = _calls(engine)
    assert calls & {"spectrum_chain", "spectrum_scan"}, f"{engine.__name__} does not call the spectrum skeleton"
    assert not calls & LOOPS, f"{engine.__name__} runs its own loop: {sorted(calls & LOOPS)}"
    assert not calls & BOOKKEEPING, f"{engine.__name__} does the skeleton's bookkeeping: {sorted(calls & BOOKKEEPING)}"
    assert "qr" not in calls  # a QR step is a fold's (the MLP's _chain_step, the skeleton's qr_fold)


def test_the_convnet_spectrum_goes_through_the_stack():
    from vglab.models import convolutional

    assert "jacobian_spectrum" in _calls(convolutional.ConvNet.jacobian_spectrum)
    assert not _calls(convolutional.ConvNet.jacobian_spectrum) & (LOOPS | BOOKKEEPING | {"qr"})
