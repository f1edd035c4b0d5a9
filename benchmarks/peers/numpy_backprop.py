"""Peer: plain NumPy with hand-written backpropagation (``array_backprop`` over ``numpy``)."""

from __future__ import annotations

import numpy as np

from benchmarks.peers import array_backprop as _impl

NAME = "numpy"
LABEL = "NumPy (hand-written backprop)"


def version() -> str:
    return f"numpy {np.__version__}"


def prepare_mlp(problem):
    return _impl.prepare_mlp(problem, np)


def mlp_gradient_norms(prepared):
    with np.errstate(divide="ignore"):
        return _impl.mlp_gradient_norms(prepared, np)


def mlp_spectrum(prepared):
    return _impl.mlp_spectrum(prepared, np)


def prepare_rnn(problem):
    return _impl.prepare_rnn(problem, np)


def rnn_gradient_norms(prepared):
    with np.errstate(divide="ignore"):
        return _impl.rnn_gradient_norms(prepared, np)
