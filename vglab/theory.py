"""Mean-field signal propagation for wide random MLPs, and closed-form bounds.

For W_l ~ N(0, σ_w²/n), b_l ~ N(0, σ_b²) and width n → ∞ the pre-activations z_l are Gaussian with
variance q_l, which follows the length map (Poole et al. 2016)

    q_l = σ_w² E_{u~N(0,1)}[φ(√q_{l−1} u)²] + σ_b²,          q_1 = σ_w² E[x_i²] + σ_b² = σ_w² + σ_b²,

and the squared gradient norm obeys E‖∂L/∂h_{l−1}‖² = χ(q_l) E‖∂L/∂h_l‖² with the per-layer factor
(Schoenholz et al. 2017)

    χ(q) = σ_w² E[φ′(√q u)²],    χ₁ = χ(q*) at the fixed point q* of the length map.

χ₁ < 1 is the ordered phase (gradients vanish over ξ = 1/|log χ₁| layers), χ₁ > 1 the chaotic phase
(they explode), χ₁ = 1 the edge of chaos.  A residual layer h_l = h_{l−1} + α φ(W h_{l−1} + b) has the
factor 1 + α² χ(q_l) instead, with q_l = σ_w² Q_{l−1} + σ_b² and Q_l = Q_{l−1} + α² E[φ(√q_l u)²].

Expectations over u ~ N(0, 1) are computed in float64 to ~1e-10 (Gauss–Hermite for q ≤ 1, Simpson with exact
saturated tails above), with closed forms for the piecewise-linear activations and for ELU (erfcx forms).

References: Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, "Exponential expressivity in deep neural
networks through transient chaos"; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep information
propagation"; Glorot & Bengio 2010; He, Zhang, Ren & Sun 2015.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from vglab.core.activations import ACTIVATIONS, sup_derivative
from vglab.core.banks import BankCache
from vglab.core.validation import check_choice, check_float, check_int
from vglab.models.mlp import MLP, check_square_random
from vglab.models.recurrent import RNN


class _Lazy:
    """A module imported on first attribute access: scipy.special and scipy.optimize took 3.5–5 s to import
    after jax on the shared 2-core machine (load 14–17), and neither is needed by ``import vglab`` or a
    dashboard's first plot."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute):
        import importlib

        return getattr(importlib.import_module(self._name), attribute)


special = _Lazy("scipy.special")

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(161)
_WEIGHTS = _WEIGHTS / math.sqrt(2.0 * math.pi)
_Q_INFINITE = 1e12  # a length map that has not converged by this variance diverges (no finite q*)
_Q_ZERO = 1e-200  # a length map that decays past this variance goes to q* = 0


def _phi_np(name, x, slope):
    if name == "sigmoid":
        return special.expit(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "gelu":
        return x * special.ndtr(x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "silu":
        return x * special.expit(x)
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "leaky_relu":
        return np.where(x > 0, x, slope * x)
    return x


def _dphi_np(name, x, slope):
    if name == "sigmoid":
        e = np.exp(-np.abs(x))
        return e / (1.0 + e) ** 2
    if name == "tanh":
        e = np.exp(-2.0 * np.abs(x))
        return 4.0 * e / (1.0 + e) ** 2
    if name == "gelu":
        return special.ndtr(x) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if name == "elu":
        return np.exp(np.minimum(x, 0.0))
    if name == "silu":
        return special.expit(x) * (1.0 + x * special.expit(-x))
    if name == "relu":
        return (x > 0).astype(float)
    if name == "leaky_relu":
        return np.where(x > 0, 1.0, slope)
    return np.ones_like(x)


def _piecewise_linear_gain(name, slope):
    """E[φ(√q u)²]/q = E[φ′²] for φ positively homogeneous: (1 + a²)/2 for leaky ReLU, 1/2 ReLU, 1 linear."""
    return {"relu": 0.5, "leaky_relu": 0.5 * (1 + slope * slope), "linear": 1.0}.get(name)


# Saturated values beyond |x| = _CUT, used for exact tail integrals: (constant, coefficient of x) of φ or φ′
# for x → +∞ and x → −∞.  Inside [−_CUT, _CUT] the integrand is integrated numerically.
_CUT = 60.0
_TAILS = {
    ("sigmoid", "phi"): ((1.0, 0.0), (0.0, 0.0)), ("sigmoid", "dphi"): ((0.0, 0.0), (0.0, 0.0)),
    ("tanh", "phi"): ((1.0, 0.0), (-1.0, 0.0)), ("tanh", "dphi"): ((0.0, 0.0), (0.0, 0.0)),
    ("gelu", "phi"): ((0.0, 1.0), (0.0, 0.0)), ("gelu", "dphi"): ((1.0, 0.0), (0.0, 0.0)),
    ("elu", "phi"): ((0.0, 1.0), (-1.0, 0.0)), ("elu", "dphi"): ((1.0, 0.0), (0.0, 0.0)),
    ("silu", "phi"): ((0.0, 1.0), (0.0, 0.0)), ("silu", "dphi"): ((1.0, 0.0), (0.0, 0.0)),
}
# Activations that grow like ReLU for |x| → ∞ (x on the right, bounded on the left): E[φ(√q u)²]/q → 1/2 and
# E[φ(√q u)]/√q → 1/√(2π) as q → ∞.
_RELU_LIKE = ("gelu", "elu", "silu")
_SIMPSON_STEP = 0.005


@functools.lru_cache(maxsize=1 << 16)  # a dashboard asks for the same q again on every redraw
def _gaussian_mean_square(activation: str, which: str, q: float, leaky_slope: float) -> float:
    """E_{u~N(0,1)}[f(√q u)²] for f = φ or φ′ of a smooth activation, to ~1e-10 relative.

    q ≤ 1: Gauss–Hermite quadrature (161 nodes).  q > 1: composite Simpson rule in x = √q u on
    [−c, c], c = min(12√q, 60), plus the exact Gaussian tail integrals of the saturated values beyond ±60
    (Gauss–Hermite alone converges slowly there: tanh has poles at ±iπ/2, close to the real axis in u).
    """
    f = _phi_np if which == "phi" else _dphi_np
    if q <= 1.0:
        return float(_WEIGHTS @ f(activation, math.sqrt(q) * _NODES, leaky_slope) ** 2)
    sd = math.sqrt(q)
    c = min(12.0 * sd, _CUT)
    n = 2 * int(math.ceil(c / _SIMPSON_STEP))
    x = np.linspace(-c, c, n + 1)
    integrand = f(activation, x, leaky_slope) ** 2 * np.exp(-0.5 * x * x / q) / (sd * math.sqrt(2 * math.pi))
    simpson = np.ones(n + 1)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    total = float(integrand @ simpson) * (x[1] - x[0]) / 3.0
    if c == _CUT:
        t = _CUT / sd
        tail_prob = special.ndtr(-t)  # P(X > c) for X ~ N(0, q)
        tail_x2 = q * (t * math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi) + tail_prob)  # E[X² 1{X > c}]
        (a_right, b_right), (a_left, b_left) = _TAILS[(activation, which)]
        # (a + b x)² with a·b = 0 in every case above: a² P + b² E[X² 1{…}]
        total += (a_right**2 + a_left**2) * tail_prob + (b_right**2 + b_left**2) * tail_x2
    return total


@functools.lru_cache(maxsize=1 << 16)
def _gaussian_mean_sigmoid_derivative(q: float) -> float:
    """E_{u~N(0,1)}[σ′(√q u)] (for SiLU's mean, E[X σ(X)] = q E[σ′(X)]), to ~1e-10: Gauss–Hermite for q ≤ 1,
    Simpson on [−c, c], c = min(12√q, 60), above (σ′(60) ≈ 9e-27, the tails beyond are negligible)."""
    def f(x):
        e = np.exp(-np.abs(x))
        return e / (1.0 + e) ** 2

    if q <= 1.0:
        return float(_WEIGHTS @ f(math.sqrt(q) * _NODES))
    sd = math.sqrt(q)
    c = min(12.0 * sd, _CUT)
    n = 2 * int(math.ceil(c / _SIMPSON_STEP))
    x = np.linspace(-c, c, n + 1)
    simpson = np.ones(n + 1)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    integrand = f(x) * np.exp(-0.5 * x * x / q) / (sd * math.sqrt(2 * math.pi))
    return float(integrand @ simpson) * (x[1] - x[0]) / 3.0


# ------------------------------------------------------------------------------------------- argument checks
_MAX_SIGMA = 100.0  # the range the network constructors accept for σ_w and σ_b
_SLOPE_RANGE = (-10.0, 10.0)  # leaky-ReLU slopes the constructors accept


def _check_q(q) -> float:
    """A pre-activation variance: a real number ≥ 0, finite or +inf (the saturated limit)."""
    if isinstance(q, (int, float, np.integer, np.floating)) and not isinstance(q, bool) and q == math.inf:
        return math.inf
    return check_float("q", q, 0.0, math.inf)


def _check_activation(activation, leaky_slope) -> tuple[str, float]:
    return (check_choice("activation", activation, ACTIVATIONS),
            check_float("leaky_slope", leaky_slope, *_SLOPE_RANGE))


def _check_mlp(net, function: str) -> MLP:
    return check_square_random(net, function, instead="the mean-field theory here is for depth= and width= "
                                                      "with a random init")


def _check_rnn(net, function: str) -> RNN:
    if not isinstance(net, RNN):
        raise ValueError(f"{function} expects a vglab.RNN, got {type(net).__name__}")
    return net


def _check_log10_output_grad(value) -> float:
    return check_float("log10_output_grad", value)


def mean_activation(activation: str, q: float, leaky_slope: float = 0.01) -> float:
    """μ(q) = E_{u~N(0,1)}[φ(√q u)], in closed form for every activation.

    Odd φ (tanh, linear): 0.  Sigmoid: 1/2 (σ(x) − 1/2 is odd).  ReLU: √(q/2π); leaky ReLU: (1 − a)√(q/2π).
    GELU x Φ(x): E[X Φ(X)] = q E[Φ′(X)] = q/√(2π(1 + q)) for X ~ N(0, q) (Stein's lemma).
    ELU (α = 1): E[X; X > 0] + E[e^X − 1; X < 0] = √(q/2π) + e^{q/2}Φ(−√q) − 1/2, with e^{q/2}Φ(−√q) =
    erfcx(√(q/2))/2 (no overflow).  SiLU x σ(X): no closed form; by Stein's lemma E[X σ(X)] = q E[σ′(X)],
    integrated numerically as the mean squares are (~1e-10).
    """
    activation, leaky_slope = _check_activation(activation, leaky_slope)
    return _mean_activation(activation, _check_q(q), leaky_slope)


def _elu_negative_side(coefficient, q):
    """E[f(X); X < 0] for X ~ N(0, q) and f(x) = Σ_k coefficient(k) x^k, k = 1..8, using the half moments
    E[X^k; X < 0] = (−1)^k q^{k/2} E|u|^k / 2, E|u|^k = 2^{k/2} Γ((k+1)/2)/√π.  For q < 1e-4, where the
    closed forms below lose their digits to cancellation (truncation error < q^{4.5} relative)."""
    return sum(coefficient(k) * (-1) ** k * q ** (0.5 * k) * 2 ** (0.5 * k) * math.gamma(0.5 * (k + 1))
               / (2.0 * math.sqrt(math.pi)) for k in range(1, 9))


_ELU_SERIES_Q = 1e-4


def _elu_mean(q):
    # E[X; X > 0] + E[e^X − 1; X < 0] = √(q/2π) + e^{q/2}Φ(−√q) − 1/2, e^{q/2}Φ(−√q) = erfcx(√(q/2))/2.
    if q < _ELU_SERIES_Q:
        return math.sqrt(q / (2.0 * math.pi)) + _elu_negative_side(lambda k: 1.0 / math.factorial(k), q)
    return math.sqrt(q / (2.0 * math.pi)) + 0.5 * float(special.erfcx(math.sqrt(0.5 * q))) - 0.5


def _elu_mean_square(q):
    # E[X²; X > 0] + E[(e^X − 1)²; X < 0] = q/2 + e^{2q}Φ(−2√q) − 2 e^{q/2}Φ(−√q) + 1/2
    #                                     = q/2 + erfcx(√(2q))/2 − erfcx(√(q/2)) + 1/2;
    # the series uses (e^x − 1)² = Σ (2^k − 2) x^k/k!.
    if q < _ELU_SERIES_Q:
        return 0.5 * q + _elu_negative_side(lambda k: (2.0**k - 2.0) / math.factorial(k), q)
    return 0.5 * q + 0.5 * float(special.erfcx(math.sqrt(2.0 * q))) - float(special.erfcx(math.sqrt(0.5 * q))) + 0.5


def _elu_mean_square_derivative(q):
    # P(X > 0) + E[e^{2X}; X < 0] = 1/2 + e^{2q}Φ(−2√q) = 1/2 + erfcx(√(2q))/2 (a sum: no cancellation).
    return 0.5 + 0.5 * float(special.erfcx(math.sqrt(2.0 * q)))


def _mean_activation(activation, q, leaky_slope):
    if activation == "elu":
        return _elu_mean(q)
    if activation == "silu":
        return q * _gaussian_mean_sigmoid_derivative(q)
    root = math.sqrt(q / (2.0 * math.pi))
    return {"sigmoid": 0.5, "relu": root, "leaky_relu": (1.0 - leaky_slope) * root,
            "gelu": q / math.sqrt(2.0 * math.pi * (1.0 + q))}.get(activation, 0.0)


def mean_square_activation(activation: str, q: float, leaky_slope: float = 0.01) -> float:
    """E_{u~N(0,1)}[φ(√q u)²]."""
    activation, leaky_slope = _check_activation(activation, leaky_slope)
    return _mean_square_activation(activation, _check_q(q), leaky_slope)


def _mean_square_activation(activation, q, leaky_slope):
    gain = _piecewise_linear_gain(activation, leaky_slope)
    if gain is not None:
        return gain * q
    if activation == "elu":
        return _elu_mean_square(q)
    return _gaussian_mean_square(activation, "phi", q, leaky_slope)


def mean_square_derivative(activation: str, q: float, leaky_slope: float = 0.01) -> float:
    """E_{u~N(0,1)}[φ′(√q u)²]."""
    activation, leaky_slope = _check_activation(activation, leaky_slope)
    return _mean_square_derivative(activation, _check_q(q), leaky_slope)


def _mean_square_derivative(activation, q, leaky_slope):
    gain = _piecewise_linear_gain(activation, leaky_slope)
    if gain is not None:
        return gain
    if activation == "elu":
        return _elu_mean_square_derivative(q)
    return _gaussian_mean_square(activation, "dphi", q, leaky_slope)


def _check(activation, sigma_w, sigma_b, leaky_slope=0.01):
    """(activation, σ_w, σ_b, slope) checked as the constructors check them."""
    activation, leaky_slope = _check_activation(activation, leaky_slope)
    return (activation, check_float("sigma_w", sigma_w, 0.0, _MAX_SIGMA),
            check_float("sigma_b", sigma_b, 0.0, _MAX_SIGMA), leaky_slope)


def length_map(q: float, activation: str, sigma_w: float, sigma_b: float, leaky_slope: float = 0.01) -> float:
    """q ↦ σ_w² E[φ(√q u)²] + σ_b², the pre-activation variance of the next layer."""
    activation, sigma_w, sigma_b, leaky_slope = _check(activation, sigma_w, sigma_b, leaky_slope)
    return _length_map(_check_q(q), activation, sigma_w, sigma_b, leaky_slope)


def _length_map(q, activation, sigma_w, sigma_b, leaky_slope):
    return sigma_w**2 * _mean_square_activation(activation, q, leaky_slope) + sigma_b**2


def q_star(activation: str, sigma_w: float, sigma_b: float = 0.0, leaky_slope: float = 0.01,
           q0: float = 1.0) -> float:
    """The fixed point q* = σ_w² E[φ(√q* u)²] + σ_b² that the length map reaches from q0.

    Returns math.inf where the map diverges and 0.0 where it decays to zero (σ_b = 0, ordered).  The length map
    is increasing, so iterating it from q0 moves monotonically to the nearest fixed point in the direction of
    F(q0) = length_map(q0) − q0; that point is bracketed by doubling (or halving) q from q0 and then solved by
    Brent's method to 1e-13 relative, instead of iterating the map (which needs ~10⁴ steps near the edge of
    chaos, where it contracts by χ ≈ 1 per step).  Piecewise-linear φ (ReLU, leaky ReLU, linear) have the
    closed form q* = σ_b²/(1 − σ_w² g), g = E[φ(u)²], when σ_w² g < 1.
    """
    activation, sigma_w, sigma_b, leaky_slope = _check(activation, sigma_w, sigma_b, leaky_slope)
    return _q_star(activation, sigma_w, sigma_b, leaky_slope, check_float("q0", q0, 0.0, _Q_INFINITE))


def _q_star(activation, sigma_w, sigma_b, leaky_slope, q0):
    gain = _piecewise_linear_gain(activation, leaky_slope)
    if gain is not None:
        slope = sigma_w**2 * gain
        if slope < 1.0:
            return sigma_b**2 / (1.0 - slope)
        return float(q0) if slope == 1.0 and sigma_b == 0.0 else math.inf

    def excess(q):
        return _length_map(q, activation, sigma_w, sigma_b, leaky_slope) - q

    q0 = float(q0)
    start = excess(q0)
    if start == 0.0:
        return q0
    near, far = q0, q0
    if start > 0.0:
        while excess(far) > 0.0:
            near, far = far, 2.0 * far
            if far > _Q_INFINITE:
                return math.inf
    else:
        while excess(far) < 0.0:
            near, far = far, 0.5 * far
            if far < _Q_ZERO:
                return 0.0
    from scipy import optimize

    return optimize.brentq(excess, min(near, far), max(near, far), xtol=1e-300, rtol=1e-13, maxiter=200)


def chi(q: float, activation: str, sigma_w: float, leaky_slope: float = 0.01) -> float:
    """χ(q) = σ_w² E[φ′(√q u)²], the expected factor of ‖∂L/∂h‖² across one layer with input variance q.

    q: a variance ≥ 0 (+inf allowed: the saturated limit)."""
    activation, sigma_w, _, leaky_slope = _check(activation, sigma_w, 0.0, leaky_slope)
    return _chi(_check_q(q), activation, sigma_w, leaky_slope)


def _chi(q, activation, sigma_w, leaky_slope):
    return sigma_w**2 * _mean_square_derivative(activation, min(q, _Q_INFINITE), leaky_slope)


def chi1(activation: str, sigma_w: float, sigma_b: float = 0.0, leaky_slope: float = 0.01) -> float:
    """χ₁ = σ_w² E[φ′(√q* u)²]: below 1 gradients vanish, above 1 they explode (Schoenholz et al. 2017)."""
    activation, sigma_w, sigma_b, leaky_slope = _check(activation, sigma_w, sigma_b, leaky_slope)
    return _chi1(activation, sigma_w, sigma_b, leaky_slope)


def _chi1(activation, sigma_w, sigma_b, leaky_slope):
    return _chi(_q_star(activation, sigma_w, sigma_b, leaky_slope, 1.0), activation, sigma_w, leaky_slope)


def depth_scale(activation: str, sigma_w: float, sigma_b: float = 0.0, leaky_slope: float = 0.01) -> float:
    """ξ = 1/|log χ₁|: the number of layers over which E‖∂L/∂h‖² changes by a factor e (∞ at χ₁ = 1)."""
    chi_1 = chi1(activation, sigma_w, sigma_b, leaky_slope)
    if chi_1 == 0.0:  # σ_w = 0: the gradient is zero after one layer
        return 0.0
    log_chi = math.log(chi_1)
    return math.inf if log_chi == 0.0 else 1.0 / abs(log_chi)


def log10_derivative_bound(activation: str, depth: int, leaky_slope: float = 0.01) -> float:
    """log10 of the closed-form factor sup|φ′|^L (0.25^L for sigmoid: 0.25^10 ≈ 9.5e-7).

    ‖∂L/∂h_0‖ ≤ Π_l sup|φ′| ‖W_l‖₂ · ‖g‖, so with ‖W_l‖₂ ≤ 1 the gradient is at most sup|φ′|^L ‖g‖.
    """
    depth = check_int("depth", depth, 0, 10**9)
    return depth * math.log10(sup_derivative(activation, leaky_slope))


# Activations with φ(x) = x φ′(x) (exactly, or up to a bounded part for |x| ≫ 1 as GELU, ELU, SiLU): the net
# is 1-homogeneous in its stream.
_HOMOGENEOUS = ("relu", "leaky_relu", "linear") + _RELU_LIKE


class MeanFieldProfile(NamedTuple):
    """The per-layer mean-field quantities of a network, from which the prediction for any depth ≤ its
    depth follows (layer l's quantities depend on l, never on the depth).

    log_factors (L,): ln of the per-layer factor of E‖∂L/∂h‖² (χ(q_l), or 1 + α²χ(q_l) residual);
    log_second_moment (L+1,): ln Q_l = ln E[h_{l,i}²]; rank_one: whether the term Q_L/(n Q_l) applies.
    """

    log_factors: np.ndarray
    log_second_moment: np.ndarray
    rank_one: bool
    width: int

    def log10_grad(self, depth: int, log10_output_grad: float = 0.0) -> np.ndarray:
        """log10 √E‖∂L/∂h_l‖², l = 0..depth, for the first ``depth`` layers, from log10 ‖g‖ at l = depth."""
        check_int("depth", depth, 1, len(self.log_factors))
        log10_output_grad = _check_log10_output_grad(log10_output_grad)
        log_factors = self.log_factors[:depth]
        # ln Π_{k>l} factor_k (natural logs, so depth 10⁴ neither underflows nor overflows).
        log_mean_square = np.concatenate([np.cumsum(log_factors[::-1])[::-1], [0.0]])
        if self.rank_one:
            moments = self.log_second_moment[: depth + 1]
            log_mean_square = np.logaddexp(log_mean_square, moments[-1] - moments - math.log(self.width))
        return log10_output_grad + 0.5 * log_mean_square / math.log(10.0)


def mean_field_profile(net) -> MeanFieldProfile | None:
    """The quantities behind ``predicted_log10_grad`` for ``net`` (None for LayerNorm nets)."""
    net = _check_mlp(net, "mean_field_profile")
    if net.norm is not None:
        return None
    q, log_second_moment = _stream_variances(net)
    chis = np.array([_chi(q_l, net.activation, net.sigma_w, net.leaky_slope) for q_l in q])
    with np.errstate(divide="ignore"):
        log_factors = np.log1p(net.residual_scale**2 * chis) if net.residual else np.log(chis)
    return MeanFieldProfile(log_factors, log_second_moment, net.residual and net.activation in _HOMOGENEOUS,
                            net.width)


def predicted_log10_grad(net, log10_output_grad: float = 0.0) -> np.ndarray | None:
    """Mean-field prediction of log10 √E‖∂L/∂h_l‖², l = 0..depth, for ``net`` (a ``vglab.MLP``).

    Forward: the per-unit mean m_l = E[h_l] and second moment Q_l = E[h_l²] of the stream, from h_0 = x ~ N(0, I)
    (m_0 = 0, Q_0 = 1); z_l = W_l h_{l−1} + b_l has variance q_l = σ_w² Q_{l−1} + σ_b² whatever the mean (W has
    zero mean).  Plain: Q_l = E[φ(z_l)²].  Residual h_l = h_{l−1} + α φ(z_l), with h_{l−1,i} and z_{l,i}
    independent in the wide limit:

        Q_l = Q_{l−1} + 2α m_{l−1} μ(q_l) + α² E[φ(z_l)²],    m_l = m_{l−1} + α μ(q_l).

    Backward: E‖∂L/∂h_{l−1}‖² = χ(q_l) E‖∂L/∂h_l‖² (plain) or (1 + α² χ(q_l)) E‖∂L/∂h_l‖² (residual), the
    gradient-independence recursion of Schoenholz et al. 2017.  For residual nets of (asymptotically)
    1-homogeneous φ (ReLU, leaky ReLU, GELU) it misses a rank-one part: Euler's identity gives
    ⟨∂L/∂h_l, h_l⟩ = ⟨g, h_L⟩, so ∂L/∂h_l has a component along h_l of size |⟨g, h_L⟩|/‖h_l‖, whose mean
    square is ‖g‖² Q_L/(n Q_l).  When E[φ] > 0 the stream drifts along the all-ones direction and grows faster
    than 1 + α²χ per layer, and this part takes over (ReLU, σ_w = √2, α = 1, width 512: 21.6 of the 21.7
    measured decades over 100 layers, against 15.1 from the recursion alone).  So for those nets

        E‖∂L/∂h_l‖² = ‖g‖² (Π_{k>l} (1 + α² χ(q_k)) + Q_L/(n Q_l)).

    Starts from log10 ‖g‖ = ``log10_output_grad`` at l = depth.  Returns None for LayerNorm nets, which this
    theory omits.
    """
    net = _check_mlp(net, "predicted_log10_grad")
    log10_output_grad = _check_log10_output_grad(log10_output_grad)
    profile = mean_field_profile(net)
    return None if profile is None else profile.log10_grad(net.depth, log10_output_grad)


def _stream_variances(net) -> tuple[np.ndarray, np.ndarray]:
    """(q_l for l = 1..L, capped at 1e12; ln Q_l for l = 0..L): pre-activation variances and ln E[h_l²].

    Residual streams can grow past float64 (ReLU, σ_w = 2: ~e^{0.6 L}), so m and Q are carried relative to a
    running scale e^S (Q = Q̂ e^S, m = m̂ e^{S/2}); beyond q = 1e12 the moments take their large-q forms
    (E[φ²] = g q, μ = c √q for the activations that grow linearly, the saturated values otherwise).
    """
    sw, sb, a, act, slope = net.sigma_w, net.bias_std, net.residual_scale, net.activation, net.leaky_slope
    # lim E[φ(√q u)²]/q and lim E[φ(√q u)]/√q as q → ∞ for the φ that grow linearly (GELU → ReLU's), else None.
    gain = 0.5 if act in _RELU_LIKE else _piecewise_linear_gain(act, slope)
    mean_gain = _mean_activation("relu" if act in _RELU_LIKE else act, 1.0, slope)
    q = np.empty(net.depth)
    log_second_moment = np.zeros(net.depth + 1)
    scale, second, mean = 0.0, 1.0, 0.0  # S, Q̂, m̂
    for l in range(net.depth):
        q_hat = sw**2 * second + sb**2 * math.exp(-scale)  # q e^{−S}
        if scale + math.log(max(q_hat, 1e-300)) < math.log(_Q_INFINITE):
            q[l] = q_hat * math.exp(scale)
            square = _mean_square_activation(act, q[l], slope) * math.exp(-scale)
            mu = _mean_activation(act, q[l], slope) * math.exp(-0.5 * scale)
        else:
            q[l] = _Q_INFINITE
            if gain is not None:
                square, mu = gain * q_hat, mean_gain * math.sqrt(q_hat)
            else:  # bounded φ: saturated values, negligible beside the scale
                square = _mean_square_activation(act, _Q_INFINITE, slope) * math.exp(-scale)
                mu = _mean_activation(act, _Q_INFINITE, slope) * math.exp(-0.5 * scale)
        if net.residual:
            second, mean = second + 2.0 * a * mean * mu + a * a * square, mean + a * mu
        else:
            second, mean = square, mu
        if second > 1e100 or 0 < second < 1e-100:  # renormalise the scale
            shift = math.log(second)
            scale, second, mean = scale + shift, 1.0, mean * math.exp(-0.5 * shift)
        log_second_moment[l + 1] = scale + math.log(second) if second > 0 else -math.inf
    return q, log_second_moment


def chi1_grid(activation: str, sigma_w2: np.ndarray, sigma_b2: np.ndarray, leaky_slope: float = 0.01):
    """χ₁ on a grid of (σ_w², σ_b²) (shape (len(sigma_b2), len(sigma_w2))), for the order/chaos diagram.

    sigma_w2, sigma_b2: 1-D arrays of variances in [0, 100²]."""
    activation, leaky_slope = _check_activation(activation, leaky_slope)
    grids = []
    for name, values in (("sigma_w2", sigma_w2), ("sigma_b2", sigma_b2)):
        try:
            values = np.asarray(values, np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a 1-D array of variances in [0, {_MAX_SIGMA**2:g}], "
                             f"got {type(values).__name__}") from None
        if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values < 0) \
                or np.any(values > _MAX_SIGMA**2):
            raise ValueError(f"{name} must be a 1-D array of finite variances in [0, {_MAX_SIGMA**2:g}], "
                             f"got shape {values.shape} with range [{np.min(values, initial=0):g}, "
                             f"{np.max(values, initial=0):g}]")
        grids.append(values)
    return np.array([[_chi1(activation, math.sqrt(w2), math.sqrt(b2), leaky_slope) for w2 in grids[0]]
                     for b2 in grids[1]])


def critical_sigma_w(activation: str, sigma_b: float = 0.0, leaky_slope: float = 0.01) -> float:
    """σ_w on the edge of chaos (χ₁ = 1) for the given σ_b, by bisection on σ_w ∈ (0, 10].

    tanh at σ_b = 0 gives σ_w = 1 (Poole et al. 2016); math.nan where χ₁ − 1 keeps one sign on (0, 10]
    (sigmoid: its φ′ ≤ 1/4 needs σ_w > 4 and its mean keeps q* large).
    """
    activation, _, sigma_b, leaky_slope = _check(activation, 1.0, sigma_b, leaky_slope)
    lo, hi = 1e-3, 10.0
    if (_chi1(activation, hi, sigma_b, leaky_slope) - 1.0) * (_chi1(activation, lo, sigma_b, leaky_slope) - 1.0) > 0:
        return math.nan
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _chi1(activation, mid, sigma_b, leaky_slope) < 1.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------------------------- live use
# What a dashboard recomputes on every slider step, cached so that dragging reuses one computation.  Pure
# functions of immutable descriptions (no widgets, no plotting): the lab layer calls them, tests call them alone.
MAX_CACHED_PROFILES = 128
_PROFILES = BankCache(size=MAX_CACHED_PROFILES)  # net → MeanFieldProfile or None (the package's one LRU)
_MISSING = object()


def mean_field_applies(net) -> bool:
    """Whether ``predicted_log10_grad`` describes ``net``: a ``vglab.MLP`` with square layers drawn at random and
    no LayerNorm (the theory here omits LayerNorm; width profiles and the constant init are refused)."""
    return isinstance(net, MLP) and net.norm is None and net.widths is None and net.init != "constant"


def cached_mean_field_profile(net) -> MeanFieldProfile | None:
    """``mean_field_profile(net)``, kept for the last ``MAX_CACHED_PROFILES`` networks (least recently used
    dropped first; ``vglab.core.banks.BankCache``), None profiles included.  Thread-safe: a dashboard computes
    slow profiles in a worker thread."""
    profile = _PROFILES.get(net, _MISSING)
    if profile is _MISSING:
        profile = _PROFILES.put(net, mean_field_profile(net))
    return profile


def mean_field_profile_is_cached(net) -> bool:
    """Whether ``cached_mean_field_profile(net)`` would return at once (no computation)."""
    return net in _PROFILES


def cached_predicted_log10_grad(net, log10_output_grad: float = 0.0, reuse_depth: int = 0) -> np.ndarray | None:
    """``predicted_log10_grad(net, log10_output_grad)``, from one cached profile of the deeper net
    ``net.replace(depth=max(reuse_depth, net.depth))``.

    The mean-field quantities of layer l depend on l (through q_l and Q_l), not on the depth, so the profile at
    depth D serves every depth L ≤ D: a depth slider whose maximum is ``reuse_depth`` reuses one computation.
    """
    profile = cached_mean_field_profile(net.replace(depth=max(reuse_depth, net.depth)))
    return None if profile is None else profile.log10_grad(net.depth, log10_output_grad)


def log10_derivative_bound_profile(net, log10_output_grad: float = 0.0) -> np.ndarray | None:
    """log10 (sup|φ′|^(L−l) ‖g‖) for l = 0..L, where sup|φ′| < 1 (sigmoid: 0.25^(L−l)); None otherwise.

    ‖∂L/∂h_l‖ ≤ Π_{k>l} sup|φ′| ‖W_k‖₂ · ‖g‖, so with ‖W_k‖₂ ≤ 1 this bounds ‖∂L/∂h_l‖ for a plain ``vglab.MLP``
    (``log10_derivative_bound`` per l); None for residual or LayerNorm nets, whose chain is not of that form.
    """
    if not isinstance(net, MLP):
        raise ValueError(f"log10_derivative_bound_profile expects a vglab.MLP, got {type(net).__name__}")
    log10_output_grad = _check_log10_output_grad(log10_output_grad)
    sup = sup_derivative(net.activation, net.leaky_slope)
    if sup >= 1.0 or net.residual or net.norm is not None:
        return None
    L = net.depth
    return np.array([log10_derivative_bound(net.activation, L - l, net.leaky_slope)
                     for l in range(L + 1)]) + log10_output_grad


@functools.lru_cache(maxsize=16)
def cached_chi1_grid(activation: str, leaky_slope: float, sigma_w2: tuple, sigma_b2: tuple) -> np.ndarray:
    """``chi1_grid`` for grids given as tuples (hashable), kept for the last 16 (activation, slope, grids)."""
    return chi1_grid(activation, np.array(sigma_w2), np.array(sigma_b2), leaky_slope)


# --------------------------------------------------------------------------------------------- recurrent nets
def pascanu_log10_bound(net, log10_output_grad: float) -> np.ndarray | None:
    """log10 (‖g‖ (γρ)^{T−t}) for t = 0..T, γ = sup|φ′|, where it bounds a vanilla RNN's ‖∂L/∂h_t‖.

    ∂L/∂h_{t−1} = Wᵀ diag(φ′(z_t)) ∂L/∂h_t and ‖Wᵀ diag(φ′)‖₂ ≤ ‖W‖₂ sup|φ′| = ργ, so
    ‖∂L/∂h_t‖ ≤ (γρ)^{T−t} ‖g‖ (Pascanu, Mikolov & Bengio 2013, eq. 7).  Returned only where it shows a
    decay, γρ < 1, for a vanilla cell with W = ρQ (``spectral_radius``; then ‖W‖₂ = ρ exactly); else None.
    log10_output_grad: log10 ‖g‖ (e.g. the mean over seeds of ``log10_activation_grad[:, -1]``).  (T+1,).
    """
    net = _check_rnn(net, "pascanu_log10_bound")
    log10_output_grad = _check_log10_output_grad(log10_output_grad)
    if net.cell != "vanilla" or not net.orthogonal or net.activation == "linear":
        return None
    factor = sup_derivative(net.activation, net.leaky_slope) * net.spectral_radius
    if not 0.0 < factor < 1.0:
        return None
    return log10_output_grad + (net.steps - np.arange(net.steps + 1)) * math.log10(factor)


def linear_rnn_log10_grad(net, log10_output_grad: float) -> np.ndarray | None:
    """log10 (ρ^{T−t} ‖g‖), t = 0..T: exact for a linear RNN with W = ρQ, None for any other network.

    With φ(z) = z, ∂L/∂h_{t−1} = Wᵀ ∂L/∂h_t = ρ Qᵀ ∂L/∂h_t, and Qᵀ preserves norms.  (T+1,).
    """
    net = _check_rnn(net, "linear_rnn_log10_grad")
    log10_output_grad = _check_log10_output_grad(log10_output_grad)
    if net.cell != "vanilla" or not net.orthogonal or net.activation != "linear" or net.spectral_radius <= 0:
        return None
    return log10_output_grad + (net.steps - np.arange(net.steps + 1)) * math.log10(net.spectral_radius)


# --------------------------------------------------------------------------------------------- batch normalization
def batchnorm_gradient_growth(activation: str, batch: int | None = None) -> float:
    """λ: the factor by which E‖∂L/∂H_{l-1}‖² exceeds E‖∂L/∂H_l‖² per layer in a deep plain BatchNorm MLP
    at initialisation, H_l = φ(BN(H_{l-1} W_lᵀ)) (Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz 2019,
    "A Mean Field Theory of Batch Normalization", ICLR 2019); the gradient *norm* grows by √λ per layer.

    linear:  λ = (B − 2)/(B − 3), B > 3 the batch size.  BN's Jacobian (1/s)(I − 11ᵀ/B − yyᵀ/B) keeps
             (B − 2)/(B − 1) of a gradient's square in the batch's centred (B − 1)-dimensional space, and at
             the forward fixed point 1/s² averages (B − 1)/(B − 3) (an inverse χ² with B − 1 degrees of
             freedom, times σ_w² that the weights give back): explosion that vanishes as B → ∞.
    relu:    λ = π/(π − 1) ≈ 1.467 in the limit of large B: ReLU halves the square, He's σ_w² = 2 doubles it,
             and BN divides by the batch variance of W relu(y), σ_w² var relu(y) = 2 · (π − 1)/(2π).
             (Finite-B corrections are not included: ``batch`` is ignored.)
    Conditions: width ≫ B (mean field: infinite width), depth past the first few layers (the batch's Gram
    matrix at its fixed point), BN before φ, no residual connections, no gain/bias (γ = 1, β = 0).
    """
    name = check_choice("activation", activation, ("linear", "relu"))
    if name == "relu":
        return math.pi / (math.pi - 1.0)
    if batch is None:
        raise ValueError("batchnorm_gradient_growth('linear') needs the batch size: batch must be an integer > 3")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch <= 3:
        raise ValueError(f"batch must be an integer > 3, got {batch!r}")
    return (batch - 2.0) / (batch - 3.0)
