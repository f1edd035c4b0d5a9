"""Recurrent networks unrolled through time: exact ‖∂L/∂h_t‖ for every step, accumulated in log space.

Model (hidden size n, steps T, every sequence drawn from the seed):

    h_0 = 0, c_0 = 0, inputs x_t ~ N(0, I_n) independently for t = 1..T (input size = hidden size).

    vanilla (Elman):   h_t = φ(W h_{t-1} + U x_t + b)

    lstm (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000):
        i_t = σ(W_i h_{t-1} + U_i x_t + b_i)        input gate
        f_t = σ(W_f h_{t-1} + U_f x_t + b_f)        forget gate, b_f = forget_bias (+ σ_b noise)
        o_t = σ(W_o h_{t-1} + U_o x_t + b_o)        output gate
        g_t = tanh(W_g h_{t-1} + U_g x_t + b_g)     candidate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t             cell state (the "constant error carousel")
        h_t = o_t ⊙ tanh(c_t)

    gru (Cho et al. 2014):
        r_t = σ(W_r h_{t-1} + U_r x_t + b_r)        reset gate
        u_t = σ(W_u h_{t-1} + U_u x_t + b_u)        update gate, b_u = update_bias (+ σ_b noise)
        n_t = tanh(W_n (r_t ⊙ h_{t-1}) + U_n x_t + b_n)   candidate
        h_t = u_t ⊙ h_{t-1} + (1 − u_t) ⊙ n_t        (Cho et al.'s and PyTorch's convention)
    The update gate u_t is the GRU's forget gate: u_t → 1 copies h_{t-1} unchanged (the memory is kept),
    u_t → 0 overwrites it.  So a *positive* ``update_bias`` keeps memory, as a positive LSTM forget bias does.

Weights: W = (σ_w/√n) Ŵ with Ŵ ~ N(0, 1) (``weight_std`` = σ_w, default 1), or, with ``spectral_radius`` ρ,
W = ρ Q with Q Haar orthogonal, so every singular value (and eigenvalue modulus) of W is exactly ρ.  The LSTM
draws its four n×n blocks W_i, W_f, W_o, W_g that way.  U = (σ_in/√n) Û with Û ~ N(0, 1) (``input_std``),
b = σ_b b̂ (``bias_std``).  The draws depend only on (seed, step) — making the sequence longer appends inputs
and leaves the earlier ones as they were.

Loss: L = ⟨g, h_T⟩ with g ~ N(0, I_n), a function of the last step only, so ∂L/∂h_T = g and
‖∂L/∂h_t‖ measures how much the last output still depends on the state t steps earlier.  The gradients are
the adjoints of the computation graph: ∂L/∂h_t is the total derivative of L with respect to h_t with
everything computed from h_t recomputed; likewise ∂L/∂c_t for the LSTM, where everything computed from c_t
includes h_t = o_t ⊙ tanh(c_t) (for t = 0 only c_1, since h_0 is a given initial state).  Backward:

    vanilla:  ∂L/∂h_{t-1} = Wᵀ (φ′(z_t) ⊙ ∂L/∂h_t)
    gru:      δn = ∂L/∂h_t ⊙ (1 − u_t) ⊙ tanh′(z_n),  δu = ∂L/∂h_t ⊙ (h_{t-1} − n_t) ⊙ σ′(z_u),
              q = W_nᵀ δn,  δr = q ⊙ h_{t-1} ⊙ σ′(z_r)
              ∂L/∂h_{t-1} = ∂L/∂h_t ⊙ u_t + q ⊙ r_t + W_rᵀ δr + W_uᵀ δu
    lstm:     δc_t = ∂L/∂c_t = ∂L/∂c_t|_{via c_{t+1}} + ∂L/∂h_t ⊙ o_t ⊙ tanh′(c_t)
              ∂L/∂c_{t-1}|_{via c_t} = f_t ⊙ δc_t
              ∂L/∂h_{t-1} = Wᵀ [δc_t ⊙ g_t ⊙ σ′_i;  δc_t ⊙ c_{t-1} ⊙ σ′_f;  ∂L/∂h_t ⊙ tanh(c_t) ⊙ σ′_o;
                                δc_t ⊙ i_t ⊙ tanh′(z_g)]

With ‖W‖₂ < 1 and |φ′| ≤ 1 the vanilla gradient shrinks at least like ‖W‖₂^{T−t} (Pascanu, Mikolov &
Bengio 2013); the LSTM's cell path multiplies by f_t only, so forget gates near 1 carry the gradient over
hundreds of steps.

The backward adjoints are carried as (ṽ, r) with v = e^r ṽ and renormalised every step (``vglab.core.logspace``),
and the vanilla forward state as (h̃, s) with h = e^s h̃, so T = 1000 with ρ = 0.5 (gradients ~1e-301) or a
linear RNN with ρ = 2 (states ~1e301) is exact in float32.  The loops over time are the forward skeleton and
the backward chain of ``vglab.core.chain`` (the LSTM and GRU states, bounded, are carried at their true size:
``measure_rms``), each a ``lax.fori_loop`` with the number of steps as a dynamic trip count over a bank of
inputs bucketed by capacity (64, 256, 1024, 4096, 10000): changing ``steps`` (within a bucket) or any number
(ρ, σ_in, forget bias, ...) reuses the compiled program.  Seeds run one after another (``_seed_by_seed``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core import init as _init
from vglab.core.activations import _TINY_DERIVATIVE, ACTIVATIONS
from vglab.core.banks import BankCache, append_rows, capacity, checked_bank
from vglab.core.chain import backward_chain, forward_chain, log10_rows, measure_rms, retry_in_log_form
from vglab.core.compilation import exact_jit
from vglab.core.config import Config, choice, config, integer, real
from vglab.core.logspace import (
    LogScale,
    factor_scale,
    follow,
    log_scale,
    minus_inf_pairs,
    normalise_unit,
    put_pair,
    scale_add,
    split_float64,
)
from vglab.core.results import GradientProfile
from vglab.core.streams import stream_key
from vglab.core.validation import check_seeds
from vglab.models.jacobians import (
    DEPTH_BUCKETS,
    _per_seed,
    factored_derivative,
    pre_activation,
)

CELLS = ("vanilla", "lstm", "gru")
_GATES = {"vanilla": 1, "lstm": 4, "gru": 3}
MAX_STEPS = 10_000
MAX_HIDDEN = 2048
# Largest float32 per-step trace (inputs and what the backward pass reads) one call may hold, all seeds.
TRACE_BUDGET_BYTES = 2 * 2**30
_TRACE_FLOATS = {"vanilla": 3, "lstm": 12, "gru": 10}  # floats per step and hidden unit (inputs + trace + output)


@config
class RNN(Config):
    """A recurrent network of ``hidden`` units unrolled for ``steps`` time steps (see the module docstring).

    cell:            "vanilla" (h_t = φ(W h_{t-1} + U x_t + b)), "lstm" or "gru".
    activation:      φ of the vanilla cell (any of ``vglab.ACTIVATIONS``); the LSTM and GRU use σ and tanh.
    weight_std:      σ_w, recurrent W ~ N(0, σ_w²/n) (the default, σ_w = 1; ‖W‖₂ ≈ 2σ_w for large n).
    spectral_radius: ρ, recurrent W = ρ·Q with Q Haar orthogonal (all singular values equal ρ).
                     Give ``weight_std`` or ``spectral_radius``, not both.
    input_std:       σ_in, input weights U ~ N(0, σ_in²/n) (the drive U x_t has unit-order size σ_in).
    bias_std:        σ_b, b ~ N(0, σ_b²).
    forget_bias:     the constant added to the LSTM forget-gate bias (ignored by the other cells).
    update_bias:     the constant added to the GRU update-gate bias (ignored by the other cells).  Positive
                     keeps memory: u_t = σ(… + update_bias) → 1 makes h_t ≈ h_{t-1} (the GRU's forget-bias).
    leaky_slope:     the negative slope of leaky ReLU.
    """

    cell: str = choice(CELLS, default="vanilla")
    hidden: int = integer(1, MAX_HIDDEN, default=32)
    steps: int = integer(1, MAX_STEPS, default=50)
    activation: str = choice(ACTIVATIONS, default="tanh")
    weight_std: float | None = real(0.0, 100.0, default=None)
    spectral_radius: float | None = real(0.0, 100.0, default=None)
    input_std: float = real(0.0, 100.0, default=1.0)
    bias_std: float = real(0.0, 100.0, default=0.0)
    forget_bias: float = real(-100.0, 100.0, default=1.0)
    leaky_slope: float = real(-10.0, 10.0, default=0.01)
    update_bias: float = real(-100.0, 100.0, default=1.0)

    CODE_ALWAYS = ("cell", "hidden", "steps")

    def validate(self):
        gated = {"lstm": "the LSTM cell uses σ gates and tanh (Hochreiter & Schmidhuber 1997)",
                 "gru": "the GRU cell uses σ gates and tanh (Cho et al. 2014)"}.get(self.cell)
        if gated and self.activation != "tanh":
            raise ValueError(f"{gated}; activation applies to cell='vanilla' only, "
                             f"got activation={self.activation!r}")
        if self.weight_std is not None and self.spectral_radius is not None:
            raise ValueError("give weight_std (Gaussian W) or spectral_radius (W = ρ·orthogonal), not both")

    @property
    def orthogonal(self) -> bool:
        """True when W = ρ·Q (``spectral_radius`` given)."""
        return self.spectral_radius is not None

    @property
    def recurrent_scale(self) -> float:
        """σ_w (Gaussian W) or ρ (orthogonal W): W = (scale/√n) Ŵ either way."""
        if self.spectral_radius is not None:
            return float(self.spectral_radius)
        return 1.0 if self.weight_std is None else float(self.weight_std)

    @property
    def gates(self) -> int:
        """Blocks of W: 1 for the vanilla cell, 4 (i, f, o, g) for the LSTM, 3 (r, u, n) for the GRU."""
        return _GATES[self.cell]

    def gradient_profile(self, seed: int = 0, n_seeds: int = 1) -> RecurrentGradientNorms:
        """This model's ``vglab.GradientProfile`` (what ``vglab.gradient_norms`` dispatches to)."""
        return recurrent_gradient_norms(self, seed=seed, n_seeds=n_seeds)


# --------------------------------------------------------------------------------------------- draws
def _unit_block(seed, purpose: str, index, n, orthogonal):
    """Block ``index`` of ``purpose`` (``vglab.core.streams``): Gaussian Ŵ, or √n times a Haar orthogonal Q."""
    key = stream_key(seed, purpose, index)
    if orthogonal:
        return math.sqrt(n) * _init.haar_orthogonal(key, n)
    return jax.random.normal(key, (n, n), jnp.float32)


@partial(exact_jit, static_argnames=("hidden", "gates", "orthogonal"))
def _draw_weights(seeds, hidden, gates, orthogonal):
    def one(seed):
        blocks = jnp.arange(gates)
        recurrent = jax.vmap(lambda k: _unit_block(seed, "rnn_recurrent", k, hidden, orthogonal))(blocks)
        inputs = jax.vmap(lambda k: _unit_block(seed, "rnn_input_weights", k, hidden, False))(blocks)
        recurrent, inputs = (a.reshape(gates * hidden, hidden) for a in (recurrent, inputs))
        bias = jax.random.normal(stream_key(seed, "rnn_bias", 0), (gates * hidden,), jnp.float32)
        return recurrent, inputs, bias, _init.output_direction(seed, hidden)

    return jax.vmap(one)(seeds)


@partial(exact_jit, static_argnames=("hidden",))
def _draw_inputs(seeds, steps, hidden):
    """x_t ~ N(0, I) for the given step indices (0-based: index t−1 holds x_t)."""
    one = lambda seed, t: jax.random.normal(stream_key(seed, "rnn_inputs", t), (hidden,), jnp.float32)  # noqa: E731
    return jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))(seeds, steps)


class RecurrentBank(NamedTuple):
    """Unit-scale draws of ``len(seeds)`` networks: recurrent Ŵ (S, kn, n), input Û (S, kn, n),
    bias b̂ (S, kn), inputs x (S, C, n) for C ≥ steps, output direction g (S, n)."""

    recurrent: jax.Array
    input_weights: jax.Array
    bias: jax.Array
    inputs: jax.Array
    directions: jax.Array

    @property
    def capacity(self) -> int:
        return self.inputs.shape[1]


# (seeds, hidden, gates, orthogonal) → RecurrentBank; the budget bounds the per-step trace (check_trace_memory)
_BANKS = BankCache(size=4, budget_bytes=TRACE_BUDGET_BYTES)


def _step_bytes(net: RNN, n_seeds: int) -> int:
    return 4 * _TRACE_FLOATS[net.cell] * net.hidden * n_seeds


def check_trace_memory(net: RNN, n_seeds: int) -> None:
    """Refuse unrolls whose float32 per-step trace would exceed ``TRACE_BUDGET_BYTES``, naming the bound."""
    _BANKS.check(net.steps * _step_bytes(net, n_seeds),
                 f"steps × hidden × n_seeds = {net.steps} × {net.hidden} × {n_seeds} ({net.cell}) needs",
                 "steps, hidden or n_seeds", of="float32 trace")


def recurrent_bank(net: RNN, seeds: tuple[int, ...]) -> RecurrentBank:
    """The cached draws for (seeds, hidden, cell, orthogonal) holding at least ``net.steps`` inputs.

    A longer sequence extends the inputs with newly drawn steps; the existing ones are kept as they are.
    """
    check_trace_memory(net, len(seeds))

    def make(old: RecurrentBank | None) -> RecurrentBank:
        seeds_array = jnp.asarray(seeds, jnp.uint32)
        start = 0 if old is None else old.capacity
        stop = capacity(net.steps, DEPTH_BUCKETS, _step_bytes(net, len(seeds)), TRACE_BUDGET_BYTES, None)
        new_inputs = _draw_inputs(seeds_array, jnp.arange(start, stop), net.hidden)
        if old is not None:
            return append_rows(old, inputs=new_inputs)
        recurrent, input_weights, bias, directions = _draw_weights(seeds_array, net.hidden, net.gates,
                                                                   net.orthogonal)
        return RecurrentBank(recurrent, input_weights, bias, new_inputs, directions)

    return _BANKS.grown((seeds, net.hidden, net.gates, net.orthogonal), lambda bank: bank.capacity >= net.steps,
                        make)


def reserve(net: RNN, seed: int = 0, n_seeds: int = 1) -> None:
    """Draw and keep the inputs of ``net.steps`` steps for seeds seed..seed+n_seeds−1, so that every shorter
    unroll of the same network runs on the same arrays, hence the same compiled program (a ``steps`` change
    below ``net.steps`` does not recompile).  The dashboards call it with their slider's maximum."""
    recurrent_bank(net, check_seeds(seed, n_seeds))


def clear_cache() -> None:
    """Forget every cached recurrent bank (frees memory)."""
    _BANKS.clear()


class RecurrentParameters(NamedTuple):
    """The true-scale float32 parameters and data of one network (what the engine uses, for references).

    recurrent (kn, n) W;  input_weights (kn, n) U;  bias (kn,) b (forget-gate block included);
    inputs (T, n) rows x_1..x_T;  direction (n,) g.  k = 1 (vanilla) or 4 (LSTM blocks i, f, o, g).
    """

    recurrent: np.ndarray
    input_weights: np.ndarray
    bias: np.ndarray
    inputs: np.ndarray
    direction: np.ndarray


def parameters(net: RNN, seed: int = 0) -> RecurrentParameters:
    """The parameters, inputs and loss direction of the network drawn with ``seed`` (NumPy, float32)."""
    _, bank = checked_bank("parameters", net, RNN, seed, 1, recurrent_bank)
    scalars = _scalars(net)
    n = net.hidden
    return RecurrentParameters(
        np.asarray(bank.recurrent[0] * scalars.recurrent_scale),
        np.asarray(bank.input_weights[0] * scalars.input_scale),
        np.asarray(_bias(scalars, bank.bias[0], net.gates, n)),
        np.asarray(bank.inputs[0, : net.steps]),
        np.asarray(bank.directions[0]),
    )


# --------------------------------------------------------------------------------------------- programs
class Structure(NamedTuple):
    """The options that select a compiled program (hashable, static under jit)."""

    cell: str
    activation: str


def program_key(net, n_seeds: int) -> tuple:
    """What selects the compiled program ``gradient_norms(net, n_seeds=n_seeds)`` runs: the static ``Structure``
    (cell, activation), the shapes (hidden size, seeds) and the draw of W (Haar orthogonal for a spectral radius,
    else Gaussian); steps, ρ or σ_w, the input scale and the gate biases are traced or served by the same reserved
    inputs (``reserve``)."""
    return (Structure(net.cell, net.activation), net.hidden, n_seeds, net.orthogonal)


class Scalars(NamedTuple):
    """The options that are plain numbers (traced: changing them does not recompile)."""

    recurrent_scale: jax.Array  # σ_w/√n or ρ/√n
    input_scale: jax.Array  # σ_in/√n
    bias_std: jax.Array
    forget_bias: jax.Array
    leaky_slope: jax.Array
    update_bias: jax.Array
    log_recurrent_scale: LogScale  # log(ρ/√n) to float64 accuracy (W = e^{this} Ŵ exactly)


def _scalars(net: RNN) -> Scalars:
    root_n = math.sqrt(net.hidden)
    log_scale64 = math.log(net.recurrent_scale) - 0.5 * math.log(net.hidden) if net.recurrent_scale > 0 \
        else -math.inf
    return Scalars(jnp.float32(net.recurrent_scale / root_n), jnp.float32(net.input_std / root_n),
                   jnp.float32(net.bias_std), jnp.float32(net.forget_bias), jnp.float32(net.leaky_slope),
                   jnp.float32(net.update_bias), split_float64(log_scale64))


def _bias(scalars: Scalars, unit_bias, gates: int, n: int):
    """b = σ_b b̂, plus the forget bias on the LSTM's forget block (rows n..2n), or the update bias on the
    GRU's update block (rows n..2n)."""
    b = scalars.bias_std * unit_bias
    if gates == 4:
        b = b.at[n: 2 * n].add(scalars.forget_bias)
    if gates == 3:
        b = b.at[n: 2 * n].add(scalars.update_bias)
    return b


def _vanilla(structure, scalars, W, U, b, xs, g, steps):
    """Forward in scaled form, then backward in log space.  Returns natural-log ``LogScale`` pairs: (C+1,)
    grads, (C,) RMS (running scales added with TwoSum, ``vglab.core.logspace``), and φ′ factored as 2^k d̃
    (``factored_derivative``), so neither a long unroll nor a saturated step loses precision or underflows.
    The drive U x_t + b of every step is one matrix product before the loop (it does not depend on h), and
    the pre-activation is formed as in the MLP (``pre_activation``): no rounded factor common to a step's
    units."""
    activation = ACTIVATIONS[structure.activation]
    capacity, n = xs.shape
    drives = scalars.input_scale * (xs @ U.T) + b  # (C, n) true values, row t−1 is U x_t + b
    drive_scales = jnp.where(jnp.any(drives != 0.0, axis=1), 0.0, -jnp.inf)  # a zero drive has no scale

    def forward(mode):  # φ′ by ``factored_derivative`` in this mode; also: was some direct φ′ below 2⁻¹⁰⁰?
        def step(t, u, S, trace):  # t = 0..steps−1 computes h_{t+1}, renormalised by the chain (vglab.core.chain)
            dphi, log_dphi, tiny = trace
            # z = e^{s_w} Ŵ ũ + drive (s_w = s + log(ρ/√n)), held as e^{M} z̃ (``pre_activation``).
            zt, M = pre_activation(W @ u, scale_add(S, scalars.log_recurrent_scale), drives[t],
                                   log_scale(drive_scales[t]))
            at, s_a, d = activation.scaled(zt, M.hi, scalars.leaky_slope)
            tiny = tiny | (jnp.min(jnp.abs(d)) < _TINY_DERIVATIVE)
            d, c, _ = factored_derivative(activation, zt, M.hi, d, scalars.leaky_slope, mode)
            return at, follow(M, s_a), (dphi.at[t].set(d), log_dphi.at[t].set(c), tiny)

        trace = (jnp.zeros((capacity, n), jnp.float32), jnp.zeros((capacity,), jnp.float32), jnp.zeros((), bool))
        chain = forward_chain(step, jnp.zeros((n,), jnp.float32), log_scale(0.0), steps, capacity, trace=trace)
        dphi, log_dphi, tiny = chain.trace
        return (dphi, log_dphi, chain.log_rms), tiny

    # The direct φ′ every step, and once more with the log-space form only if some φ′ needed it: one branch
    # per call, not per step (``retry_in_log_form``, vglab.core.chain).
    dphi, log_dphi, log_rms = retry_in_log_form(forward, activation.log_dphi is not None)
    # The scale each backward step adds: φ′'s factor 2^k (exact) and log(ρ/√n), as pairs, for all steps at once.
    step_scales = scale_add(factor_scale(log_dphi), scalars.log_recurrent_scale)

    def backward(row, v, R, state):  # t = row + 1: ∂L/∂h_{t−1} = Wᵀ(φ′(z_t) ⊙ ∂L/∂h_t)
        # Wᵀx written as xW: XLA:CPU runs a transposed matvec several times slower than a row-vector product.
        branch, R, _ = normalise_unit(dphi[row] * v, scale_add(R, LogScale(step_scales.hi[row],
                                                                            step_scales.lo[row])))
        return branch @ W, R, state

    log_grad = backward_chain(backward, g, steps, capacity).log_norms  # the renormalised chain, vglab.core.chain
    return log_grad, minus_inf_pairs(capacity + 1), log_rms, jnp.zeros((capacity,))


class LSTMTrace(NamedTuple):
    """Per step t = 1..T (row t−1), what the backward pass reads; cells has rows c_0..c_T."""

    i: jax.Array
    f: jax.Array
    o: jax.Array
    g: jax.Array
    cells: jax.Array
    di: jax.Array  # σ′(z_i)
    df: jax.Array
    do: jax.Array
    dg: jax.Array  # tanh′(z_g)


def _lstm(structure, scalars, W, U, b, xs, g_out, steps):
    """Forward in float32 (every LSTM quantity is bounded: |h| < 1, |c_t| ≤ t), backward in log space."""
    sigmoid, tanh = ACTIVATIONS["sigmoid"], ACTIVATIONS["tanh"]
    capacity, n = xs.shape
    zeros = jnp.zeros((capacity, n), jnp.float32)
    trace = LSTMTrace(zeros, zeros, zeros, zeros, jnp.zeros((capacity + 1, n), jnp.float32),
                      zeros, zeros, zeros, zeros)

    def forward(t, state, S, trace):  # computes h_{t+1}, c_{t+1}: a step of the forward chain (vglab.core.chain)
        h, c = state
        z = scalars.recurrent_scale * (W @ h) + scalars.input_scale * (U @ xs[t]) + b
        zi, zf, zo, zg = z[:n], z[n: 2 * n], z[2 * n: 3 * n], z[3 * n:]
        i, f, o, gg = jax.nn.sigmoid(zi), jax.nn.sigmoid(zf), jax.nn.sigmoid(zo), jnp.tanh(zg)
        c = f * c + i * gg
        h = o * jnp.tanh(c)
        trace = LSTMTrace(trace.i.at[t].set(i), trace.f.at[t].set(f), trace.o.at[t].set(o),
                          trace.g.at[t].set(gg), trace.cells.at[t + 1].set(c),
                          trace.di.at[t].set(sigmoid.dphi(zi)), trace.df.at[t].set(sigmoid.dphi(zf)),
                          trace.do.at[t].set(sigmoid.dphi(zo)), trace.dg.at[t].set(tanh.dphi(zg)))
        return (h, c), S, trace

    zero = jnp.zeros((n,), jnp.float32)
    chain = forward_chain(forward, (zero, zero), log_scale(0.0), steps, capacity, trace=trace, normalise=measure_rms)
    trace, log_rms = chain.trace, chain.log_rms  # bounded: carried at true size, log RMS(h_t) measured

    a, r, logged = normalise_unit(g_out, log_scale(0.0))  # ∂L/∂h_T = g
    carry_c = jnp.zeros((n,), jnp.float32)  # ∂L/∂c_T through c_{T+1}: none

    def backward(row, vectors, r, log_grad_c):  # step t = row + 1: (∂L/∂h_t, ∂L/∂c_t via c_{t+1}) to t − 1
        a, b_c = vectors
        t = row + 1
        c_t, c_prev = trace.cells[t], trace.cells[row]
        delta_c = b_c + a * trace.o[row] * tanh.dphi(c_t)
        log_grad_c = put_pair(log_grad_c, t, scale_add(r, jnp.log(jnp.linalg.norm(delta_c))))
        dz = jnp.concatenate([delta_c * trace.g[row] * trace.di[row],
                              delta_c * c_prev * trace.df[row],
                              a * jnp.tanh(c_t) * trace.do[row],
                              delta_c * trace.i[row] * trace.dg[row]])
        a_prev = scalars.recurrent_scale * (dz @ W)  # Wᵀ dz as a row-vector product (see _vanilla)
        return (a_prev, delta_c * trace.f[row]), r, log_grad_c

    def normalise(vectors, r):  # (∂L/∂h_{t−1}, ∂L/∂c_{t−1} via c_t) to unit joint norm; logs ‖∂L/∂h_{t−1}‖
        a_prev, b_prev = vectors
        norm = jnp.sqrt(jnp.sum(a_prev * a_prev) + jnp.sum(b_prev * b_prev))
        safe = jnp.where(norm > 0.0, norm, 1.0)
        a, b_c, r = a_prev / safe, b_prev / safe, scale_add(r, jnp.log(safe))
        return (a, b_c), r, scale_add(r, jnp.log(jnp.linalg.norm(a)))

    chain = backward_chain(backward, g_out, steps, capacity, state=minus_inf_pairs(capacity + 1), normalise=normalise,
                           start=((a, carry_c), r, logged))  # the renormalised chain, vglab.core.chain
    log_grad_h, (_, b_c), r, log_grad_c = chain.log_norms, chain.v, chain.R, chain.state
    log_grad_c = put_pair(log_grad_c, 0, scale_add(r, jnp.log(jnp.linalg.norm(b_c))))  # h_0 is not from c_0
    forget_mean = jnp.mean(trace.f, axis=1)
    return log_grad_h, log_grad_c, log_rms, forget_mean


class GRUTrace(NamedTuple):
    """Per step t = 1..T (row t−1), what the backward pass reads; states has rows h_0..h_T."""

    r: jax.Array
    u: jax.Array
    n: jax.Array
    states: jax.Array
    dr: jax.Array  # σ′(z_r)
    du: jax.Array  # σ′(z_u)
    dn: jax.Array  # tanh′(z_n)


def _gru(structure, scalars, W, U, b, xs, g_out, steps):
    """Forward in float32 (|h_t| < 1: a convex mix of h_{t−1} and a tanh), backward in log space: the adjoint
    is renormalised to unit norm every step and its log-norm accumulated (TwoSum), as for the LSTM."""
    sigmoid, tanh = ACTIVATIONS["sigmoid"], ACTIVATIONS["tanh"]
    capacity, n = xs.shape
    zeros = jnp.zeros((capacity, n), jnp.float32)
    trace = GRUTrace(zeros, zeros, zeros, jnp.zeros((capacity + 1, n), jnp.float32), zeros, zeros, zeros)
    s = scalars.recurrent_scale

    def forward(t, h, S, trace):  # computes h_{t+1}: a step of the forward chain (vglab.core.chain)
        drive = scalars.input_scale * (U @ xs[t]) + b
        zr = s * (W[:n] @ h) + drive[:n]
        zu = s * (W[n: 2 * n] @ h) + drive[n: 2 * n]
        r, u = jax.nn.sigmoid(zr), jax.nn.sigmoid(zu)
        zn = s * (W[2 * n:] @ (r * h)) + drive[2 * n:]
        cand = jnp.tanh(zn)
        h_next = u * h + (1.0 - u) * cand
        trace = GRUTrace(trace.r.at[t].set(r), trace.u.at[t].set(u), trace.n.at[t].set(cand),
                         trace.states.at[t + 1].set(h_next), trace.dr.at[t].set(sigmoid.dphi(zr)),
                         trace.du.at[t].set(sigmoid.dphi(zu)), trace.dn.at[t].set(tanh.dphi(zn)))
        return h_next, S, trace

    chain = forward_chain(forward, jnp.zeros((n,), jnp.float32), log_scale(0.0), steps, capacity, trace=trace,
                          normalise=measure_rms)
    trace, log_rms = chain.trace, chain.log_rms  # bounded: carried at true size, log RMS(h_t) measured

    def backward(row, a, r_log, state):  # step t = row + 1: ∂L/∂h_t → ∂L/∂h_{t−1}
        h_prev = trace.states[row]
        u, reset = trace.u[row], trace.r[row]
        delta_n = a * (1.0 - u) * trace.dn[row]
        delta_u = a * (h_prev - trace.n[row]) * trace.du[row]
        q = s * (delta_n @ W[2 * n:])  # W_nᵀ δn as a row-vector product (see _vanilla)
        delta_r = q * h_prev * trace.dr[row]
        a_prev = a * u + q * reset + s * (jnp.concatenate([delta_r, delta_u]) @ W[: 2 * n])
        return a_prev, r_log, state

    log_grad_h = backward_chain(backward, g_out, steps, capacity).log_norms  # ∂L/∂h_T = g, vglab.core.chain
    return log_grad_h, minus_inf_pairs(capacity + 1), log_rms, jnp.mean(trace.u, axis=1)


_RUNS = {"vanilla": _vanilla, "lstm": _lstm, "gru": _gru}


@partial(exact_jit, static_argnames=("structure",))
def _recurrent_program(structure, scalars, recurrent, input_weights, bias, inputs, directions, steps):
    run = _RUNS[structure.cell]
    gates = _GATES[structure.cell]

    def one_seed(W, U, b_unit, xs, g):
        b = _bias(scalars, b_unit, gates, xs.shape[1])
        log_h, log_c, log_rms, forget = run(structure, scalars, W, U, b, xs, g, steps)
        return (*log_h, *log_c, *log_rms, forget)

    return _seed_by_seed(one_seed, recurrent, input_weights, bias, inputs, directions)


def _seed_by_seed(one_seed, *arrays):
    """``one_seed`` over the leading (seed) axis, one network after another (``lax.map``), a single one unbatched.

    Not ``vmap``: batched, XLA:CPU took 6–21× longer for 8 seeds than 8 one-seed programs (vanilla hidden 256,
    1000 steps: 1960 vs 92 ms CPU; LSTM 128: 194 vs 110; GRU 128: 298 vs 152; benchmarks/README.md).  Why is
    not measured (candidates: the per-step writes into (seeds, steps, n) carries; the ``lax.cond`` that ``vmap``
    turns into a select running both branches).  Each seed's numbers are exactly those of its one-seed call."""
    if jax.tree.leaves(arrays)[0].shape[0] == 1:
        return _per_seed(one_seed, *arrays)
    return jax.lax.map(lambda seed_arrays: one_seed(*seed_arrays), arrays)


def compiled_programs() -> int:
    """How many recurrent programs have been compiled so far (a change of ``steps`` must not add one)."""
    return _recurrent_program._cache_size()


# --------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class RecurrentGradientNorms(GradientProfile):
    """Per-step gradient magnitudes of ``n_seeds`` independently drawn copies of an RNN.

    log10_activation_grad: (n_seeds, steps+1)  log10 ‖∂L/∂h_t‖₂, t = 0..T (t = T is ‖g‖).
    log10_cell_grad:       (n_seeds, steps+1)  LSTM only: log10 ‖∂L/∂c_t‖₂, the gradient carried by the cell
                           state (c_t's total adjoint, see the module docstring); None for the vanilla cell.
    log10_hidden_rms:      (n_seeds, steps)    log10 RMS(h_t), t = 1..T (the forward signal).
    forget_gate_mean:      (n_seeds, steps)    LSTM only: mean_j f_t,j, t = 1..T; None for the other cells.
    update_gate_mean:      (n_seeds, steps)    GRU only: mean_j u_t,j, t = 1..T (near 1: memory kept); else None.
    An exactly zero gradient is −inf: it is zero (e.g. dead ReLUs), not underflow.
    """

    log10_cell_grad: np.ndarray | None
    log10_hidden_rms: np.ndarray
    forget_gate_mean: np.ndarray | None
    update_gate_mean: np.ndarray | None = None


def recurrent_gradient_norms(net: RNN, seed: int = 0, n_seeds: int = 1) -> RecurrentGradientNorms:
    """Exact ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖ for the LSTM) of L = ⟨g, h_T⟩, for seeds seed..seed+n_seeds−1.

    Called by ``vglab.gradient_norms(rnn, seed, n_seeds)``.  See ``RecurrentGradientNorms``.
    """
    _, bank = checked_bank("recurrent_gradient_norms", net, RNN, seed, n_seeds, recurrent_bank)
    out = [np.asarray(a) for a in _recurrent_program(Structure(net.cell, net.activation), _scalars(net),
                                                     bank.recurrent, bank.input_weights, bank.bias, bank.inputs,
                                                     bank.directions, jnp.int32(net.steps))]
    T, lstm, gru = net.steps, net.cell == "lstm", net.cell == "gru"
    forget = np.asarray(out[6], np.float64)[:, :T]
    return RecurrentGradientNorms(net, seed, n_seeds, log10_rows(*out[0:2], T + 1),
                                  log10_rows(*out[2:4], T + 1) if lstm else None, log10_rows(*out[4:6], T),
                                  forget if lstm else None, forget if gru else None)
