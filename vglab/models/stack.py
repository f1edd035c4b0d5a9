"""Bring your own model: exact per-block gradient norms and Jacobian spectra of any stack of JAX blocks.

A ``Stack(blocks, x)`` is the network h_0 = x, h_l = f_l(h_{l-1}) for l = 1..L, where each block f_l is any
callable on JAX arrays: a plain function, an Equinox module or a Flax NNX module.  With the loss
L = ⟨g, h_L⟩ (or a user's ``loss(h_L)``, whose gradient is then g), backpropagation is

    δ_L = g,    δ_{l-1} = J_lᵀ δ_l    (J_l = ∂f_l/∂h_{l-1}, applied as a vector–Jacobian product)

and ``gradient_norms`` reports log10 ‖δ_l‖₂ for l = 0..L.  The backward pass is vglab's renormalised chain
(``vglab.core.chain``, as for its own models): each step multiplies the *unit* vector δ̂_l by J_lᵀ, divides by
a power of two and adds its log to a running TwoSum log scale, so a thousand sigmoid blocks (‖δ_0‖ ~ 1e-600)
neither underflow nor lose digits with depth.

Consecutive blocks that share one parameter structure (the same Equinox/NNX class and static fields, or the
same function in a ``jax.tree_util.Partial`` with its array arguments, with the same array shapes; or the
same function object) run as one ``lax.scan`` over their stacked parameters: the compiled program does not
grow with their number, and stacks that differ only in their weights' values share it.
g for a given seed is the output direction vglab's own
MLP draws at that size (``vglab.core.init.output_direction``), so a Stack built from an MLP's weights
reproduces that MLP's numbers (tests/test_stack.py).
"""

from __future__ import annotations

import functools
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core import init as _init
from vglab.core.chain import backward_scan, normalise_unit_wide, renormalised_step
from vglab.core.compilation import exact_jit
from vglab.core.logspace import (
    LN10,
    LogScale,
    graded_log_singular_values,
    log_scale,
    scale_to_float64,
)
from vglab.core.spectrum import qr_fold, spectrum_result, spectrum_scan, spectrum_start, spectrum_step
from vglab.core.validation import check_seeds
from vglab.models.jacobians import JacobianSpectrum, SeededGradients, single_threaded_lapack
from vglab.models.mlp import MAX_DEPTH, MLP, check_square_random

MAX_STACK_SIZE = 4096  # units of h for jacobian_spectrum (an n×n QR per block)


class _Run(NamedTuple):
    """Consecutive blocks computed by one ``apply(params, h)``: ``params`` stacked on a leading axis of
    ``length`` (None for a repeated parameter-free function).  ``scanned``: whether the run preserves the
    shape of h, so it can be a ``lax.scan``; otherwise its blocks are applied one by one.  ``key`` names what
    selects the compiled program (the blocks' static structure), never the parameters' values."""

    apply: Callable
    params: Any
    length: int
    scanned: bool
    key: Any


def _leaf_signature(tree) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((tuple(jnp.shape(a)), jnp.result_type(a).name) for a in leaves)


def _hashable(values) -> tuple:
    out = []
    for value in values:
        try:
            hash(value)
            out.append(value)
        except TypeError:
            out.append(("id", id(value)))
    return tuple(out)


def _function_key(func):
    """A function's identity for program sharing: a ``functools.partial`` by its function and arguments, so
    two equal partials built separately select the same compiled program."""
    func = getattr(func, "fun", func)  # jax.tree_util.Partial keeps its function in a shim (.fun)
    if isinstance(func, functools.partial):
        return ("functools.partial", _function_key(func.func), _hashable(func.args),
                _hashable(sorted(func.keywords.items())))
    return func


def _split(block):
    """(key, apply, params) of one block: blocks with equal keys can share one compiled step."""
    eqx = sys.modules.get("equinox")
    if eqx is not None and isinstance(block, eqx.Module):
        params, static = eqx.partition(block, eqx.is_array)
        static_leaves, static_def = jax.tree_util.tree_flatten(static)
        key = ("equinox", static_def, _hashable(static_leaves), _leaf_signature(params))
        return key, (lambda p, h: eqx.combine(p, static)(h)), params
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(block, nnx.Module):
        graphdef, state = nnx.split(block)
        key = ("nnx", graphdef, _leaf_signature(state))
        return key, (lambda s, h: nnx.merge(graphdef, s)(h)), state
    if isinstance(block, jax.tree_util.Partial):  # a function and its array arguments: f(*args, h)
        args = (block.args, block.keywords)
        func = block.func
        return ("partial", _function_key(func), _leaf_signature(args)), (lambda a, h: func(*a[0], h, **a[1])), args
    return ("function", id(block)), (lambda _, h: block(h)), block


def _runs(blocks, x) -> tuple[_Run, ...]:
    runs, keys = [], []
    for block in blocks:
        key, apply, params = _split(block)
        if keys and keys[-1][0] == key:
            keys[-1][1].append(params)
        else:
            keys.append((key, [params]))
            runs.append(apply)
    out, shape = [], jax.ShapeDtypeStruct(x.shape, x.dtype)
    for apply, (key, params) in zip(runs, keys, strict=True):
        if key[0] == "function":  # a plain callable: no parameters, nothing to stack
            stacked, first = None, None
            apply = (lambda f: (lambda _, h: f(h)))(params[0])
        else:
            stacked, first = jax.tree.map(lambda *xs: jnp.stack(xs), *params), params[0]
        out_shape = jax.eval_shape(apply, first, shape)
        scanned = len(params) > 1 and out_shape.shape == shape.shape
        out.append(_Run(apply, stacked, len(params), scanned, (key, len(params), scanned, shape.shape)))
        shape = jax.ShapeDtypeStruct(out_shape.shape, jnp.float32)
    return tuple(out)


def _block_params(run: _Run, i: int):
    return None if run.params is None else jax.tree.map(lambda a: a[i], run.params)


def _with_params(runs, params):
    """The runs with their parameters replaced by traced ones (inside a compiled program)."""
    return tuple(run._replace(params=p) for run, p in zip(runs, params, strict=True))


_PROGRAMS: OrderedDict = OrderedDict()
_MAX_PROGRAMS = 64


def _compiled(name: str, runs, build: Callable):
    """One jit-compiled program per (name, structure of the runs), shared by every Stack of that structure: two
    stacks whose blocks differ only in their weights' values run the same program.  build(runs) → f(params, ...)."""
    key = (name, tuple(run.key for run in runs))
    program = _PROGRAMS.get(key)
    if program is None:
        program = exact_jit(lambda params, *args: build(_with_params(runs, params))(*args))
        _PROGRAMS[key] = program
        while len(_PROGRAMS) > _MAX_PROGRAMS:
            _PROGRAMS.popitem(last=False)
    _PROGRAMS.move_to_end(key)
    return program


def _forward(runs, x):
    """h_0 = x through every run: returns h_L, the inputs of each block (per run) and finiteness per block."""
    h, inputs, finite = x, [], []
    for run in runs:
        if run.scanned:
            def step(h, p, run=run):
                out = run.apply(p, h).astype(jnp.float32)
                return out, (h, jnp.all(jnp.isfinite(out)))

            h, (ins, ok) = jax.lax.scan(step, h, run.params, length=run.length)
            inputs.append(ins)
            finite.append(ok)
        else:
            ins, ok = [], []
            for i in range(run.length):
                ins.append(h)
                h = run.apply(_block_params(run, i), h).astype(jnp.float32)
                ok.append(jnp.all(jnp.isfinite(h)))
            inputs.append(ins)
            finite.append(jnp.stack(ok))
    return h, inputs, jnp.concatenate(finite)


def _backward(runs, inputs, g):
    """δ_L = g back to δ_0 on the renormalised chain (``vglab.core.chain``): (L+1,) log ‖δ_l‖₂ for l = 0..L as a
    ``LogScale`` pair (row L is log ‖g‖).  A block's vector–Jacobian product is its step; a run of blocks of
    one structure is one ``backward_scan``, the others are stepped one by one.  Entries of J_lᵀ δ̂_l may lie
    anywhere in float32's range (a user's block), so each is normalised by ``normalise_unit_wide``."""
    v, R, log_g = normalise_unit_wide(g, log_scale(0.0))
    logs = [LogScale(log_g.hi[None], log_g.lo[None])]
    for run, ins in zip(reversed(runs), reversed(inputs), strict=True):
        def vjp_step(v, R, xs, run=run):
            p, h_in = xs
            _, pullback = jax.vjp(lambda h: run.apply(p, h).astype(jnp.float32), h_in)
            return pullback(v)[0], R

        if run.scanned:
            v, R, logged = backward_scan(vjp_step, v, R, (run.params, ins), normalise_unit_wide)
        else:
            steps = []
            for i in reversed(range(run.length)):
                v, R, logged = renormalised_step(vjp_step, v, R, (_block_params(run, i), ins[i]),
                                                 normalise_unit_wide)
                steps.append(logged)
            logged = LogScale(jnp.stack([s.hi for s in steps[::-1]]), jnp.stack([s.lo for s in steps[::-1]]))
        logs.append(logged)
    logs = logs[::-1]
    return LogScale(jnp.concatenate([part.hi for part in logs]), jnp.concatenate([part.lo for part in logs]))


@dataclass(frozen=True, eq=False)
class Stack:
    """Your own network: h_0 = x, h_l = blocks[l-1](h_{l-1}).

    blocks: a sequence of callables h ↦ h′ on JAX arrays (functions, Equinox modules, Flax NNX modules).
    x:      the input h_0, one example of any shape (float32).
    """

    blocks: tuple
    x: jax.Array
    _runs: tuple = field(init=False, repr=False)

    def __post_init__(self):
        blocks = self.blocks
        if callable(blocks) or isinstance(blocks, str | bytes) or not isinstance(blocks, Sequence | tuple):
            raise ValueError(f"blocks must be a sequence (list or tuple) of callables h -> h', "
                             f"got {type(blocks).__name__}")
        blocks = tuple(blocks)
        if not 1 <= len(blocks) <= MAX_DEPTH:
            raise ValueError(f"blocks must hold 1..{MAX_DEPTH} callables, got {len(blocks)}")
        for i, block in enumerate(blocks):
            if not callable(block):
                raise ValueError(f"blocks[{i}] must be a callable h -> h' (a function, an Equinox or Flax "
                                 f"module), got {type(block).__name__}")
        try:
            x = np.asarray(self.x)
        except Exception as error:  # noqa: BLE001 - any unconvertible object gets the same clear message
            raise ValueError(f"x must be an array of real numbers (the input h_0), got {type(self.x).__name__}") \
                from error
        if x.dtype.kind not in "biuf" or x.size == 0:
            raise ValueError(f"x must be a non-empty array of real numbers (the input h_0), got dtype {x.dtype} "
                             f"and shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("x must be finite (the input h_0 holds NaN or inf)")
        x = jnp.asarray(x, jnp.float32)
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "x", x)
        try:
            runs = _runs(blocks, x)
        except Exception as error:  # noqa: BLE001 - a block that cannot take h is the user's to fix
            raise ValueError(f"a block of the stack cannot be applied to an input of shape {x.shape}: "
                             f"{type(error).__name__}: {error}") from error
        object.__setattr__(self, "_runs", runs)

    @property
    def depth(self) -> int:
        return len(self.blocks)

    def to_code(self) -> str:
        return f"vglab.Stack(blocks, x)  # {self.depth} blocks, x of shape {tuple(self.x.shape)}"

    @property
    def _params(self) -> tuple:
        return tuple(run.params for run in self._runs)

    def _forward_checked(self):
        program = _compiled("forward", self._runs, lambda runs: (lambda x: _forward(runs, x)))
        h_L, _, finite = program(self._params, self.x)
        _raise_if_not_finite(np.asarray(finite))
        return h_L

    def gradient_profile(self, seed: int = 0, n_seeds: int = 1, loss: Callable | None = None) -> StackGradientNorms:
        """This stack's ``vglab.GradientProfile`` (what ``vglab.gradient_norms`` dispatches to; ``loss``: see there)."""
        seeds = check_seeds(seed, n_seeds)
        h_L = self._forward_checked()
        if loss is None:
            size = int(np.prod(h_L.shape))
            directions = jnp.stack([_init.output_direction(s, size).reshape(h_L.shape) for s in seeds])
        else:
            if not callable(loss):
                raise ValueError(f"loss must be a callable h_L -> scalar, got {type(loss).__name__}")
            g = _loss_gradient(loss, h_L)
            directions = jnp.broadcast_to(g, (len(seeds), *h_L.shape))

        def build(runs):
            def one(x, g):
                _, inputs, _ = _forward(runs, x)
                return _backward(runs, inputs, g)

            return jax.vmap(one, in_axes=(None, 0))

        log_grad = _compiled("backward", self._runs, build)(self._params, self.x, directions)
        return StackGradientNorms(self, seed, n_seeds, scale_to_float64(*log_grad) / LN10)

    def jacobian_spectrum(self, seed: int = 0) -> JacobianSpectrum:
        """The spectrum of ∂h_L/∂h_0 (what ``vglab.jacobian_spectrum`` dispatches to, the ``vglab.SpectrumModel``
        protocol); blocks must map h to the same shape.  ``seed`` only labels the result: a Stack's weights and
        input are its own."""
        (seed,) = check_seeds(seed, 1)
        n = int(self.x.size)
        if n > MAX_STACK_SIZE:
            raise ValueError(f"jacobian_spectrum needs h of at most {MAX_STACK_SIZE} numbers, got {n}")
        shapes = [jax.eval_shape(run.apply, _block_params(run, 0), jax.ShapeDtypeStruct(self.x.shape, jnp.float32))
                  for run in self._runs]
        for run, out in zip(self._runs, shapes, strict=True):
            if out.shape != self.x.shape or (not run.scanned and run.length > 1):
                raise ValueError(f"jacobian_spectrum needs blocks that map h of shape {tuple(self.x.shape)} to the "
                                 f"same shape; a block returns shape {tuple(out.shape)}")
        self._forward_checked()
        program = _compiled("spectrum", self._runs, lambda runs: (lambda x: _spectrum(runs, x)))
        with single_threaded_lapack():
            log_d, U, partial = program(self._params, self.x)
            log_sv = graded_log_singular_values(scale_to_float64(*log_d), np.asarray(U))
        return JacobianSpectrum(self, seed, log_sv / LN10, scale_to_float64(*partial) / LN10)


def _loss_gradient(loss, h_L):
    try:
        value, g = jax.value_and_grad(lambda h: jnp.asarray(loss(h), jnp.float32))(h_L)
    except TypeError as error:
        raise ValueError(f"loss must map h_L (shape {tuple(h_L.shape)}) to a scalar: {error}") from error
    if not np.isfinite(float(value)) or not np.all(np.isfinite(np.asarray(g))):
        raise ValueError("loss(h_L) or its gradient is not finite")
    return g


def _raise_if_not_finite(finite: np.ndarray) -> None:
    if not finite.all():
        first = int(np.argmin(finite)) + 1
        raise ValueError(f"the forward pass is not finite: block {first} (of {finite.size}) returned NaN or inf; "
                         f"rescale its weights or its input")


def _spectrum(runs, x):
    """The Stack's spectrum on the one spectrum skeleton (``vglab.core.spectrum``): a block's fold is the generic
    ``qr_fold`` of J_lᵀ Q, the pullback of Q's columns through ``jax.vjp``; a run of blocks of one structure is
    one ``spectrum_scan``, a single block one ``spectrum_step``.  After block l,
    (∂h_L/∂h_{l-1})ᵀ = Q diag(e^d) U.  Returns the ``SpectrumChain``: d, U and (L,) log ‖∂h_L/∂h_l‖_F for
    l = 0..L−1."""
    _, inputs, _ = _forward(runs, x)
    shape = x.shape

    def fold(apply):
        def step(xs, Q, log_d, U):
            p, h_in = xs
            _, pullback = jax.vjp(lambda h: apply(p, h.reshape(shape)).astype(jnp.float32).reshape(-1),
                                  h_in.reshape(-1))
            M = jax.vmap(lambda q: pullback(q)[0], in_axes=1, out_axes=1)(Q)  # J_lᵀ Q
            return qr_fold(M, log_d, U)

        return step

    carry, partials = spectrum_start(x.size), []
    for run, ins in zip(reversed(runs), reversed(inputs), strict=True):  # runs, not blocks: one fold each
        if run.scanned:
            carry, logged = spectrum_scan(fold(run.apply), carry, (run.params, ins))
        else:  # a single block (jacobian_spectrum refuses an unscanned run of several)
            carry, logged = spectrum_step(fold(run.apply), carry, (_block_params(run, 0), ins[0]))
            logged = LogScale(logged.hi[None], logged.lo[None])
        partials.append(logged)
    partials = LogScale(jnp.concatenate([p.hi for p in partials[::-1]]),
                        jnp.concatenate([p.lo for p in partials[::-1]]))
    return spectrum_result(carry, partials)


@dataclass(frozen=True)
class StackGradientNorms(SeededGradients):
    """Per-block gradient magnitudes of a ``Stack``.

    log10_activation_grad: (n_seeds, L+1)  log10 ‖∂L/∂h_l‖₂, l = 0..L (l = L is ‖g‖); one row per output
                           direction g (seed..seed+n_seeds−1), or identical rows for a user's ``loss``.
    """

    net: Stack
    seed: int
    n_seeds: int
    log10_activation_grad: np.ndarray


def mlp_blocks(net: MLP, seed: int = 0) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """The weights (W_l, b_l), l = 1..L, and the input x that ``vglab.gradient_norms(net, seed)`` uses.

    W_l = (σ_w/√n) Ŵ_l and b_l = σ_b b̂_l (``vglab.core.init``), so a user's own implementation of the MLP
    built from them can be checked against vglab's numbers.
    """
    check_square_random(net, "mlp_blocks")
    (seed,) = check_seeds(seed, 1)
    scale = net.sigma_w / np.sqrt(net.width)
    layers = [(scale * np.asarray(_init.unit_weight(seed, l, net.width, net.orthogonal)),
               net.bias_std * np.asarray(_init.unit_bias(seed, l, net.width))) for l in range(net.depth)]
    return layers, np.asarray(_init.network_input(seed, net.width))
