"""A deep MLP with batch normalization, at initialisation: exact per-layer gradients over a batch.

BatchNorm couples the examples of a batch, so the network acts on a whole batch H ∈ ℝ^{B×n} (B examples, n
units); layer l = 1..L is (Ioffe & Szegedy 2015, the placement of Yang et al. 2019: BN before φ)

    Z_l = H_{l-1} W_lᵀ                                    W_l ~ N(0, σ_w²/n), no bias (BN removes it)
    Y_l = BN(Z_l):  Y[:, j] = (Z[:, j] − μ_j) / s_j,      μ_j, s_j² − ε the mean and variance of unit j
                                                          over the batch, ε = 1e-5, no gain/bias (1 and 0 at init)
    plain:     H_l = φ(Y_l)
    residual:  H_l = H_{l-1} + α φ(Y_l)                   (α = ``residual_scale``)

H_0 = X with i.i.d. N(0, 1) entries and L = ⟨G, H_L⟩ with G ~ N(0, 1) entries (the MLP's input and output
direction drawn for B·n numbers).  The backward chain, per unit j of layer l:

    ∂L/∂Z[:, j] = (1/s_j) (I − 11ᵀ/B − Y[:, j] Y[:, j]ᵀ/B) u_j,     u = φ′(Y_l) ⊙ ∂L/∂H_l  (× α if residual)
    ∂L/∂H_{l-1} = (∂L/∂Z_l) W_l  (+ ∂L/∂H_l if residual),           ∂L/∂W_l = (∂L/∂Z_l)ᵀ H_{l-1}

The BN Jacobian is symmetric and projects out the two directions 1 and Y[:, j] of the batch.  Norms are
Frobenius norms over the whole batch: ‖∂L/∂H_l‖_F.  The gradient is renormalised after every layer and its
scale kept as a log (``vglab.core.logspace`` pairs), so a 1000-layer plain BN net whose gradient grows by
10^80 is finite; the forward pass needs no rescaling (BN keeps every unit at unit variance; the residual
stream grows only like √l).

Speed: one compiled program per (activation, residual, batch, width) and depth bucket, shared with
``vglab.MLP``'s weight bank (the same seed draws the same Ŵ_l as an MLP of that width); depth, σ_w and α are
traced, so changing them does not recompile.  Seeds are vmapped.
"""

from __future__ import annotations

import math
from dataclasses import field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from vglab.core import init as _init
from vglab.core.activations import ACTIVATIONS
from vglab.core.chain import backward_chain, forward_chain
from vglab.core.compilation import exact_jit
from vglab.core.config import Config, choice, config, flag, integer, real
from vglab.core.init import default_weight_std
from vglab.core.logspace import LN10, log_scale, minus_inf_pairs, put_pair, scale_add, scale_to_float64
from vglab.core.validation import check_seeds
from vglab.models.mlp import MAX_DEPTH, MAX_WIDTH

BATCHNORM_EPS = 1e-5
MAX_BATCH = 1024
_BN_INITS = ("he", "xavier", "lecun", "gaussian")


@config
class BatchNormMLP(Config):
    """A deep fully-connected network with BatchNorm before every activation, on a batch of ``batch`` inputs.

    depth, width:   ``depth`` square layers of ``width`` units.
    batch:          B, the examples BatchNorm averages over (4..1024; the linear-BN theory needs B > 3).
    activation:     one of vglab.ACTIVATIONS (relu by default).
    init:           he, xavier, lecun or gaussian; sets σ_w unless ``weight_std`` is given.  BN divides by
                    the batch's own scale, so σ_w changes nothing in a plain BN net (up to ε); it matters
                    only beside a residual connection (it does not: the branch is normalised too).
    weight_std:     σ_w, with W_l ~ N(0, σ_w²/width).
    residual:       H_l = H_{l-1} + α φ(BN(H_{l-1} W_lᵀ)) with α = ``residual_scale``.
    leaky_slope:    the negative slope of leaky ReLU.
    """

    depth: int = integer(1, MAX_DEPTH)
    width: int = integer(1, MAX_WIDTH)
    batch: int = integer(4, MAX_BATCH, default=32)
    activation: str = choice(ACTIVATIONS, default="relu")
    init: str = choice(_BN_INITS, default="he")
    weight_std: float | None = real(0.0, 100.0, low_inclusive=False, default=None)
    residual: bool = flag(default=False)
    residual_scale: float = real(0.0, 100.0, low_inclusive=False, default=1.0)
    leaky_slope: float = real(-10.0, 10.0, default=0.01)
    sigma_w: float = field(init=False, repr=False, compare=False)

    def validate(self):
        sigma_w = default_weight_std(self.init) if self.weight_std is None else self.weight_std
        object.__setattr__(self, "sigma_w", float(sigma_w))

    def gradient_profile(self, seed: int = 0, n_seeds: int = 1):
        """This model's ``vglab.GradientProfile`` (what ``vglab.gradient_norms`` dispatches to)."""
        return gradient_norms(self, seed=seed, n_seeds=n_seeds)

    def batch_inputs(self, seed: int):
        """(X, G): the batch H_0 = X (B, n) and the loss direction G (B, n) drawn with ``seed``."""
        n = self.batch * self.width
        return (_init.network_input(seed, n).reshape(self.batch, self.width),
                _init.output_direction(seed, n).reshape(self.batch, self.width))

    def weights(self, seed: int):
        """The (depth, n, n) weight matrices W_l = σ_w/√n · Ŵ_l of the network drawn with ``seed``."""
        from vglab.models.jacobians import weight_bank

        bank = weight_bank((seed,), self.width, False, self.depth)
        return bank.weights[0, : self.depth] * np.float32(self.sigma_w / math.sqrt(self.width))


def batchnorm(Z):
    """BN over the batch axis 0 of Z (B, n): (Y, s) with Y = (Z − μ)/s, s = √(var + ε) per unit."""
    centred = Z - jnp.mean(Z, axis=0, keepdims=True)
    s = jnp.sqrt(jnp.mean(centred * centred, axis=0) + BATCHNORM_EPS)
    return centred / s, s


def batchnorm_transpose(U, Y, s):
    """J_BNᵀ U per unit: (U − mean U − Y mean(Y ⊙ U)) / s, J_BN = (1/s)(I − 11ᵀ/B − YYᵀ/B) (symmetric)."""
    return (U - jnp.mean(U, axis=0, keepdims=True) - Y * jnp.mean(Y * U, axis=0, keepdims=True)) / s


@partial(exact_jit, static_argnames=("activation", "residual"))
def _program(activation, residual, weight_scale, alpha, leaky_slope, sup_dphi, weights, X, G, depth):
    """weights (S, C, n, n) unit draws, X and G (S, B, n), depth traced → log norms (natural log, pairs)."""
    act = ACTIVATIONS[activation]

    def one_seed(weights, X, G):
        capacity, n = weights.shape[0], weights.shape[1]
        B = X.shape[0]

        def layer_out(l, H):
            Z = weight_scale * (H @ weights[l].T)
            Y, s = batchnorm(Z)
            A = act.phi(Y, leaky_slope)
            return Y, s, (H + alpha * A if residual else A)

        def forward(l, H, S, inputs):  # a step of the forward chain (vglab.core.chain), H at its true size (BN)
            return layer_out(l, H)[2], S, inputs.at[l].set(H)

        def measure(H, S):  # no renormalisation (BN keeps H at unit scale): log RMS(H_l) over the whole batch
            return H, S, log_scale(0.5 * jnp.log(jnp.mean(H * H)))

        chain = forward_chain(forward, X, log_scale(0.0), depth, capacity,
                              trace=jnp.zeros((capacity, B, n), jnp.float32), normalise=measure)
        inputs, log_rms = chain.trace, chain.log_rms.hi

        log_grad_w = minus_inf_pairs(capacity)
        saturated = jnp.zeros((capacity,), jnp.float32)
        dead = jnp.zeros((capacity,), jnp.float32)

        def backward(l, V, R, state):  # one step of the renormalised chain (vglab.core.chain): δ_{l+1} → δ_l
            log_grad_w, saturated, dead = state
            H = inputs[l]
            Y, s, _ = layer_out(l, H)
            dphi = act.dphi(Y, leaky_slope)
            U = (alpha * dphi * V) if residual else dphi * V
            dZ = batchnorm_transpose(U, Y, s)
            dW_norm = jnp.linalg.norm(dZ.T @ H)
            lw = scale_add(R, jnp.log(dW_norm))
            log_grad_w = put_pair(log_grad_w, l, lw)
            dH = weight_scale * (dZ @ weights[l])
            if residual:
                dH = dH + V
            abs_dphi = jnp.abs(dphi)
            saturated = saturated.at[l].set(jnp.mean(abs_dphi <= 0.1 * sup_dphi))
            if act.flat:  # dead: inactive for every example of the batch
                dead = dead.at[l].set(jnp.mean(jnp.all(abs_dphi == 0.0, axis=0)))
            return dH, R, (log_grad_w, saturated, dead)  # the chain renormalises: δ_l = e^R dH (Frobenius)

        chain = backward_chain(backward, G, depth, capacity, state=(log_grad_w, saturated, dead))
        log_grad_h, (log_grad_w, saturated, dead) = chain.log_norms, chain.state
        return (*log_grad_h, *log_grad_w, log_rms, saturated, dead)

    return jax.vmap(one_seed)(weights, X, G)


def gradient_norms(net: BatchNormMLP, seed: int = 0, n_seeds: int = 1):
    """Exact per-layer ‖∂L/∂H_l‖_F (l = 0..depth) and ‖∂L/∂W_l‖_F of L = ⟨G, H_L⟩, for seeds
    seed..seed+n_seeds−1, as a ``vglab.GradientNorms`` (``net`` is this BatchNormMLP; log10_activation_rms is
    the RMS of H_l over the whole batch; dead_fraction counts units inactive for every example)."""
    from vglab.models.jacobians import GradientNorms, weight_bank

    if not isinstance(net, BatchNormMLP):
        raise ValueError(f"expected a vglab.BatchNormMLP, got {type(net).__name__}")
    seeds = check_seeds(seed, n_seeds)
    bank = weight_bank(seeds, net.width, False, net.depth)
    X, G = (jnp.stack(a) for a in zip(*(net.batch_inputs(s) for s in seeds), strict=True))
    sup = np.float32(ACTIVATIONS[net.activation].sup_dphi(net.leaky_slope))
    out = _program(net.activation, net.residual, np.float32(net.sigma_w / math.sqrt(net.width)),
                   np.float32(net.residual_scale if net.residual else 1.0), np.float32(net.leaky_slope), sup,
                   bank.weights, X, G, np.int32(net.depth))
    out = [np.asarray(a) for a in out]
    grad_h, grad_w = (scale_to_float64(out[k], out[k + 1]) / LN10 for k in (0, 2))
    L = net.depth
    rms = out[4][:, :L].astype(np.float64) / LN10
    return GradientNorms(net, seed, n_seeds, grad_h[:, : L + 1].astype(np.float64), grad_w[:, :L].astype(np.float64),
                         rms, out[5][:, :L].astype(np.float64), out[6][:, :L].astype(np.float64))


def compiled_programs() -> int:
    """How many BatchNorm programs have been compiled (a depth change must not add one)."""
    return _program._cache_size()


def predicted_log10_grad(net: BatchNormMLP, log10_output_grad: float) -> np.ndarray | None:
    """(depth+1,) log10 √E‖∂L/∂H_l‖² = log10_output_grad + ½ (L − l) log10 λ for a plain ReLU or linear BN
    net (λ = ``vglab.theory.batchnorm_gradient_growth``, its conditions there); None for any other net."""
    from vglab import theory

    if net.residual or net.activation not in ("relu", "linear"):
        return None
    lam = theory.batchnorm_gradient_growth(net.activation, net.batch)
    return float(log10_output_grad) + 0.5 * (net.depth - np.arange(net.depth + 1)) * math.log10(lam)


def without_batchnorm(net: BatchNormMLP):
    """The same network (same seed → same Ŵ_l, same init, residual, α) without BatchNorm, a ``vglab.MLP``."""
    from vglab.models.mlp import MLP

    return MLP(depth=net.depth, width=net.width, activation=net.activation, init=net.init,
               weight_std=net.weight_std, residual=net.residual, residual_scale=net.residual_scale,
               leaky_slope=net.leaky_slope)
