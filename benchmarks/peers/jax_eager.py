"""Peer: JAX without ``jax.jit``: the hand-written NumPy code run op by op on ``jax.numpy``.

Each ``jnp`` call is dispatched on its own (no tracing of the whole loop), which is what a user gets by
porting NumPy code to JAX and not compiling it; arrays are float32 whatever ``jax_enable_x64`` says.
Unlike a plain port, products run at full float32 precision (``vglab.core.compilation.exact_precision``), as vglab's
do: at JAX's default an H100 computes them in TF32, and this peer's spectra then missed vglab's by 0.13 decades
(benchmarks/README.md, GPU results) and could not be timed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.peers import array_backprop as _impl
from vglab.core.compilation import exact_precision

NAME = "jax_eager"
LABEL = "JAX without jit"


def version() -> str:
    return f"jax {jax.__version__} ({jax.devices()[0].platform})"


def prepare_mlp(problem):
    return _impl.prepare_mlp(problem, jnp)


def mlp_gradient_norms(prepared):
    with exact_precision():
        return _impl.mlp_gradient_norms(prepared, jnp)


def mlp_spectrum(prepared):
    with exact_precision():
        return _impl.mlp_spectrum(prepared, jnp)


def prepare_rnn(problem):
    return _impl.prepare_rnn(problem, jnp)


def rnn_gradient_norms(prepared):
    with exact_precision():
        return _impl.rnn_gradient_norms(prepared, jnp)
