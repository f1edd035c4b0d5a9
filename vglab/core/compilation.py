"""Compiling vglab's kernels, and counting compilations (the slow step a slider drag must never wait for).

``exact_jit`` is the ``jax.jit`` every vglab kernel is compiled with: it traces the kernel with every float32
matrix product at full float32 precision.  JAX's default lets XLA compute a float32 product in TensorFloat-32 on
NVIDIA GPUs from Ampere on (10-bit mantissa, relative error ≈ 10⁻³ per product) and in bfloat16 on TPUs; the
lab's numbers must agree with float64 references on every device, so vglab never takes that default.  On CPUs
the two are the same computation.

``CompileCounter().count`` grows by one for every backend compilation JAX reports through ``jax.monitoring``
(the event ``/jax/core/compile/backend_compile_duration``), so a test or a benchmark can assert that changing
the depth, the number of steps or a weight scale compiled nothing new.
"""

from __future__ import annotations

import functools

import jax

EXACT_MATMUL_PRECISION = "highest"  # lax.Precision.HIGHEST: float32 products computed in float32


def exact_precision():
    """A context in which JAX records every float32 product (``dot_general``) at full float32 precision,
    whether it is traced for ``jit`` or run op by op."""
    return jax.default_matmul_precision(EXACT_MATMUL_PRECISION)


def exact_jit(fun=None, **jit_options):
    """``jax.jit(fun, **jit_options)``, with ``fun`` traced under ``exact_precision()``.

    Every ``dot_general`` the trace records (``@``, ``jnp.einsum``, ``jnp.matmul``, inside ``lax.scan`` too)
    carries ``precision = HIGHEST``; the setting is read at trace time, so it holds whatever the caller's own
    default is.  Usable as ``@exact_jit``, ``@exact_jit(static_argnames=...)`` or
    ``@partial(exact_jit, static_argnames=...)``."""
    if fun is None:
        return functools.partial(exact_jit, **jit_options)

    @functools.wraps(fun)
    def traced_exactly(*args, **kwargs):
        with exact_precision():
            return fun(*args, **kwargs)

    return jax.jit(traced_exactly, **jit_options)

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Counts XLA backend compilations from the moment it is made (listeners cannot be removed: make few)."""

    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            self.count += 1
