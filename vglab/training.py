"""Real training runs of an MLP, recording how every layer's gradient and weights move.

``vglab.train(net, data, **options)`` dispatches on the ``vglab.TrainingModel`` protocol: it calls
``net.training_run(data, **options)``.  An MLP's is ``train_mlp`` below; a ConvNet's lives with the ConvNet
(``vglab.models.convolutional``); a user's own model brings its own.

The classifier wraps the MLP body (``vglab.models.mlp``) between a linear input projection and a softmax
readout, so the body's layers are exactly those ``vglab.gradient_norms`` analyses (same draws for the same
seed):

    h_0 = x P                      P ∈ ℝ^{features×width},  P ~ N(0, 1/features)
    h_l = layer_l(h_{l-1})         l = 1..depth, the MLP's own layers (activation, init, residual, norm)
    p   = softmax(h_depth R + c)   R ∈ ℝ^{width×classes} ~ N(0, 1/width), c = 0
    loss = mean over the batch of −log p_y                                  (cross-entropy)

All of P, W_l, b_l, R, c are trained.  The per-layer records are over the body's ``depth`` weight matrices
W_1..W_depth (index 0 is the layer next to the input):

    log10_grad_norms[k, l]   log10 ‖∂loss/∂W_l‖_F at step k (before clipping)
    update_ratio[k, l]       ‖ΔW_l‖_F / ‖W_l‖_F, the relative change the optimizer made at step k
    dead_fraction[k, l]      share of layer l's units with φ′(z) = 0 on every example of the batch

Optimizers: sgd, momentum (heavy ball, μ = 0.9) and adam (Kingma & Ba 2015; β₁ = 0.9, β₂ = 0.999, ε = 1e-8),
written once in ``vglab.core.optimizers`` (its docstring states the update rules), shared with the ConvNet.

Gradient clipping by global norm (Pascanu, Mikolov & Bengio 2013): with ``clip_norm`` = c, the whole
gradient is rescaled g ← g · min(1, c/‖g‖) before the optimizer sees it, ‖g‖ over all parameters.

Adam divides each gradient by its own running RMS, so it hides vanishing gradients in the update ratios:
use sgd or momentum to see the raw effect.  A step whose loss, gradient or updated weights are not finite
stops the run: ``diverged`` is set, ``diverged_at_step`` names the step, and its update is not applied.

One compiled step serves a configuration (activation, residual, norm, optimizer, clipping, shapes); the
learning rate, clip norm and seed are traced numbers.  The step loop itself is Python, so a ``callback`` can
watch every step, ``progress=True`` shows a tqdm bar (``tqdm.auto``: a widget in notebooks), and
KeyboardInterrupt (the notebook's stop button) ends the run cleanly with the history so far.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vglab import datasets as _datasets
from vglab.core import init as _init
from vglab.core import optimizers
from vglab.core.activations import ACTIVATIONS
from vglab.core.compilation import exact_jit
from vglab.core.optimizers import ADAM_BETAS, ADAM_EPS, MOMENTUM, OPTIMIZERS  # noqa: F401 - named here too
from vglab.core.results import TrainingModel, mean_and_band
from vglab.core.streams import stream
from vglab.core.validation import check_choice, check_float, check_int, keywords_checked
from vglab.models.mlp import LAYERNORM_EPS, MLP

DEFAULT_LEARNING_RATES = {"sgd": 0.1, "momentum": 0.01, "adam": 1e-3}
MAX_STEPS = 1_000_000
MAX_PARAMETERS = 50_000_000
MAX_CLASSES = 10_000  # the readout R is width × classes: a stray label of 10**9 must not allocate it


# --------------------------------------------------------------------------------------------- data
class Data(NamedTuple):
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None

    @property
    def classes(self) -> int:
        ys = self.y_train if self.y_test is None else np.concatenate([self.y_train, self.y_test])
        return int(ys.max()) + 1


def _check_split(kind, x, y):
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"data x_{kind} must be a 2-D array (examples × features), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or not np.all(np.isfinite(x)):
        raise ValueError(f"data x_{kind} must hold finite numbers")
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"data y_{kind} must be a 1-D array of integer class labels 0..C−1, "
                         f"got dtype {y.dtype} and shape {y.shape}")
    if y.size and y.max() >= MAX_CLASSES:
        raise ValueError(f"data y_{kind} must hold class labels in 0..{MAX_CLASSES - 1} (at most {MAX_CLASSES} "
                         f"classes: the softmax readout has one column per class), got a label of {int(y.max())}")
    if len(y) != len(x):
        raise ValueError(f"data x_{kind} and y_{kind} must have the same number of examples, "
                         f"got {len(x)} and {len(y)}")
    return x.astype(np.float32), y.astype(np.int32)


def as_data(data) -> Data:
    """``data`` as a validated ``Data``: "digits", "two_spirals" or (x_train, y_train[, x_test, y_test])."""
    if isinstance(data, str):
        name = check_choice("data", data, _datasets.DATASETS)
        return Data(name, *getattr(_datasets, name)())
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 4):
        raise ValueError("data must be 'digits', 'two_spirals' or a tuple (x_train, y_train[, x_test, "
                         f"y_test]), got {type(data).__name__}")
    x_train, y_train = _check_split("train", data[0], data[1])
    x_test = y_test = None
    if len(data) == 4:
        x_test, y_test = _check_split("test", data[2], data[3])
        if x_test.shape[1] != x_train.shape[1]:
            raise ValueError(f"data x_test must have the {x_train.shape[1]} features of x_train, "
                             f"got {x_test.shape[1]}")
    out = Data(_datasets.CUSTOM, x_train, y_train, x_test, y_test)
    if out.classes < 2:
        raise ValueError("data must hold at least 2 classes")
    return out


# --------------------------------------------------------------------------------------------- model
class Params(NamedTuple):
    inputs: jax.Array  # P (features, width)
    weights: jax.Array  # W (depth, width, width), rows = output units (z = W h)
    biases: jax.Array  # b (depth, width)
    readout: jax.Array  # R (width, classes)
    readout_bias: jax.Array  # c (classes,)


@partial(exact_jit, static_argnames=("depth", "width", "features", "classes", "orthogonal"))
def _init_params(seed, sigma_w, sigma_b, depth, width, features, classes, orthogonal):
    layers = jnp.arange(depth)
    unit_w = jax.vmap(lambda l: _init.unit_weight(seed, l, width, orthogonal))(layers)
    unit_b = jax.vmap(lambda l: _init.unit_bias(seed, l, width))(layers)
    P = jax.random.normal(stream(seed, "training_projection"), (features, width), jnp.float32) / math.sqrt(features)
    R = jax.random.normal(stream(seed, "training_readout"), (width, classes), jnp.float32) / math.sqrt(width)
    return Params(P, unit_w * (sigma_w / math.sqrt(width)), unit_b * sigma_b, R, jnp.zeros((classes,), jnp.float32))


def initial_parameters(net: MLP, features: int, classes: int, seed: int = 0) -> Params:
    """The parameters ``train`` starts from: body weights W_l = (σ_w/√n) Ŵ_l exactly as ``gradient_norms``
    draws them for ``seed``, the input projection P and readout R from their own streams."""
    params = _init_params(seed, jnp.float32(net.sigma_w), jnp.float32(net.bias_std), net.depth, net.width,
                          features, classes, net.orthogonal)
    if net.init == "constant":  # W_l = (σ_w/n) 11ᵀ, b_l = σ_b 1 (vglab.core.init): every unit identical
        params = params._replace(weights=jnp.full_like(params.weights, net.sigma_w / net.width),
                                 biases=jnp.full_like(params.biases, net.bias_std))
    return params


class Structure(NamedTuple):
    activation: str
    residual: bool
    norm: str | None
    optimizer: str
    clip: bool


def _layernorm(h):
    c = h - jnp.mean(h, axis=-1, keepdims=True)
    return c / jnp.sqrt(jnp.mean(c * c, axis=-1, keepdims=True) + LAYERNORM_EPS)


def _forward(structure, params, x, alpha, slope):
    """Logits (B, classes) and, per layer, which units have φ′(z) = 0 on every example (depth, width)."""
    activation = ACTIVATIONS[structure.activation]

    def layer(h, wb):
        W, b = wb
        inp = _layernorm(h) if structure.norm == "pre" else h
        z = inp @ W.T + b
        out = activation.phi(z, slope)
        h = h + alpha * out if structure.residual else out
        if structure.norm == "post":
            h = _layernorm(h)
        dead = jnp.all(activation.dphi(z, slope) == 0.0, axis=0)
        return h, dead

    h, dead = jax.lax.scan(layer, x @ params.inputs, (params.weights, params.biases))
    return h @ params.readout + params.readout_bias, dead


def _loss(structure, params, x, y, alpha, slope):
    logits, dead = _forward(structure, params, x, alpha, slope)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    loss = -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))
    accuracy = jnp.mean(jnp.argmax(logits, axis=-1) == y)
    return loss, (accuracy, dead)


def _global_norm(tree):
    return jnp.sqrt(sum(jnp.sum(leaf * leaf) for leaf in jax.tree_util.tree_leaves(tree)))


def _log10_norms(stack):
    """log10 of the Frobenius norm of each matrix in a (depth, n, n) stack."""
    return jnp.log10(jnp.sqrt(jnp.sum(stack * stack, axis=(1, 2))))


@partial(exact_jit, static_argnames=("structure", "batch_size"))
def _train_step(structure, params, state, step, key, x_train, y_train, batch_size, learning_rate, clip_norm,
                alpha, slope):
    n = x_train.shape[0]
    if batch_size == n:  # the full batch, in order: no gather
        x, y = x_train, y_train
    else:
        idx = jax.random.choice(jax.random.fold_in(key, step), n, (batch_size,), replace=False)
        x, y = x_train[idx], y_train[idx]
    (loss, (accuracy, dead)), grads = jax.value_and_grad(
        lambda p: _loss(structure, p, x, y, alpha, slope), has_aux=True)(params)
    grad_norm = _global_norm(grads)
    log10_grad_norms = _log10_norms(grads.weights)
    clipped = jnp.array(False)
    if structure.clip:
        clipped = grad_norm > clip_norm
        factor = jnp.where(clipped, clip_norm / jnp.where(clipped, grad_norm, 1.0), 1.0)
        grads = jax.tree_util.tree_map(lambda g: g * factor, grads)
    updates, new_state = optimizers.update(structure.optimizer, grads, state, step, learning_rate)
    new_params = jax.tree_util.tree_map(lambda p, u: p + u, params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(_global_norm(new_params))
    ratio = jnp.sqrt(jnp.sum(updates.weights**2, axis=(1, 2)) / jnp.sum(params.weights**2, axis=(1, 2)))
    metrics = dict(loss=loss, accuracy=accuracy, log10_grad_norms=log10_grad_norms,
                   log10_global_grad_norm=jnp.log10(grad_norm), update_ratio=ratio,
                   dead_fraction=jnp.mean(dead, axis=1), clipped=clipped, finite=finite)
    return new_params, new_state, metrics


@partial(exact_jit, static_argnames=("structure",))
def _evaluate(structure, params, x, y, alpha, slope):
    loss, (accuracy, _) = _loss(structure, params, x, y, alpha, slope)
    return loss, accuracy


# --------------------------------------------------------------------------------------------- history
@dataclass(frozen=True)
class TrainingHistory:
    """What happened during ``train``: per-step arrays of length k = ``steps_completed``.

    loss, accuracy:          (k,) cross-entropy and accuracy of the training batch, before the step's update.
    log10_grad_norms:        (k, depth) log10 ‖∂loss/∂W_l‖_F of the body's layers (before clipping).
    log10_global_grad_norm:  (k,) log10 of the gradient norm over all parameters (before clipping).
    update_ratio:            (k, depth) ‖ΔW_l‖_F / ‖W_l‖_F of the step.
    dead_fraction:           (k, depth) share of units with φ′(z) = 0 on the whole batch.
    clipped:                 (k,) whether the gradient was rescaled by clipping.
    eval_steps, test_loss, test_accuracy: (m,) on the held-out split, after the update of step eval_steps[i].
    diverged, diverged_at_step: a non-finite loss, gradient or weight stopped the run at that step.
    interrupted:             KeyboardInterrupt (or a callback raising it) stopped the run.
    final_parameters:        the last finite parameters (``Params`` of NumPy arrays).
    """

    net: MLP
    data: str
    steps: int
    optimizer: str
    learning_rate: float
    clip_norm: float | None
    batch_size: int
    seed: int
    loss: np.ndarray
    accuracy: np.ndarray
    log10_grad_norms: np.ndarray
    log10_global_grad_norm: np.ndarray
    update_ratio: np.ndarray
    dead_fraction: np.ndarray
    clipped: np.ndarray
    eval_steps: np.ndarray
    test_loss: np.ndarray
    test_accuracy: np.ndarray
    diverged: bool = False
    diverged_at_step: int | None = None
    interrupted: bool = False
    final_parameters: Params | None = field(default=None, repr=False, compare=False)

    @property
    def steps_completed(self) -> int:
        return int(self.loss.shape[0])

    @property
    def log10_update_ratio(self) -> np.ndarray:
        """(k, depth) log10 of ``update_ratio`` (−inf for a layer that did not move)."""
        with np.errstate(divide="ignore"):
            return np.log10(self.update_ratio)

    def to_code(self) -> str:
        parts = [self.net.to_code(), f"data={_datasets.data_code(self.data)}", f"steps={self.steps}",
                 f"optimizer={self.optimizer!r}", f"learning_rate={self.learning_rate!r}"]
        if self.clip_norm is not None:
            parts.append(f"clip_norm={self.clip_norm!r}")
        parts += [f"batch_size={self.batch_size}", f"seed={self.seed}"]
        return f"vglab.train({', '.join(parts)})"


# --------------------------------------------------------------------------------------------- train
def train(net, data=None, **options):
    """Train ``net`` on ``data`` and record every step: ``net.training_run(data, **options)``, the
    ``vglab.TrainingModel`` protocol (``vglab.core.results``).

    vglab.MLP:     ``train_mlp`` (the body wrapped as a classifier, see the module docstring; data None means
                   "digits"; options steps, optimizer, learning_rate, clip_norm, batch_size, seed, eval_every,
                   progress, callback) → a ``TrainingHistory``.
    vglab.ConvNet: an MNIST-1D classifier trained with Adam (``vglab.models.convolutional``; data None means
                   MNIST-1D; options steps, learning_rate, batch_size, seed) → a ``ConvTrainingHistory``.
    Your own model: any object with ``training_run(data, **options)`` and ``to_code()``; its return value.
    Each model checks its own options: an unknown keyword raises ``KeywordError`` with a did-you-mean naming
    that model's ``training_run``.  The RNN, Transformer, BatchNormMLP and Stack have no training loop.
    """
    if isinstance(net, type) or not isinstance(net, TrainingModel):
        what = f"the class {net.__name__} (pass an instance)" if isinstance(net, type) else type(net).__name__
        raise ValueError(f"train expects a model with a training_run(data, **options) method (the "
                         f"vglab.TrainingModel protocol: vglab.MLP or ConvNet), got {what}{_no_training_loop(net)}")
    return net.training_run(data, **options)


def _no_training_loop(net) -> str:
    """The end of train's error for one of vglab's own models that does not train."""
    if isinstance(net, type) or not type(net).__module__.startswith("vglab."):
        return ""
    return "; vglab has no training loop for the RNN, Transformer, BatchNormMLP or Stack"


@keywords_checked(owner="vglab.MLP.training_run")
def train_mlp(net: MLP, /, data=None, steps: int = 500, optimizer: str = "sgd",
              learning_rate: float | None = None, clip_norm: float | None = None, batch_size: int = 64,
              seed: int = 0, eval_every: int | None = None, progress: bool = False,
              callback=None) -> TrainingHistory:
    """Train the MLP ``net`` (wrapped as a classifier, see the module docstring) and record every step: what
    ``vglab.train(net, ...)`` runs for a ``vglab.MLP`` (through ``MLP.training_run``).

    data:          "digits" (scikit-learn's 8×8 digits; None means it), "two_spirals" or (x_train, y_train[,
                   x_test, y_test]) NumPy arrays (see ``vglab.datasets``).
    steps:         optimizer steps, each on a batch of ``batch_size`` distinct training examples.
    optimizer:     "sgd", "momentum" or "adam"; learning_rate defaults to 0.1, 0.01 and 1e-3 respectively.
    clip_norm:     clip the global gradient norm to this value (Pascanu et al. 2013); None: no clipping.
    seed:          fixes the initial weights (the body's as in ``gradient_norms(net, seed)``) and the batches.
    eval_every:    test-set evaluation every this many steps (and after the last); default steps/20.
    progress:      show a tqdm progress bar.
    callback:      called as callback(step, metrics) after every step (metrics: a dict of that step's values,
                   with test_accuracy when evaluated); raising KeyboardInterrupt in it stops the run.
    Returns a ``TrainingHistory``; divergence and interruption end the run early without raising.
    The MLP must have square layers.
    """
    if net.widths is not None:
        raise ValueError(f"train needs square layers (depth=, width=); got a width profile {net.widths!r}")
    if net.n_parameters > MAX_PARAMETERS:
        raise ValueError(f"train holds weights, gradients and optimizer state in memory: depth × (width² + "
                         f"width) = {net.n_parameters} parameters, above the {MAX_PARAMETERS} bound")
    data_ = as_data("digits" if data is None else data)
    steps = check_int("steps", steps, 1, MAX_STEPS)
    optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
    if learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[optimizer]
    learning_rate = check_float("learning_rate", learning_rate, 0.0, 100.0, low_inclusive=False)
    if clip_norm is not None:
        clip_norm = check_float("clip_norm", clip_norm, 0.0, 1e6, low_inclusive=False)
    n_train = len(data_.y_train)
    batch_size = check_int("batch_size", batch_size, 1, n_train)
    seed = check_int("seed", seed, 0, 2**31 - 1)
    eval_every = max(1, steps // 20) if eval_every is None else check_int("eval_every", eval_every, 1, steps)
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable (step, metrics), got {type(callback).__name__}")

    structure = Structure(net.activation, net.residual, net.norm, optimizer, clip_norm is not None)
    params = initial_parameters(net, data_.x_train.shape[1], data_.classes, seed)
    state = optimizers.initial_state(structure.optimizer, params)
    key = jax.random.key(seed)
    x_train, y_train = jnp.asarray(data_.x_train), jnp.asarray(data_.y_train)
    has_test = data_.x_test is not None
    if has_test:
        x_test, y_test = jnp.asarray(data_.x_test), jnp.asarray(data_.y_test)
    lr = jnp.float32(learning_rate)
    clip = jnp.float32(clip_norm if clip_norm is not None else 0.0)
    alpha, slope = jnp.float32(net.residual_scale), jnp.float32(net.leaky_slope)

    names = ("loss", "accuracy", "log10_grad_norms", "log10_global_grad_norm", "update_ratio",
             "dead_fraction", "clipped")
    records: dict[str, list] = {name: [] for name in names}
    evals: dict[str, list] = {"eval_steps": [], "test_loss": [], "test_accuracy": []}
    diverged_at = None
    interrupted = False
    bar = _progress_bar(steps, progress)
    try:
        for step in range(steps):
            new_params, new_state, metrics = _train_step(structure, params, state, jnp.int32(step), key,
                                                         x_train, y_train, batch_size, lr, clip, alpha, slope)
            metrics = {k: np.asarray(v) for k, v in metrics.items()}
            if not metrics.pop("finite"):
                diverged_at = step
                break
            params, state = new_params, new_state
            for name, value in metrics.items():
                records[name].append(value)
            step_metrics = {k: v.item() if v.ndim == 0 else v for k, v in metrics.items()}
            if has_test and ((step + 1) % eval_every == 0 or step == steps - 1):
                test_loss, test_accuracy = (float(v) for v in _evaluate(structure, params, x_test, y_test,
                                                                         alpha, slope))
                evals["eval_steps"].append(step)
                evals["test_loss"].append(test_loss)
                evals["test_accuracy"].append(test_accuracy)
                step_metrics["test_accuracy"] = test_accuracy
            if bar is not None:
                bar.update(1)
                if step % max(1, steps // 100) == 0 or step == steps - 1:
                    bar.set_postfix(loss=f"{step_metrics['loss']:.3g}", acc=f"{step_metrics['accuracy']:.2f}")
            if callback is not None:
                callback(step, step_metrics)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            if diverged_at is not None:
                bar.set_postfix_str(f"diverged at step {diverged_at}")
            bar.close()

    depth = net.depth

    def stacked(name, shape, dtype=np.float64):
        values = records[name]
        return np.asarray(values, dtype).reshape((len(values),) + shape)

    return TrainingHistory(
        net=net, data=data_.name, steps=steps, optimizer=optimizer, learning_rate=learning_rate,
        clip_norm=clip_norm, batch_size=batch_size, seed=seed,
        loss=stacked("loss", ()), accuracy=stacked("accuracy", ()),
        log10_grad_norms=stacked("log10_grad_norms", (depth,)),
        log10_global_grad_norm=stacked("log10_global_grad_norm", ()),
        update_ratio=stacked("update_ratio", (depth,)), dead_fraction=stacked("dead_fraction", (depth,)),
        clipped=stacked("clipped", (), bool),
        eval_steps=np.asarray(evals["eval_steps"], np.int64), test_loss=np.asarray(evals["test_loss"]),
        test_accuracy=np.asarray(evals["test_accuracy"]),
        diverged=diverged_at is not None, diverged_at_step=diverged_at, interrupted=interrupted,
        final_parameters=Params(*(np.asarray(a) for a in params)))


def _progress_bar(steps, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=steps, desc="vglab.train", unit="step")


# --------------------------------------------------------------------------------------------- summaries
def profile_statistics(log10_values: np.ndarray):
    """Mean over steps and min–max over steps of per-step, per-layer log10 values (k, depth), as the training
    dashboard plots them.

    The same statistics ``vglab.core.results.mean_and_band`` gives over seeds; −inf (a layer that did not move
    at a step) is left out of the mean and counted.  Returns (mean, low, high, zero_count), each (depth,).
    """
    return mean_and_band(log10_values)


def _check_history(history, function: str) -> TrainingHistory:
    if not isinstance(history, TrainingHistory):
        raise ValueError(f"{function} expects a vglab.TrainingHistory (what vglab.train returns), "
                         f"got {type(history).__name__}")
    return history


def mean_update_ratio(history: TrainingHistory, skip: int = 0) -> np.ndarray:
    """Per-layer update-to-weight ratio ρ_l = ‖ΔW_l‖_F/‖W_l‖_F averaged over the steps after the first ``skip``:
    (depth,).  The arithmetic mean of the ratios (not of their logs)."""
    history = _check_history(history, "mean_update_ratio")
    last = max(history.steps_completed - 1, 0)
    if isinstance(skip, bool) or not isinstance(skip, numbers.Integral) or not 0 <= skip <= last:
        raise ValueError(f"skip must be an integer in 0..{last} (steps completed − 1), got {skip!r}")
    return history.update_ratio[skip:].mean(axis=0)


def learning_layers_ratio(history: TrainingHistory, layers: int = 3, skip: int = 10) -> float:
    """log10 of (mean ρ of the first ``layers`` layers) / (mean ρ of the last ``layers``), ρ averaged over the
    steps after the first ``skip`` (``mean_update_ratio``): how many decades less the layers next to the input
    move than those next to the output (0: all alike)."""
    ratios = mean_update_ratio(history, skip)
    if isinstance(layers, bool) or not isinstance(layers, numbers.Integral) or not 1 <= layers <= ratios.size:
        raise ValueError(f"layers must be an integer in 1..{ratios.size} (the depth), got {layers!r}")
    return float(math.log10(ratios[:layers].mean() / ratios[-layers:].mean()))


def compiled_programs() -> int:
    """How many training-step programs have been compiled."""
    return _train_step._cache_size()

