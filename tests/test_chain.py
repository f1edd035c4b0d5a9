"""The renormalised backward chain and the forward skeleton (vglab.core.chain), written once, and the models that
plug into them.

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

from vglab.core.chain import backward_chain, backward_scan, forward_chain, normalise_unit_wide, retry_in_log_form
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


# Functions that run their forward pass with a loop of their own (not ``forward_chain``): none left.
OWN_FORWARD_LOOP: set = set()


@pytest.mark.parametrize("path, function, driver", [
    ("models/jacobians.py", "_backward", "backward_chain"),
    ("models/recurrent.py", "_vanilla", "backward_chain"),
    ("models/recurrent.py", "_lstm", "backward_chain"),
    ("models/recurrent.py", "_gru", "backward_chain"),
    ("models/transformer.py", "_stack", "backward_chain"),
    ("models/batchnorm.py", "_program", "backward_chain"),
    ("models/stack.py", "_backward", "backward_scan"),
])
def test_every_models_backward_pass_is_the_one_chain(path, function, driver):
    """The backward loop is the chain's: the model writes its step, never a loop of its own (a forward loop, one
    fori_loop, remains only where the forward pass is not on ``forward_chain``: ``OWN_FORWARD_LOOP``)."""
    calls = calls_in(PACKAGE / path, function)
    assert driver in calls
    forward_loops = 1 if (path, function) in OWN_FORWARD_LOOP else 0
    assert calls.count("fori_loop") + calls.count("scan") == forward_loops, calls


@pytest.mark.parametrize("path, function", [
    ("models/jacobians.py", "_forward"),
    ("models/recurrent.py", "_vanilla"),
    ("models/recurrent.py", "_lstm"),
    ("models/recurrent.py", "_gru"),
    ("models/transformer.py", "_stack"),
    ("models/batchnorm.py", "_program"),
])
def test_every_models_forward_pass_is_the_one_skeleton(path, function):
    """The forward loop is the skeleton's: the model writes its step, never a fori_loop or scan of its own."""
    calls = calls_in(PACKAGE / path, function)
    assert "forward_chain" in calls, calls
    assert calls.count("fori_loop") + calls.count("scan") == 0, calls


@pytest.mark.parametrize("path, function", [("models/jacobians.py", "_traced"), ("models/recurrent.py", "_vanilla")])
def test_the_log_form_retry_is_written_once(path, function):
    """"φ′ direct, and again in log form only if some φ′ < 2⁻¹⁰⁰" is ``retry_in_log_form``'s one lax.cond; the
    models call it and write no branch of their own."""
    calls = calls_in(PACKAGE / path, function)
    assert "retry_in_log_form" in calls, calls
    assert "cond" not in calls, calls


def linear_forward_reference(Js, x):
    """log RMS(h_l), l = 1..T, of h_l = J_l h_{l-1} in float64 with the same float32 matrices, renormalised every
    step (h_l = e^{s_l} u_l) so it does not overflow or underflow either."""
    u, s, out = np.asarray(x, np.float64), 0.0, []
    for J in np.asarray(Js, np.float64):
        u = J @ u
        rms = math.sqrt(np.mean(u * u))
        s += math.log(rms)
        u = u / rms
        out.append(s)
    return np.asarray(out)


@jax.jit
def _run_forward(Js, x, steps):
    def step(l, u, S, count):
        return Js[l] @ u, S, count + 1  # h_{l+1} = J_l h_l, not renormalised: the skeleton does it

    return forward_chain(step, x, log_scale(0.0), steps, Js.shape[0], trace=jnp.int32(0), keep_states=True)


@pytest.mark.parametrize("gain", [0.25, 1.0, 4.0])
def test_the_forward_skeleton_matches_a_float64_reference_far_beyond_float32s_range(gain):
    """1000 linear steps of gain 0.25 or 4 take RMS(h) to ~1e∓600; the skeleton's log RMS(h_l) (natural log, a
    LogScale pair) matches the float64 reference within LOG_TOL, every kept state is e^{S_l} ũ_l with RMS(ũ_l)
    in [√½, √2), and the step's own trace (a counter) comes back."""
    Js, _ = linear_chain(1000, 16, gain, seed=3)
    x = jnp.asarray(np.random.default_rng(4).standard_normal(16), jnp.float32)
    chain = _run_forward(Js, x, jnp.int32(1000))
    got = scale_to_float64(chain.log_rms.hi, chain.log_rms.lo)
    ref = linear_forward_reference(Js, x)
    np.testing.assert_allclose(got, ref, rtol=0, atol=LOG_TOL)
    if gain != 1.0:
        assert abs(ref[-1]) > 600  # e^{±600}: far beyond float32 (1e±38)
    rms = np.sqrt(np.mean(np.asarray(chain.states[0], np.float64) ** 2, axis=1))
    assert np.all((rms >= math.sqrt(0.5) * (1 - 1e-6)) & (rms < math.sqrt(2.0)))
    np.testing.assert_allclose(scale_to_float64(chain.states[1].hi, chain.states[1].lo) + np.log(rms), ref,
                               rtol=0, atol=LOG_TOL)
    assert int(chain.trace) == 1000


def test_a_shorter_forward_chain_runs_the_same_program_and_leaves_the_rows_past_it_minus_inf():
    Js, _ = linear_chain(64, 8, 0.5, seed=5)
    x = jnp.ones((8,), jnp.float32)
    full = _run_forward(Js, x, jnp.int32(64))
    before = _run_forward._cache_size()
    short = _run_forward(Js, x, jnp.int32(20))
    assert _run_forward._cache_size() == before
    np.testing.assert_array_equal(np.asarray(short.log_rms.hi[:20]), np.asarray(full.log_rms.hi[:20]))
    assert np.all(np.asarray(short.log_rms.hi[20:]) == -np.inf)
    assert int(short.trace) == 20


def test_the_log_form_retry_reruns_only_when_some_direct_derivative_was_tiny():
    """run("direct") is returned as it is when its flag is clear, run("logs") when it is set; an activation
    without a log form never branches."""
    calls = []

    def make(tiny):
        def run(mode):
            calls.append(mode)  # traced once per branch
            return jnp.float32(1.0 if mode == "direct" else 2.0), jnp.asarray([False, tiny])
        return run

    assert float(jax.jit(lambda: retry_in_log_form(make(False)))()) == 1.0
    assert float(jax.jit(lambda: retry_in_log_form(make(True)))()) == 2.0
    calls.clear()
    assert float(jax.jit(lambda: retry_in_log_form(make(True), log_form=False))()) == 1.0
    assert calls == ["direct"]
