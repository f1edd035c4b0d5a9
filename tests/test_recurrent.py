"""vglab.RNN: per-step gradients against float64 jax.jacfwd, closed forms, the Pascanu bound, 1000 steps."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from tests import reference  # noqa: F401  (enables float64 for the references below)
from vglab.core.compilation import CompileCounter
from vglab.models import recurrent

RTOL_LOG = 1e-5  # on log10 values: the norms agree to ~2e-5 relative


COUNTER = CompileCounter()


# --------------------------------------------------------------------------------------------- reference
def _phi(name, x, slope):
    return {
        "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": lambda v: jnp.maximum(v, 0.0),
        "leaky_relu": lambda v: jnp.where(v > 0, v, slope * v),
        "gelu": lambda v: jax.nn.gelu(v, approximate=False),
        "linear": lambda v: v,
    }[name](x)


def reference_gradients(net, seed):
    """float64 log10 ‖∂L/∂h_t‖ and (LSTM) ‖∂L/∂c_t‖, t = 0..T, written out directly.

    The graph adjoints are the derivatives of L with respect to perturbations ε_t added to h_t (and η_t added
    to c_t, before h_t is computed from it) at ε = η = 0, taken by forward-mode jax.jacfwd.
    """
    p = recurrent.parameters(net, seed)
    W, U, b, xs, g = (jnp.asarray(a, jnp.float64) for a in p)
    n, T = net.hidden, net.steps

    def loss(eps, eta):
        h = jnp.zeros(n) + eps[0]
        c = jnp.zeros(n) + eta[0]
        for t in range(1, T + 1):
            z = W @ h + U @ xs[t - 1] + b
            if net.cell == "vanilla":
                h = _phi(net.activation, z, net.leaky_slope) + eps[t]
            else:
                i, f, o = jax.nn.sigmoid(z[:n]), jax.nn.sigmoid(z[n:2 * n]), jax.nn.sigmoid(z[2 * n:3 * n])
                c = f * c + i * jnp.tanh(z[3 * n:]) + eta[t]
                h = o * jnp.tanh(c) + eps[t]
        return jnp.dot(g, h)

    zeros = jnp.zeros((T + 1, n))
    d_eps, d_eta = jax.jacfwd(loss, argnums=(0, 1))(zeros, zeros)
    with np.errstate(divide="ignore"):  # ∂L/∂c_T = 0 for the vanilla cell: log10 0 = −inf, not compared
        return np.log10(np.linalg.norm(d_eps, axis=1)), np.log10(np.linalg.norm(d_eta, axis=1))


CONFIGS = [
    dict(cell="vanilla", activation="tanh"),
    dict(cell="vanilla", activation="relu", bias_std=0.3, weight_std=1.5),
    dict(cell="vanilla", activation="sigmoid", spectral_radius=2.0),
    dict(cell="vanilla", activation="gelu", input_std=0.5),
    dict(cell="vanilla", activation="leaky_relu", leaky_slope=0.2, spectral_radius=0.7),
    dict(cell="vanilla", activation="linear", weight_std=0.8, input_std=0.0),
    dict(cell="lstm"),
    dict(cell="lstm", forget_bias=3.0, weight_std=2.0, bias_std=0.5),
    dict(cell="lstm", spectral_radius=1.0, input_std=2.0, forget_bias=-1.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("hidden,steps,seed", [(8, 6, 4), (8, 2, 11)])
def test_matches_float64_jacfwd(config, hidden, steps, seed):
    # Two seeds in one vmapped call: each row must be its own network's exact gradient.
    net = vglab.RNN(hidden=hidden, steps=steps, **config)
    result = vglab.gradient_norms(net, seed=seed, n_seeds=2)
    assert result.log10_activation_grad.shape == (2, steps + 1)
    assert result.log10_hidden_rms.shape == (2, steps)
    for i in range(2):
        ref_h, ref_c = reference_gradients(net, seed + i)
        np.testing.assert_allclose(result.log10_activation_grad[i], ref_h, rtol=RTOL_LOG, atol=1e-5)
        if net.cell == "lstm":
            assert result.log10_cell_grad.shape == (2, steps + 1)
            assert result.forget_gate_mean.shape == (2, steps)
            np.testing.assert_allclose(result.log10_cell_grad[i], ref_c, rtol=RTOL_LOG, atol=1e-5)
        else:
            assert result.log10_cell_grad is None and result.forget_gate_mean is None
    assert not np.allclose(result.log10_activation_grad[0], result.log10_activation_grad[1])


@pytest.mark.parametrize("cell", ["vanilla", "lstm", "gru"])
def test_each_seed_of_a_many_seed_call_is_exactly_its_own_one_seed_call(cell):
    # The seeds of one call run one network after another (recurrent._seed_by_seed), so row k is, bit for bit,
    # the call with seed + k alone: a student comparing a 3-seed band with one seed's curve sees the same numbers.
    net = vglab.RNN(cell=cell, hidden=32, steps=300, weight_std=1.1, bias_std=0.2)
    many = vglab.gradient_norms(net, seed=3, n_seeds=3)
    for k in range(3):
        one = vglab.gradient_norms(net, seed=3 + k)
        for field in ("log10_activation_grad", "log10_hidden_rms", "log10_cell_grad", "forget_gate_mean"):
            if getattr(one, field) is None:
                assert getattr(many, field) is None
                continue
            np.testing.assert_array_equal(getattr(many, field)[k], getattr(one, field)[0], err_msg=field)


@pytest.mark.parametrize("cell", ["vanilla", "lstm"])
def test_single_unit_single_step_matches_float64_jacfwd(cell):
    net = vglab.RNN(cell=cell, hidden=1, steps=1, bias_std=0.5)
    result = vglab.gradient_norms(net, seed=0, n_seeds=2)
    for i in range(2):
        ref_h, ref_c = reference_gradients(net, i)
        np.testing.assert_allclose(result.log10_activation_grad[i], ref_h, rtol=RTOL_LOG, atol=1e-5)
        if cell == "lstm":
            np.testing.assert_allclose(result.log10_cell_grad[i], ref_c, rtol=RTOL_LOG, atol=1e-5)


# --------------------------------------------------------------------------------------------- closed forms
LONG = dict(hidden=16, steps=1000)  # the long-sequence tests share one compiled program per cell type


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.0, 1.7])
def test_linear_rnn_gradient_is_rho_to_the_distance(rho):
    # h_t = W h_{t-1} + U x_t with W = ρQ: ∂L/∂h_t = (Wᵀ)^{T−t} g, so ‖∂L/∂h_t‖ = ρ^{T−t} ‖g‖ exactly;
    # 0.5^1000 ≈ 1e-301 and 1.7^1000 ≈ 1e230 are far outside float32.
    net = vglab.RNN(activation="linear", spectral_radius=rho, **LONG)
    g = vglab.gradient_norms(net, seed=2).log10_activation_grad[0]
    expected = g[-1] + np.arange(net.steps, -1, -1) * math.log10(rho)
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("config", [dict(spectral_radius=0.9), dict(weight_std=0.4),
                                    dict(weight_std=0.3, input_std=3.0)])
def test_vanilla_tanh_obeys_the_pascanu_bound(config):
    # |tanh′| ≤ 1, so ‖∂L/∂h_t‖ ≤ ‖W‖₂^{T−t} ‖g‖ (Pascanu, Mikolov & Bengio 2013) whenever ‖W‖₂ < 1.
    net = vglab.RNN(activation="tanh", **(LONG | dict(steps=300)), **config)
    W = recurrent.parameters(net, seed=1).recurrent.astype(np.float64)
    norm2 = np.linalg.norm(W, 2)
    assert norm2 < 1.0
    g = vglab.gradient_norms(net, seed=1).log10_activation_grad[0]
    bound = g[-1] + np.arange(net.steps, -1, -1) * math.log10(norm2)
    assert np.all(g <= bound + 1e-4)
    assert g[0] < g[-1] - 10  # and the gradient really vanishes


def test_lstm_with_open_forget_gates_keeps_gradients_the_vanilla_rnn_loses():
    steps = dict(steps=300)
    for seed in range(3):
        lstm = vglab.gradient_norms(vglab.RNN(cell="lstm", forget_bias=8.0, **(LONG | steps)), seed=seed)
        vanilla = vglab.gradient_norms(vglab.RNN(spectral_radius=0.8, **(LONG | steps)), seed=seed)
        assert np.all(lstm.forget_gate_mean > 0.99)  # forget gates pinned near 1
        c, h = lstm.log10_cell_grad[0], lstm.log10_activation_grad[0]
        assert c[-1] - c.min() < 1.0  # the cell state carries the gradient through all 300 steps
        assert h[-1] - h[0] < 3.0  # and ∂L/∂h_0 stays within a few orders of ∂L/∂h_T
        g = vanilla.log10_activation_grad[0]
        assert g[-1] - g[0] >= 10.0  # while the vanilla RNN loses more than ten


def test_lstm_cell_path_is_the_product_of_forget_gates():
    # With W = 0 the state never feeds back: ∂L/∂c_0 = (Π_t f_t) ⊙ δc_T elementwise,
    # δc_T = g ⊙ o_T ⊙ tanh′(c_T).
    # Forget gates ≈ σ(1) ≈ 0.73 over 1000 steps: the product is ~1e-140, far below float32.
    net = vglab.RNN(cell="lstm", weight_std=0.0, forget_bias=1.0, **LONG)
    r = vglab.gradient_norms(net, seed=3)
    p = recurrent.parameters(net, seed=3)
    n = net.hidden
    c = np.zeros(n)
    log_f = np.zeros(n)
    for t in range(net.steps):
        z = p.input_weights.astype(np.float64) @ p.inputs[t] + p.bias
        sig = 1 / (1 + np.exp(-z))
        log_f += np.log(sig[n:2 * n])
        c = sig[n:2 * n] * c + sig[:n] * np.tanh(z[3 * n:])
    delta_T = p.direction * sig[2 * n:3 * n] * (1 - np.tanh(c) ** 2)
    terms = np.log(np.abs(delta_T)) + log_f
    expected = (terms.max() + 0.5 * np.log(np.sum(np.exp(2 * (terms - terms.max()))))) / np.log(10)
    assert expected < -100
    assert r.log10_cell_grad[0, 0] == pytest.approx(expected, abs=1e-3)
    assert np.all(np.isneginf(r.log10_activation_grad[0, :-1]))  # W = 0: h_{t−1} never reaches h_t


@pytest.mark.parametrize("config", [dict(cell="vanilla", spectral_radius=0.5),
                                    dict(cell="vanilla", activation="linear", spectral_radius=2.0),
                                    dict(cell="vanilla", activation="relu", weight_std=0.9),
                                    dict(cell="lstm", forget_bias=0.0)])
def test_1000_steps_are_finite_beyond_float32(config):
    net = vglab.RNN(**LONG, **config)
    r = vglab.gradient_norms(net)
    assert np.all(np.isfinite(r.log10_activation_grad)) and np.all(np.isfinite(r.log10_hidden_rms))
    if net.cell == "lstm":
        assert np.all(np.isfinite(r.log10_cell_grad))
    if net.spectral_radius == 0.5:
        assert r.log10_activation_grad[0, 0] < -250  # ~0.5^1000 ≈ 1e-301: would be 0 in float32
    if net.spectral_radius == 2.0:
        assert r.log10_hidden_rms[0, -1] > 250  # states ~2^1000: would be inf in float32


def test_longer_sequences_keep_their_first_inputs():
    seeds = (9,)
    short = recurrent.recurrent_bank(vglab.RNN(hidden=16, steps=20), seeds)
    first_inputs, weights = np.asarray(short.inputs[0, :20]), np.asarray(short.recurrent)
    assert short.capacity == 64
    long = recurrent.recurrent_bank(vglab.RNN(hidden=16, steps=1000), seeds)  # extends the input bank
    assert long.capacity >= 1000
    np.testing.assert_array_equal(np.asarray(long.inputs[0, :20]), first_inputs)
    np.testing.assert_array_equal(np.asarray(long.recurrent), weights)


def test_steps_and_numbers_do_not_recompile():
    # Within a capacity bucket (here ≤ 64 steps) only the trip count changes.
    lstm = vglab.RNN(cell="lstm", hidden=8, steps=60)
    vanilla = vglab.RNN(hidden=8, steps=60)
    for net in (lstm, vanilla, lstm.replace(spectral_radius=1.0)):  # warm-up (the reference tests' programs)
        vglab.gradient_norms(net, seed=4, n_seeds=2)
    before, programs = COUNTER.count, recurrent.compiled_programs()
    for steps in [1, 2, 17, 64, 3]:
        vglab.gradient_norms(lstm.replace(steps=steps), seed=4, n_seeds=2)
        vglab.gradient_norms(vanilla.replace(steps=steps), seed=4, n_seeds=2)
    for change in [dict(forget_bias=4.0), dict(weight_std=0.5), dict(spectral_radius=0.5),
                   dict(input_std=0.1, bias_std=0.2), dict(spectral_radius=1.3, steps=50)]:
        vglab.gradient_norms(lstm.replace(**change), seed=4, n_seeds=2)
    assert COUNTER.count == before, "a steps or number change compiled a new program"
    assert recurrent.compiled_programs() == programs


def test_same_numbers_with_and_without_jit():
    net = vglab.RNN(cell="lstm", hidden=8, steps=2)
    jitted = vglab.gradient_norms(net, seed=4, n_seeds=2)
    with jax.disable_jit():
        eager = vglab.gradient_norms(net, seed=4, n_seeds=2)
    np.testing.assert_allclose(eager.log10_activation_grad, jitted.log10_activation_grad, rtol=1e-6)
    np.testing.assert_allclose(eager.log10_cell_grad, jitted.log10_cell_grad, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------- API
def test_to_code_round_trips():
    net = vglab.RNN(cell="lstm", hidden=8, steps=30, forget_bias=3.0, spectral_radius=0.9)
    assert net.to_code() == ("vglab.RNN(cell='lstm', hidden=8, steps=30, spectral_radius=0.9, "
                             "forget_bias=3.0)")
    assert eval(net.to_code(), {"vglab": vglab}) == net
    r = vglab.gradient_norms(net, seed=2, n_seeds=2)
    assert r.to_code() == f"vglab.gradient_norms({net.to_code()}, seed=2, n_seeds=2)"
    np.testing.assert_array_equal(eval(r.to_code(), {"vglab": vglab}).log10_cell_grad, r.log10_cell_grad)
    g = r.log10_activation_grad
    np.testing.assert_allclose(r.log10_gradient_ratio, g[:, 0] - g[:, -1])
    assert net.replace(cell="vanilla").cell == "vanilla" and hash(net) == hash(net.replace())


@pytest.mark.parametrize("kwargs,message", [
    (dict(cell="elman"), r"unknown cell 'elman' \(valid: vanilla, lstm, gru\)"),
    (dict(cell="lstn"), r"unknown cell 'lstn'; did you mean 'lstm'\?"),
    (dict(activation="tanhh"), r"unknown activation 'tanhh'; did you mean 'tanh'\?"),
    (dict(cell="lstm", activation="relu"), r"applies to cell='vanilla' only, got activation='relu'"),
    (dict(hidden=0), r"hidden must be an integer in 1\.\.2048, got 0"),
    (dict(hidden=4096), r"hidden must be an integer in 1\.\.2048, got 4096"),
    (dict(steps=0), r"steps must be an integer in 1\.\.10000, got 0"),
    (dict(steps=10001), r"steps must be an integer in 1\.\.10000, got 10001"),
    (dict(steps=3.5), r"steps must be an integer in 1\.\.10000, got 3\.5"),
    (dict(weight_std=1.0, spectral_radius=1.0), r"give weight_std .* or spectral_radius .*, not both"),
    (dict(spectral_radius=-0.5), r"spectral_radius must be in \[0\.0, 100\.0\], got -0\.5"),
    (dict(weight_std=float("inf")), r"weight_std must be finite, got inf"),
    (dict(input_std="big"), r"input_std must be a real number, got 'big'"),
    (dict(forget_bias=1000.0), r"forget_bias must be in \[-100\.0, 100\.0\], got 1000\.0"),
    (dict(bias_std=-1.0), r"bias_std must be in \[0\.0, 100\.0\], got -1\.0"),
])
def test_rnn_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        vglab.RNN(**kwargs)


def test_gradient_norms_rejects_bad_seeds_and_sizes():
    net = vglab.RNN(hidden=4, steps=3)
    with pytest.raises(ValueError, match=r"n_seeds must be an integer in 1\.\.64, got 0"):
        vglab.gradient_norms(net, n_seeds=0)
    with pytest.raises(ValueError, match=r"seed must be an integer in 0\.\."):
        vglab.gradient_norms(net, seed=-2)
    huge = vglab.RNN(cell="lstm", hidden=2048, steps=10000)
    message = r"steps × hidden × n_seeds = 10000 × 2048 × 64 \(lstm\) needs .* GiB .* above the 2 GiB bound"
    with pytest.raises(ValueError, match=message):
        vglab.gradient_norms(huge, n_seeds=64)
    with pytest.raises(ValueError, match=r"expects a vglab.RNN, got MLP"):
        recurrent.recurrent_gradient_norms(vglab.MLP(depth=2, width=3))
