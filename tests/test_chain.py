"""The renormalised backward chain (vglab.core.chain), written once, and the models that plug into it.

References are float64 products of the same float32 matrices, renormalised every step in NumPy; tolerances are in
natural log units (float32 products round ~1e-7 a step; a thousand steps stay below 1e-4).
"""

import ast
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vglab.core.chain import backward_chain, backward_scan, normalise_unit_wide
from vglab.core.logspace import log_scale, normalise_unit, scale_to_float64

PACKAGE = Path(__file__).resolve().parents[1] / "vglab"
LOG_TOL = 1e-4  # natural log, after up to 1000 float32 steps


def linear_chain(depth, n, gain, seed=0):
    """J_l = gain · Ŵ_l/√n (l = 1..depth) and g, float32: ‖δ_0‖ ~ gain^depth."""
    rng = np.random.default_rng(seed)
    Js = (gain * rng.normal(size=(depth, n, n)) / math.sqrt(n)).astype(np.float32)
    return Js, rng.normal(size=n).astype(np.float32)


def reference_log_norms(Js, g):
    """log ‖δ_l‖ for δ_{l-1} = J_lᵀ δ_l in float64, renormalised every step: (depth+1,), row depth is log ‖g‖."""
    v = np.asarray(g, np.float64)
    log = math.log(np.linalg.norm(v))
    v = v / np.linalg.norm(v)
    out = [log]
    for J in Js[::-1]:
        v = J.astype(np.float64).T @ v
        size = np.linalg.norm(v)
        log += math.log(size)
        v = v / size
        out.append(log)
    return np.asarray(out[::-1])


@jax.jit
def _run(Js, g, steps):
    def step(l, v, R, state):
        return v @ Js[l], R, state + 1  # J_{l+1}ᵀ v as a row-vector product; the state counts the steps

    chain = backward_chain(step, g, steps, Js.shape[0], state=jnp.int32(0))
    return chain.log_norms, chain.state


@pytest.mark.parametrize("gain", [0.25, 1.0, 4.0])
def test_the_chain_matches_a_float64_reference_far_beyond_float32s_range(gain):
    # 0.25^1000 ≈ 1e-602 and 4^1000 ≈ 1e602: float32 would underflow/overflow within ~60 steps.
    Js, g = linear_chain(1000, 16, gain)
    log_norms, count = _run(jnp.asarray(Js), jnp.asarray(g), jnp.int32(1000))
    got = scale_to_float64(*log_norms)
    want = reference_log_norms(Js, g)
    assert int(count) == 1000
    assert np.all(np.isfinite(got))
    if gain != 1.0:
        assert abs(want[0] - want[-1]) > 1000  # the range the test is about: e^{±1000} and more
    np.testing.assert_allclose(got, want, rtol=0, atol=LOG_TOL)


def test_a_shorter_chain_runs_the_same_program_and_leaves_the_rows_past_it_minus_inf():
    Js, g = linear_chain(64, 8, 0.5)
    before = _run._cache_size()
    for steps in (1, 10, 64):
        log_norms, count = _run(jnp.asarray(Js), jnp.asarray(g), jnp.int32(steps))
        got = scale_to_float64(*log_norms)
        np.testing.assert_allclose(got[: steps + 1], reference_log_norms(Js[:steps], g), rtol=0, atol=LOG_TOL)
        assert np.all(got[steps + 1:] == -np.inf) and int(count) == steps
    assert _run._cache_size() - before <= 1  # one program (compiled at most once here) for every depth


def test_kept_vectors_are_the_gradients_themselves():
    Js, g = linear_chain(40, 8, 0.3, seed=1)

    def step(l, v, R, state):
        return v @ jnp.asarray(Js)[l], R, state

    chain = jax.jit(lambda g: backward_chain(step, g, 40, 40, keep_vectors=True))(jnp.asarray(g))
    vs, Rs = chain.vectors
    deltas = [np.asarray(g, np.float64)]
    for J in Js[::-1]:
        deltas.append(J.astype(np.float64).T @ deltas[-1])
    deltas = np.asarray(deltas[::-1])  # δ_0..δ_40, δ_0 ~ 0.3^40 ≈ 1e-21
    got = np.asarray(vs, np.float64) * np.exp(scale_to_float64(Rs.hi, Rs.lo))[:, None]
    error = np.linalg.norm(got - deltas, axis=1) / np.linalg.norm(deltas, axis=1)  # relative to each ‖δ_l‖
    assert error.max() < 1e-5, error.max()
    norms = np.linalg.norm(np.asarray(vs), axis=1)
    assert np.all((norms >= math.sqrt(0.5) - 1e-6) & (norms < math.sqrt(2.0) + 1e-6))  # renormalised every step


def test_the_scan_driver_and_the_loop_driver_agree_to_the_bit():
    Js, g = linear_chain(100, 12, 0.6, seed=2)
    Js, g = jnp.asarray(Js), jnp.asarray(g)
    loop = _run(Js, g, jnp.int32(100))[0]
    v, R, logged = normalise_unit(g, log_scale(0.0))
    _, _, scanned = jax.jit(lambda v, R, Js: backward_scan(lambda v, R, J: (v @ J, R), v, R, Js))(v, R, Js)
    np.testing.assert_array_equal(np.asarray(scanned.hi), np.asarray(loop.hi[:100]))
    np.testing.assert_array_equal(np.asarray(scanned.lo), np.asarray(loop.lo[:100]))
    assert float(logged.hi) == float(loop.hi[100])


def test_the_wide_normalisation_takes_norms_whose_squares_underflow():
    v = jnp.asarray([3e-30, 4e-30], jnp.float32)  # squares 1e-59: 0 in float32
    _, _, plain = normalise_unit(v, log_scale(0.0))
    unit, R, wide = normalise_unit_wide(v, log_scale(0.0))
    assert float(plain.hi) == -np.inf  # what the MLP's normalisation (whose vectors are O(1)) would give here
    assert abs(scale_to_float64(wide.hi, wide.lo) - math.log(5e-30)) < 1e-6
    np.testing.assert_allclose(np.asarray(unit, np.float64) * math.exp(scale_to_float64(R.hi, R.lo)), [3e-30, 4e-30],
                               rtol=1e-6)


def calls_in(path: Path, function: str) -> list[str]:
    """Names of every function called inside ``function`` of ``path`` (nested definitions included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == function]
    names = []
    for call in ast.walk(node):
        if isinstance(call, ast.Call):
            f = call.func
            names.append(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


@pytest.mark.parametrize("path, function, driver", [
    ("models/jacobians.py", "_backward", "backward_chain"),
    ("models/recurrent.py", "_vanilla", "backward_chain"),
    ("models/recurrent.py", "_lstm", "backward_chain"),
    ("models/recurrent.py", "_gru", "backward_chain"),
    ("models/transformer.py", "_stack", "backward_chain"),
    ("models/stack.py", "_backward", "backward_scan"),
])
def test_every_models_backward_pass_is_the_one_chain(path, function, driver):
    """The backward loop is the chain's: the model writes its step, never a loop of its own (a forward loop, one
    fori_loop, may remain in the functions that also run the forward pass)."""
    calls = calls_in(PACKAGE / path, function)
    assert driver in calls
    forward_loops = 0 if function == "_backward" else 1
    assert calls.count("fori_loop") + calls.count("scan") == forward_loops, calls
