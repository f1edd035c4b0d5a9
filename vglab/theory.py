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
saturated tails above), with closed forms for the piecewise-linear activations.

References: Poole, Lahiri, Raghu, Sohl-Dickstein & Ganguli 2016, "Exponential expressivity in deep neural
networks through transient chaos"; Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, "Deep information
propagation"; Glorot & Bengio 2010; He, Zhang, Ren & Sun 2015.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from vglab._validation import check_choice, check_float, check_int
from vglab.activations import ACTIVATIONS, sup_derivative

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(161)
_WEIGHTS = _WEIGHTS / math.sqrt(2.0 * math.pi)
_Q_INFINITE = 1e12  # a length map that has not converged by this variance diverges (no finite q*)


def _phi_np(name, x, slope):
    if name == "sigmoid":
        return special.expit(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "gelu":
        return x * special.ndtr(x)
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
}
_SIMPSON_STEP = 0.005


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


def mean_square_activation(activation: str, q: float, leaky_slope: float = 0.01) -> float:
    """E_{u~N(0,1)}[φ(√q u)²]."""
    gain = _piecewise_linear_gain(activation, leaky_slope)
    if gain is not None:
        return gain * q
    return _gaussian_mean_square(activation, "phi", q, leaky_slope)


def mean_square_derivative(activation: str, q: float, leaky_slope: float = 0.01) -> float:
    """E_{u~N(0,1)}[φ′(√q u)²]."""
    gain = _piecewise_linear_gain(activation, leaky_slope)
    if gain is not None:
        return gain
    return _gaussian_mean_square(activation, "dphi", q, leaky_slope)


def _check(activation, sigma_w, sigma_b):
    check_choice("activation", activation, ACTIVATIONS)
    check_float("sigma_w", sigma_w, 0.0, 100.0)
    check_float("sigma_b", sigma_b, 0.0, 100.0)


def length_map(q: float, activation: str, sigma_w: float, sigma_b: float, leaky_slope: float = 0.01) -> float:
    """q ↦ σ_w² E[φ(√q u)²] + σ_b², the pre-activation variance of the next layer."""
    return sigma_w**2 * mean_square_activation(activation, q, leaky_slope) + sigma_b**2


def q_star(activation: str, sigma_w: float, sigma_b: float = 0.0, leaky_slope: float = 0.01,
           q0: float = 1.0, tol: float = 1e-12, max_iter: int = 10_000) -> float:
    """The fixed point q* = σ_w² E[φ(√q* u)²] + σ_b² reached from q0 (math.inf where the map diverges)."""
    _check(activation, sigma_w, sigma_b)
    q = float(q0)
    for _ in range(max_iter):
        q_next = length_map(q, activation, sigma_w, sigma_b, leaky_slope)
        if q_next > _Q_INFINITE:
            return math.inf
        if abs(q_next - q) <= tol * max(1.0, q):
            return q_next
        q = q_next
    return q


def chi(q: float, activation: str, sigma_w: float, leaky_slope: float = 0.01) -> float:
    """χ(q) = σ_w² E[φ′(√q u)²], the expected factor of ‖∂L/∂h‖² across one layer with input variance q."""
    return sigma_w**2 * mean_square_derivative(activation, min(q, _Q_INFINITE), leaky_slope)


def chi1(activation: str, sigma_w: float, sigma_b: float = 0.0, leaky_slope: float = 0.01) -> float:
    """χ₁ = σ_w² E[φ′(√q* u)²]: below 1 gradients vanish, above 1 they explode (Schoenholz et al. 2017)."""
    return chi(q_star(activation, sigma_w, sigma_b, leaky_slope), activation, sigma_w, leaky_slope)


def depth_scale(activation: str, sigma_w: float, sigma_b: float = 0.0, leaky_slope: float = 0.01) -> float:
    """ξ = 1/|log χ₁|: the number of layers over which E‖∂L/∂h‖² changes by a factor e (∞ at χ₁ = 1)."""
    log_chi = math.log(chi1(activation, sigma_w, sigma_b, leaky_slope))
    return math.inf if log_chi == 0.0 else 1.0 / abs(log_chi)


def log10_derivative_bound(activation: str, depth: int, leaky_slope: float = 0.01) -> float:
    """log10 of the closed-form factor sup|φ′|^L (0.25^L for sigmoid: 0.25^10 ≈ 9.5e-7).

    ‖∂L/∂h_0‖ ≤ Π_l sup|φ′| ‖W_l‖₂ · ‖g‖, so with ‖W_l‖₂ ≤ 1 the gradient is at most sup|φ′|^L ‖g‖.
    """
    check_int("depth", depth, 0, 10**9)
    return depth * math.log10(sup_derivative(activation, leaky_slope))


def predicted_log10_grad(net, log10_output_grad: float = 0.0) -> np.ndarray | None:
    """Mean-field prediction of log10 √E‖∂L/∂h_l‖², l = 0..depth, for ``net`` (a ``vglab.MLP``).

    Starts from log10 ‖g‖ = ``log10_output_grad`` at l = depth and multiplies by √χ(q_l) per layer
    (plain) or √(1 + α² χ(q_l)) (residual).  Returns None for LayerNorm nets, which this theory omits.
    """
    if net.norm is not None:
        return None
    sw, sb, a, act = net.sigma_w, net.bias_std, net.residual_scale, net.activation
    factors = np.empty(net.depth)
    second_moment = 1.0  # E h_0² for x ~ N(0, I)
    for l in range(net.depth):
        q = sw**2 * second_moment + sb**2
        c = chi(q, act, sw, net.leaky_slope)
        ms = mean_square_activation(act, min(q, _Q_INFINITE), net.leaky_slope)
        if net.residual:
            factors[l] = 1.0 + a * a * c
            second_moment = second_moment + a * a * ms
        else:
            factors[l] = c
            second_moment = ms
        second_moment = min(second_moment, _Q_INFINITE)
    log10_factors = 0.5 * np.log10(factors)
    # ‖∂L/∂h_l‖ for l = 0..depth: the output value plus the factors of layers l+1..depth.
    tail_sums = np.concatenate([np.cumsum(log10_factors[::-1])[::-1], [0.0]])
    return log10_output_grad + tail_sums


def chi1_grid(activation: str, sigma_w2: np.ndarray, sigma_b2: np.ndarray, leaky_slope: float = 0.01):
    """χ₁ on a grid of (σ_w², σ_b²) (shape (len(sigma_b2), len(sigma_w2))), for the order/chaos diagram."""
    return np.array([[chi1(activation, math.sqrt(w2), math.sqrt(b2), leaky_slope) for w2 in sigma_w2]
                     for b2 in sigma_b2])


def critical_sigma_w(activation: str, sigma_b: float = 0.0, leaky_slope: float = 0.01) -> float:
    """σ_w on the edge of chaos (χ₁ = 1) for the given σ_b, by bisection on σ_w ∈ (0, 10]."""
    lo, hi = 1e-3, 10.0
    if (chi1(activation, hi, sigma_b, leaky_slope) - 1.0) * (chi1(activation, lo, sigma_b, leaky_slope) - 1.0) > 0:
        return math.nan
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if chi1(activation, mid, sigma_b, leaky_slope) < 1.0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
