"""Which units of an MLP are inactive for an input, and which are dead for a whole batch of inputs.

A unit i of layer l is *inactive* for an input x when φ′(z_{l,i}(x)) = 0 exactly (a ReLU with z < 0): it
passes no gradient for that x.  Only activations with a flat side (``Activation.flat``: ReLU) have such units;
a saturated sigmoid, tanh or GELU unit still passes a (tiny) gradient and is never inactive or dead.
It is *dead* on a batch when it is inactive for every input of the batch: it then passes no gradient at all and
its incoming weights receive none, so gradient descent cannot revive it
(the "dying ReLU", Lu, Shin, Su & Karniadakis 2019).  About half of a ReLU layer is inactive for any one
input at He initialisation; a dead unit is a different, much rarer thing.

The forward pass is the engine's own (``vglab.models.jacobians``, in log space), on the same weights as
``vglab.gradient_norms(net, seed)``; the batch's first input is that call's input x, the others are drawn
from N(0, I) with a stream of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core.activations import ACTIVATIONS
from vglab.core.compilation import exact_jit
from vglab.core.streams import stream
from vglab.core.validation import check_int, check_seeds
from vglab.models.jacobians import _forward, _scalars, _structure, weight_bank
from vglab.models.mlp import MLP, check_square_random

MAX_BATCH = 1024


@dataclass(frozen=True)
class UnitActivity:
    """Per-layer activity of one network (``seed``) over a batch of ``batch`` inputs.

    inactive_fraction: (depth,) mean over the batch of the share of layer l's units with φ′(z_l) = 0 for that
                       input (for the batch's first input it is ``gradient_norms(net, seed).dead_fraction``).
    dead_fraction:     (depth,) share of layer l's units with φ′(z_l) = 0 for every input of the batch.
    """

    net: MLP
    seed: int
    batch: int
    inactive_fraction: np.ndarray
    dead_fraction: np.ndarray


@partial(exact_jit, static_argnames=("structure",))
def _activity_program(structure, scalars, weights, biases, inputs, depth):
    weights, biases = weights[0], biases[0]
    if not ACTIVATIONS[structure.activation].flat:  # φ′ > 0 everywhere: never inactive, never dead (the
        depth_rows = biases.shape[0]                  # factored φ′ can read 0 where a unit saturates)
        zeros = jnp.zeros((depth_rows,), jnp.float32)
        return zeros, zeros
    inactive = jax.vmap(lambda x: _forward(structure, scalars, weights, biases, x, depth).dphi == 0.0)(inputs)
    return jnp.mean(inactive, axis=(0, 2)), jnp.mean(jnp.all(inactive, axis=0), axis=1)


def batch_inputs(bank, seed: int, batch: int) -> jax.Array:
    """(batch, n) inputs: the seed's own x (``bank.inputs[0]``, the input of ``gradient_norms``) first, then
    batch − 1 draws x ~ N(0, I) from a stream of their own."""
    others = jax.random.normal(stream(seed, "activity_batch"), (batch - 1, bank.inputs.shape[-1]), jnp.float32)
    return jnp.concatenate([bank.inputs[:1], others], axis=0)


def unit_activity(net: MLP, seed: int = 0, batch: int = 256) -> UnitActivity:
    """Inactive (per input) and dead (for every input of a batch) fractions of ``net``'s units, per layer.

    batch: number of inputs x ~ N(0, I), 1..1024.  See ``UnitActivity``.
    """
    check_square_random(net, "unit_activity")
    (seed,) = check_seeds(seed, 1)
    batch = check_int("batch", batch, 1, MAX_BATCH)
    bank = weight_bank((seed,), net.width, net.orthogonal, net.depth)
    inputs = batch_inputs(bank, seed, batch)
    inactive, dead = _activity_program(_structure(net), _scalars(net), bank.weights, bank.biases, inputs,
                                       np.int32(net.depth))
    L = net.depth
    return UnitActivity(net, seed, batch, np.asarray(inactive, np.float64)[:L],
                        np.asarray(dead, np.float64)[:L])
