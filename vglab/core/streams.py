"""The registry of PRNG streams: which random numbers every model draws from which key.

A seed s gives the root key ``jax.random.key(s)``; each *purpose* (what is drawn) has its own number p and
stream ``fold_in(key(s), p)``, and the draw for index i (a layer, a time step, a block, a token) is
``fold_in(stream, i)``.  So the numbers depend only on (seed, purpose, index): a deeper network or a longer
sequence appends draws and leaves the earlier ones as they were, and two purposes never share a stream.

The numbers are part of every recorded result (the reference tests compare exact weights): a purpose may be
added under a new number, never renumbered.  ``vglab.training``'s mini-batch keys are the one exception to the
table: step k draws its batch from ``fold_in(key(s), k)`` (the root key, the step folded in directly), as it did
before this registry; those keys are never folded again, so they stay distinct from the streams below.
"""

from __future__ import annotations

import jax

from vglab.core.validation import check_choice

STREAMS: dict[str, int] = {
    # vglab.core.init: the MLP's layers (also BatchNormMLP, width profiles, train's body, a Stack's g)
    "layer_weights": 0,  # Ŵ_l, index l
    "layer_biases": 1,  # b̂_l, index l
    "network_input": 2,  # x = h_0 (the stream itself, no index)
    "output_direction": 3,  # g, L = ⟨g, h_L⟩ (the stream itself)
    "activity_batch": 7,  # vglab.unit_activity's further inputs (the stream itself)
    # vglab.RNN
    "rnn_recurrent": 16,  # Ŵ blocks, index k = gate
    "rnn_input_weights": 17,  # Û blocks, index k = gate
    "rnn_bias": 18,  # b̂, index 0
    "rnn_inputs": 19,  # x_t, index t − 1
    # vglab.Transformer
    "transformer_blocks": 32,  # Ŵ_Q, Ŵ_K, Ŵ_V, Ŵ_O, Ŵ_1, Ŵ_2 of block l, index l
    "transformer_tokens": 35,  # token t of X and of G, index t
    # vglab.train
    "training_projection": 40,  # input projection P (the stream itself)
    "training_readout": 41,  # readout R (the stream itself)
    # vglab.ConvNet
    "conv_weights": 50,  # W_l, index l
    "conv_biases": 51,  # b_l, index l
    "conv_stem": 52,  # the stem convolution (the stream itself)
    "conv_readout": 53,  # the readout (the stream itself)
    "conv_batch": 54,  # train_convnet's mini-batch keys: index = step
}


def _check_table(table: dict[str, int]) -> None:
    """Every purpose a distinct non-negative integer (two purposes on one number would draw the same numbers)."""
    seen: dict[int, str] = {}
    for name, number in table.items():
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**32:
            raise ValueError(f"stream {name!r} must be an integer in 0..2^32-1, got {number!r}")
        if number in seen:
            raise ValueError(f"streams {seen[number]!r} and {name!r} share the number {number}")
        seen[number] = name


_check_table(STREAMS)


def stream(seed, purpose: str):
    """The key of ``purpose``'s stream for ``seed``: fold_in(key(seed), STREAMS[purpose]).  ``seed`` may be traced."""
    return jax.random.fold_in(jax.random.key(seed), STREAMS[check_choice("stream purpose", purpose, STREAMS)])


def stream_key(seed, purpose: str, index):
    """The key of draw ``index`` (a layer, step, block or token; may be traced) of ``purpose`` for ``seed``."""
    return jax.random.fold_in(stream(seed, purpose), index)
