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

Width profiles (``vglab.MLP(widths=(n_0, …, n_L))``): layer l maps n_{l-1} → n_l, W_l ∈ ℝ^{n_l × n_{l-1}},
W_l = (σ_w/√fan_l) Ŵ_l with the fan each scheme is designed for (``FAN_MODES``):

- ``xavier``:      fan = (fan_in + fan_out)/2, Var W = 2σ_w²/(n_{l-1} + n_l), a compromise between the two;
- ``lecun``:       fan = fan_in = n_{l-1};
- ``he`` = ``he_fan_in``: fan = n_{l-1}, σ_w = √2: keeps the forward signal E‖h_l‖²/n_l (ReLU);
- ``he_fan_out``:  fan = n_l, σ_w = √2: keeps the backward signal E‖∂L/∂h_l‖²/n_l instead;
- ``gaussian``:    fan = fan_in, σ_w free;
- ``constant``:    W_l = (σ_w/n_{l-1}) 11ᵀ and b_l = σ_b 1: every unit of a layer computes the same function,
                   so no gradient step can ever make them differ (the symmetry a random init breaks).
On square layers every fan is n, so xavier = lecun and he_fan_out = he_fan_in.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vglab.core.streams import stream, stream_key

INITS: dict[str, float] = {
    "xavier": 1.0,
    "he": math.sqrt(2.0),
    "lecun": 1.0,
    "orthogonal": 1.0,
    "gaussian": 1.0,
}


# Schemes that only differ from the ones above when layers are not square, and the constant (symmetric) init.
# INITS stays the list the dashboards offer; MLP accepts every name of INIT_NAMES.
PROFILE_INITS: dict[str, float] = {
    "he_fan_in": math.sqrt(2.0),
    "he_fan_out": math.sqrt(2.0),
    "constant": 1.0,
}
INIT_NAMES: dict[str, float] = {**INITS, **PROFILE_INITS}
FAN_MODES: dict[str, str] = {
    "xavier": "average", "lecun": "in", "he": "in", "he_fan_in": "in", "he_fan_out": "out",
    "gaussian": "in", "orthogonal": "in", "constant": "in",
}


def default_weight_std(init: str) -> float:
    """σ_w of an initialisation scheme (see the module docstring)."""
    return INIT_NAMES[init]


def fan(init: str, fan_in: int, fan_out: int) -> float:
    """The fan of a layer n_in → n_out under ``init``: Var W = σ_w²/fan (constant: W = σ_w/fan_in)."""
    mode = FAN_MODES[init]
    if mode == "average":
        return 0.5 * (fan_in + fan_out)
    return float(fan_out if mode == "out" else fan_in)


def unit_weight_rect(seed: int, layer, fan_out: int, fan_in: int, constant: bool = False):
    """Ŵ_l: (fan_out, fan_in) with unit-variance Gaussian entries (the square draw ``unit_weight`` when
    fan_out = fan_in, so a profile's square layers equal the square MLP's), or all ones for ``constant``."""
    if constant:
        return jnp.ones((fan_out, fan_in), jnp.float32)
    if fan_out == fan_in:
        return unit_weight(seed, layer, fan_in, False)
    return jax.random.normal(stream_key(seed, "layer_weights", layer), (fan_out, fan_in), jnp.float32)


def unit_bias_const(seed: int, layer, width: int, constant: bool = False):
    """b̂_l: ``unit_bias``, or all ones for the constant init."""
    if constant:
        return jnp.ones((width,), jnp.float32)
    return unit_bias(seed, layer, width)


def haar_orthogonal(key, n: int):
    """A Haar-distributed n×n orthogonal matrix: QR of a Gaussian matrix with the signs of diag(R) fixed
    (Mezzadri 2007)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), jnp.float32))
    return q * jnp.sign(jnp.diagonal(r))[None, :]


def unit_weight(seed: int, layer, width: int, orthogonal: bool):
    """Ŵ_l: (width, width) with unit-variance entries; Gaussian, or √n times a Haar orthogonal matrix."""
    key = stream_key(seed, "layer_weights", layer)
    if orthogonal:
        return math.sqrt(width) * haar_orthogonal(key, width)
    return jax.random.normal(key, (width, width), jnp.float32)


def unit_bias(seed: int, layer, width: int):
    """b̂_l ~ N(0, I_width)."""
    return jax.random.normal(stream_key(seed, "layer_biases", layer), (width,), jnp.float32)


def network_input(seed: int, width: int):
    """The input h_0 = x ~ N(0, I_width) of the network drawn with ``seed``."""
    return jax.random.normal(stream(seed, "network_input"), (width,), jnp.float32)


def output_direction(seed: int, width: int):
    """g ~ N(0, I_width): the loss is L = ⟨g, h_L⟩, so ∂L/∂h_L = g."""
    return jax.random.normal(stream(seed, "output_direction"), (width,), jnp.float32)
