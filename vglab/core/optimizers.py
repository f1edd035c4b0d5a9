"""The optimizers both training loops use (θ parameters, g gradient, η learning rate, t = step + 1):

    sgd:       θ ← θ − η g
    momentum:  v ← μ v + g,  θ ← θ − η v                                    (heavy ball, μ = ``MOMENTUM``)
    adam:      m ← β₁m + (1−β₁)g,  s ← β₂s + (1−β₂)g²,
               θ ← θ − η m̂/(√ŝ + ε),  m̂ = m/(1−β₁ᵗ), ŝ = s/(1−β₂ᵗ)
               (Kingma & Ba 2015; β₁, β₂ = ``ADAM_BETAS``, ε = ``ADAM_EPS``)

Pure functions on pytrees of arrays, traceable under jit (the optimizer's name is static).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

OPTIMIZERS = ("sgd", "momentum", "adam")
MOMENTUM = 0.9
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def initial_state(optimizer: str, params) -> tuple:
    """The optimizer's state before step 0: () for sgd, (v = 0,) for momentum, (m = 0, s = 0) for adam."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return {"sgd": (), "momentum": (zeros,), "adam": (zeros, zeros)}[optimizer]


def update(optimizer: str, grads, state: tuple, step, learning_rate) -> tuple:
    """(updates to add to θ, new state) for step ``step`` (0-based) of ``optimizer`` (see the module docstring)."""
    tree_map = jax.tree_util.tree_map
    if optimizer == "sgd":
        return tree_map(lambda g: -learning_rate * g, grads), state
    if optimizer == "momentum":
        velocity = tree_map(lambda v, g: MOMENTUM * v + g, state[0], grads)
        return tree_map(lambda v: -learning_rate * v, velocity), (velocity,)
    b1, b2 = ADAM_BETAS
    m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state[0], grads)
    s = tree_map(lambda s, g: b2 * s + (1 - b2) * g * g, state[1], grads)
    t = (step + 1).astype(jnp.float32)
    # 1 − βᵗ as −expm1(t log β): β ≈ 1 makes 1 − βᵗ in float32 lose its digits (1 − 0.999 ≈ 0.001 keeps ~4)
    c1, c2 = -jnp.expm1(t * math.log(b1)), -jnp.expm1(t * math.log(b2))
    updates = tree_map(lambda m, s: -learning_rate * (m / c1) / (jnp.sqrt(s / c2) + ADAM_EPS), m, s)
    return updates, (m, s)
