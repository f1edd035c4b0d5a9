"""The lab's experiments as pure functions: state → network → result → summary (and the code to copy).

Each dashboard of ``vglab.lab`` shows one experiment.  Its *state* is the plain dict of control values the
dashboard reads (``dashboard.state``: "depth", "activation", "seed", …, exactly those keys); everything a
dashboard computes from it lives here, with no widgets, no figure and no event loop, so it can be run and
tested on its own (``tests/test_experiments.py`` runs it with matplotlib, ipywidgets and IPython unimportable):

    kind         network               experiment → result            summary             code
    gradient     gradient_network      gradient_experiment → GradientView    gradient_summary    gradient_code
    spectrum     gradient_network      spectrum_experiment → SpectrumModel   spectrum_summary    spectrum_code
    recurrent    recurrent_network     recurrent_experiment → SequenceView   recurrent_summary   recurrent_code
    transformer  transformer_network   transformer_experiment → SequenceView transformer_summary transformer_code
    batchnorm    batchnorm_network     batchnorm_experiment → BatchNormView  batchnorm_summary   batchnorm_code
    degradation  (three fixed nets)    degradation_run → dict                degradation_summary degradation_code
    training     training_network      run_training → TrainingHistory        training_summary    training_code

The dashboards only draw these results and schedule the calls (coalescing, worker threads, warm-up).  What a
dashboard knows that is not in its state (a slider's step, the depth slider's maximum, which panels it shows)
comes in as keyword arguments; the one interactive-only part, computing a slow mean-field curve in a worker
thread during a drag, comes in as a callback (``gradient_experiment(..., theory_later=...)``).
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import vglab
from vglab import datasets, theory, training
from vglab.core.config import check_flag
from vglab.core.init import default_weight_std
from vglab.core.validation import check_choice
from vglab.models import batchnorm, convolutional, jacobians, recurrent, transformer

SNAP_TOLERANCE = 1e-9  # σ_w this close to the init's value is that value, when no slider step says otherwise
HISTOGRAM_BATCH, HISTOGRAM_BINS = 16, 60  # inputs and bins behind the histogram panels (layer_distributions)
# Activations whose χ₁ grid is quick to compute (closed forms or Gauss–Hermite at moderate q; ELU's moments
# are erfcx closed forms).  GELU and SiLU need Simpson sums at large q: too slow for a live grid.
PHASE_ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "linear", "elu")
GATED_CELLS = ("lstm", "gru")  # cells with σ gates and tanh: the activation control does not apply
_RNN_DEFAULTS = vglab.RNN()
BATCHNORM_INIT = {"relu": "he", "linear": "xavier", "tanh": "xavier"}  # the no-BN net's critical σ_w
NO_CLIP = 0.0  # the training state's clip_norm for "off" (a Dropdown cannot hold None)


# --------------------------------------------------------------------------------------------- states
_MLP_KEYS = ("depth", "width", "activation", "init", "sigma_w", "residual", "norm", "residual_scale", "leaky_slope")
STATE_KEYS = {  # kind → the keys of its state, exactly (a dashboard's ``state``)
    "gradient": (*_MLP_KEYS, "sigma_b", "seed", "n_seeds", "theory"),
    "recurrent": ("cell", "hidden", "steps", "activation", "spectral_radius", "input_std", "forget_bias", "seed",
                  "n_seeds"),
    "transformer": ("depth", "width", "heads", "seq_len", "residual", "norm", "activation", "weight_std", "seed",
                    "n_seeds"),
    "batchnorm": ("depth", "batch", "activation", "residual"),
    "degradation": ("deep", "steps", "seed"),
    "training": (*_MLP_KEYS, "data", "steps", "optimizer", "learning_rate", "clip_norm", "batch_size", "seed"),
}
_INTEGER_KEYS = {"depth", "width", "seed", "n_seeds", "hidden", "steps", "heads", "seq_len", "batch", "deep",
                 "batch_size"}
_FLAG_KEYS = {"residual", "theory"}
_NAME_KEYS = {"activation", "init", "norm", "cell", "optimizer"}
_OPTIONAL_KEYS = {"sigma_w", "clip_norm"}  # None: the init's own σ_w; no clipping


def check_state(state, kind: str) -> dict:
    """``state`` if it is a ``kind`` state (``STATE_KEYS[kind]``, exactly), else a ValueError naming what was
    expected: a missing key, an unknown one (with a did-you-mean), None where a value is needed, a flag that is
    not True/False, a number that is not one, a name that is not a string.  The ranges and names themselves
    are checked by the model the state builds (``vglab.MLP`` …)."""
    keys = STATE_KEYS[kind]
    if not isinstance(state, dict):
        raise ValueError(f"a {kind} state is a dict with keys {', '.join(keys)}; got {type(state).__name__}")
    missing = [key for key in keys if key not in state]
    if missing:
        raise ValueError(f"the {kind} state lacks {', '.join(map(repr, missing))} "
                         f"(a {kind} state has the keys {', '.join(keys)})")
    for key in state:
        check_choice(f"{kind} state key", key, keys)
    for key, value in state.items():
        if value is None:
            if key in _OPTIONAL_KEYS:
                continue
            raise ValueError(f"{kind} state: {key} is None; it needs a value")
        if key in _FLAG_KEYS:
            check_flag(f"{kind} state: {key}", value)
        elif key in _INTEGER_KEYS:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{kind} state: {key} must be an integer, got {value!r}")
        elif key in _NAME_KEYS:
            if not isinstance(value, str):
                raise ValueError(f"{kind} state: {key} must be a name (a string), got {value!r}")
        elif key != "data" and (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
            raise ValueError(f"{kind} state: {key} must be a number, got {value!r}")
    return state


# --------------------------------------------------------------------------------------------- shared
def tidy(value: float) -> float:
    """A slider's float without its step-grid rounding noise: 1.5000000000000002 → 1.5 (10 significant
    digits)."""
    return float(f"{float(value):.10g}")


def power_text(log10_value: float) -> str:
    """-31.24 → '10^-31.2' (plain text for status lines); -0.04 → '10^0.0', never '10^-0.0'."""
    return f"10^{round(float(log10_value), 1) + 0.0:.1f}"


def counted(count: int, noun: str) -> str:
    """'1 seed', '4 seeds', '1 block', '0 blocks'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def mean_power_text(log10_values, zero_reason: str = "") -> str:
    """The mean over seeds of log10 values, to follow a quantity's name: '≈ 10^-9.4'; seeds whose value is
    exactly 0 (−inf) left out of the mean and counted: '≈ 10^-9.4 (1 of 4 seeds exactly 0: reason)'; every one
    0: '= 0 exactly (reason)'.  ``zero_reason``: why a value can be exactly 0 (``zero_gradient_reason``)."""
    values = np.ravel(np.asarray(log10_values, dtype=float))
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "= 0 exactly" + (f" ({zero_reason})" if zero_reason else "")
    text = f"≈ {power_text(np.mean(finite))}"
    if finite.size < values.size:
        why = f": {zero_reason}" if zero_reason else ""
        text += f" ({values.size - finite.size} of {counted(values.size, 'seed')} exactly 0{why})"
    return text


def snap_weight_std(sigma_w: float | None, init: str, half_step: float | None = None) -> float | None:
    """The ``weight_std`` a σ_w control value means: None (the init's own scale) when σ_w is within half a
    slider step (``half_step``; ``SNAP_TOLERANCE`` without a slider) of ``default_weight_std(init)``, else
    the tidied σ_w.  The slider cannot show √2 exactly, and a browser snaps it to its step grid when it first
    draws, so He's √2 shown as 1.4 stays He's √2."""
    if sigma_w is None:
        return None
    sigma_w = tidy(sigma_w)
    half_step = SNAP_TOLERANCE if half_step is None else half_step
    return None if abs(sigma_w - default_weight_std(init)) <= half_step + 1e-12 else sigma_w


def _half(step: float | None) -> float | None:
    return None if step is None else step / 2


def program_key(net, n_seeds: int) -> tuple:
    """The key of the compiled programs ``vglab.gradient_norms(net, n_seeds=n_seeds)`` runs, as the net's own
    model module states it (``program_key`` of ``vglab.models.jacobians``, ``recurrent``, ``transformer``):
    equal keys run one program; a dashboard announces "compiling" for a key it has not run yet."""
    module = {vglab.MLP: jacobians, vglab.RNN: recurrent, vglab.Transformer: transformer}[type(net)]
    return (type(net).__name__, *module.program_key(net, n_seeds))


# --------------------------------------------------------------------------------------------- gradients
@dataclass(frozen=True)
class GradientView:
    """What a gradient experiment computed for one state.

    norms:  the ``vglab.GradientNorms`` of the network.
    theory: (depth+1,) mean-field log10 √E‖∂L/∂h_l‖² from the measured log10 √(mean over seeds of ‖g‖²), or
            None (LayerNorm nets).  Compare it with ``rms``, not with the typical (mean-log) curve.
    bound:  (depth+1,) log10 of sup|φ′|^(L−l) · ‖g‖, or None where sup|φ′| ≥ 1: the bound on ‖∂L/∂h_l‖ for
            weights with ‖W_k‖₂ ≤ 1 only (random Gaussian layers have ‖W_k‖₂ ≈ 2σ_w; a reference line there).
    theory_pending: the theory is still being computed (only during live drags; see ``gradient_experiment``).
    distributions: per-layer histograms over a batch (``vglab.layer_distributions``) or None.
    """

    norms: vglab.GradientNorms
    theory: np.ndarray | None
    bound: np.ndarray | None
    theory_pending: bool = False  # being computed in the background (a live drag); drawn when ready
    distributions: vglab.LayerDistributions | None = None  # for the histogram panels (seed's batch)

    @property
    def net(self) -> vglab.MLP:
        return self.norms.net

    @property
    def rms(self) -> np.ndarray | None:
        """(depth+1,) log10 √(mean over seeds of ‖∂L/∂h_l‖²), the measured quantity the theory predicts (None
        for one seed, where it is the typical curve itself)."""
        return self.norms.log10_rms_activation_grad if self.norms.n_seeds > 1 else None


def gradient_network(state: dict, *, sigma_w_step: float | None = None) -> vglab.MLP:
    """The ``vglab.MLP`` a gradient state describes (keys depth, width, activation, init, sigma_w, sigma_b,
    residual, norm, residual_scale, leaky_slope); σ_w snapped to the init's value within half of
    ``sigma_w_step`` (``snap_weight_std``)."""
    s = check_state(state, "gradient")
    return vglab.MLP(depth=s["depth"], width=s["width"], activation=s["activation"], init=s["init"],
                     weight_std=snap_weight_std(s["sigma_w"], s["init"], _half(sigma_w_step)),
                     bias_std=tidy(s["sigma_b"]), residual=bool(s["residual"]), norm=s["norm"],
                     residual_scale=tidy(s["residual_scale"]), leaky_slope=tidy(s["leaky_slope"]))


def theory_depth(net: vglab.MLP, max_depth: int | None) -> vglab.MLP:
    """The net whose one mean-field profile serves every depth up to ``max_depth`` (the depth slider's top)."""
    return net.replace(depth=max(max_depth or 0, net.depth))


def gradient_experiment(state: dict, *, sigma_w_step: float | None = None, max_depth: int | None = None,
                        show_bound: bool = True, histograms: bool = False,
                        theory_later: Callable | None = None) -> GradientView:
    """``vglab.gradient_norms`` of ``gradient_network(state)`` for seeds seed..seed+n_seeds−1, with

    - the mean-field curve ``theory.predicted_log10_grad(net, log10 √mean ‖g‖²)`` where ``state["theory"]``
      and it applies, from one cached profile at ``max_depth`` (``theory.cached_predicted_log10_grad``);
      with ``theory_later`` given and that profile not cached yet, ``theory_later(deepest_net)`` is called
      instead (a live dashboard computes it in a worker thread) and the view says ``theory_pending``;
    - the reference log10 sup|φ′|^(L−l)‖g‖ (``theory.log10_derivative_bound_profile``; a bound where
      ‖W_k‖₂ ≤ 1) when ``show_bound``;
    - per-layer histograms over HISTOGRAM_BATCH inputs (``vglab.layer_distributions``) when ``histograms``.
    """
    net = gradient_network(state, sigma_w_step=sigma_w_step)
    norms = vglab.gradient_norms(net, seed=state["seed"], n_seeds=state["n_seeds"])
    log10_g = float(norms.log10_rms_activation_grad[-1])  # theory predicts √E‖δ‖²: start at √mean ‖g‖²
    predicted, pending = None, False
    if state["theory"] and theory.mean_field_applies(net):
        deepest = theory_depth(net, max_depth)
        if theory_later is not None and not theory.mean_field_profile_is_cached(deepest):
            pending = True
            theory_later(deepest)
        else:
            predicted = theory.cached_predicted_log10_grad(net, log10_g, reuse_depth=max_depth or 0)
    bound = theory.log10_derivative_bound_profile(net, log10_g) if show_bound else None
    distributions = gradient_distributions(net, state["seed"]) if histograms else None
    return GradientView(norms, predicted, bound, pending, distributions)


def gradient_distributions(net: vglab.MLP, seed: int) -> vglab.LayerDistributions:
    """Per-layer histograms of the gradient entries, activations and saturation over HISTOGRAM_BATCH inputs."""
    return vglab.layer_distributions(net, seed=seed, batch=HISTOGRAM_BATCH, bins=HISTOGRAM_BINS)


def compute_mean_field(deepest: vglab.MLP) -> None:
    """Compute and cache the mean-field profile of ``deepest`` (slow for saturating nets with large q: seconds);
    what a dashboard's worker thread runs for ``gradient_experiment(..., theory_later=...)``."""
    theory.cached_mean_field_profile(deepest)


def with_theory(view: GradientView, *, max_depth: int | None = None) -> GradientView:
    """A pending view with its mean-field curve filled in (once ``compute_mean_field`` has cached it)."""
    log10_g = float(view.norms.log10_rms_activation_grad[-1])
    predicted = theory.cached_predicted_log10_grad(view.net, log10_g, reuse_depth=max_depth or 0)
    return GradientView(view.norms, predicted, view.bound, distributions=view.distributions)


def warm_gradient(state: dict, *, sigma_w_step: float | None = None, max_depth: int | None = None,
                  at_depth: int | None = None, histograms: bool = False, phase_grid: tuple | None = None) -> None:
    """Compute what a later ``gradient_experiment(state, max_depth=max_depth, …)`` reuses: the weights and
    compiled program at depth ``at_depth`` (None: the state's), the histograms' program, the mean-field profile
    at ``max_depth`` and (``phase_grid`` = (σ_w² values, σ_b² values)) the phase diagram's χ₁ grid."""
    net = gradient_network(state, sigma_w_step=sigma_w_step)
    net = net if at_depth is None else net.replace(depth=at_depth)
    vglab.gradient_norms(net, seed=state["seed"], n_seeds=state["n_seeds"])
    if histograms:
        gradient_distributions(net, state["seed"])
    if state["theory"] and theory.mean_field_applies(net):
        theory.cached_mean_field_profile(theory_depth(net, max_depth))
    if phase_grid is not None and net.activation in PHASE_ACTIVATIONS:
        theory.cached_chi1_grid(net.activation, net.leaky_slope, tuple(phase_grid[0]), tuple(phase_grid[1]))


@dataclass(frozen=True)
class PhasePoint:
    """The order/chaos diagram of a net: grid (len σ_b², len σ_w²) of χ₁ or None (not computed for this
    activation), the net's (σ_w², σ_b²), a note on what the diagram does not show, and χ₁ at the net."""

    grid: np.ndarray | None
    sigma_w2: float
    sigma_b2: float
    note: str
    chi1: float


def phase_point(net: vglab.MLP, sigma_w2, sigma_b2, *, grid: bool = True) -> PhasePoint:
    """χ₁ = σ_w² E[φ′(√q* u)²] over the grid σ_w2 × σ_b2 (``theory.cached_chi1_grid``; skipped with
    ``grid=False``) and at the net itself (``theory.chi1``; Schoenholz et al. 2017)."""
    available = net.activation in PHASE_ACTIVATIONS
    values = (theory.cached_chi1_grid(net.activation, net.leaky_slope, tuple(sigma_w2), tuple(sigma_b2))
              if grid and available else None)
    if not available:
        note = f"phase diagram not computed for {net.activation}"
    elif net.residual or net.norm is not None:
        note = "diagram: plain net (no skip, no LayerNorm)"
    else:
        note = ""
    chi = theory.chi1(net.activation, net.sigma_w, net.bias_std, net.leaky_slope)
    return PhasePoint(values, net.sigma_w**2, net.bias_std**2, note, chi)


def zero_gradient_reason(norms) -> str:
    """Why an MLP's ‖∂L/∂h_l‖ is exactly 0 for some seed, for the summary and the ▼ note.  δ_{l−1} =
    W_lᵀ D_l δ_l (D_l = diag φ′(z_l)) is 0 when W_l = 0 (σ_w = 0 without a skip connection, whose identity
    would carry δ on) or when D_l = 0: every unit of layer l inactive (φ′ = 0, a ReLU's flat side) for that
    seed's input.  "" when neither is the case."""
    net = norms.net
    if getattr(net, "sigma_w", None) == 0.0 and not getattr(net, "residual", False):
        return "σ_w = 0: every weight is 0"
    dead = getattr(norms, "dead_fraction", None)
    if dead is not None and np.any(np.asarray(dead) == 1.0):
        return "every unit of a layer inactive"
    return ""


def gradient_summary(view: GradientView) -> str:
    """'depth 50, tanh: ‖∂L/∂h₀‖/‖∂L/∂h_L‖ ≈ 10^-1.1': the mean over seeds of log10 of the ratio (seeds
    whose ratio is exactly 0 left out, counted and explained: ``mean_power_text``)."""
    ratio = mean_power_text(view.norms.log10_gradient_ratio, zero_gradient_reason(view.norms))
    pending = " (theory: computing…)" if view.theory_pending else ""
    return f"depth {view.net.depth}, {view.net.activation}: ‖∂L/∂h₀‖/‖∂L/∂h_L‖ {ratio}{pending}"


def gradient_code(state: dict, *, sigma_w_step: float | None = None) -> str:
    """The vglab calls that reproduce ``gradient_experiment(state)``'s norms (and its theory curve)."""
    net = gradient_network(state, sigma_w_step=sigma_w_step)
    lines = ["import vglab", f"net = {net.to_code()}",
             f"result = vglab.gradient_norms(net, seed={state['seed']}, n_seeds={state['n_seeds']})"]
    if state["theory"] and theory.mean_field_applies(net):
        lines.append("rms = result.log10_rms_activation_grad  # √(mean over seeds of ‖δ_l‖²)\n"
                     "theory = vglab.theory.predicted_log10_grad(net, log10_output_grad=rms[-1])")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- spectra
def spectrum_experiment(state: dict, *, sigma_w_step: float | None = None, max_depth: int | None = None):
    """``vglab.jacobian_spectrum`` of ``gradient_network(state)`` (one network, ``state["seed"]``): the
    singular values of ∂h_L/∂h_0.  With ``max_depth``, the net at that depth instead (a warm-up)."""
    net = gradient_network(state, sigma_w_step=sigma_w_step)
    return vglab.jacobian_spectrum(net if max_depth is None else net.replace(depth=max_depth),
                                   seed=state["seed"])


def spectrum_summary(spectrum) -> str:
    """σ_max and σ_min as powers of ten, or the rank when some σ are exactly 0."""
    values = spectrum.log10_singular_values
    finite = values[np.isfinite(values)]
    text = f"depth {spectrum.net.depth}, {spectrum.net.activation}, {spectrum.net.init}: "
    if finite.size == 0:
        return text + "every singular value exactly 0"
    zeros = values.size - finite.size
    if zeros:  # σ_min is 0: the rank, not a ratio over the nonzero values only
        return text + (f"rank {finite.size} of {values.size} ({zeros} σ exactly 0), "
                       f"σ_max = {power_text(finite[0])}")
    return text + f"σ_max = {power_text(finite[0])}, σ_min = {power_text(finite[-1])}"


def spectrum_code(state: dict, *, sigma_w_step: float | None = None) -> str:
    """The vglab calls that reproduce ``spectrum_experiment(state)``."""
    return "\n".join(["import vglab", f"net = {gradient_network(state, sigma_w_step=sigma_w_step).to_code()}",
                      f"spectrum = vglab.jacobian_spectrum(net, seed={state['seed']})"])


# --------------------------------------------------------------------------------------------- sequences
@dataclass(frozen=True)
class SequenceView:
    """What a sequence experiment computed for one state.

    norms:  ``RecurrentGradientNorms`` or ``TransformerGradientNorms`` (``log10_gradient_ratio`` etc.).
    theory: (n,) exact closed form (linear RNN: ρ^{T−t}‖g‖) or None.
    bound:  (n,) Pascanu bound (γρ)^{T−t}‖g‖ or None.
    log10_rms: (n_seeds, depth+1) transformer only: log10 RMS(h_l), l = 0..depth (h_0 the input tokens).
    """

    norms: object
    theory: np.ndarray | None = None
    bound: np.ndarray | None = None
    log10_rms: np.ndarray | None = None

    @property
    def net(self):
        return self.norms.net


def recurrent_network(state: dict) -> vglab.RNN:
    """The ``vglab.RNN`` a recurrent state describes (keys cell, hidden, steps, activation, spectral_radius,
    input_std, forget_bias).  The gated cells ignore ``activation`` and the vanilla cell ``forget_bias``
    (the LSTM's forget bias, the GRU's update bias), so changing them there is no new network."""
    s = check_state(state, "recurrent")
    lstm, gru = s["cell"] == "lstm", s["cell"] == "gru"
    return vglab.RNN(cell=s["cell"], hidden=s["hidden"], steps=s["steps"],
                     activation="tanh" if s["cell"] in GATED_CELLS else s["activation"],
                     spectral_radius=tidy(s["spectral_radius"]), input_std=tidy(s["input_std"]),
                     forget_bias=tidy(s["forget_bias"]) if lstm else _RNN_DEFAULTS.forget_bias,
                     update_bias=tidy(s["forget_bias"]) if gru else _RNN_DEFAULTS.update_bias)


def recurrent_experiment(state: dict, *, max_steps: int | None = None) -> SequenceView:
    """``vglab.gradient_norms`` of ``recurrent_network(state)`` with the linear RNN's exact ρ^{T−t}‖g‖
    (``theory.linear_rnn_log10_grad``) and the Pascanu bound (``theory.pascanu_log10_bound``), both from the
    mean over seeds of log10 ‖g‖.  ``max_steps``: the inputs are drawn for that many steps first
    (``recurrent.reserve``), so every shorter unroll runs the same compiled program."""
    net = recurrent_network(state)
    recurrent.reserve(net.replace(steps=max(max_steps or 0, net.steps)), state["seed"], state["n_seeds"])
    norms = vglab.gradient_norms(net, seed=state["seed"], n_seeds=state["n_seeds"])
    log10_g = float(np.mean(norms.log10_activation_grad[:, -1]))
    return SequenceView(norms, theory.linear_rnn_log10_grad(net, log10_g), theory.pascanu_log10_bound(net, log10_g))


def recurrent_zero_reason(net: vglab.RNN) -> str:
    """Why a recurrent ‖∂L/∂h_t‖ is exactly 0: δ_{t−1} = Wᵀ D_t δ_t with W = ρQ is 0 for ρ = 0, or where every
    unit's φ′ is 0 at some step (D_t = 0: a ReLU cell)."""
    return "ρ = 0: W = 0" if net.spectral_radius == 0 else "every unit's φ′ = 0 at some step"


def recurrent_summary(view: SequenceView) -> str:
    """The cell, ‖∂L/∂h₀‖/‖∂L/∂h_T‖ (mean of log10 over seeds) and, for gated cells, the cell-state ratio and
    mean gates."""
    net, norms = view.net, view.norms
    text = f"T = {net.steps}, {net.cell}"
    if net.cell == "lstm":
        text += f" (b_f = {net.forget_bias:g}, ρ = {net.spectral_radius:g})"
    elif net.cell == "gru":
        text += f" (b_u = {net.update_bias:g}, ρ = {net.spectral_radius:g})"
    else:
        text += f" {net.activation}, ρ = {net.spectral_radius:g}"
    text += f": ‖∂L/∂h₀‖/‖∂L/∂h_T‖ {mean_power_text(norms.log10_gradient_ratio, recurrent_zero_reason(net))}"
    if norms.log10_cell_grad is not None:
        cell = norms.log10_cell_grad[:, 0] - norms.log10_activation_grad[:, -1]
        text += (f", ‖∂L/∂c₀‖/‖∂L/∂h_T‖ {mean_power_text(cell)}, "
                 f"mean forget gate {np.mean(norms.forget_gate_mean):.2f}")
    if norms.update_gate_mean is not None:
        text += f", mean update gate {np.mean(norms.update_gate_mean):.2f}"
    return text


def recurrent_code(state: dict) -> str:
    """The vglab calls that reproduce ``recurrent_experiment(state)`` (norms, and its closed form or bound)."""
    net = recurrent_network(state)
    lines = ["import vglab", f"net = {net.to_code()}",
             f"result = vglab.gradient_norms(net, seed={state['seed']}, n_seeds={state['n_seeds']})"]
    reference = ("theory", "linear_rnn_log10_grad") if theory.linear_rnn_log10_grad(net, 0.0) is not None else (
        ("bound", "pascanu_log10_bound") if theory.pascanu_log10_bound(net, 0.0) is not None else None)
    if reference:
        lines.append(f"{reference[0]} = vglab.theory.{reference[1]}(\n"
                     "    net, result.log10_activation_grad[:, -1].mean())")
    return "\n".join(lines)


def transformer_network(state: dict) -> vglab.Transformer:
    """The ``vglab.Transformer`` a transformer state describes (keys depth, width, heads, seq_len, residual,
    norm, activation, weight_std; norm "none" → None)."""
    s = check_state(state, "transformer")
    norm = None if s["norm"] == "none" else s["norm"]
    return vglab.Transformer(depth=s["depth"], width=s["width"], heads=s["heads"], seq_len=s["seq_len"],
                             residual=bool(s["residual"]), norm=norm, activation=s["activation"],
                             weight_std=tidy(s["weight_std"]))


def transformer_experiment(state: dict, *, max_depth: int | None = None) -> SequenceView:
    """``vglab.gradient_norms`` of ``transformer_network(state)`` and the stream's log10 RMS(h_l) for
    l = 0..depth.  ``max_depth``: the blocks are drawn for that depth first (``transformer.reserve``), so
    every shallower stack runs the same compiled program."""
    net = transformer_network(state)
    transformer.reserve(net.replace(depth=max(max_depth or 0, net.depth)), state["seed"], state["n_seeds"])
    norms = vglab.gradient_norms(net, seed=state["seed"], n_seeds=state["n_seeds"])
    log10_rms = np.concatenate([norms.log10_input_rms[:, None], norms.log10_activation_rms], axis=1)
    return SequenceView(norms, log10_rms=log10_rms)


def transformer_summary(view: SequenceView) -> str:
    """‖∂L/∂h₀‖/‖∂L/∂h_L‖ (mean over seeds of log10) and where below the output the gradient, relative to the
    output's, is smallest (mean over seeds of log10 ‖∂L/∂h_l‖/‖∂L/∂h_L‖, l < L; h₀ is the input, h_l the stream
    after block l), or how many seeds have an exactly 0 gradient somewhere."""
    net, grads = view.net, view.norms.log10_activation_grad
    setting = ("residual" if net.residual else "no residual") + ", " + (
        f"{net.norm}-LN" if net.norm else "no LayerNorm")
    text = (f"{counted(net.depth, 'block')}, {setting}, {net.activation}: ‖∂L/∂h₀‖/‖∂L/∂h_L‖ "
            f"{mean_power_text(view.norms.log10_gradient_ratio)}")
    relative = grads[:, :-1] - grads[:, -1:]
    zero_seeds = int(np.isneginf(relative).any(axis=1).sum())
    if zero_seeds:
        return text + f"; exactly 0 below the output in {zero_seeds} of {counted(grads.shape[0], 'seed')}"
    mean = np.mean(relative, axis=0)
    lowest = int(np.argmin(mean))
    if mean[lowest] >= 0:
        return text + "; every h_l at least the output's"
    where = "the input h₀" if lowest == 0 else f"h_{lowest} (after block {lowest})"
    return text + f"; smallest at {where}: {power_text(mean[lowest])} of the output's"


def transformer_code(state: dict) -> str:
    """The vglab calls that reproduce ``transformer_experiment(state)``'s norms."""
    return "\n".join(["import vglab", f"net = {transformer_network(state).to_code()}",
                      f"result = vglab.gradient_norms(net, seed={state['seed']}, "
                      f"n_seeds={state['n_seeds']})"])


# --------------------------------------------------------------------------------------------- BatchNorm
@dataclass(frozen=True)
class BatchNormView:
    """bn, plain: ``vglab.GradientNorms`` of the BN net and of the same net without BN; theory: (depth+1,)
    predicted log10 √E‖∂L/∂H_l‖² or None (``batchnorm.predicted_log10_grad``)."""

    bn: vglab.GradientNorms
    plain: vglab.GradientNorms
    theory: np.ndarray | None

    @property
    def norms(self) -> vglab.GradientNorms:
        """The BN net's result (what a GradientView calls ``norms``)."""
        return self.bn


def batchnorm_network(state: dict, *, width: int) -> batchnorm.BatchNormMLP:
    """The ``BatchNormMLP`` a BatchNorm state describes (keys depth, batch, activation, residual), σ_w the
    no-BN net's critical one (``BATCHNORM_INIT``: He for ReLU, Xavier otherwise)."""
    s = check_state(state, "batchnorm")
    activation = check_choice("activation for the BatchNorm lesson", s["activation"], BATCHNORM_INIT)
    return batchnorm.BatchNormMLP(depth=s["depth"], width=width, batch=s["batch"], activation=activation,
                                  residual=bool(s["residual"]), init=BATCHNORM_INIT[activation])


def batchnorm_experiment(state: dict, *, width: int, n_seeds: int) -> BatchNormView:
    """``vglab.gradient_norms`` (seed 0, ``n_seeds`` seeds) of the BN net and of the same net without BN
    (``batchnorm.without_batchnorm``), and Yang et al. 2019's √λ-per-layer prediction from the BN net's
    typical output gradient (``batchnorm.predicted_log10_grad``)."""
    net = batchnorm_network(state, width=width)
    bn = vglab.gradient_norms(net, seed=0, n_seeds=n_seeds)
    plain = vglab.gradient_norms(batchnorm.without_batchnorm(net), seed=0, n_seeds=n_seeds)
    return BatchNormView(bn, plain, batchnorm.predicted_log10_grad(net, bn.log10_typical_activation_grad[-1]))


def batchnorm_rms(norms: vglab.GradientNorms) -> np.ndarray:
    """(depth,) the mean over seeds of log10 RMS(H_l)."""
    return np.mean(norms.log10_activation_rms, axis=0)


def batchnorm_summary(view: BatchNormView) -> str:
    """The mean over seeds of log10 ‖∂L/∂H_0‖/‖∂L/∂H_L‖ with and without BN (``mean_power_text``)."""
    bn, plain = (mean_power_text(v.log10_gradient_ratio, zero_gradient_reason(v)) for v in (view.bn, view.plain))
    return (f"‖∂L/∂H_0‖/‖∂L/∂H_L‖ with BN {bn}, without {plain} "
            f"(mean over {counted(view.bn.n_seeds, 'seed')} of log10)")


def batchnorm_code(state: dict, *, width: int, n_seeds: int) -> str:
    """The vglab calls that reproduce ``batchnorm_experiment(state)``'s BN-net norms."""
    return ("import vglab\n"
            f"net = {batchnorm_network(state, width=width).to_code()}\n"
            f"result = vglab.gradient_norms(net, seed=0, n_seeds={n_seeds})")


# --------------------------------------------------------------------------------------------- degradation
def degradation_run(state: dict) -> dict:
    """``convolutional.degradation_experiment(deep, steps, seed)``: label → (ConvTrainingHistory, log10
    ‖∂L/∂h_l‖ at initialisation) for a shallow plain, a deep plain and a deep residual net (cached per key)."""
    s = check_state(state, "degradation")
    return convolutional.degradation_experiment(s["deep"], s["steps"], s["seed"])


def degradation_summary(result: dict) -> str:
    """Each net's final training loss on the whole training split."""
    return " · ".join(f"{label}: train loss {h.train_loss:.3f}" for label, (h, _) in result.items())


def degradation_code(state: dict) -> str:
    """The call that reproduces ``degradation_run(state)``."""
    state = check_state(state, "degradation")
    return ("from vglab.models import convolutional\n"
            f"runs = convolutional.degradation_experiment(deep={state['deep']}, steps={state['steps']}, "
            f"seed={state['seed']})")


def smoothed_log10(loss: np.ndarray, window: int = 20) -> np.ndarray:
    """log10 of the running mean of the batch loss over the last ``window`` steps (fewer at the start)."""
    cumulative = np.cumsum(np.concatenate([[0.0], loss]))
    steps = np.arange(1, loss.size + 1)
    start = np.maximum(steps - window, 0)
    return np.log10((cumulative[steps] - cumulative[start]) / (steps - start))


# --------------------------------------------------------------------------------------------- training
PROGRESS_UPDATES = 50  # progress reports per run, at most
_RECORDED = ("loss", "accuracy", "log10_grad_norms", "log10_global_grad_norm", "update_ratio",
             "dead_fraction", "clipped")


@dataclass(frozen=True)
class TrainingView:
    """What a training experiment shows: the history of a run (complete, stopped, diverged, or still running)."""

    history: vglab.TrainingHistory
    running: bool = False  # a partial history of a run that goes on in the background

    @property
    def net(self) -> vglab.MLP:
        return self.history.net


def training_network(state: dict, *, sigma_w_step: float | None = None) -> vglab.MLP:
    """The ``vglab.MLP`` a training state describes (keys depth, width, activation, init, sigma_w, residual,
    norm, residual_scale, leaky_slope; σ_w snapped as in ``snap_weight_std``)."""
    s = check_state(state, "training")
    return vglab.MLP(depth=s["depth"], width=s["width"], activation=s["activation"], init=s["init"],
                     weight_std=snap_weight_std(s["sigma_w"], s["init"], _half(sigma_w_step)),
                     residual=bool(s["residual"]), norm=s["norm"], residual_scale=tidy(s["residual_scale"]),
                     leaky_slope=tidy(s["leaky_slope"]))


def training_arguments(state: dict, *, sigma_w_step: float | None = None) -> dict:
    """The keyword arguments of ``vglab.train`` for a training state (``eval_every`` spelled out: 20
    evaluations a run; clip_norm ``NO_CLIP``/None: no clipping)."""
    net = training_network(state, sigma_w_step=sigma_w_step)  # checks the state
    s = state
    clip = None if s["clip_norm"] in (None, NO_CLIP) else tidy(s["clip_norm"])
    return dict(net=net, data=s["data"], steps=s["steps"],
                optimizer=s["optimizer"], learning_rate=tidy(s["learning_rate"]), clip_norm=clip,
                batch_size=s["batch_size"], seed=s["seed"], eval_every=max(1, s["steps"] // 20))


def partial_history(run: dict, records: dict, evals: dict) -> vglab.TrainingHistory:
    """A TrainingHistory of the steps a ``vglab.train`` callback has seen so far (test_loss not reported:
    NaN).  run: ``training_arguments``; records: name → list of per-step metrics; evals: steps, accuracy."""
    depth = run["net"].depth

    def stacked(name, shape, dtype=np.float64):
        values = records[name]
        return np.asarray(values, dtype).reshape((len(values),) + shape)

    return vglab.TrainingHistory(
        net=run["net"], data=run["data"] if isinstance(run["data"], str) else datasets.CUSTOM, steps=run["steps"],
        optimizer=run["optimizer"], learning_rate=run["learning_rate"], clip_norm=run["clip_norm"],
        batch_size=run["batch_size"], seed=run["seed"], loss=stacked("loss", ()),
        accuracy=stacked("accuracy", ()), log10_grad_norms=stacked("log10_grad_norms", (depth,)),
        log10_global_grad_norm=stacked("log10_global_grad_norm", ()),
        update_ratio=stacked("update_ratio", (depth,)), dead_fraction=stacked("dead_fraction", (depth,)),
        clipped=stacked("clipped", (), bool), eval_steps=np.asarray(evals["steps"], np.int64),
        test_loss=np.full(len(evals["steps"]), np.nan), test_accuracy=np.asarray(evals["accuracy"], float))


def run_training(run: dict, *, report: Callable | None = None, partial: Callable | None = None,
                 should_stop: Callable | None = None, partial_seconds: float = 0.5) -> vglab.TrainingHistory:
    """``vglab.train(**run)`` (``run`` from ``training_arguments``) with live hooks: ``report(done, steps)``
    at most PROGRESS_UPDATES times, ``partial(history so far)`` every ``partial_seconds``, and the run ends
    after the step where ``should_stop()`` is true (its history kept: ``history.interrupted``)."""
    steps = run["steps"]
    records = {name: [] for name in _RECORDED}
    evals = {"steps": [], "accuracy": []}
    every = max(1, steps // PROGRESS_UPDATES)
    last_draw = [time.perf_counter()]
    report = report or (lambda done, total: None)

    def callback(step, metrics):
        if partial is not None:
            for name in _RECORDED:
                records[name].append(metrics[name])
            if "test_accuracy" in metrics:
                evals["steps"].append(step)
                evals["accuracy"].append(metrics["test_accuracy"])
            now = time.perf_counter()
            if now - last_draw[0] >= partial_seconds:
                last_draw[0] = now
                partial(partial_history(run, records, evals))
        if step % every == 0 or step == steps - 1:
            report(step + 1, steps)
        if should_stop is not None and should_stop():
            raise KeyboardInterrupt  # vglab.train ends the run and returns the history so far

    report(0, steps)
    history = vglab.train(**run, callback=callback)
    report(history.steps_completed, steps)
    return history


def warm_training(state: dict, *, sigma_w_step: float | None = None) -> None:
    """One training step of the state's run: compiles its initialisation, step and evaluation."""
    vglab.train(**{**training_arguments(state, sigma_w_step=sigma_w_step), "steps": 1, "eval_every": 1})


def end_step(history) -> float | None:
    """Where a training curve ends early: the diverged step, or half a step after the last of a stopped run."""
    if history.diverged:
        return float(history.diverged_at_step)
    if history.interrupted:
        return history.steps_completed - 0.5
    return None


def end_note(history, running: bool = False) -> str:
    """Why a run ended before its steps (diverged, stopped), or that it is still running."""
    if history.diverged:
        return (f"diverged at step {history.diverged_at_step}: non-finite loss/gradient detected, "
                "update not applied")
    if history.interrupted:
        return f"stopped after {history.steps_completed} of {history.steps} steps (history kept)"
    if running:
        return f"training… {history.steps_completed}/{history.steps}"
    return ""


def training_log10_loss(history) -> np.ndarray:
    """log10 of each step's training loss (−inf for an exact 0, without a warning)."""
    with np.errstate(divide="ignore"):
        return np.log10(history.loss)


def training_summary(view: TrainingView, *, stale: bool = False) -> str:
    """Steps done, loss first → last, the update-to-weight ratio of the first and last layer (mean over steps
    of log10, ``training.profile_statistics``), test accuracy, clipped share, how the run ended; ``stale``:
    the settings changed since."""
    h = view.history
    text = f"depth {h.net.depth}, {h.net.activation}, {h.optimizer} lr {h.learning_rate:g}"
    if h.clip_norm is not None:
        text += f", clip {h.clip_norm:g}"
    text += f": {h.steps_completed}/{h.steps} steps"
    if h.steps_completed:
        text += f", loss {h.loss[0]:.3g} → {h.loss[-1]:.3g}"
        mean_ratio = training.profile_statistics(h.log10_update_ratio)[0]
        if np.isfinite(mean_ratio[[0, -1]]).all():
            text += (f", update ratio first/last layer {power_text(mean_ratio[0])}"
                     f"/{power_text(mean_ratio[-1])}")
    if h.test_accuracy.size:
        text += f", test accuracy {h.test_accuracy[-1]:.2f}"
    if h.clip_norm is not None and h.steps_completed:
        text += f", {100 * h.clipped.mean():.0f}% of steps clipped"
    note = end_note(h, view.running)
    if note:
        text += f" · {note}"
    if stale:
        text += " · settings changed: press Train"
    return text


def training_code(state: dict, *, sigma_w_step: float | None = None, shown=None) -> str:
    """The ``vglab.train`` call whose history gives the plotted run; ``shown``: the history on screen for
    this state (a stopped run is the same call with ``steps`` = the steps it completed)."""
    run = training_arguments(state, sigma_w_step=sigma_w_step)
    lines = ["import vglab", f"net = {run.pop('net').to_code()}"]
    if shown is not None and shown.interrupted:
        lines.append(f"# stopped after {shown.steps_completed} of {run['steps']} steps: the same run, "
                     "that many steps")
        run["steps"] = shown.steps_completed
        run["eval_every"] = min(run["eval_every"], shown.steps_completed)
    arguments = ", ".join(f"{k}={v!r}" for k, v in run.items() if k != "clip_norm" or v is not None)
    lines.append(f"history = vglab.train(net, {arguments})")
    return "\n".join(lines)
