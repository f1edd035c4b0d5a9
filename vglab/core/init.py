"""Weight initialisation schemes and the per-layer random draws behind them.

Every layer is square (width × width).  Weights are W_l = (σ_w / √n) · Ŵ_l with Ŵ_l a matrix of unit-variance
entries, biases b_l = σ_b · b̂_l with b̂_l ~ N(0, I).  The schemes differ in σ_w and in how Ŵ is drawn:

- ``xavier`` (Glorot & Bengio 2010): Var W = 2/(fan_in + fan_out) = 1/n here, so σ_w = 1.
- ``lecun``  (LeCun et al. 1998):     Var W = 1/fan_in, σ_w = 1 (equal to Xavier for square layers).
- ``he``     (He et al. 2015):        Var W = 2/fan_in, σ_w = √2, the fixed point for ReLU.
- ``orthogonal`` (Saxe et al. 2014):  Ŵ = √n · Q with Q Haar-orthogonal, so W = σ_w Q; σ_w = 1 by default.
- ``gaussian``: Ŵ ~ N(0, 1) with σ_w = 1 unless ``weight_std`` sets it (the free σ_w slider).

The draws for layer l depend only on (seed, l, width, orthogonal or not), never on depth: making a network
deeper appends layers and leaves the existing ones unchanged.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

INITS: dict[str, float] = {
    "xavier": 1.0,
    "he": math.sqrt(2.0),
    "lecun": 1.0,
    "orthogonal": 1.0,
    "gaussian": 1.0,
}


def default_weight_std(init: str) -> float:
    """σ_w of an initialisation scheme for square layers (see the module docstring)."""
    return INITS[init]


def _stream(seed: int, what: int):
    """An independent PRNG stream per (seed, purpose): 0 weights, 1 biases, 2 input, 3 output direction."""
    return jax.random.fold_in(jax.random.key(seed), what)


def haar_orthogonal(key, n: int):
    """A Haar-distributed n×n orthogonal matrix: QR of a Gaussian matrix with the signs of diag(R) fixed
    (Mezzadri 2007)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), jnp.float32))
    return q * jnp.sign(jnp.diagonal(r))[None, :]


def unit_weight(seed: int, layer, width: int, orthogonal: bool):
    """Ŵ_l: (width, width) with unit-variance entries; Gaussian, or √n times a Haar orthogonal matrix."""
    key = jax.random.fold_in(_stream(seed, 0), layer)
    if orthogonal:
        return math.sqrt(width) * haar_orthogonal(key, width)
    return jax.random.normal(key, (width, width), jnp.float32)


def unit_bias(seed: int, layer, width: int):
    """b̂_l ~ N(0, I_width)."""
    return jax.random.normal(jax.random.fold_in(_stream(seed, 1), layer), (width,), jnp.float32)


def network_input(seed: int, width: int):
    """The input h_0 = x ~ N(0, I_width) of the network drawn with ``seed``."""
    return jax.random.normal(_stream(seed, 2), (width,), jnp.float32)


def output_direction(seed: int, width: int):
    """g ~ N(0, I_width): the loss is L = ⟨g, h_L⟩, so ∂L/∂h_L = g."""
    return jax.random.normal(_stream(seed, 3), (width,), jnp.float32)
