"""A 1-D convolutional network, plain or residual: exact per-layer gradients, and training on MNIST-1D.

The body acts on h ∈ ℝ^{T×C} (T positions, C channels); layer l = 1..L is

    z_l = W_l ⊛ h_{l-1} + b_l        W_l ∈ ℝ^{k×C×C}, 'same' zero padding, stride 1
    plain:     h_l = φ(z_l)
    residual:  h_l = h_{l-1} + α φ(z_l)
    norm="pre": the convolution reads LN(h_{l-1}), LayerNorm over the T·C numbers of one example

with W_l ~ N(0, σ_w²/(C k)) (fan-in = C·k inputs per output; He: σ_w = √2 for ReLU) and b_l ~ N(0, σ_b²).
The convolution is computed as one matrix product of the unfolded input (im2col: the k shifted copies of h
side by side, (T, k·C) · (k·C, C)); on XLA:CPU that is ~10x faster than ``lax.conv_general_dilated`` at these
sizes (benchmarks/README.md, "Convolutions").

``gradient_norms(net, seed)`` is the same exact log-space chain as any ``vglab.Stack``: h_0 = x ~ N(0, I) of
shape (T, C), L = ⟨g, h_L⟩ with g ~ N(0, I), and log10 ‖∂L/∂h_l‖ for l = 0..L.

``vglab.train(net, data)`` (``ConvNet.training_run``, the ``vglab.TrainingModel`` protocol; ``train_convnet`` is
the same call) trains the network as a classifier of MNIST-1D (Greydanus 2020; what the UDL book uses for the
degradation experiment of He et al. 2016, Fig. 1): a stem convolution 1 → C channels, the body, a global
average over positions and a linear readout to 10 classes, Adam on the cross-entropy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core import init as _init
from vglab.core import optimizers
from vglab.core.activations import ACTIVATIONS
from vglab.core.banks import BankCache
from vglab.core.compilation import exact_jit
from vglab.core.config import Config, checked, choice, config, flag, integer, real
from vglab.core.streams import stream, stream_key
from vglab.core.validation import check_choice, check_float, check_int, check_seeds, keywords_checked
from vglab.datasets import CUSTOM, data_code
from vglab.models.mlp import LAYERNORM_EPS
from vglab.models.stack import Stack, StackGradientNorms

MAX_CONV_DEPTH = 256
MNIST1D_LENGTH = 40


def _check_norm(name: str, norm):
    if norm not in (None, "pre"):
        raise ValueError(f"{name} must be None or 'pre', got {norm!r}")
    return norm


@config
class ConvNet(Config):
    """A 1-D convolutional body of ``depth`` layers of ``channels`` channels over ``length`` positions.

    kernel: odd kernel width k.  activation, weight_std (σ_w, default from ``init``), bias_std (σ_b),
    residual (h + α φ(z), α = residual_scale) and norm (None or "pre") as for ``vglab.MLP``.
    """

    depth: int = integer(1, MAX_CONV_DEPTH)
    channels: int = integer(1, 512, default=32)
    kernel: int = integer(1, 31, default=5)
    length: int = integer(1, 4096, default=MNIST1D_LENGTH)
    activation: str = choice(ACTIVATIONS, default="relu")
    init: str = choice(("he", "xavier", "lecun"), default="he")
    weight_std: float | None = real(0.0, 100.0, default=None)
    bias_std: float = real(0.0, 100.0, default=0.0)
    residual: bool = flag(default=False)
    residual_scale: float = real(0.0, 100.0, low_inclusive=False, default=1.0)
    norm: str | None = checked(_check_norm, default=None, optional=False)

    def validate(self):
        if self.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (a centred 'same' convolution), got {self.kernel}")

    @property
    def sigma_w(self) -> float:
        return self.weight_std if self.weight_std is not None else {"he": math.sqrt(2.0)}.get(self.init, 1.0)

    def gradient_profile(self, seed: int = 0, n_seeds: int = 1) -> StackGradientNorms:
        """This model's ``vglab.GradientProfile`` (what ``vglab.gradient_norms`` dispatches to)."""
        rows = [self.as_stack(s).gradient_profile(seed=s).log10_activation_grad[0] for s in check_seeds(seed, n_seeds)]
        return StackGradientNorms(self, seed, n_seeds, np.stack(rows))

    def jacobian_spectrum(self, seed: int = 0):
        """The spectrum of ∂h_L/∂h_0, a (T·C)×(T·C) matrix, through the Stack's exact QR chain (what
        ``vglab.jacobian_spectrum`` dispatches to, the ``vglab.SpectrumModel`` protocol)."""
        return replace(self.as_stack(seed).jacobian_spectrum(seed), net=self)

    def training_run(self, data=None, **options) -> ConvTrainingHistory:
        """This network trained with Adam as a classifier of ``data`` (None or "mnist1d": ``mnist1d()``; or
        (x_train, y_train, x_test, y_test)), every step recorded: a ``vglab.ConvTrainingHistory`` (what
        ``vglab.train(net, data, **options)`` dispatches to, the ``vglab.TrainingModel`` protocol).  Options:
        steps, learning_rate, batch_size, seed."""
        return _train_classifier(self, data, **options)

    def as_stack(self, seed: int = 0) -> Stack:
        """The body drawn with ``seed`` as a ``vglab.Stack`` on the input x ~ N(0, I) of shape (T, C).

        Drawing the parameters and building the Stack costs more than its compiled chain at lesson sizes, so the
        last ``MAX_CACHED_STACKS`` stacks are kept per (net, seed) (least recently used dropped first; a Stack
        is immutable, so a kept one is the same value a new draw would give)."""
        (seed,) = check_seeds(seed, 1)
        stack = _STACKS.get((self, seed))
        if stack is not None:
            return stack
        weights, biases = body_parameters(self, seed)
        blocks = [jax.tree_util.Partial(_block_of(self), W, b) for W, b in zip(weights, biases, strict=True)]
        x = _init.network_input(seed, self.length * self.channels).reshape(self.length, self.channels)
        stack = Stack(blocks, x)
        if weights.size * 4 <= MAX_CACHED_STACK_BYTES:  # a huge body is drawn again rather than kept
            _STACKS.put((self, seed), stack)
        return stack


MAX_CACHED_STACKS = 16  # ConvNet.as_stack's LRU: (net, seed) → Stack
MAX_CACHED_STACK_BYTES = 64 * 2**20  # bodies above this many bytes of kernels are not kept
_STACKS = BankCache(size=MAX_CACHED_STACKS, budget_bytes=MAX_CACHED_STACK_BYTES)


def conv1d_same(h, W, b):
    """'same' 1-D convolution as one matrix product: h (..., T, C_in), W (k, C_in, C_out), b (C_out,).

    out[t, o] = Σ_j Σ_c W[j, c, o] · h[t + j − ⌊k/2⌋, c] + b[o], zero outside 0..T−1."""
    k, T = W.shape[0], h.shape[-2]
    pad = [(0, 0)] * (h.ndim - 2) + [(k // 2, k - 1 - k // 2), (0, 0)]
    padded = jnp.pad(h, pad)
    unfolded = jnp.concatenate([padded[..., j:j + T, :] for j in range(k)], axis=-1)  # (..., T, k·C_in)
    return unfolded @ W.reshape(-1, W.shape[-1]) + b


def _layernorm(h):
    """LayerNorm over the last two axes (T, C) of one example."""
    c = h - jnp.mean(h, axis=(-2, -1), keepdims=True)
    return c / jnp.sqrt(jnp.mean(c * c, axis=(-2, -1), keepdims=True) + LAYERNORM_EPS)


def _layer(activation: str, residual: bool, norm, alpha, W, b, h):
    """One body layer (see the module docstring): h (..., T, C) ↦ h′ of the same shape."""
    z = conv1d_same(_layernorm(h) if norm == "pre" else h, W, b)
    out = ACTIVATIONS[activation].phi(z, 0.01)
    return h + alpha * out if residual else out


def _block_of(net: ConvNet):
    return partial(_layer, net.activation, net.residual, net.norm, net.residual_scale)


def body_parameters(net: ConvNet, seed: int = 0) -> tuple[jax.Array, jax.Array]:
    """W (L, k, C, C) with entries N(0, σ_w²/(C k)) and b (L, C) with entries N(0, σ_b²), drawn per (seed, l)."""
    unit_w, unit_b = _unit_draws(np.uint32(seed), net.depth, net.kernel, net.channels)
    return unit_w * np.float32(net.sigma_w / math.sqrt(net.channels * net.kernel)), unit_b * np.float32(net.bias_std)


@partial(exact_jit, static_argnames=("depth", "kernel", "channels"))
def _unit_draws(seed, depth, kernel, channels):
    def layer(l):
        return (jax.random.normal(stream_key(seed, "conv_weights", l), (kernel, channels, channels), jnp.float32),
                jax.random.normal(stream_key(seed, "conv_biases", l), (channels,), jnp.float32))

    return jax.vmap(layer)(jnp.arange(depth))


# --------------------------------------------------------------------------------------------- training
def mnist1d(n_train: int = 4000, n_test: int = 1000, seed: int = 0):
    """MNIST-1D generated procedurally by the ``mnist1d`` package (no download): x (n, 40) float32, y int32.

    The package's own default arguments (``get_dataset_args``), with its ``num_samples`` and ``seed`` set here."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as error:
        raise ImportError("MNIST-1D needs the mnist1d package: pip install mnist1d") from error
    n_train = check_int("n_train", n_train, 10, 100_000)
    n_test = check_int("n_test", n_test, 10, 100_000)
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = n_train + n_test, n_train / (n_train + n_test), seed
    data = make_dataset(args)
    return (data["x"].astype(np.float32), data["y"].astype(np.int32),
            data["x_test"].astype(np.float32), data["y_test"].astype(np.int32))


@dataclass(frozen=True)
class ConvTrainingHistory:
    """``vglab.train(convnet, ...)``'s record: per step (k,) loss and accuracy of the batch, (k, depth)
    log10 ‖∂loss/∂W_l‖_F of the body; final train and test loss/accuracy on the whole splits.  ``data`` is
    "mnist1d" (the default data set) or "custom" (arrays given)."""

    net: ConvNet
    steps: int
    seed: int
    learning_rate: float
    loss: np.ndarray
    accuracy: np.ndarray
    log10_grad_norms: np.ndarray
    train_loss: float
    train_accuracy: float
    test_loss: float
    test_accuracy: float
    batch_size: int = 128
    data: str = "mnist1d"

    def to_code(self) -> str:
        """The ``vglab.train`` call that reproduces this run (``data`` stands for the arrays of a custom run)."""
        return (f"vglab.train({self.net.to_code()}, data={data_code(self.data)}, steps={self.steps}, "
                f"learning_rate={self.learning_rate!r}, batch_size={self.batch_size}, seed={self.seed})")


def _init_classifier(net: ConvNet, seed: int, classes: int):
    W, b = body_parameters(net, seed)
    stem = jax.random.normal(stream(seed, "conv_stem"), (net.kernel, 1, net.channels),
                             jnp.float32) * math.sqrt(2.0 / net.kernel)
    readout = jax.random.normal(stream(seed, "conv_readout"), (net.channels, classes),
                                jnp.float32) / math.sqrt(net.channels)
    return dict(stem=stem, stem_bias=jnp.zeros(net.channels, jnp.float32), weights=W, biases=b, readout=readout,
                readout_bias=jnp.zeros(classes, jnp.float32))


def _logits(net: ConvNet, params, x):
    """x (B, T) → logits (B, classes): stem conv + ReLU, the body (one scan over layers), mean over T, readout."""
    h = jax.nn.relu(conv1d_same(x[..., None], params["stem"], params["stem_bias"]))
    block = _block_of(net)
    h, _ = jax.lax.scan(lambda h, wb: (block(wb[0], wb[1], h), None), h, (params["weights"], params["biases"]))
    return jnp.mean(h, axis=-2) @ params["readout"] + params["readout_bias"]


def _loss(net, params, x, y):
    logits = _logits(net, params, x)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1)), jnp.mean(jnp.argmax(logits, -1) == y)


@partial(exact_jit, static_argnames=("net", "batch_size"))
def _train_step(net, params, state, step, key, x_train, y_train, batch_size, learning_rate):
    idx = jax.random.choice(jax.random.fold_in(key, step), x_train.shape[0], (batch_size,), replace=False)
    (loss, accuracy), grads = jax.value_and_grad(lambda p: _loss(net, p, x_train[idx], y_train[idx]),
                                                 has_aux=True)(params)
    log10_grad = jnp.log10(jnp.sqrt(jnp.sum(grads["weights"] ** 2, axis=(1, 2, 3))))
    updates, state = optimizers.update("adam", grads, state, step, learning_rate)
    return jax.tree.map(jnp.add, params, updates), state, (loss, accuracy, log10_grad)


@partial(exact_jit, static_argnames=("net",))
def _evaluate(net, params, x, y):
    return _loss(net, params, x, y)


def train_convnet(net: ConvNet, data=None, **options) -> ConvTrainingHistory:
    """``vglab.train(net, data, **options)`` for a ``vglab.ConvNet`` (``ConvNet.training_run``), kept as a name
    of its own: it refuses any other model."""
    if not isinstance(net, ConvNet):
        raise ValueError(f"train_convnet expects a vglab.ConvNet, got {type(net).__name__} (vglab.train trains "
                         f"any vglab.TrainingModel)")
    return net.training_run(data, **options)


@keywords_checked(owner="vglab.ConvNet.training_run")
def _train_classifier(net: ConvNet, /, data=None, steps: int = 300, learning_rate: float = 1e-3,
                      batch_size: int = 128, seed: int = 0) -> ConvTrainingHistory:
    """Train ``net`` as an MNIST-1D classifier with Adam (see the module docstring); data None or "mnist1d":
    ``mnist1d()``, or (x_train, y_train, x_test, y_test) with x of shape (n, net.length)."""
    steps = check_int("steps", steps, 1, 1_000_000)
    learning_rate = check_float("learning_rate", learning_rate, 0.0, 10.0, low_inclusive=False)
    seed = check_int("seed", seed, 0, 2**31 - 1)
    if data is None or isinstance(data, str):
        name = check_choice("data", "mnist1d" if data is None else data, ("mnist1d",))
        data = mnist1d()
    elif isinstance(data, (tuple, list)) and len(data) == 4:
        name = CUSTOM
    else:
        raise ValueError("data must be 'mnist1d' (or None) or a tuple (x_train, y_train, x_test, y_test), got "
                         f"{type(data).__name__}{f' of {len(data)}' if isinstance(data, (tuple, list)) else ''}")
    x_train, y_train, x_test, y_test = (np.asarray(a) for a in data)
    if x_train.ndim != 2 or x_train.shape[1] != net.length:
        raise ValueError(f"data x_train must have shape (examples, {net.length}), got {x_train.shape}")
    batch_size = check_int("batch_size", batch_size, 1, x_train.shape[0])
    classes = int(max(y_train.max(), y_test.max())) + 1
    params = _init_classifier(net, seed, classes)
    state = optimizers.initial_state("adam", params)
    key = stream(seed, "conv_batch")
    xs, ys = jnp.asarray(x_train, jnp.float32), jnp.asarray(y_train, jnp.int32)
    records = []
    for step in range(steps):
        params, state, metrics = _train_step(net, params, state, jnp.int32(step), key, xs, ys, batch_size,
                                             np.float32(learning_rate))
        records.append(metrics)
    loss, accuracy, log10_grad = (np.asarray(jnp.stack(a), np.float64) for a in zip(*records, strict=True))
    train_loss, train_accuracy = (float(v) for v in _evaluate(net, params, xs, ys))
    test_loss, test_accuracy = (float(v) for v in _evaluate(net, params, jnp.asarray(x_test, jnp.float32),
                                                            jnp.asarray(y_test, jnp.int32)))
    return ConvTrainingHistory(net, steps, seed, learning_rate, loss, accuracy, log10_grad, train_loss,
                               train_accuracy, test_loss, test_accuracy, batch_size, name)


# --------------------------------------------------------------------------------------------- the experiment
DEGRADATION = dict(channels=16, steps=300, learning_rate=3e-3, batch_size=100, n_train=1000, n_test=500)


def degradation_nets(deep: int = 24, shallow: int = 4, channels: int = DEGRADATION["channels"]) -> dict:
    """He et al. (2016), Fig. 1, in one dimension: a shallow plain net, a deep plain net and the same deep
    net with residual connections and pre-LayerNorm (label → ConvNet)."""
    return {f"plain, {shallow} layers": ConvNet(depth=shallow, channels=channels),
            f"plain, {deep} layers": ConvNet(depth=deep, channels=channels),
            f"residual + LayerNorm, {deep} layers": ConvNet(depth=deep, channels=channels, residual=True,
                                                          norm="pre")}


_MNIST1D_CACHE: dict = {}


def cached_mnist1d(n_train: int, n_test: int, seed: int = 0):
    """``mnist1d`` generated once per (n_train, n_test, seed) in this process."""
    key = (n_train, n_test, seed)
    if key not in _MNIST1D_CACHE:
        _MNIST1D_CACHE[key] = mnist1d(n_train, n_test, seed)
    return _MNIST1D_CACHE[key]


_EXPERIMENTS: dict = {}


def degradation_experiment(deep: int = 24, steps: int = DEGRADATION["steps"], seed: int = 0) -> dict:
    """Train ``degradation_nets(deep)`` on MNIST-1D (``DEGRADATION``'s sizes) from ``seed``: label →
    (ConvTrainingHistory, log10 ‖∂L/∂h_l‖ at initialisation, l = 0..depth, from ``gradient_norms``).

    Deterministic, so each (deep, steps, seed) is trained once per process and the result reused."""
    from vglab.models.jacobians import gradient_norms

    key = (check_int("deep", deep, 1, MAX_CONV_DEPTH), check_int("steps", steps, 1, 100_000),
           check_int("seed", seed, 0, 2**31 - 1))
    if key not in _EXPERIMENTS:
        data = cached_mnist1d(DEGRADATION["n_train"], DEGRADATION["n_test"])
        _EXPERIMENTS[key] = {
            label: (net.training_run(data, steps=steps, learning_rate=DEGRADATION["learning_rate"],
                                     batch_size=DEGRADATION["batch_size"], seed=seed),
                    gradient_norms(net, seed=seed).log10_activation_grad[0])
            for label, net in degradation_nets(deep).items()}
    return _EXPERIMENTS[key]
