"""Transformer stacks: exact per-block ‖∂L/∂h_l‖ over a short random sequence, accumulated in log space.

A block (Vaswani et al. 2017, encoder style: every token attends to every token, no mask) acts on the
sequence h ∈ ℝ^{T×d} (T = ``seq_len`` tokens of width d) with two sublayers, self-attention then an MLP:

    Attn(a) = concat_k softmax(a W_Q^k (a W_K^k)ᵀ / √d_k) a W_V^k · W_O       (heads k = 1..H, d_k = d/H)
    MLP(a)  = φ(a W_1) W_2,   W_1 ∈ ℝ^{d×md}, W_2 ∈ ℝ^{md×d}                 (m = ``mlp_ratio``, 4 by default)

Each sublayer F ∈ {Attn, MLP} updates the stream according to ``residual`` and ``norm``:

    norm="pre"  (Xiong et al. 2020; GPT-2):   h ← h + F(LN(h))        (without residual: h ← F(LN(h)))
    norm="post" (Vaswani et al. 2017):        h ← LN(h + F(h))        (without residual: h ← LN(F(h)))
    norm=None:                                h ← h + F(h)            (without residual: h ← F(h))

LN normalises every token over its d features, LN(x) = (x − x̄)/√(var x + ε), ε = 1e-5, with gain 1 and bias 0
(their values at initialisation); the linear maps have no biases (zero at initialisation).  Every weight
matrix is drawn N(0, σ_w²/fan_in) with σ_w = ``weight_std`` (1 by default).  The tokens h_0 = X have
independent N(0, 1) entries, and the loss is L = ⟨G, h_depth⟩ = Σ_ij G_ij (h_depth)_ij with G ~ N(0, 1), so
∂L/∂h_depth = G.  The result is log10 ‖∂L/∂h_l‖_F (Frobenius over the whole sequence) for l = 0..depth.

What it shows at initialisation (σ_w = 1, GELU; tests/test_transformer.py): without residual connections
or LayerNorm the gradient vanishes within a few blocks (~0.3 orders of magnitude per block); with residual +
LayerNorm a 96-block stack keeps it within about an order and a half; with post-LN the middle blocks receive
up to ~3× less gradient than the output block while the first blocks receive more (Xiong et al. 2020 speak
of the *parameter* gradients near the output, in a pre-LN stack that ends with a final LayerNorm, which this
stack has not), while with pre-LN no block receives less than the output block (the gradient is nearly
flat, rising slowly toward the input where the stream is smallest and LN's Jacobian ∝ 1/‖h_l‖ largest).
Residuals without LayerNorm let the stream grow block after block, and the gradient explodes toward the input.

Exactness and range: the stream is carried as (h̃, s) with h = e^s h̃ (``vglab.core.logspace``) and renormalised
after every sublayer, and the backward adjoint as (ṽ, r) renormalised after every block.  The adjoint of one
block is its exact vector–Jacobian product (``jax.vjp`` of the block in scaled form, with the renormalising
scale held constant), so depth 1000 without residuals (gradients ~1e-350) stays finite in float32.
One rule concerns streams that have grown far beyond unit scale (only reachable without LayerNorm): attention
logits scale like e^{2s}, and once their float32 rounding error exceeds 1 the softmax is treated as hard
(its weights held constant under differentiation).  In exact arithmetic such logits are separated by gaps
at least that large, so the attention is one-hot and passes no gradient through its weights; in float32 the
stream can instead hold spurious exact ties between tokens merged by rounding.  Checked against float64
references in that regime.  Logits are evaluated with the scale capped at e^{60} (one-hot beyond).

Speed: the loops over blocks are the forward skeleton and the backward chain (``vglab.core.chain``: the block
is the step, the skeleton's ``normalise`` the last sublayer's renormalisation over the real tokens), each a
``lax.fori_loop`` with the depth as a dynamic trip count over a bank of
pre-drawn blocks bucketed by capacity (16, 128, 512, 1000), and the sequence is padded to a token capacity
(8, 32, 128, 256) with padded tokens masked out of attention and of the loss; so depth, seq_len (within a
bucket) and σ_w changes reuse the compiled program.  Width, heads, mlp_ratio, activation, residual and norm
select a program.  Seeds are vmapped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core.activations import ACTIVATIONS
from vglab.core.banks import BankCache, append_rows, capacity, checked_bank
from vglab.core.chain import backward_chain, forward_chain, log10_rows
from vglab.core.compilation import exact_jit
from vglab.core.config import Config, choice, config, flag, integer, real
from vglab.core.logspace import (
    LogScale,
    follow,
    log_scale,
    scale_add,
    scale_diff,
    scaled_add_pair,
)
from vglab.core.results import GradientProfile
from vglab.core.streams import stream_key
from vglab.core.validation import check_seeds
from vglab.models.mlp import LAYERNORM_EPS, norm_field

MAX_DEPTH = 1000
MAX_WIDTH = 1024
MAX_HEADS = 64
MAX_SEQ_LEN = 256
MAX_MLP_RATIO = 8
DEPTH_BUCKETS = (16, 128, 512, MAX_DEPTH)
TOKEN_BUCKETS = (8, 32, 128, MAX_SEQ_LEN)
BANK_BUDGET_BYTES = 2 * 2**30  # largest float32 block bank one call may hold (all seeds together)
_MAX_LOG_SCALE = 30.0  # attention logits use at most e^{2·30} as scale (softmax is one-hot beyond)
_FLOAT32_EPS = 2.0**-24  # unit roundoff


@config
class Transformer(Config):
    """A stack of ``depth`` transformer blocks of width ``width`` with ``heads`` attention heads.

    seq_len:    tokens T of the random input sequence.
    residual:   skip connections around both sublayers.
    norm:       "pre" (h + F(LN h)), "post" (LN(h + F h)) or None ("layernorm" means "pre").
    activation: φ of the MLP sublayer (any of ``vglab.ACTIVATIONS``; GELU by default).
    weight_std: σ_w, every weight matrix ~ N(0, σ_w²/fan_in).
    mlp_ratio:  the MLP's hidden width is mlp_ratio · width (4, as in Vaswani et al. 2017).
    See the module docstring for the equations.
    """

    depth: int = integer(1, MAX_DEPTH)
    width: int = integer(1, MAX_WIDTH)
    heads: int = integer(1, MAX_HEADS)
    seq_len: int = integer(1, MAX_SEQ_LEN, default=8)
    residual: bool = flag(default=True)
    norm: str | None = norm_field(default="pre")
    activation: str = choice(ACTIVATIONS, default="gelu")
    weight_std: float = real(0.0, 100.0, default=1.0)
    mlp_ratio: int = integer(1, MAX_MLP_RATIO, default=4)
    leaky_slope: float = real(-10.0, 10.0, default=0.01)

    def validate(self):
        if self.width % self.heads:
            raise ValueError(f"width must be divisible by heads, got width={self.width}, heads={self.heads}")

    @property
    def floats_per_block(self) -> int:
        """Weights of one block: W_Q, W_K, W_V, W_O (d×d each) and W_1, W_2 (d×md each)."""
        return (4 + 2 * self.mlp_ratio) * self.width * self.width

    def gradient_profile(self, seed: int = 0, n_seeds: int = 1) -> TransformerGradientNorms:
        """This model's ``vglab.GradientProfile`` (what ``vglab.gradient_norms`` dispatches to)."""
        return transformer_gradient_norms(self, seed=seed, n_seeds=n_seeds)


# --------------------------------------------------------------------------------------------- draws
_DRAW_CHUNK = 8  # blocks or tokens drawn per compiled call (one program per width serves every depth)


@partial(exact_jit, static_argnames=("width", "mlp_ratio"))
def _draw_block_chunk(seed, start, width, mlp_ratio):
    """Unit-variance Ŵ of blocks start..start+7 of one stack: attention (8, 4, d, d), W_1 (8, d, md), W_2."""
    hidden = mlp_ratio * width
    sizes = (4 * width * width, width * hidden)

    def one(block):
        flat = jax.random.normal(stream_key(seed, "transformer_blocks", block), (sizes[0] + 2 * sizes[1],),
                                 jnp.float32)
        attention, w1, w2 = jnp.split(flat, [sizes[0], sizes[0] + sizes[1]])
        return attention.reshape(4, width, width), w1.reshape(width, hidden), w2.reshape(hidden, width)

    return jax.vmap(one)(start + jnp.arange(_DRAW_CHUNK))


@partial(exact_jit, static_argnames=("width",))
def _draw_token_chunk(seed, start, width):
    """Input tokens X and loss directions G of tokens start..start+7 of one stack: (8, d) each."""
    def one(token):
        both = jax.random.normal(stream_key(seed, "transformer_tokens", token), (2, width), jnp.float32)
        return both[0], both[1]

    return jax.vmap(one)(start + jnp.arange(_DRAW_CHUNK))


def _draw(chunk_fn, seeds, start, stop, *static):
    """chunk_fn's draws for indices start..stop−1 of every seed, as arrays with leading axes (S, stop−start).

    Seeds and chunk starts are traced, so one compiled program serves every seed, depth and capacity; the
    pieces are assembled in NumPy (eager jnp concatenations would compile one program per shape)."""
    per_seed = []
    for seed in seeds:
        chunks = [[np.asarray(a) for a in chunk_fn(jnp.uint32(seed), jnp.int32(k), *static)]
                  for k in range(start, stop, _DRAW_CHUNK)]
        per_seed.append([np.concatenate(parts)[: stop - start] for parts in zip(*chunks, strict=True)])
    return tuple(np.stack(parts) for parts in zip(*per_seed, strict=True))


class BlockBank(NamedTuple):
    """Unit-variance draws of ``len(seeds)`` stacks: Ŵ for C blocks and the first T_cap tokens."""

    attention: jax.Array  # (S, C, 4, d, d)  Ŵ_Q, Ŵ_K, Ŵ_V, Ŵ_O
    mlp_in: jax.Array  # (S, C, d, md)
    mlp_out: jax.Array  # (S, C, md, d)
    tokens: jax.Array  # (S, T_cap, d)  X
    directions: jax.Array  # (S, T_cap, d)  G

    @property
    def capacity(self) -> int:
        return self.attention.shape[1]


_BANKS = BankCache(size=2, budget_bytes=BANK_BUDGET_BYTES)  # (seeds, width, mlp_ratio) → BlockBank


def check_memory(net: Transformer, n_seeds: int) -> None:
    """Refuse stacks whose float32 weights alone would exceed ``BANK_BUDGET_BYTES``, naming the bound."""
    _BANKS.check(4 * net.depth * net.floats_per_block * n_seeds,
                 f"depth × (4 + 2·mlp_ratio)·width² × n_seeds = {net.depth} × {4 + 2 * net.mlp_ratio}·"
                 f"{net.width}² × {n_seeds} float32 weights need", "depth, width, mlp_ratio or n_seeds")


def _concatenate(parts, axis):
    """Appends in NumPy, then one device array (eager jnp concatenations would compile one program a shape)."""
    return jnp.asarray(np.concatenate(parts, axis=axis))


def block_bank(net: Transformer, seeds: tuple[int, ...]) -> BlockBank:
    """The cached draws for (seeds, width, mlp_ratio) holding at least ``net.depth`` blocks and
    ``net.seq_len`` tokens.  Growing either appends new draws; the existing ones are kept as they are."""
    check_memory(net, len(seeds))

    def make(old: BlockBank | None) -> BlockBank:
        blocks, tokens = (0, 0) if old is None else (old.capacity, old.tokens.shape[1])
        rows = {}
        if blocks < net.depth:
            stop = capacity(net.depth, DEPTH_BUCKETS, 4 * net.floats_per_block * len(seeds), BANK_BUDGET_BYTES)
            rows.update(zip(("attention", "mlp_in", "mlp_out"),
                            _draw(_draw_block_chunk, seeds, blocks, stop, net.width, net.mlp_ratio), strict=True))
        if tokens < net.seq_len:
            stop = capacity(net.seq_len, TOKEN_BUCKETS)
            rows.update(zip(("tokens", "directions"), _draw(_draw_token_chunk, seeds, tokens, stop, net.width),
                            strict=True))
        if old is None:
            return BlockBank(**{name: jnp.asarray(a) for name, a in rows.items()})
        return append_rows(old, concatenate=_concatenate, **rows)

    return _BANKS.grown((seeds, net.width, net.mlp_ratio),
                        lambda bank: bank.capacity >= net.depth and bank.tokens.shape[1] >= net.seq_len, make)


def reserve(net: Transformer, seed: int = 0, n_seeds: int = 1) -> None:
    """Draw and keep ``net.depth`` blocks and ``net.seq_len`` tokens for seeds seed..seed+n_seeds−1, so that
    every shallower stack of the same width runs on the same arrays, hence the same compiled program (a
    ``depth`` change below ``net.depth`` does not recompile).  The dashboards call it with their slider's
    maximum."""
    block_bank(net, check_seeds(seed, n_seeds))


def clear_cache() -> None:
    """Forget every cached block bank (frees memory)."""
    _BANKS.clear()


class TransformerParameters(NamedTuple):
    """True-scale float32 parameters of one stack (what the engine uses; for references).

    w_q, w_k, w_v, w_o: (depth, d, d);  w_1: (depth, d, md);  w_2: (depth, md, d);
    tokens X and loss direction G: (T, d).
    Heads split the columns of W_Q, W_K, W_V (and the rows of W_O) into H consecutive groups of d/H.
    """

    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    w_o: np.ndarray
    w_1: np.ndarray
    w_2: np.ndarray
    tokens: np.ndarray
    direction: np.ndarray


def parameters(net: Transformer, seed: int = 0) -> TransformerParameters:
    """The weights, input tokens and loss direction of the stack drawn with ``seed`` (NumPy, float32)."""
    _, bank = checked_bank("parameters", net, Transformer, seed, 1, block_bank)
    L, T = net.depth, net.seq_len
    scale_d, scale_h = _weight_scales(net)
    attention = np.asarray(bank.attention[0, :L]) * scale_d
    return TransformerParameters(attention[:, 0], attention[:, 1], attention[:, 2], attention[:, 3],
                                 np.asarray(bank.mlp_in[0, :L]) * scale_d,
                                 np.asarray(bank.mlp_out[0, :L]) * scale_h,
                                 np.asarray(bank.tokens[0, :T]), np.asarray(bank.directions[0, :T]))


# --------------------------------------------------------------------------------------------- blocks
class Structure(NamedTuple):
    """The options that select a compiled program (hashable, static under jit)."""

    heads: int
    activation: str
    residual: bool
    norm: str | None


def program_key(net, n_seeds: int) -> tuple:
    """What selects the compiled program ``gradient_norms(net, n_seeds=n_seeds)`` runs: the static ``Structure``
    (heads, activation, residual, norm) and the shapes (width, seeds); the depth and the weight scale are
    traced or served by the same reserved blocks (``reserve``)."""
    return (Structure(net.heads, net.activation, net.residual, net.norm), net.width, n_seeds)


class Scalars(NamedTuple):
    """Traced numbers: changing them does not recompile."""

    scale_in: jax.Array  # σ_w/√d  (matrices reading the width-d stream)
    scale_hidden: jax.Array  # σ_w/√(md)  (W_2, reading the MLP's hidden layer)
    leaky_slope: jax.Array


def _weight_scales(net: Transformer):
    return (np.float32(net.weight_std / math.sqrt(net.width)),
            np.float32(net.weight_std / math.sqrt(net.mlp_ratio * net.width)))


def _layernorm(u, S: LogScale):
    """Per-token LN(e^s u) for u (T, d), returned as true values (scale 0); s = S.hi (LN is scale-invariant up
    to ε, so S.lo cannot matter).

    LN(e^s u) = e^{s−ρ}(u − ū) with e^{2ρ} = e^{2s} var(u) + ε, evaluated as a log-sum so no scale overflows.
    """
    s = S.hi
    centred = u - jnp.mean(u, axis=-1, keepdims=True)
    mean_sq = jnp.mean(centred * centred, axis=-1, keepdims=True)
    positive = mean_sq > 0.0
    log_var = jnp.log(jnp.where(positive, mean_sq, 1.0))
    rho = jnp.where(positive, 0.5 * jnp.logaddexp(2.0 * s + log_var, math.log(LAYERNORM_EPS)),
                    0.5 * math.log(LAYERNORM_EPS))
    return jnp.exp(s - rho) * centred, log_scale(0.0)


def _attention(structure, scalars, weights, a, S: LogScale, key_mask):
    """Multi-head self-attention of the scaled input e^S a (T, d); returns the output as (õ, S) (the value path
    is linear; the logits' scale e^{2s} uses s = S.hi)."""
    s = S.hi
    T, d = a.shape
    H = structure.heads
    dk = d // H
    w_q, w_k, w_v, w_o = (scalars.scale_in * weights[j] for j in range(4))
    split = lambda m: m.reshape(T, H, dk).transpose(1, 0, 2)  # noqa: E731  (H, T, dk)
    q, k, v = split(a @ w_q), split(a @ w_k), split(a @ w_v)
    logit_scale = jnp.exp(2.0 * jnp.minimum(s, _MAX_LOG_SCALE)) / math.sqrt(dk)
    # softmax(c·S) = softmax(c·(S − max S)): shift before scaling, so the largest logit is exactly 0 however
    # the scaled logits are rounded (XLA may recompute c·S differently in the max and in the exponent, and
    # with c ~ 1e10 that difference alone made 0/0).  The shift is a constant: the softmax ignores it.
    scores = jnp.einsum("htk,hsk->hts", q, k)
    valid = key_mask[None, None, :]
    top = jax.lax.stop_gradient(jnp.max(jnp.where(valid, scores, -jnp.inf), axis=-1, keepdims=True))
    logits = jnp.where(valid, logit_scale * jnp.where(valid, scores - top, 0.0), -jnp.inf)
    weights_attn = jax.nn.softmax(logits, axis=-1)
    # Rows whose logits carry a float32 rounding error above 1 (≈ e^{2s}·‖q̃_t‖·max‖k̃‖·2⁻²⁴) are hard
    # attention: in exact arithmetic their gaps are that large too, so the softmax passes no gradient
    # through its weights; in float32 such rows can hold spurious exact ties (tokens merged by rounding)
    # whose softmax derivative, times e^{2s}, would be noise.  Their weights are held constant.
    key_norm = jnp.max(jnp.where(valid[0, 0][None, :], jnp.linalg.norm(k, axis=-1), 0.0), axis=-1)  # (H,)
    rounding = logit_scale * jnp.linalg.norm(q, axis=-1) * key_norm[:, None] * _FLOAT32_EPS  # (H, T)
    hard = (rounding > 1.0)[:, :, None]
    weights_attn = jnp.where(hard, jax.lax.stop_gradient(weights_attn), weights_attn)
    heads = jnp.einsum("hts,hsk->htk", weights_attn, v)  # scale e^s (value path is linear)
    return heads.transpose(1, 0, 2).reshape(T, d) @ w_o, S


def _mlp(structure, scalars, w_1, w_2, a, S: LogScale):
    """φ(e^S a W_1) W_2 in scaled form (a homogeneous φ passes the pair S through, others return a fresh scale)."""
    activation = ACTIVATIONS[structure.activation]
    zt = a @ (scalars.scale_in * w_1)
    at, s_a, _ = activation.scaled(zt, S.hi, scalars.leaky_slope)
    return at @ (scalars.scale_hidden * w_2), follow(S, s_a)


def _renormalise(u, S: LogScale, token_mask):
    """(u, S) → (u/ρ, S + log ρ), ρ the RMS over the real tokens, held constant under differentiation; the
    scale pair is added with TwoSum (``vglab.core.logspace``), so a thousand blocks round it only at ~2⁻⁴⁸.

    Padded tokens are set to exactly 0 (they are masked out of attention, so they never reach a real token).
    """
    u = jnp.where(token_mask[:, None], u, 0.0)
    count = jnp.maximum(jnp.sum(token_mask), 1) * u.shape[1]
    rms = jax.lax.stop_gradient(jnp.sqrt(jnp.sum(jnp.where(token_mask[:, None], u * u, 0.0)) / count))
    safe = jnp.where(rms > 0.0, rms, 1.0)
    return u / safe, scale_add(S, jnp.log(safe))


def _sublayer(structure, branch, u, s, token_mask, renormalise: bool = True):
    """One residual/normalised sublayer on the stream e^s u (see the module docstring); renormalise False: the
    last step (``_renormalise``) left to the caller (the forward chain's)."""
    a, s_a = _layernorm(u, s) if structure.norm == "pre" else (u, s)
    out, s_out = branch(a, s_a)
    if structure.residual:
        u, s = scaled_add_pair(u, s, out, s_out)
    else:
        u, s = out, s_out
    if structure.norm == "post":
        u, s = _layernorm(u, s)
    return _renormalise(u, s, token_mask) if renormalise else (u, s)


def _block(structure, scalars, attention, w_1, w_2, u, s, token_mask, renormalise: bool = True):
    """h_{l} = block_l(h_{l-1}) in scaled form: (u, s) → (u′, s′), u′ with RMS 1 over the real tokens
    (renormalise False: the last renormalisation left to the caller)."""
    u, s = _sublayer(structure, lambda a, sa: _attention(structure, scalars, attention, a, sa, token_mask),
                     u, s, token_mask)
    return _sublayer(structure, lambda a, sa: _mlp(structure, scalars, w_1, w_2, a, sa), u, s, token_mask,
                     renormalise)


def _stack(structure, scalars, attention, mlp_in, mlp_out, x, g, seq_len, depth):
    """Forward through ``depth`` blocks, then the backward adjoint block by block (exact vjp per block).

    Returns natural logs as (hi, lo) float32 pairs (their sum, taken in float64 on the host, is the value):
    (C+1,) ‖∂L/∂h_l‖_F and (C,) RMS(h_l), l = 1..depth.  Every running scale is a ``LogScale`` pair and each
    block's change of scale, s_{l+1} − s_l, is taken as an exact difference, so the accumulated log scales
    carry no float32 rounding however far they travel (a depth-1000 stack reaching 1e-1300 included).
    """
    capacity = attention.shape[0]
    T = x.shape[0]
    token_mask = jnp.arange(T) < seq_len
    x = jnp.where(token_mask[:, None], x, 0.0)
    g = jnp.where(token_mask[:, None], g, 0.0)
    u0, s0 = _renormalise(x, log_scale(0.0), token_mask)
    count = jnp.maximum(seq_len, 1) * x.shape[1]

    def forward(l, u, s, trace):  # a step of the forward chain (vglab.core.chain), renormalised by it
        return (*_block(structure, scalars, attention[l], mlp_in[l], mlp_out[l], u, s, token_mask, False), trace)

    def normalise(u, s):  # ``_renormalise`` over the real tokens; RMS(ũ′) ≈ 1 is taken after the loop (below)
        u, s = _renormalise(u, s, token_mask)
        return u, s, s

    chain = forward_chain(forward, u0, s0, depth, capacity, normalise=normalise, keep_states=True)
    streams = jnp.concatenate([u0[None], chain.states[0]])  # rows h̃_0..h̃_C
    scales = LogScale(jnp.concatenate([s0.hi[None], chain.states[1].hi]),
                      jnp.concatenate([s0.lo[None], chain.states[1].lo]))

    def scale_at(l):
        return LogScale(scales.hi[l], scales.lo[l])

    def backward_step(l, v, R, state):
        # h_{l+1} = e^{s_{l+1}} ũ(h̃_l) with h_l = e^{s_l} h̃_l:  ∂L/∂h_l = e^{s_{l+1} − s_l} J̃ᵀ ∂L/∂h_{l+1}.
        def block_map(u):
            return _block(structure, scalars, attention[l], mlp_in[l], mlp_out[l], u, scale_at(l), token_mask)

        _, pullback, s_next = jax.vjp(block_map, streams[l], has_aux=True)
        (w,) = pullback(v)
        return w, scale_add(R, scale_diff(s_next, scale_at(l))), state

    grad = backward_chain(backward_step, g, depth, capacity).log_norms  # the renormalised chain, vglab.core.chain
    # log RMS(h_l) = s_l + log RMS(h̃_l) for all blocks in one reduction (a reduction per step in the loop rounded
    # differently: ~1e-7 in log10, not bit for bit the numbers before the skeleton).
    rms = jnp.sqrt(jnp.sum(jnp.where(token_mask[None, :, None], streams[1:] ** 2, 0.0), axis=(1, 2)) / count)
    rms_scale = scale_add(chain.states[1], jnp.log(rms))
    return (grad.hi, grad.lo), (rms_scale.hi, rms_scale.lo)


@partial(exact_jit, static_argnames=("structure",))
def _transformer_program(structure, scalars, attention, mlp_in, mlp_out, tokens, directions, seq_len, depth):
    def one_seed(a, w1, w2, x, g):
        return _stack(structure, scalars, a, w1, w2, x, g, seq_len, depth)  # natural-log (hi, lo) pairs

    return jax.vmap(one_seed)(attention, mlp_in, mlp_out, tokens, directions)


def compiled_programs() -> int:
    """How many transformer programs have been compiled (a depth or seq_len change must not add one)."""
    return _transformer_program._cache_size()


# --------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class TransformerGradientNorms(GradientProfile):
    """Per-block gradient magnitudes of ``n_seeds`` independently drawn transformer stacks.

    log10_activation_grad: (n_seeds, depth+1)  log10 ‖∂L/∂h_l‖_F over the sequence, l = 0..depth (l = depth
                           is ‖G‖_F), h_l the output of block l (h_0 the input tokens).
    log10_activation_rms:  (n_seeds, depth)    log10 RMS(h_l), l = 1..depth (the forward signal scale).
    log10_input_rms:       (n_seeds,)          log10 RMS(h_0) of the input tokens X (the stream's start).
    """

    log10_activation_rms: np.ndarray
    log10_input_rms: np.ndarray | None = None


def transformer_gradient_norms(net: Transformer, seed: int = 0, n_seeds: int = 1) -> TransformerGradientNorms:
    """Exact per-block ‖∂L/∂h_l‖_F of L = ⟨G, h_depth⟩ for stacks drawn with seeds seed..seed+n_seeds−1.

    Called by ``vglab.gradient_norms(transformer, seed, n_seeds)``.  See ``TransformerGradientNorms``.
    """
    _, bank = checked_bank("transformer_gradient_norms", net, Transformer, seed, n_seeds, block_bank)
    scale_d, scale_h = _weight_scales(net)
    scalars = Scalars(jnp.float32(scale_d), jnp.float32(scale_h), jnp.float32(net.leaky_slope))
    structure = Structure(net.heads, net.activation, net.residual, net.norm)
    log_grad, log_rms = _transformer_program(structure, scalars, bank.attention, bank.mlp_in, bank.mlp_out,
                                             bank.tokens, bank.directions, jnp.int32(net.seq_len),
                                             jnp.int32(net.depth))
    L = net.depth
    # h_0 = X, (S, T, d): sliced on the host (slicing the device array would compile a program per seq_len).
    tokens = np.asarray(bank.tokens)[:, : net.seq_len].astype(np.float64)
    return TransformerGradientNorms(net, seed, n_seeds, log10_rows(*log_grad, L + 1), log10_rows(*log_rms, L),
                                    0.5 * np.log10(np.mean(tokens**2, axis=(1, 2))))
