"""Small classification data sets for ``vglab.train``, as NumPy arrays (x_train, y_train, x_test, y_test).

x has shape (examples, features), float32, standardised with the training split's statistics; y holds
integer class labels 0..C−1 (int32).  Both loaders are deterministic functions of their arguments.

- ``digits``: scikit-learn's copy of the UCI optical digits (1797 images of 8×8 pixels, 10 classes;
  Alpaydin & Kaynak 1998).  No download: the file ships inside scikit-learn.
- ``two_spirals``: two interleaved spirals in the plane (Lang & Witbrock 1988), a classic test of depth.
"""

from __future__ import annotations

import numpy as np

from vglab.core.validation import check_float, check_int

DATASETS = ("digits", "two_spirals")
CUSTOM = "custom"  # the name a training run records for arrays the caller gave


def data_code(name: str) -> str:
    """How a reproducing ``vglab.train(...)`` call names a run's data: the set's name (``'digits'``), or
    ``data``, standing for the caller's own arrays, where the run was given them (``CUSTOM``)."""
    return "data" if name == CUSTOM else repr(name)


def _split(x, y, test_fraction, seed):
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = max(1, int(round(test_fraction * len(y))))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _standardised(x, mean, std):
    return ((x - mean) / std).astype(np.float32)


def _check_fraction(test_fraction):
    return check_float("test_fraction", test_fraction, 0.0, 0.9, low_inclusive=False)


def digits(test_fraction: float = 0.25, seed: int = 0):
    """The 8×8 digit images as 64 features scaled to [0, 1], centred by the training mean and divided by
    the training standard deviation (one number for all pixels, so blank border pixels stay 0).

    Returns (x_train (n, 64), y_train (n,), x_test (m, 64), y_test (m,)), n + m = 1797, 10 classes.
    """
    from sklearn.datasets import load_digits

    test_fraction = _check_fraction(test_fraction)
    seed = check_int("seed", seed, 0, 2**32 - 1)
    bunch = load_digits()
    x = bunch.data.astype(np.float64) / 16.0
    x_train, y_train, x_test, y_test = _split(x, bunch.target.astype(np.int32), test_fraction, seed)
    mean = x_train.mean(axis=0)
    std = (x_train - mean).std()
    return _standardised(x_train, mean, std), y_train, _standardised(x_test, mean, std), y_test


def two_spirals(n: int = 1000, noise: float = 0.05, turns: float = 1.5, test_fraction: float = 0.25,
                seed: int = 0):
    """n points on two interleaved spirals, n/2 per class.

    Class 0: r = t, θ = 2π·turns·t with t = √u, u ~ U(0, 1) (even density along the arm), point
    r(cos θ, sin θ) + noise·ε with ε ~ N(0, I₂); class 1 is class 0 rotated by π.  Features are standardised.
    Returns (x_train (n−m, 2), y_train, x_test (m, 2), y_test) with m = round(test_fraction·n).
    """
    n = check_int("n", n, 4, 1_000_000)
    noise = check_float("noise", noise, 0.0, 10.0)
    turns = check_float("turns", turns, 0.0, 20.0, low_inclusive=False)
    test_fraction = _check_fraction(test_fraction)
    seed = check_int("seed", seed, 0, 2**32 - 1)
    rng = np.random.default_rng(seed)
    half = n // 2
    t = np.sqrt(rng.uniform(size=n))
    theta = 2.0 * np.pi * turns * t
    points = t[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    labels = (np.arange(n) >= half).astype(np.int32)
    points[labels == 1] *= -1.0
    points += noise * rng.standard_normal((n, 2))
    x_train, y_train, x_test, y_test = _split(points, labels, test_fraction, seed + 1)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    return _standardised(x_train, mean, std), y_train, _standardised(x_test, mean, std), y_test
