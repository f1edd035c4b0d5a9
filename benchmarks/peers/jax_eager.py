"""Peer: JAX without ``jax.jit``: the hand-written NumPy code run op by op on ``jax.numpy``.

Each ``jnp`` call is dispatched on its own (no tracing of the whole loop), which is what a user gets by
porting NumPy code to JAX and not compiling it; arrays are float32 whatever ``jax_enable_x64`` says.
Products run at full float32 precision, as vglab's: at JAX's default an H100 computes them in TF32, and this
peer's spectra then missed vglab's by 0.13 decades (benchmarks/README.md, GPU results), so it was not timed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from benchmarks.peers import array_backprop as _impl
from vglab.compilation import EXACT_MATMUL_PRECISION

NAME = "jax_eager"
LABEL = "JAX without jit"


def version() -> str:
    return f"jax {jax.__version__} ({jax.devices()[0].platform})"


def prepare_mlp(problem):
    return _impl.prepare_mlp(problem, jnp)


def mlp_gradient_norms(prepared):
    with jax.default_matmul_precision(EXACT_MATMUL_PRECISION):
        return _impl.mlp_gradient_norms(prepared, jnp)


def mlp_spectrum(prepared):
    with jax.default_matmul_precision(EXACT_MATMUL_PRECISION):
        return _impl.mlp_spectrum(prepared, jnp)


def prepare_rnn(problem):
    return _impl.prepare_rnn(problem, jnp)


def rnn_gradient_norms(prepared):
    with jax.default_matmul_precision(EXACT_MATMUL_PRECISION):
        return _impl.rnn_gradient_norms(prepared, jnp)
