"""The one result type of ``vglab.gradient_norms``: ``GradientProfile``, and what every result derives from it.

Every model's ``gradient_norms`` returns a ``GradientProfile`` subclass (``vglab.GradientNorms`` for the MLP and
the BatchNorm MLP, ``RecurrentGradientNorms``, ``TransformerGradientNorms``, ``StackGradientNorms`` for
``vglab.Stack`` and ``vglab.ConvNet``).  They share the fields ``net``, ``seed``, ``n_seeds`` and

    log10_activation_grad: (n_seeds, P+1)  log10 ‖∂L/∂h_p‖ for positions p = 0..P (layers, time steps or
                           blocks), position P being the output, where ∂L/∂h_P = g

and everything computed from them (the gradient ratio, the typical and the RMS profile over seeds, ``to_code``);
a subclass adds its architecture's extras as fields (weight gradients, dead fractions, cell-state gradients,
gate means, ...), an extra that does not apply to a network being None.

The protocols the public functions dispatch on (not on private methods, not on a model's class): every model is
a ``GradientModel`` (``gradient_profile(seed, n_seeds)``, for ``vglab.gradient_norms``); the models with a
spectrum engine are ``SpectrumModel``s (``jacobian_spectrum(seed)``, for ``vglab.jacobian_spectrum``); the models
with a training loop are ``TrainingModel``s (``training_run(data, **options)``, for ``vglab.train``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vglab.core.logspace import LN10


def log10_root_mean_square(log10_values, axis: int = 0) -> np.ndarray:
    """½ log10 mean(10^(2 v)) over ``axis``, for log10 magnitudes v, without leaving log space.

    With y = 2 ln10 · v (natural logs of the squares), ln mean e^y = m + ln Σ e^(y − m) − ln k, m = max y (a
    log-sum-exp), so v = −600 (a 1e-600 gradient) neither underflows nor is lost beside the others; −inf
    (an exactly zero norm) adds nothing, and the result is −inf only where every value is.  NaN propagates.
    """
    y = 2.0 * LN10 * np.asarray(log10_values, dtype=np.float64)
    top = np.max(y, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_sum = np.log(np.sum(np.exp(y - shift), axis=axis)) + np.squeeze(shift, axis=axis)
    top = np.squeeze(top, axis=axis)
    log_sum = np.where(np.isinf(top) & ~np.isnan(log_sum), top, log_sum)  # all zero (−inf), or +inf
    return 0.5 * (log_sum - math.log(y.shape[axis])) / LN10


def mean_and_band(log10_values) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max over axis 0 (seeds, or training steps) of log10 values, exactly zero (−inf) entries
    left out.

    Returns (mean, low, high, zero_count): the statistics of the rows that are not exactly zero at each position
    (NaN where every row is zero; a mean of logs with a −inf would be −inf and hide the others), and
    ``zero_count``, the number of exactly zero rows per position, which the plots mark and explain.
    """
    values = np.atleast_2d(np.asarray(log10_values, dtype=float))
    zero = np.isneginf(values)
    zero_count = zero.sum(axis=0)
    finite = np.where(zero, np.nan, values)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 'All-NaN slice': an all-zero column is expected
        low = np.nanmin(finite, axis=0)
        high = np.nanmax(finite, axis=0)
        mean = np.nanmean(finite, axis=0)
    return mean, low, high, zero_count


@dataclasses.dataclass(frozen=True)
class GradientProfile:
    """Per-position gradient magnitudes of ``n_seeds`` independently drawn copies of ``net`` (seeds
    seed..seed+n_seeds−1); see the module docstring.  An exactly zero gradient is −inf: it is zero (e.g. dead
    ReLUs), not underflow."""

    net: Any
    seed: int
    n_seeds: int
    log10_activation_grad: np.ndarray

    def __post_init__(self):
        grad = self.log10_activation_grad
        if np.ndim(grad) != 2 or np.shape(grad)[0] != self.n_seeds or np.shape(grad)[1] < 2:
            raise ValueError(f"log10_activation_grad must have shape (n_seeds, positions+1) = ({self.n_seeds}, "
                             f"≥ 2), got {np.shape(grad)}")

    @property
    def positions(self) -> int:
        """P: the number of layers, time steps or blocks (log10_activation_grad has P+1 columns)."""
        return self.log10_activation_grad.shape[1] - 1

    @property
    def extras(self) -> tuple[str, ...]:
        """The names of this result's extra fields that hold values for its network (not None)."""
        base = {f.name for f in dataclasses.fields(GradientProfile)}
        return tuple(f.name for f in dataclasses.fields(self)
                     if f.name not in base and getattr(self, f.name) is not None)

    @property
    def log10_gradient_ratio(self) -> np.ndarray:
        """(n_seeds,) log10 ‖∂L/∂h_0‖ / ‖∂L/∂h_out‖: how many orders of magnitude the gradient lost on its way
        from the output back to the input (layers, time steps or blocks)."""
        return self.log10_activation_grad[:, 0] - self.log10_activation_grad[:, -1]

    @property
    def log10_typical_activation_grad(self) -> np.ndarray:
        """(positions+1,) the mean over seeds of log10 ‖∂L/∂h_l‖: the *typical* gradient (a geometric mean),
        what the dashboards' solid line shows."""
        return np.mean(self.log10_activation_grad, axis=0)

    @property
    def log10_rms_activation_grad(self) -> np.ndarray:
        """(positions+1,) ½ log10 of the mean over seeds of ‖∂L/∂h_l‖²: the sample estimate of √E‖∂L/∂h_l‖²,
        the quantity mean-field theory predicts (``log10_root_mean_square``).  By Jensen's inequality it is ≥
        the typical value ``log10_typical_activation_grad``; at finite width the gap grows roughly like
        depth/width (Hanin 2018; Hanin & Nica 2019)."""
        return log10_root_mean_square(self.log10_activation_grad, axis=0)

    def to_code(self) -> str:
        """The vglab call that reproduces this result."""
        extra = f", n_seeds={self.n_seeds}" if self.n_seeds != 1 else ""
        return f"vglab.gradient_norms({self.net.to_code()}, seed={self.seed}{extra})"


@runtime_checkable
class GradientModel(Protocol):
    """What ``vglab.gradient_norms(net, seed, n_seeds)`` dispatches on: a model that computes its own
    ``GradientProfile`` (every vglab model does: MLP, BatchNormMLP, RNN, Transformer, Stack, ConvNet)."""

    def gradient_profile(self, seed: int = 0, n_seeds: int = 1) -> GradientProfile:
        ...

    def to_code(self) -> str:
        ...


@runtime_checkable
class SpectrumModel(Protocol):
    """What ``vglab.jacobian_spectrum(net, seed)`` dispatches on: a model that computes the spectrum of its own
    input–output Jacobian ∂h_L/∂h_0 (a ``vglab.JacobianSpectrum``: log10 singular values, descending, and
    log10 ‖∂h_L/∂h_l‖_F for l = 0..L−1).  vglab's MLP, Stack and ConvNet implement it (a user's class with this
    method plugs in); the RNN, Transformer and BatchNormMLP do not: vglab has no spectrum engine for them."""

    def jacobian_spectrum(self, seed: int = 0):
        ...

    def to_code(self) -> str:
        ...


@runtime_checkable
class TrainingModel(Protocol):
    """What ``vglab.train(net, data, **options)`` dispatches on: a model that trains itself as a classifier of
    ``data`` (None: the model's own default data set) and returns its training history, every step recorded.

    vglab's MLP (``vglab.TrainingHistory``: per weight matrix W_l of the body, ‖∂loss/∂W_l‖, ‖ΔW_l‖/‖W_l‖ and
    dead units; default data "digits"; options steps, optimizer, learning_rate, clip_norm, batch_size, seed,
    eval_every, progress, callback) and ConvNet (``vglab.ConvTrainingHistory``; default data MNIST-1D; options
    steps, learning_rate, batch_size, seed) implement it, each validating its own options (an unknown keyword
    raises ``KeywordError`` with a did-you-mean naming the model's ``training_run``); a user's class with this
    method plugs in.  The RNN, Transformer, BatchNormMLP and Stack do not: vglab has no training loop for them.
    A history's ``to_code()`` writes the ``vglab.train(...)`` call that reproduces it."""

    def training_run(self, data=None, **options):
        ...

    def to_code(self) -> str:
        ...
