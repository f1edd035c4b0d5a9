"""Activation functions φ, their derivatives φ′, and the bound sup|φ′|.

Besides φ and φ′, each activation knows how to evaluate itself on a pre-activation held in *scaled form*
z = e^s · z̃ (z̃ of order one, s a log-scale), returning φ(z) again in scaled form.  This is what lets the
engine push a ReLU net with σ_w = 4 through 500 layers (activations ~1e225) in float32 without overflow:
ReLU is positively homogeneous, φ(e^s z̃) = e^s φ(z̃), so the scale never has to be materialised.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from vglab.core.validation import check_choice, check_float

# exp() of more than this overflows float32 (e^88.7 ≈ 3.4e38); saturating activations are clamped below it.
_MAX_EXP = 80.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _normal_pdf(x):
    return jnp.exp(-0.5 * x * x) / _SQRT_2PI


def _normal_cdf(x):
    # Φ(x) = erfc(−x/√2)/2: no cancellation in the left tail (1 + erf(x/√2) would round to 0 below x ≈ −5).
    return 0.5 * jax.lax.erfc(-x / math.sqrt(2.0))


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity.

    phi(x, slope), dphi(x, slope): φ and φ′ (``slope`` is the leaky-ReLU negative slope, ignored by others).
    sup_dphi(slope): sup over x of |φ′(x)|; the per-layer factor in the bound ‖∂L/∂h_0‖ ≤ Π sup|φ′| ‖W_l‖₂.
    scaled(zt, s, slope) -> (at, sa, d): φ(e^s zt) = e^sa · at, and d = φ′(e^s zt), without overflow.
    log_dphi(x, slope) -> (log|φ′(x)|, sign φ′(x)): φ′ in log space, for the saturating activations whose φ′
                     leaves float32's range (tanh′(50) ≈ 1e-43, GELU′(−15) ≈ −1e-47); None for the piecewise
                     linear ones (φ′ ∈ {0, 1, a} is always representable).
    flat:            φ′ is exactly 0 on a set of positive measure (ReLU's flat side): the only activation
                     whose units can be *dead*.  Sigmoid, tanh, GELU, ELU and SiLU units saturate but never
                     die (ELU′ = e^x > 0; SiLU′ vanishes only at the single point x₀ ≈ −1.2785).
    """

    name: str
    phi: Callable
    dphi: Callable
    sup_dphi: Callable
    scaled: Callable
    formula: str
    log_dphi: Callable | None = None
    flat: bool = False


def _homogeneous_scaled(phi, dphi):
    # φ(e^s z) = e^s φ(z) and φ′(e^s z) = φ′(z) for positively homogeneous φ (ReLU, leaky ReLU, identity).
    def scaled(zt, s, slope):
        return phi(zt, slope), s, dphi(zt, slope)

    return scaled


def _sigmoid_phi(x, slope=0.0):
    return jax.nn.sigmoid(x)


def _sigmoid_dphi(x, slope=0.0):
    # σ′(x) = σ(x)σ(−x) = e^{−|x|}/(1 + e^{−|x|})²: σ(1 − σ) would cancel to 0 beyond |x| ≈ 17 in float32.
    e = jnp.exp(-jnp.abs(x))
    return e / ((1.0 + e) * (1.0 + e))


def _sigmoid_scaled(zt, s, slope):
    # φ is bounded with φ(0) = 1/2, so the true value is always representable: return it with scale 0.
    z = zt * jnp.exp(jnp.minimum(s, _MAX_EXP))
    return _sigmoid_phi(z), jnp.zeros_like(s), _sigmoid_dphi(z)


def _tanh_phi(x, slope=0.0):
    return jnp.tanh(x)


def _tanh_dphi(x, slope=0.0):
    # tanh′(x) = sech²(x) = 4e^{−2|x|}/(1 + e^{−2|x|})²: 1 − tanh² would cancel to 0 beyond |x| ≈ 9 in float32.
    e = jnp.exp(-2.0 * jnp.abs(x))
    return 4.0 * e / ((1.0 + e) * (1.0 + e))


def _sigmoid_log_dphi(x, slope=0.0):
    # log σ′(x) = −|x| − 2 log(1 + e^{−|x|}): no underflow for any finite x.
    a = jnp.abs(x)
    return -a - 2.0 * jnp.log1p(jnp.exp(-a)), jnp.ones_like(x)


def _tanh_log_dphi(x, slope=0.0):
    # log sech²(x) = log 4 − 2|x| − 2 log(1 + e^{−2|x|}).
    a = jnp.abs(x)
    return math.log(4.0) - 2.0 * a - 2.0 * jnp.log1p(jnp.exp(-2.0 * a)), jnp.ones_like(x)


def _tanh_scaled(zt, s, slope):
    # Large inputs: tanh is bounded, return the true value (scale 0).  Small inputs (s ≤ 0): tanh(z) = z·r(z)
    # with r(z) = tanh(z)/z → 1, so a tiny signal keeps its own scale instead of underflowing to zero.
    z = zt * jnp.exp(jnp.minimum(s, _MAX_EXP))
    small_z = jnp.abs(z) < 1e-4
    ratio = jnp.where(small_z, 1.0 - z * z / 3.0, jnp.tanh(z) / jnp.where(small_z, 1.0, z))
    big = s > 0.0
    at = jnp.where(big, jnp.tanh(z), zt * ratio)
    sa = jnp.where(big, 0.0, s)
    return at, sa, _tanh_dphi(z)


def _relu_phi(x, slope=0.0):
    return jnp.maximum(x, 0.0)


def _relu_dphi(x, slope=0.0):
    return jnp.where(x > 0.0, 1.0, 0.0).astype(x.dtype)


def _leaky_phi(x, slope=0.01):
    return jnp.where(x > 0.0, x, slope * x)


def _leaky_dphi(x, slope=0.01):
    return jnp.where(x > 0.0, 1.0, slope).astype(x.dtype)


def _gelu_phi(x, slope=0.0):
    return x * _normal_cdf(x)


def _gelu_dphi(x, slope=0.0):
    return _normal_cdf(x) + x * _normal_pdf(x)


# Below this x, GELU′(x) = Φ(x) + x φ(x) is evaluated as φ(x)·(x + Φ(x)/φ(x)) in log space: φ(−13.2) ≈ 1e-38
# is float32's smallest normal number, and at −10 both terms are still far inside the range.
_GELU_LOG_CUT = -10.0


def _gelu_log_dphi(x, slope=0.0):
    """log|GELU′(x)| and its sign.  For x < −10, Φ(x)/φ(x) = R(x) = (1/|x|)(1 − 1/x² + 3/x⁴ − 15/x⁶ + 105/x⁸ −
    945/x¹⁰ + …) (the asymptotic Mills-ratio series, truncation error < 1e-8 relative there), so
    GELU′(x) = φ(x)(x + R(x)) with log φ(x) = −x²/2 − log √(2π): no underflow."""
    tail = x < _GELU_LOG_CUT
    xt = jnp.where(tail, x, _GELU_LOG_CUT)
    w = 1.0 / (xt * xt)
    series = 1.0 + w * (-1.0 + w * (3.0 + w * (-15.0 + w * (105.0 + w * -945.0))))
    mills = series / jnp.abs(xt)
    log_tail = -0.5 * xt * xt - math.log(_SQRT_2PI) + jnp.log(jnp.abs(xt) - mills)
    direct = _gelu_dphi(jnp.where(tail, _GELU_LOG_CUT, x))
    log_abs = jnp.where(tail, log_tail, jnp.log(jnp.abs(direct)))
    return log_abs, jnp.where(tail, -1.0, jnp.sign(direct))


def _gelu_scaled(zt, s, slope):
    # GELU(e^s z) = e^s · z Φ(e^s z): keep the scale, and clamp only the argument of Φ (which saturates).
    z = zt * jnp.exp(jnp.minimum(s, _MAX_EXP))
    return zt * _normal_cdf(z), s, _gelu_dphi(z)


def _elu_phi(x, slope=0.0):
    # ELU with α = 1: x for x > 0, e^x − 1 (expm1: exact near 0) otherwise.  The minimum keeps the unused
    # branch finite, so jax.grad through jnp.where never meets 0·∞.
    return jnp.where(x > 0.0, x, jnp.expm1(jnp.minimum(x, 0.0)))


def _elu_dphi(x, slope=0.0):
    return jnp.where(x > 0.0, 1.0, jnp.exp(jnp.minimum(x, 0.0))).astype(x.dtype)


def _elu_log_dphi(x, slope=0.0):
    # log ELU′(x) = min(x, 0) exactly: e^x underflows float32 below x ≈ −103, its logarithm never does.
    return jnp.minimum(x, 0.0), jnp.ones_like(x)


def _elu_scaled(zt, s, slope):
    # ELU(e^s z̃) = e^s z̃ on the positive side, e^z − 1 ∈ (−1, 0] on the negative side.  Small signals (s ≤ 0)
    # keep their own scale through the ratio (e^z − 1)/z → 1.  Large ones (s > 0): when the largest positive
    # entry e^s max z̃⁺ exceeds 1, keep the scale s (the bounded negative side is e^{−s}(e^z − 1) beside it);
    # otherwise every entry is at most 1 in size (all units negative, say) and the true values are returned
    # with scale 0, so a layer of saturated negative units is ≈ −1 each, never 0 by underflow of e^{−s}.
    z = zt * jnp.exp(jnp.minimum(s, _MAX_EXP))
    neg = jnp.minimum(z, 0.0)
    small_z = jnp.abs(neg) < 1e-4
    ratio = jnp.where(small_z, 1.0 + neg * (0.5 + neg / 6.0), jnp.expm1(neg) / jnp.where(small_z, 1.0, neg))
    positive = zt > 0.0
    log_pos_max = jnp.log(jnp.max(jnp.where(positive, zt, 0.0)))  # −inf when no entry is positive
    keep = (s <= 0.0) | (s + log_pos_max > 0.0)
    negative = jnp.where(s > 0.0, jnp.expm1(neg) * jnp.exp(-s), zt * ratio)
    kept = jnp.where(positive, zt, negative)
    # Scale 0: positive entries e^{s + log z̃} ≤ 1 (no overflow), negative ones their bounded true value.
    true_value = jnp.where(positive, jnp.exp(s + jnp.log(jnp.where(positive, zt, 1.0))), jnp.expm1(neg))
    return jnp.where(keep, kept, true_value), jnp.where(keep, s, jnp.zeros_like(s)), _elu_dphi(z)


def _silu_phi(x, slope=0.0):
    return x * jax.nn.sigmoid(x)


def _silu_dphi(x, slope=0.0):
    # SiLU′(x) = σ(x)(1 + x σ(−x)) = σ(x) + x σ(x)σ(−x); SiLU′(x) + SiLU′(−x) = 1.
    return jax.nn.sigmoid(x) * (1.0 + x * jax.nn.sigmoid(-x))


def _silu_log_dphi(x, slope=0.0):
    """log|SiLU′(x)| = log σ(x) + log|1 + x σ(−x)| and sign(1 + x σ(−x)): log σ(x) = −softplus(−x) never
    underflows (SiLU′(−200) ≈ −199 e^{−200} ≈ −2.8e-85), and 1 + x σ(−x) ≈ 1 + x is an ordinary number there.
    SiLU′ < 0 for x < x₀ ≈ −1.2785 (its only zero, where 1 + x σ(−x) = 0), minimum ≈ −0.0998 at x ≈ −2.3994."""
    factor = 1.0 + x * jax.nn.sigmoid(-x)
    return jax.nn.log_sigmoid(x) + jnp.log(jnp.abs(factor)), jnp.sign(factor)


def _silu_scaled(zt, s, slope):
    # SiLU(e^s z̃) = e^s · z̃ σ(e^s z̃): keep the scale, clamp only the argument of σ (which saturates).
    z = zt * jnp.exp(jnp.minimum(s, _MAX_EXP))
    return zt * jax.nn.sigmoid(z), s, _silu_dphi(z)


def _silu_sup_derivative() -> tuple[float, float]:
    """(x*, SiLU′(x*)): the maximum of SiLU′, where SiLU″(x) = σ(x)σ(−x)(2 + x(σ(−x) − σ(x))) = 0, i.e.
    2 + x(σ(−x) − σ(x)) = 2 − x tanh(x/2) = 0: x* = 2.39935…, SiLU′(x*) = 1.09984….  Solved by bisection
    in float64 (2 − x tanh(x/2) decreases on [2, 3])."""
    lo, hi = 2.0, 3.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if 2.0 - mid * math.tanh(0.5 * mid) > 0.0 else (lo, mid)
    x = 0.5 * (lo + hi)
    sig = 1.0 / (1.0 + math.exp(-x))
    return x, sig * (1.0 + x * (1.0 - sig))


def _linear_phi(x, slope=0.0):
    return x


def _linear_dphi(x, slope=0.0):
    return jnp.ones_like(x)


# sup |GELU′| is reached at x = √2: Φ(√2) + √2 φ(√2) ≈ 1.1289.
GELU_SUP_DERIVATIVE = 0.5 * (1.0 + math.erf(1.0)) + math.sqrt(2.0) * math.exp(-1.0) / _SQRT_2PI

# sup |SiLU′| is reached at x ≈ 2.3994 (2 = x tanh(x/2)): ≈ 1.0998; by SiLU′(−x) = 1 − SiLU′(x) its minimum is
# ≈ −0.0998 at x ≈ −2.3994, so |SiLU′| ≤ 1.0998 everywhere.
SILU_ARGMAX_DERIVATIVE, SILU_SUP_DERIVATIVE = _silu_sup_derivative()

ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", _sigmoid_phi, _sigmoid_dphi, lambda a=0.0: 0.25, _sigmoid_scaled,
                          "σ(x) = 1/(1+e^{-x}),  σ′ = σ(1−σ) ≤ 1/4", _sigmoid_log_dphi),
    "tanh": Activation("tanh", _tanh_phi, _tanh_dphi, lambda a=0.0: 1.0, _tanh_scaled,
                       "tanh′(x) = 1 − tanh²(x) ≤ 1", _tanh_log_dphi),
    "relu": Activation("relu", _relu_phi, _relu_dphi, lambda a=0.0: 1.0,
                       _homogeneous_scaled(_relu_phi, _relu_dphi), "max(x, 0),  φ′ ∈ {0, 1}", flat=True),
    "leaky_relu": Activation("leaky_relu", _leaky_phi, _leaky_dphi, lambda a=0.01: max(1.0, abs(a)),
                             _homogeneous_scaled(_leaky_phi, _leaky_dphi), "max(x, a·x),  φ′ ∈ {a, 1}",
                             flat=True),  # flat only for a = 0 (then it is ReLU)
    "gelu": Activation("gelu", _gelu_phi, _gelu_dphi, lambda a=0.0: GELU_SUP_DERIVATIVE, _gelu_scaled,
                       "x·Φ(x) (exact, erf form),  sup φ′ ≈ 1.1289", _gelu_log_dphi),
    "linear": Activation("linear", _linear_phi, _linear_dphi, lambda a=0.0: 1.0,
                         _homogeneous_scaled(_linear_phi, _linear_dphi), "φ(x) = x"),
    "elu": Activation("elu", _elu_phi, _elu_dphi, lambda a=0.0: 1.0, _elu_scaled,
                      "x (x > 0), e^x − 1 (x ≤ 0),  φ′ = min(1, e^x) ∈ (0, 1]", _elu_log_dphi),
    "silu": Activation("silu", _silu_phi, _silu_dphi, lambda a=0.0: SILU_SUP_DERIVATIVE, _silu_scaled,
                       "x·σ(x) (SiLU/Swish),  sup φ′ ≈ 1.0998", _silu_log_dphi),
}


# A directly computed |φ′| below this (≈ 8e-31, well above float32's smallest normal 1.2e-38) is taken from
# the log-space form instead.
_TINY_DERIVATIVE = 2.0**-100


def scaled_factored(activation: Activation, zt, s, slope):
    """``activation.scaled`` with φ′ factored as e^c · d̃ over the vector: (at, sa, d̃, c), c = max_i log|φ′_i|
    (0 where every φ′ is 0 or for piecewise-linear φ), so max|d̃| = 1 and a layer whose every φ′ is below
    float32's range (tanh at σ_w = 40, GELU far on its negative side) keeps its true size e^c instead of
    underflowing to 0.  d̃_i = φ′_i e^{−c} from the direct φ′ where it is representable (full float32
    accuracy), from exp(log|φ′_i| − c) where it is not.  Only the piecewise-linear ReLU side is exactly 0."""
    at, sa, d = activation.scaled(zt, s, slope)
    if activation.log_dphi is None:
        return at, sa, d, jnp.zeros((), d.dtype)
    z = zt * jnp.exp(jnp.minimum(s, _MAX_EXP))
    log_abs, sign = activation.log_dphi(z, slope)
    c = jnp.max(log_abs)
    c = jnp.where(jnp.isfinite(c), c, 0.0)
    from_log = sign * jnp.exp(log_abs - c)
    d_tilde = jnp.where(jnp.abs(d) >= _TINY_DERIVATIVE, d * jnp.exp(-c), from_log)
    return at, sa, d_tilde, c


def scaled_log_dphi(activation: Activation, zt, s, slope):
    """(log|φ′_i|, sign φ′_i) of every unit of z = e^s z̃, never underflowing: log|φ′| of the direct φ′ where
    that is representable (|φ′| ≥ 2⁻¹⁰⁰, full float32 accuracy, as ``scaled_factored`` takes it), the log-space
    form beyond (tanh′(60) ≈ e^{−119}, GELU′(−120) ≈ e^{−7200}).  −inf only where φ′ is exactly 0 (ReLU's flat
    side).  For the spectrum, whose row scales are these logs unit by unit."""
    _, _, d = activation.scaled(zt, s, slope)
    direct = jnp.log(jnp.abs(d))
    if activation.log_dphi is None:
        return direct, jnp.sign(d)
    log_abs, sign = activation.log_dphi(zt * jnp.exp(jnp.minimum(s, _MAX_EXP)), slope)
    representable = jnp.abs(d) >= _TINY_DERIVATIVE
    return jnp.where(representable, direct, log_abs), jnp.where(representable, jnp.sign(d), sign)


def get_activation(name: str) -> Activation:
    """The activation called ``name``; an unknown name raises ValueError listing the valid ones."""
    return ACTIVATIONS[check_choice("activation", name, ACTIVATIONS)]


def sup_derivative(name: str, leaky_slope: float = 0.01) -> float:
    """sup_x |φ′(x)|: 0.25 for sigmoid, 1 for tanh/ReLU/ELU, max(1, |a|) for leaky ReLU, ≈1.1289 for GELU,
    ≈1.0998 for SiLU (at x ≈ 2.3994).

    leaky_slope: the leaky-ReLU slope a, a finite number in [−10, 10] (as ``vglab.MLP`` accepts)."""
    activation = get_activation(name)
    return float(activation.sup_dphi(check_float("leaky_slope", leaky_slope, -10.0, 10.0)))
