"""Live dashboards for sequence models: gradients through time (RNN, LSTM) and through transformer blocks.

Both are ``vglab.lab.dashboards.Dashboard`` subclasses (latest-value-only updates, in-place redraw, status line,
code, save, errors: see that module) over the engines ``vglab.RNN`` and ``vglab.Transformer``:

    RecurrentDashboard    log10 ‖∂L/∂h_t‖ for t = 0..T (and, for the LSTM, the cell-state gradient
                          log10 ‖∂L/∂c_t‖ beside it), with the Pascanu bound (sup|φ′|·ρ)^{T−t}‖g‖ or, for a
                          linear RNN, the exact ρ^{T−t}‖g‖ drawn over the measurement.
    TransformerDashboard  log10 ‖∂L/∂h_l‖ for the outputs h_l of blocks l = 0..depth, and the stream's
                          log10 RMS(h_l) beside it.

The recurrent weight is W = ρ·Q with Q Haar orthogonal (``vglab.RNN(spectral_radius=ρ)``), so every singular
value of W is ρ and ‖W‖₂ = ρ exactly: the bound below is drawn with the true ‖W‖₂, not an estimate.

The experiments (network, result, summary, code) are ``vglab.experiments``' recurrent_* and transformer_*
functions; these classes draw them.  Sliders never recompile: before each computation the experiment asks the
engine for its cached draws at the slider's maximum (``recurrent.reserve`` for ``max_steps`` steps,
``transformer.reserve`` for ``max_depth`` blocks), so the compiled program always sees the same array
shapes and the number of steps or blocks is only a dynamic trip count.  A new width, hidden size, cell,
activation, residual or norm setting compiles once (a few seconds for a transformer); the status line says
so while it happens.

CSS classes and status attributes (for tests and the browser suite): the root has ``vglab-dashboard`` and
``vglab-recurrent-dashboard`` / ``vglab-transformer-dashboard``; controls ``vglab-control-cell``, ``-steps``,
``-hidden``, ``-activation``, ``-spectral-radius``, ``-forget-bias``, ``-seed`` and ``-depth``, ``-width``,
``-residual``, ``-norm``; the status text carries ``data-update`` and ``data-<control>`` (data-norm is
"pre", "post" or "none").  ``plotted()`` returns {"gradient": {"x", "mean", "theory", "bound", …},
"cell" | "activations": {…}} read back from the artists.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

import vglab
from vglab import experiments
from vglab.core.validation import check_choice, check_int
from vglab.experiments import GATED_CELLS as _GATED
from vglab.experiments import SequenceView  # noqa: F401 - its old home
from vglab.lab import plots
from vglab.lab.dashboards import NORM_CHOICES, Dashboard, make_control, pin_buttons
from vglab.models import recurrent, transformer
from vglab.theory import linear_rnn_log10_grad as linear_closed_form  # noqa: F401 - old names, importable
from vglab.theory import pascanu_log10_bound as pascanu_bound  # noqa: F401

HIDDEN_CHOICES = (16, 32, 64, 128, 256)
TRANSFORMER_WIDTHS = (32, 64, 128)
RNN_ACTIVATIONS = ("tanh", "linear", "relu", "sigmoid", "gelu")
TRANSFORMER_ACTIVATIONS = ("gelu", "relu", "tanh")


class _SequenceDashboard(Dashboard):
    """What both sequence dashboards share: their controls, pins and the compile notice."""

    LABELS: dict = {}

    def _make_controls(self, names, values, specs):
        for name in names:
            check_choice("control", name, self.LABELS)
        made = {name: make_control(name, values[name], description=self.LABELS[name], **specs.get(name, {}))
                for name in names}
        for widget in made.values():
            if isinstance(widget, (widgets.IntSlider, widgets.FloatSlider, widgets.SelectionSlider)):
                widget.layout.min_width = "320px"  # long descriptions ("forget bias b_f") keep a usable track
        return made, {name: value for name, value in values.items() if name not in made}

    def _announce(self, state):
        if self.updates and self._compile_key(state) not in self._compiled_keys:
            self.status.value = ('<span class="vglab-status-text vglab-busy">compiling the program for this '
                                 "setting (once, a few seconds)…</span>")

    def equivalent(self, state: dict, other: dict) -> bool:
        return (state["seed"] == other["seed"] and state["n_seeds"] == other["n_seeds"]
                and self.network(state) == self.network(other))

    def pin_targets(self) -> list:
        return [self.plots["gradient"]]

    # ---- background warm-up (vglab.lab.warmup): each option of the choice controls in warm_controls
    def warm_variants(self, state):
        """Each option's variant; those needing a program not compiled yet come first."""
        variants = super().warm_variants(state)
        return sorted(variants, key=lambda v: self._compile_key(v) in self._compiled_keys)

    def warm_key(self, state):
        return (self._compile_key(state), self._warm_network(state), state["seed"])

    def warm_variant(self, state):
        self.compute(state)  # compute touches neither the figure nor the widgets

    def plotted(self) -> dict:
        """The data on screen, per panel, read back from the artists (see ``LogProfilePlot.data``)."""
        return {panel: plot.data() for panel, plot in self.plots.items()}


# --------------------------------------------------------------------------------------------- RNN
class RecurrentDashboard(_SequenceDashboard):
    """Gradients through time of a vanilla RNN or an LSTM (``vglab.RNN``), live.

    Left: log10 ‖∂L/∂h_t‖ for t = 0..T (mean over seeds, min–max band), with the Pascanu bound
    (sup|φ′|·ρ)^{T−t}‖g‖ where sup|φ′|·ρ < 1 and, for a linear RNN, the exact ρ^{T−t}‖g‖.  Right (LSTM):
    log10 ‖∂L/∂c_t‖, the gradient carried by the cell state, whose path multiplies by the forget gates f_t
    only (Hochreiter & Schmidhuber 1997; forget bias 1: Jozefowicz, Zaremba & Sutskever 2015).

    Parameters are the ``vglab.RNN`` fields (with ``spectral_radius`` ρ: W = ρQ) plus seed and n_seeds;
    ``controls`` names those that get a widget.  ``activation`` applies to the vanilla cell (the LSTM and GRU
    use σ and tanh); ``forget_bias`` is the gated cells' "keep" bias: the LSTM's forget bias b_f, or the GRU's
    update bias b_u (``vglab.RNN(update_bias=...)``; positive keeps memory in both).  ``max_steps`` bounds
    the steps slider.
    """

    kind = "recurrent-dashboard"
    LABELS = {"cell": "cell", "steps": "steps T", "hidden": "hidden n",
              "activation": "activation φ (vanilla)", "spectral_radius": "ρ = ‖W‖₂",
              "forget_bias": "keep bias b_f / b_u", "seed": "seed"}
    CONTROLS = ("cell", "steps", "hidden", "activation", "spectral_radius", "forget_bias", "seed")

    def __init__(self, *, cell: str = "vanilla", steps: int = 100, hidden: int = 64, activation: str = "tanh",
                 spectral_radius: float = 1.0, forget_bias: float = 1.0, input_std: float = 1.0,
                 seed: int = 0, n_seeds: int = 4, controls=CONTROLS, panels=("gradient", "cell"),
                 max_steps: int = 1000, hiddens=HIDDEN_CHOICES, activations=RNN_ACTIVATIONS,
                 spectral_radius_range=(0.1, 2.0), forget_bias_range=(-3.0, 6.0), title: str = "",
                 figsize=None, warm_up: bool = True):
        max_steps = check_int("max_steps", max_steps, 1, recurrent.MAX_STEPS)
        if not isinstance(steps, int) or not 1 <= steps <= max_steps:
            raise ValueError(f"steps must be an integer in 1..{max_steps} (max_steps), got {steps!r}")
        vglab.RNN(cell=cell, hidden=hidden, steps=steps, activation="tanh" if cell in _GATED else activation,
                  spectral_radius=spectral_radius, forget_bias=forget_bias, input_std=input_std)  # validates
        for panel in panels:
            check_choice("panel", panel, ("gradient", "cell"))
        self.max_steps, self.panels = max_steps, tuple(panels)
        self._compiled_keys: set = set()
        values = dict(cell=cell, steps=steps, hidden=hidden, activation=activation,
                      spectral_radius=float(spectral_radius), forget_bias=float(forget_bias), seed=seed,
                      n_seeds=n_seeds, input_std=float(input_std))
        specs = dict(cell=dict(options=list(recurrent.CELLS)), steps=dict(low=1, high=max_steps),
                     hidden=dict(options=sorted(set(hiddens) | {hidden}), slider=True),
                     activation=dict(options=list(dict.fromkeys([*activations, activation]))),
                     spectral_radius=dict(low=spectral_radius_range[0], high=spectral_radius_range[1],
                                          step=0.05),
                     forget_bias=dict(low=forget_bias_range[0], high=forget_bias_range[1], step=0.1))
        made, fixed = self._make_controls(controls, values, specs)
        figsize = figsize or ((9.2, 3.8) if len(self.panels) == 2 else (5.6, 3.8))
        super().__init__(made, fixed=fixed, title=title, figsize=figsize, warm_up=warm_up,
                         extra_buttons=pin_buttons(self))

    # ---- model
    def network(self, state: dict | None = None) -> vglab.RNN:
        """The ``vglab.RNN`` a state describes (``experiments.recurrent_network``: the LSTM ignores
        ``activation``, the vanilla cell ``forget_bias``, so changing them there is no new network)."""
        return experiments.recurrent_network(self.state if state is None else state)

    def _compile_key(self, state):
        return experiments.program_key(self.network(state), state["n_seeds"])

    warm_controls = ("cell", "activation")

    def _warm_network(self, state):
        """The network whose draws (at max_steps) and program every steps value reuses."""
        return self.network(state).replace(steps=self.max_steps)

    # ---- figure
    def setup_figure(self, figure):
        axes = figure.subplots(1, len(self.panels), squeeze=False)[0]
        self.plots = {}
        for ax, panel in zip(axes, self.panels, strict=True):
            if panel == "gradient":
                self.plots[panel] = plots.LogProfilePlot(
                    ax, ylabel=r"$\|\partial L/\partial h_t\|$  (log scale)", xlabel="time step $t$",
                    title="hidden-state gradient through time",
                    reference_labels={"theory": r"exact $\rho^{T-t}\|g\|$ (linear)",
                                      "bound": r"bound $(\sup|\varphi'|\,\rho)^{T-t}\|g\|$"})
            else:
                self.plots[panel] = plots.LogProfilePlot(ax, ylabel=r"$\|\partial L/\partial c_t\|$  (log scale)",
                                                         xlabel="time step $t$", colour="tab:green",
                                                         title="LSTM cell-state gradient")
        figure.tight_layout()

    # ---- compute and draw
    def compute(self, state: dict) -> experiments.SequenceView:
        # Drawn for max_steps: every steps value then runs the same compiled program (no recompile).
        view = experiments.recurrent_experiment(state, max_steps=self.max_steps)
        self._compiled_keys.add(self._compile_key(state))
        return view

    def draw(self, view: experiments.SequenceView) -> None:
        norms = view.norms
        t = np.arange(view.net.steps + 1)
        zero = experiments.recurrent_zero_reason(view.net)
        self.plots["gradient"].update(t, norms.log10_activation_grad, zero_reason=zero,
                                      references={"theory": view.theory, "bound": view.bound})
        if "cell" in self.plots:
            if norms.log10_cell_grad is None:
                self.plots["cell"].clear(f"the {view.net.cell} cell has no cell state:\nchoose cell = lstm", x=t)
            else:
                self.plots["cell"].update(t, norms.log10_cell_grad)

    # ---- text
    def summarise(self, view: experiments.SequenceView) -> str:
        return experiments.recurrent_summary(view)

    def code_for(self, state: dict) -> str:
        return experiments.recurrent_code(state)

    def pin_label(self, s: dict) -> str:
        net = self.network(s)
        if net.cell == "lstm":
            return f"lstm, b_f={net.forget_bias:g}, ρ={net.spectral_radius:g}, n={net.hidden}"
        if net.cell == "gru":
            return f"gru, b_u={net.update_bias:g}, ρ={net.spectral_radius:g}, n={net.hidden}"
        return f"{net.activation}, ρ={net.spectral_radius:g}, n={net.hidden}"


# --------------------------------------------------------------------------------------------- transformer
class TransformerDashboard(_SequenceDashboard):
    """Per-block gradient magnitudes of a transformer stack (``vglab.Transformer``), live.

    Left: log10 ‖∂L/∂h_l‖_F for the block outputs h_l, l = 0..depth (h_0 the input tokens), mean over seeds
    and min–max band.  Right: the stream's scale log10 RMS(h_l).  No residual: the gradient vanishes block
    by block; residual + pre-LN keeps it nearly flat; residual + post-LN puts a LayerNorm Jacobian on the
    main path of every block, and the gradient sags below the output's in the middle of the stack (largest
    at the input block).  Xiong et al. (2020) speak of *parameter* gradients near the output, not this one.

    Parameters are the ``vglab.Transformer`` fields plus seed and n_seeds; ``norm`` is "pre", "post" or
    None/"none" (dropdown labels "pre-LN", "post-LN", "none").  ``max_depth`` bounds the depth slider.
    """

    kind = "transformer-dashboard"
    LABELS = {"depth": "blocks", "width": "width d", "residual": "residual", "norm": "norm",
              "activation": "activation φ (MLP)", "seed": "seed"}
    CONTROLS = ("depth", "width", "residual", "norm", "activation", "seed")

    def __init__(self, *, depth: int = 24, width: int = 64, heads: int = 4, seq_len: int = 8,
                 residual: bool = True, norm="pre", activation: str = "gelu", weight_std: float = 1.0,
                 seed: int = 0, n_seeds: int = 4, controls=CONTROLS, panels=("gradient", "activations"),
                 max_depth: int = 96, widths=TRANSFORMER_WIDTHS, activations=TRANSFORMER_ACTIVATIONS,
                 title: str = "", figsize=None, warm_up: bool = True):
        max_depth = check_int("max_depth", max_depth, 1, transformer.MAX_DEPTH)
        if not isinstance(depth, int) or not 1 <= depth <= max_depth:
            raise ValueError(f"depth must be an integer in 1..{max_depth} (max_depth), got {depth!r}")
        net = vglab.Transformer(depth=depth, width=width, heads=heads, seq_len=seq_len, residual=residual,
                                norm=None if norm == "none" else norm, activation=activation,
                                weight_std=weight_std)
        for panel in panels:
            check_choice("panel", panel, ("gradient", "activations"))
        for w in widths:
            if w % heads:
                raise ValueError(f"every width must be divisible by heads={heads}, got {w}")
        self.max_depth, self.panels = max_depth, tuple(panels)
        self._compiled_keys: set = set()
        values = dict(depth=depth, width=width, residual=residual, norm=net.norm or "none",
                      activation=activation, seed=seed, n_seeds=n_seeds, heads=heads, seq_len=seq_len,
                      weight_std=float(weight_std))
        specs = dict(depth=dict(low=1, high=max_depth),
                     width=dict(options=sorted(set(widths) | {width}), slider=True),
                     norm=dict(options=[(label, value) for label, value in NORM_CHOICES]),
                     activation=dict(options=list(dict.fromkeys([*activations, activation]))))
        made, fixed = self._make_controls(controls, values, specs)
        figsize = figsize or ((9.2, 3.8) if len(self.panels) == 2 else (5.6, 3.8))
        super().__init__(made, fixed=fixed, title=title, figsize=figsize, warm_up=warm_up,
                         extra_buttons=pin_buttons(self))

    # ---- model
    def network(self, state: dict | None = None) -> vglab.Transformer:
        """The ``vglab.Transformer`` a state describes (``experiments.transformer_network``; norm "none" → None)."""
        return experiments.transformer_network(self.state if state is None else state)

    def _compile_key(self, state):
        return experiments.program_key(self.network(state), state["n_seeds"])

    warm_controls = ("residual", "norm", "activation")

    def _warm_network(self, state):
        """The network whose blocks (at max_depth) and program every depth reuses."""
        return self.network(state).replace(depth=self.max_depth)

    # ---- figure
    def setup_figure(self, figure):
        axes = figure.subplots(1, len(self.panels), squeeze=False)[0]
        self.plots = {}
        for ax, panel in zip(axes, self.panels, strict=True):
            if panel == "gradient":
                self.plots[panel] = plots.LogProfilePlot(ax, ylabel=r"$\|\partial L/\partial h_l\|_F$  (log scale)",
                                                         xlabel="block $l$", title="gradient per block")
            else:
                self.plots[panel] = plots.LogProfilePlot(ax, ylabel=r"RMS$(h_l)$  (log scale)", xlabel="block $l$",
                                                         title="residual stream scale", colour="tab:green")
        figure.tight_layout()

    # ---- compute and draw
    def compute(self, state: dict) -> experiments.SequenceView:
        # The blocks for max_depth: every depth then runs the same compiled program (no recompile).
        view = experiments.transformer_experiment(state, max_depth=self.max_depth)
        self._compiled_keys.add(self._compile_key(state))
        return view

    def draw(self, view: experiments.SequenceView) -> None:
        blocks = np.arange(view.net.depth + 1)
        self.plots["gradient"].update(blocks, view.norms.log10_activation_grad)
        if "activations" in self.plots:
            self.plots["activations"].update(blocks, view.log10_rms, zero_reason="the stream is 0")

    # ---- text
    def summarise(self, view: experiments.SequenceView) -> str:
        return experiments.transformer_summary(view)

    def code_for(self, state: dict) -> str:
        return experiments.transformer_code(state)

    def pin_label(self, s: dict) -> str:
        net = self.network(s)
        return (f"{'residual' if net.residual else 'plain'}, {net.norm + '-LN' if net.norm else 'no LN'}, "
                f"{net.activation}, L={net.depth}")
