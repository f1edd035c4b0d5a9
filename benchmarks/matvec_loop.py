"""How fast XLA:CPU streams weights through a chain of matrix–vector products (the memory-bound core of
``vglab.gradient_norms``), against NumPy.

A ``fori_loop`` of ``tanh(W[l] @ u)`` (forward form) or ``tanh(u @ W[l])`` (backward form) over ``depth``
float32 layers of ``width``², optionally with each product split into row blocks; GB/s = weight bytes / time.
Run with different ``XLA_FLAGS`` to compare XLA options, e.g.

    .venv/bin/python benchmarks/matvec_loop.py
    XLA_FLAGS=--xla_cpu_use_xnnpack=true .venv/bin/python benchmarks/matvec_loop.py
"""

from __future__ import annotations

import statistics
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

DEPTH, WIDTH, REPEATS = 200, 256, 15


@partial(jax.jit, static_argnames=("parts", "row_vector"))
def chain(weights, u, depth, parts: int = 1, row_vector: bool = False):
    """u_{l+1} = tanh(W_l u_l) (or tanh(u_l W_l) with ``row_vector``), each product cut into ``parts`` blocks."""
    n = weights.shape[-1]
    if n % parts:
        raise ValueError(f"the width {n} must be a multiple of parts={parts}")
    k = n // parts

    def layer(l, u):
        w = weights[l]
        if row_vector:
            z = sum(jax.lax.dynamic_slice_in_dim(u, i * k, k) @ jax.lax.dynamic_slice_in_dim(w, i * k, k, 0)
                    for i in range(parts))
        else:
            z = jnp.concatenate([jax.lax.dynamic_slice_in_dim(w, i * k, k, 0) @ u for i in range(parts)])
        return jnp.tanh(z)

    return jax.lax.fori_loop(0, depth, layer, u)


def median_seconds(fn) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    weights = np.random.default_rng(0).standard_normal((DEPTH, WIDTH, WIDTH), dtype=np.float32) / WIDTH**0.5
    u = np.ones(WIDTH, np.float32)
    gigabytes = weights.nbytes / 1e9
    device_weights = jnp.asarray(weights)
    for row_vector in (False, True):
        for parts in (1, 2, 4):
            seconds = median_seconds(lambda p=parts, r=row_vector: chain(device_weights, u, DEPTH, parts=p,
                                                                         row_vector=r).block_until_ready())
            form = "u @ W" if row_vector else "W @ u"
            print(f"jax   {form}, {parts} block(s): {1e3 * seconds:6.2f} ms  {gigabytes / seconds:5.1f} GB/s")

    def numpy_chain():
        h = u
        for layer in weights:
            h = np.tanh(layer @ h)

    seconds = median_seconds(numpy_chain)
    print(f"numpy W @ u per layer:     {1e3 * seconds:6.2f} ms  {gigabytes / seconds:5.1f} GB/s")


if __name__ == "__main__":
    main()
