"""The benchmark problems as plain float32 NumPy arrays, read from vglab's own random draws.

Every implementation (vglab and each peer) works on exactly the same numbers: the weights, biases, inputs and
loss directions that vglab draws for a seed.  The peers receive them at their true scale
(W_l = σ_w/√n · Ŵ_l), converted once to their own array type outside the timed region.

Each problem also states its work: ``flops`` (floating-point operations of the algorithm) and
``bytes_moved`` (the bytes that must come from memory at least once per call), from which the floor is
time ≥ max(flops / matmul rate, bytes / bandwidth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import vglab
from vglab.core.streams import stream
from vglab.models import convolutional, jacobians, recurrent

FLOAT32 = 4


@dataclass(frozen=True)
class MLPProblem:
    """A plain MLP (no residual, no LayerNorm) of ``n_seeds`` independently drawn networks.

    weights (S, L, n, n) W_l at true scale; biases (S, L, n); inputs (S, n) h_0 = x; directions (S, n) g.
    """

    net: vglab.MLP
    n_seeds: int
    weights: np.ndarray
    biases: np.ndarray
    inputs: np.ndarray
    directions: np.ndarray

    @property
    def activation(self) -> str:
        return self.net.activation

    @property
    def sup_dphi(self) -> float:
        return vglab.sup_derivative(self.net.activation, self.net.leaky_slope)


def mlp_problem(net: vglab.MLP, n_seeds: int = 1, seed: int = 0) -> MLPProblem:
    """vglab's draws for ``net`` and seeds seed..seed+n_seeds−1, as float32 NumPy arrays at true scale."""
    if net.residual or net.norm is not None:
        raise ValueError("the peers implement the plain MLP only (residual=False, norm=None)")
    bank = jacobians.weight_bank(tuple(range(seed, seed + n_seeds)), net.width, net.orthogonal, net.depth)
    L, n = net.depth, net.width
    weights = np.asarray(bank.weights[:, :L]) * np.float32(net.sigma_w / math.sqrt(n))
    biases = np.asarray(bank.biases[:, :L]) * np.float32(net.bias_std)
    return MLPProblem(net, n_seeds, np.ascontiguousarray(weights, np.float32),
                      np.ascontiguousarray(biases, np.float32), np.asarray(bank.inputs, np.float32),
                      np.asarray(bank.directions, np.float32))


def gradient_norms_work(depth: int, width: int, n_seeds: int) -> tuple[float, float]:
    """(flops, bytes) of exact per-layer gradient norms: one matvec forward and one backward per layer
    (2n² flops each), plus O(n) elementwise work; every weight matrix is read forward and again backward
    (as soon as the bank exceeds the cache, it comes from memory twice)."""
    flops = n_seeds * depth * (4.0 * width * width + 30.0 * width)
    bytes_moved = 2.0 * n_seeds * depth * width * width * FLOAT32
    return flops, bytes_moved


def spectrum_work(depth: int, width: int) -> tuple[float, float]:
    """(flops, bytes) of the exact spectrum by the graded QR chain (``vglab.models.jacobians._chain_step``), per
    layer: the product Ŵᵀ Q (2n³), two QR factorisations with Q formed (geqrf + orgqr, 8/3 n³ each) and two
    graded triangular products C·U (2n³ each): 34/3 n³ in all.  Bytes: the weights, read once."""
    n3 = float(width) ** 3
    return depth * (34.0 / 3.0) * n3, depth * width * width * FLOAT32


def naive_spectrum_flops(depth: int, width: int) -> float:
    """The flops of the naive product J_L ⋯ J_1 (one n³ matmul per layer, 2n³ flops), which float32
    cannot represent beyond a few dozen saturating layers; a lower bound for any exact method."""
    return depth * 2.0 * float(width) ** 3


@dataclass(frozen=True)
class RNNProblem:
    """``n_seeds`` unrolled RNNs: recurrent (S, kn, n), input_weights (S, kn, n), bias (S, kn),
    inputs (S, T, n), directions (S, n); k = 1 (vanilla) or 4 (LSTM gates i, f, o, g)."""

    net: vglab.RNN
    n_seeds: int
    recurrent: np.ndarray
    input_weights: np.ndarray
    bias: np.ndarray
    inputs: np.ndarray
    directions: np.ndarray


def rnn_problem(net: vglab.RNN, n_seeds: int = 1, seed: int = 0) -> RNNProblem:
    if net.cell == "vanilla" and net.activation != "tanh":
        raise ValueError("the peers implement the tanh vanilla cell and the LSTM")
    params = [recurrent.parameters(net, s) for s in range(seed, seed + n_seeds)]
    stack = lambda name: np.ascontiguousarray(np.stack([getattr(p, name) for p in params]), np.float32)  # noqa: E731
    return RNNProblem(net, n_seeds, stack("recurrent"), stack("input_weights"), stack("bias"),
                      stack("inputs"), stack("direction"))


def rnn_work(net: vglab.RNN, n_seeds: int) -> tuple[float, float]:
    """(flops, bytes): per step the recurrent and input products forward (2·2kn² flops) and the recurrent
    product backward (2kn²).  Bytes: weights once and the inputs (the weights stay in cache across steps)."""
    k, n, T = net.gates, net.hidden, net.steps
    flops = n_seeds * T * (6.0 * k * n * n + 40.0 * k * n)
    bytes_moved = n_seeds * (2 * k * n * n + T * n) * FLOAT32
    return flops, bytes_moved


# --------------------------------------------------------------------------------------------- ConvNet
@dataclass(frozen=True)
class ConvProblem:
    """``n_seeds`` draws of a ``vglab.ConvNet`` body, in vglab's layout: weights (S, L, k, C, C) with W[j, c, o]
    the weight of input channel c at offset j − ⌊k/2⌋ into output channel o, biases (S, L, C), inputs (S, T, C)
    h_0 = x and directions (S, T, C) g of L = ⟨g, h_L⟩ (what ``vglab.gradient_norms(net, seed)`` uses)."""

    net: vglab.ConvNet
    n_seeds: int
    weights: np.ndarray
    biases: np.ndarray
    inputs: np.ndarray
    directions: np.ndarray


def conv_problem(net: vglab.ConvNet, n_seeds: int = 1, seed: int = 0) -> ConvProblem:
    """vglab's draws for ``net`` and seeds seed..seed+n_seeds−1 (``ConvNet.as_stack``), as float32 arrays."""
    from vglab.core import init as _init

    size = net.length * net.channels
    draws = [convolutional.body_parameters(net, s) for s in range(seed, seed + n_seeds)]
    stack = lambda arrays: np.ascontiguousarray(np.stack([np.asarray(a) for a in arrays]), np.float32)  # noqa: E731
    seeds = range(seed, seed + n_seeds)
    return ConvProblem(net, n_seeds, stack([w for w, _ in draws]), stack([b for _, b in draws]),
                       stack([_init.network_input(s, size).reshape(net.length, net.channels) for s in seeds]),
                       stack([_init.output_direction(s, size).reshape(net.length, net.channels) for s in seeds]))


def conv_gradient_norms_work(net: vglab.ConvNet, n_seeds: int) -> tuple[float, float]:
    """(flops, bytes): per layer the convolution forward (2·T·k·C² flops) and its transpose backward (the same),
    plus O(T·C) elementwise work; every kernel is read forward and again backward."""
    T, k, C, L = net.length, net.kernel, net.channels, net.depth
    return n_seeds * L * (4.0 * T * k * C * C + 20.0 * T * C), 2.0 * n_seeds * L * k * C * C * FLOAT32


CONV_PARAMETERS = ("stem", "stem_bias", "weights", "biases", "readout", "readout_bias")


@dataclass(frozen=True)
class ConvTrainingProblem:
    """One step of ``vglab.train_convnet`` (its first: Adam from zero moments, step 0) from its own initial
    parameters.  params: {name: float32 array} in vglab's layout (stem (k, 1, C), weights (L, k, C, C), readout
    (C, classes), …); x (B, T), y (B,): the batch that step draws from the training split (x_train, y_train)."""

    net: vglab.ConvNet
    seed: int
    learning_rate: float
    batch_size: int
    params: dict
    x: np.ndarray
    y: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray

    @property
    def classes(self) -> int:
        return self.params["readout"].shape[1]


def conv_training_problem(net: vglab.ConvNet, data, batch_size: int = 100, learning_rate: float = 3e-3,
                          seed: int = 0) -> ConvTrainingProblem:
    """``train_convnet(net, data, batch_size=…, learning_rate=…, seed=…)``'s initial parameters and first batch.

    The batch indices are drawn as ``convolutional._train_step`` draws them for step 0; the agreement of every
    peer's loss with vglab's (and ``tests/test_benchmarks_smoke.py``) checks that they are the same batch."""
    import jax

    x_train, y_train, _, y_test = (np.asarray(a) for a in data)
    classes = int(max(y_train.max(), y_test.max())) + 1
    params = convolutional._init_classifier(net, seed, classes)
    key = stream(seed, "conv_batch")  # the key train_convnet draws its batches from
    idx = np.asarray(jax.random.choice(jax.random.fold_in(key, 0), x_train.shape[0], (batch_size,), replace=False))
    return ConvTrainingProblem(net, seed, float(learning_rate), batch_size,
                               {k: np.asarray(v, np.float32) for k, v in params.items()},
                               np.ascontiguousarray(x_train[idx], np.float32), np.asarray(y_train[idx], np.int32),
                               np.asarray(x_train, np.float32), np.asarray(y_train, np.int32))


def vglab_conv_training_step(problem: ConvTrainingProblem):
    """A callable running vglab's own first step (``convolutional._train_step``, what ``train_convnet`` calls,
    jit'ed) from the problem's parameters, returning its records and the parameters after the update as NumPy
    arrays: loss (), accuracy (), log10_grad_norms (L,) and new_<name> for each of ``CONV_PARAMETERS``."""
    import jax
    import jax.numpy as jnp

    net = problem.net
    params = {k: jnp.asarray(v) for k, v in problem.params.items()}
    state = (jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params))
    key = stream(problem.seed, "conv_batch")
    xs, ys = jnp.asarray(problem.x_train), jnp.asarray(problem.y_train)
    lr = np.float32(problem.learning_rate)

    def step():
        new, _, (loss, accuracy, log10_grad) = jax.block_until_ready(convolutional._train_step(
            net, params, state, jnp.int32(0), key, xs, ys, problem.batch_size, lr))
        out = {"loss": np.asarray(loss), "accuracy": np.asarray(accuracy), "log10_grad_norms": np.asarray(log10_grad)}
        out.update({f"new_{k}": np.asarray(new[k]) for k in CONV_PARAMETERS})
        return out

    return step


def conv_training_work(net: vglab.ConvNet, batch_size: int, classes: int) -> tuple[float, float]:
    """(flops, bytes) of one step: forward 2·B·T·k·C² flops per body layer (and the stem, 2·B·T·k·C), backward
    twice that (input and kernel gradients), the readout's 2·B·C·classes three times.  Bytes: the parameters
    read forward and backward, their gradient written, Adam's two moments read and written and the parameters
    written (7 × P floats), and the body's activations written forward and read back (2 × B·T·C·L floats)."""
    T, k, C, L, B = net.length, net.kernel, net.channels, net.depth, batch_size
    flops = 3.0 * (2 * B * T * k * C * C * L + 2 * B * T * k * C + 2 * B * C * classes) + 20.0 * B * T * C * L
    n_params = L * (k * C * C + C) + k * C + C + C * classes + classes
    return flops, (7.0 * n_params + 2.0 * B * T * C * L) * FLOAT32


# --------------------------------------------------------------------------------------------- agreement
# Largest |difference| in log10 units accepted between vglab and a peer (float32 throughout; 1e-3 in log10
# is a 0.23 % relative difference).  Small singular values of a long chain are conditioned by the gap to the
# larger ones, so spectra get a looser bound on all values and the partial norms the tight one.
LOG10_TOLERANCE = {
    "log10_activation_grad": 1e-3,
    "log10_weight_grad": 1e-3,
    "log10_cell_grad": 1e-3,
    "log10_activation_rms": 1e-3,
    "saturated_fraction": 0.02,  # a unit at the 0.1·sup|φ′| threshold may round either way
    "dead_fraction": 0.02,
    "log10_singular_values": 2e-2,
    "log10_partial_norms": 1e-3,
    # A training step's records (``first_training_step``).  loss: nats; accuracy: a share of 1348 examples
    # (one example whose two largest logits tie to float32 roundoff may flip); update_ratio: ‖ΔW‖/‖W‖ ~ 1e-2.
    "loss": 1e-4,
    "accuracy": 1e-3,
    "log10_grad_norms": 1e-3,
    "log10_global_grad_norm": 1e-3,
    "update_ratio": 1e-5,
    # The parameters after a ConvNet training step (``vglab_conv_training_step``), absolute, in the parameters'
    # own units: Adam's first step moves every entry by ≈ lr·sign(g) (3e-3 in lesson 12), so 1e-5 is 0.3 % of
    # a step; float32 peers differ by ~1e-7 (one entry whose gradient sign differed would differ by 2·lr).
    **{f"new_{name}": 1e-5 for name in CONV_PARAMETERS},
}

TRAINING_RECORDS = ("loss", "accuracy", "log10_grad_norms", "log10_global_grad_norm", "update_ratio",
                    "dead_fraction")


def first_training_step(history) -> dict[str, np.ndarray]:
    """What ``vglab.train`` recorded for its first step, as (1, …) arrays: the reference a peer's step from
    the same initial parameters must reproduce."""
    return {name: np.asarray(getattr(history, name))[:1] for name in TRAINING_RECORDS}


def disagreement(reference, candidate: dict) -> dict[str, float]:
    """{name: max |reference − candidate|} over the arrays the peer returned (−inf = −inf counts as equal).

    ``reference`` is a vglab result (attributes) or a dict of arrays; shapes must match exactly."""
    out = {}
    for name, value in candidate.items():
        ref = reference[name] if isinstance(reference, dict) else getattr(reference, name)
        ref, value = np.asarray(ref, np.float64), np.asarray(value, np.float64)
        if ref.shape != value.shape:
            raise ValueError(f"{name}: shape {value.shape}, vglab has {ref.shape}")
        same = (ref == value) | (np.isnan(ref) & np.isnan(value))
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(ref - value))
        out[name] = float(np.nanmax(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0
    return out


def check_agreement(reference, candidate: dict, label: str) -> dict[str, float]:
    """``disagreement`` checked against ``LOG10_TOLERANCE``; raises AssertionError naming the worst array."""
    diffs = disagreement(reference, candidate)
    for name, diff in diffs.items():
        tolerance = LOG10_TOLERANCE[name]
        if not diff <= tolerance:
            raise AssertionError(f"{label}: {name} differs from vglab by {diff:.3g} (tolerance {tolerance})")
    return diffs
