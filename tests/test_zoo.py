"""The zoo: ELU and SiLU/Swish activations and the GRU cell, against float64 jax.grad, mpmath, brute-force
numerical integration and the mean-field prediction (issue 17 item 5, issue 18 §2)."""

import math

import jax
import jax.numpy as jnp
import matplotlib
import mpmath
import numpy as np
import pytest
from scipy import integrate

matplotlib.use("Agg")

import vglab  # noqa: E402
from tests import reference  # noqa: E402  (enables float64)
from vglab import theory  # noqa: E402
from vglab.core.activations import (  # noqa: E402
    ACTIVATIONS,
    SILU_ARGMAX_DERIVATIVE,
    SILU_SUP_DERIVATIVE,
    scaled_factored,
)
from vglab.models import recurrent  # noqa: E402

ZOO = ("elu", "silu")
RTOL_LOG = 1e-5  # on log10 values, as tests/test_gradients.py


# --------------------------------------------------------------------------------------------- φ, φ′
@pytest.mark.parametrize("name", ZOO)
def test_derivative_matches_float64_autodiff(name):
    # Reference φ written independently (ELU as e^x − 1: JAX differentiates expm1 as expm1(x) + 1, which
    # cancels for x ≪ 0, so autodiff of exp is the accurate reference there).
    act = ACTIVATIONS[name]
    x = jnp.linspace(-30.0, 30.0, 6001, dtype=jnp.float64)
    independent = {"elu": lambda v: jnp.where(v > 0, v, jnp.exp(jnp.minimum(v, 0.0)) - 1.0),
                   "silu": lambda v: v / (1.0 + jnp.exp(-v))}[name]
    autodiff = jax.vmap(jax.grad(independent))(x)
    np.testing.assert_allclose(np.asarray(act.dphi(x, 0.0)), np.asarray(autodiff), rtol=1e-12, atol=1e-300)
    own = jax.vmap(jax.grad(lambda v: act.phi(v, 0.0)))(x)  # the engine's φ is differentiable as it stands
    assert np.all(np.isfinite(own))  # jax.grad through the ELU's where meets no 0·∞
    np.testing.assert_allclose(np.asarray(own), np.asarray(autodiff), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.asarray(act.phi(x, 0.0)),
                               np.asarray(jax.nn.elu(x) if name == "elu" else jax.nn.silu(x)), rtol=1e-14)


def _mp_log_abs_dphi(name, x):
    x = mpmath.mpf(x)
    if name == "elu":
        d = mpmath.mpf(1) if x > 0 else mpmath.exp(x)
    else:
        s = 1 / (1 + mpmath.exp(-x))
        d = s * (1 + x * (1 - s))
    return float(mpmath.log(abs(d))), float(mpmath.sign(d))


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("x", [-1e4, -700.0, -150.0, -104.0, -88.0, -30.0, -2.3994, -1.0, -1e-6, 0.0, 1e-6,
                               0.5, 2.3994, 30.0, 1e4])
def test_log_derivative_matches_mpmath_at_extreme_arguments(name, x):
    mpmath.mp.dps = 50
    expected, sign = _mp_log_abs_dphi(name, x)
    for dtype in (jnp.float32, jnp.float64):
        log_abs, s = ACTIVATIONS[name].log_dphi(jnp.asarray(x, dtype), 0.0)
        assert float(s) == sign
        assert float(log_abs) == pytest.approx(expected, rel=2e-6 if dtype == jnp.float32 else 1e-12,
                                               abs=1e-6 if dtype == jnp.float32 else 1e-13)
    # ELU′(−150) = e^{−150} ≈ 7e-66 and SiLU′(−150) ≈ −1e-63 underflow float32 (φ′ itself is 0 there) …
    if x <= -150.0:
        assert float(ACTIVATIONS[name].dphi(jnp.float32(x), 0.0)) == 0.0
    # … but the factored form φ′ = e^c d̃ keeps their size and sign (c the layer's scale, max|d̃| = 1 there).
    _, _, d_tilde, c = scaled_factored(ACTIVATIONS[name], jnp.full((3,), x, jnp.float32),
                                       jnp.zeros((), jnp.float32), 0.0)
    d_tilde = np.asarray(d_tilde, np.float64)
    assert np.all(d_tilde != 0.0) and np.all(np.sign(d_tilde) == sign)
    np.testing.assert_allclose(float(c) + np.log(np.abs(d_tilde)), expected, rtol=2e-6, atol=1e-6)
    if x <= -150.0:
        assert float(c) == pytest.approx(expected, rel=2e-6)


def test_silu_derivative_has_one_zero_and_a_negative_region():
    x = np.linspace(-10.0, 10.0, 200_001)
    d = np.asarray(ACTIVATIONS["silu"].dphi(jnp.asarray(x), 0.0))
    crossings = x[:-1][np.diff(np.sign(d)) != 0]
    assert crossings.shape == (1,) and crossings[0] == pytest.approx(-1.27846, abs=1e-4)
    np.testing.assert_allclose(d + d[::-1], 1.0, atol=1e-14)  # SiLU′(x) + SiLU′(−x) = 1
    assert d.min() == pytest.approx(1.0 - SILU_SUP_DERIVATIVE, rel=1e-9)


@pytest.mark.parametrize("name,sup", [("elu", 1.0), ("silu", 1.0998393201288670)])
def test_sup_derivative_matches_a_dense_grid(name, sup):
    x = np.linspace(-50.0, 50.0, 1_000_001)
    d = np.abs(np.asarray(ACTIVATIONS[name].dphi(jnp.asarray(x), 0.0)))
    assert vglab.sup_derivative(name) == pytest.approx(sup, rel=1e-13)
    assert vglab.sup_derivative(name) == pytest.approx(d.max(), rel=1e-9)
    assert np.all(d <= vglab.sup_derivative(name) * (1 + 1e-12))
    if name == "silu":
        assert SILU_ARGMAX_DERIVATIVE == pytest.approx(2.399357280515468, rel=1e-12)
        assert x[np.argmax(d)] == pytest.approx(SILU_ARGMAX_DERIVATIVE, abs=1e-4)


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("s", [-60.0, -5.0, 0.0, 3.0, 40.0])
def test_scaled_form_matches_float64(name, s):
    # φ(e^s z̃) = e^{s_a} ã, compared in float64 where e^s z̃ is representable.
    act = ACTIVATIONS[name]
    zt = jnp.linspace(-2.0, 2.0, 41, dtype=jnp.float32)
    at, sa, d = act.scaled(zt, jnp.float32(s), 0.0)
    z64 = np.asarray(zt, np.float64) * math.exp(s)
    expected = np.asarray(act.phi(jnp.asarray(z64), 0.0))
    np.testing.assert_allclose(np.asarray(at, np.float64) * np.exp(np.float64(sa)), expected,
                               rtol=2e-6, atol=1e-6 * np.max(np.abs(expected)))


# --------------------------------------------------------------------------------------------- MLPs
@pytest.mark.parametrize("config", [  # one width and depth: the two ELU (two SiLU) nets share a program
    dict(activation="elu", init="he", depth=50, width=8),
    dict(activation="silu", init="he", depth=50, width=8, bias_std=0.1),
    dict(activation="elu", init="gaussian", weight_std=12.0, depth=50, width=8),
    dict(activation="silu", init="gaussian", weight_std=6.0, depth=50, width=8),
], ids=lambda c: "-".join(str(v) for v in c.values()))
def test_gradient_norms_match_float64_reference(config):
    net = vglab.MLP(**config)
    result = vglab.gradient_norms(net, seed=1)
    with np.errstate(divide="ignore"):
        ref_h, ref_w, ref_rms = reference.gradient_norms(net, seed=1)
    # At σ_w = 12 (6) a layer can have every unit far on the negative side (z ~ −1e34): φ′ = e^z underflows
    # float64 too, and the reference's gradient below it is 0.  The engine's is finite and below 1e-300
    # there; where float64 resolves it, they agree.  Forward values (RMS, ≈ 1 for saturated ELU) everywhere.
    finite = np.isfinite(ref_h)
    assert finite.sum() >= 9 and np.all(np.isfinite(result.log10_activation_grad))
    assert np.all(result.log10_activation_grad[0][~finite] < -300)
    np.testing.assert_allclose(result.log10_activation_grad[0][finite], ref_h[finite], rtol=RTOL_LOG, atol=1e-5)
    finite_w = np.isfinite(ref_w)
    np.testing.assert_allclose(result.log10_weight_grad[0][finite_w], ref_w[finite_w], rtol=RTOL_LOG, atol=1e-5)
    np.testing.assert_allclose(result.log10_activation_rms[0], ref_rms, rtol=RTOL_LOG, atol=1e-5)
    if config.get("init") == "he":
        assert np.all(finite)


@pytest.mark.parametrize("name", ZOO)
def test_no_dead_units(name):
    # φ′ > 0 everywhere for ELU and φ′ = 0 only at one point for SiLU: no unit is dead, even where the
    # network saturates far on its negative side (σ_b = 3 pushes some units far left); ReLU there has dead units.
    kwargs = dict(depth=10, width=64, init="gaussian", weight_std=3.0, bias_std=3.0)
    for act, expect_dead in ((name, False), ("relu", True)):
        net = vglab.MLP(activation=act, **kwargs)
        activity = vglab.unit_activity(net, batch=128)
        dead = vglab.gradient_norms(net, n_seeds=2).dead_fraction
        assert (activity.dead_fraction.max() > 0) == expect_dead
        assert (dead.max() > 0) == expect_dead
        if not expect_dead:
            assert activity.inactive_fraction.max() == 0.0


# --------------------------------------------------------------------------------------------- mean field
def _brute(name, f, q):
    """E[f(√q u)] by adaptive quadrature split at 0 (ELU's kink), in x = √q u."""
    sd = math.sqrt(q)
    dens = lambda x: math.exp(-0.5 * x * x / q) / (sd * math.sqrt(2 * math.pi))  # noqa: E731
    return sum(integrate.quad(lambda x: f(x) * dens(x), a, b, epsabs=0, epsrel=1e-13, limit=400)[0]
               for a, b in [(-40 * sd, 0.0), (0.0, 40 * sd)])


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("q", [1e-6, 3e-4, 0.01, 0.5, 1.0, 3.0, 30.0, 1e4])
def test_gaussian_moments_match_brute_force_integration(name, q):
    phi = lambda x: float(theory._phi_np(name, np.float64(x), 0.0))  # noqa: E731
    dphi = lambda x: float(theory._dphi_np(name, np.float64(x), 0.0))  # noqa: E731
    assert theory.mean_activation(name, q) == pytest.approx(_brute(name, phi, q), rel=1e-9, abs=1e-300)
    assert theory.mean_square_activation(name, q) == pytest.approx(_brute(name, lambda x: phi(x) ** 2, q),
                                                                   rel=1e-9)
    assert theory.mean_square_derivative(name, q) == pytest.approx(_brute(name, lambda x: dphi(x) ** 2, q),
                                                                   rel=1e-9)


def test_elu_chi1_closed_form():
    # ELU: E[φ′²] = 1/2 + e^{2q}Φ(−2√q); q → 0 gives 1 (φ′(0) = 1), q → ∞ gives 1/2 (ReLU's).
    # σ_w = 1.2, σ_b = 0.1: a finite fixed point (σ_w²/2 < 1 on the linear side), q* ≈ 0.596, χ₁ ≈ 1.0106.
    q = theory.q_star("elu", 1.2, 0.1)
    assert 0.5 < q < 0.7
    assert theory.length_map(q, "elu", 1.2, 0.1) == pytest.approx(q, rel=1e-10)
    expected = 1.2**2 * (0.5 + math.exp(2 * q) * 0.5 * math.erfc(2 * math.sqrt(q) / math.sqrt(2)))
    assert theory.chi1("elu", 1.2, 0.1) == pytest.approx(expected, rel=1e-12)
    assert theory.chi1("elu", 1.5, 0.1) == pytest.approx(1.5**2 / 2, rel=1e-5)  # q* = ∞: ReLU's limit
    assert theory.mean_square_derivative("elu", 1e-12) == pytest.approx(1.0, abs=1e-5)
    assert theory.mean_square_derivative("elu", 1e8) == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize("activation,sigma_w,sigma_b", [("elu", 1.5, 0.1), ("elu", 1.0, 0.3), ("silu", 1.8, 0.1),
                                                        ("silu", 2.5, 0.0)])
def test_measured_decay_agrees_with_mean_field_for_wide_nets(activation, sigma_w, sigma_b):
    # As tests/test_theory.py: 4 standard errors of the seed mean plus a finite-width bias of 2/n decades a layer.
    depth, width, n_seeds = 20, 512, 4
    net = vglab.MLP(depth=depth, width=width, activation=activation, init="gaussian", weight_std=sigma_w,
                    bias_std=sigma_b)
    runs = vglab.gradient_norms(net, n_seeds=n_seeds).log10_activation_grad
    measured = runs.mean(axis=0)
    standard_error = runs.std(axis=0, ddof=1) / np.sqrt(n_seeds)
    predicted = theory.predicted_log10_grad(net, log10_output_grad=measured[-1])
    allowed = 4 * standard_error + 2.0 * (depth - np.arange(depth + 1)) / width + 1e-3
    assert np.all(np.abs(measured - predicted) <= allowed), (measured - predicted, allowed)
    assert abs(predicted[0] - predicted[-1]) > 0.3  # the prediction really moves: the test can fail


@pytest.mark.parametrize("activation,sigma_w", [("elu", 1.0), ("silu", 1.2)])
def test_residual_theory_with_a_drifting_mean_matches_measurement(activation, sigma_w):
    # As tests/test_theory.py: E[φ] > 0, so the rank-one part Q_L/(n Q_l) of the ReLU-like activations applies.
    # Measured (depth 100, width 256, 4 seeds): ELU 15.57 decades of growth vs 15.23 predicted, SiLU 18.78 vs 18.42.
    net = vglab.MLP(depth=100, width=256, activation=activation, weight_std=sigma_w, residual=True)
    runs = vglab.gradient_norms(net, n_seeds=4).log10_activation_grad
    relative = runs - runs[:, -1:]
    measured = 0.5 * np.log10(np.mean(10.0 ** (2 * relative), axis=0))  # log10 √E‖∂L/∂h_l‖² / ‖g‖
    predicted = theory.predicted_log10_grad(net, 0.0)
    assert measured[0] > 10
    assert np.all(np.abs(measured - predicted) <= 0.03 * np.abs(measured) + 0.25)


# --------------------------------------------------------------------------------------------- GRU
def gru_reference(net, seed):
    """float64 log10 ‖∂L/∂h_t‖, t = 0..T: L = ⟨g, h_T⟩ with perturbations ε_t added to h_t, differentiated by
    jax.grad at ε = 0 on the engine's own weights (cast to float64)."""
    W, U, b, xs, g = (jnp.asarray(a, jnp.float64) for a in recurrent.parameters(net, seed))
    n, T = net.hidden, net.steps

    def step(h, x_eps):
        x, eps = x_eps
        d = U @ x + b
        r, u = jax.nn.sigmoid(W[:n] @ h + d[:n]), jax.nn.sigmoid(W[n:2 * n] @ h + d[n:2 * n])
        cand = jnp.tanh(W[2 * n:] @ (r * h) + d[2 * n:])
        return u * h + (1 - u) * cand + eps, None

    def loss(eps):
        h, _ = jax.lax.scan(step, jnp.zeros(n) + eps[0], (xs, eps[1:]))
        return jnp.dot(g, h)

    grads = jax.jit(jax.grad(loss))(jnp.zeros((T + 1, n)))
    return np.log10(np.linalg.norm(np.asarray(grads), axis=1))


GRU = dict(cell="gru", hidden=12)  # every GRU test below (n_seeds 2, T ≤ 500) runs one compiled program


@pytest.mark.parametrize("config,steps", [
    (dict(update_bias=-1.0, bias_std=0.5, weight_std=2.0), 50),
    (dict(update_bias=3.0, spectral_radius=1.0, input_std=0.5), 500),
], ids=lambda c: str(c))
def test_gru_matches_float64_reference(config, steps):
    net = vglab.RNN(steps=steps, **GRU, **config)
    recurrent.recurrent_bank(net.replace(steps=500), (5, 6))  # draws for T = 500: T = 50 reuses its program
    result = vglab.gradient_norms(net, seed=5, n_seeds=2)
    assert result.log10_activation_grad.shape == (2, steps + 1)
    assert result.log10_cell_grad is None and result.forget_gate_mean is None
    assert result.update_gate_mean.shape == (2, steps)
    for i in range(2):
        np.testing.assert_allclose(result.log10_activation_grad[i], gru_reference(net, 5 + i),
                                   rtol=RTOL_LOG, atol=1e-5)


def test_positive_update_bias_lengthens_the_gradients_reach():
    # u_t = σ(b_u + …) → 1 copies h_{t−1}: the gradient path through ∂h_t/∂h_{t−1} ⊇ diag(u_t) decays slower.
    # Measured (hidden 12, T = 500, seeds 0-1, mean log10 ‖∂L/∂h_0‖ with ‖g‖ ≈ 10^0.59): b_u = −2: −199.9,
    # 0: −99.9, 1: −53.4, 3: −9.4; mean update gate 0.16, 0.50, 0.69, 0.93.
    reach = {}
    for bias in (-2.0, 0.0, 1.0, 3.0):
        result = vglab.gradient_norms(vglab.RNN(steps=500, update_bias=bias, **GRU), n_seeds=2)
        reach[bias] = float(np.mean(result.log10_activation_grad[:, 0]))
        gate = float(np.mean(result.update_gate_mean))
        assert gate == pytest.approx(1 / (1 + math.exp(-bias)), abs=0.05)
    assert reach[-2.0] < reach[0.0] - 60 and reach[0.0] < reach[1.0] - 30 and reach[1.0] < reach[3.0] - 30, reach
    assert reach[3.0] > -15.0 and reach[-2.0] < -150.0, reach


def test_gru_validation_and_code():
    with pytest.raises(ValueError, match=r"the GRU cell uses σ gates and tanh .* got activation='relu'"):
        vglab.RNN(cell="gru", activation="relu")
    with pytest.raises(ValueError, match=r"update_bias must be in \[-100\.0, 100\.0\], got 1000\.0"):
        vglab.RNN(cell="gru", update_bias=1000.0)
    with pytest.raises(ValueError, match=r"unknown cell 'gur'; did you mean 'gru'\?"):
        vglab.RNN(cell="gur")
    net = vglab.RNN(cell="gru", hidden=8, steps=30, update_bias=2.5, spectral_radius=0.9)
    assert net.to_code() == "vglab.RNN(cell='gru', hidden=8, steps=30, spectral_radius=0.9, update_bias=2.5)"
    assert eval(net.to_code(), {"vglab": vglab}) == net


def test_gru_in_the_sequence_dashboard():
    from vglab.lab.sequence_dashboards import RecurrentDashboard
    d = RecurrentDashboard(cell="gru", steps=40, hidden=12, n_seeds=2, max_steps=500, hiddens=(12,),
                           warm_up=False)
    try:
        assert "gru" in d.controls["cell"].options
        d.set(forget_bias=4.0, activation="relu")  # the GRU ignores activation, uses b_u = 4
        net = d.network()
        assert (net.cell, net.activation, net.update_bias) == ("gru", "tanh", 4.0)
        assert "mean update gate 0.9" in d.status.value and "b_u = 4" in d.status.value
    finally:
        d.close()
