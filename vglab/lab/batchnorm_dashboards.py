"""The BatchNorm dashboard (lesson 13): per-layer gradients and activation scales of a deep MLP with and
without BatchNorm, at initialisation.  The experiment is ``vglab.experiments``' batchnorm_* functions (over
``vglab.models.batchnorm``); this module only draws."""

from __future__ import annotations

import numpy as np

from vglab import experiments
from vglab.experiments import BATCHNORM_INIT as INIT_FOR  # noqa: F401 - the no-BN net's critical σ_w
from vglab.experiments import BatchNormView, batchnorm_rms
from vglab.lab import plots
from vglab.lab.dashboards import Dashboard, make_control
from vglab.models import batchnorm

BN_COLOUR, PLAIN_COLOUR, THEORY_COLOUR = plots.OKABE_ITO["blue"], plots.OKABE_ITO["vermillion"], "#000000"
BN_LABEL = "with BatchNorm"
PLAIN_LABEL = "same net without BatchNorm"
THEORY_LABEL = r"Yang et al. 2019: $\sqrt{\lambda}$ per layer"


class BatchNormDashboard(Dashboard):
    """Left: the mean over seeds of log10 ‖∂L/∂H_l‖_F (the whole batch; the typical gradient) per layer, with and
    without BatchNorm, and the mean-field prediction where it applies (plain ReLU or linear).  Right: RMS(H_l),
    the forward scale.  Controls: depth, batch size, activation, residual connections.  σ_w is He's for ReLU and 1
    otherwise (``INIT_FOR``): the net without BN starts critical, so what changes is BatchNorm's doing."""

    kind = "batchnorm"

    def __init__(self, *, depth: int = 50, width: int = 128, batch: int = 32, activation: str = "relu",
                 residual: bool = False, n_seeds: int = 2, max_depth: int = 64, warm_up: bool = True):
        batchnorm.BatchNormMLP(depth=depth, width=width, batch=batch, activation=activation, residual=residual)
        if not 1 <= depth <= max_depth:
            raise ValueError(f"depth must be an integer in 1..{max_depth} (max_depth), got {depth}")
        self.width, self.n_seeds, self.max_depth = width, n_seeds, max_depth
        controls = {"depth": make_control("depth", depth, low=1, high=max_depth),
                    "batch": make_control("batch", batch, options=sorted({8, 32, 128, batch}),
                                          description="batch size B"),
                    "activation": make_control("activation", activation, options=("relu", "linear", "tanh")),
                    "residual": make_control("residual", residual)}
        super().__init__(controls, title="BatchNorm at initialisation: forward scale vs gradient",
                         figsize=(9.0, 3.8), warm_up=warm_up)

    def network(self, state: dict | None = None) -> batchnorm.BatchNormMLP:
        return experiments.batchnorm_network(self.state if state is None else state, width=self.width)

    def warm_up(self) -> None:
        """Compile at max_depth (the depth bucket every drag stays in)."""
        self.compute({**self.state, "depth": self.max_depth})

    def setup_figure(self, figure) -> None:
        self.grad_ax, self.rms_ax = figure.subplots(1, 2)
        kw = dict(marker="o", markersize=2.5, linewidth=1.4)
        self.bn_line = self.grad_ax.plot([], [], color=BN_COLOUR, label=BN_LABEL, **kw)[0]
        self.plain_line = self.grad_ax.plot([], [], color=PLAIN_COLOUR, label=PLAIN_LABEL, **kw)[0]
        self.theory_line = self.grad_ax.plot([], [], color=THEORY_COLOUR, linestyle=":", linewidth=1.6,
                                             label=THEORY_LABEL)[0]
        self.bn_rms = self.rms_ax.plot([], [], color=BN_COLOUR, label=BN_LABEL, **kw)[0]
        self.plain_rms = self.rms_ax.plot([], [], color=PLAIN_COLOUR, label=PLAIN_LABEL, **kw)[0]
        self.grad_ax.set_ylabel(r"$\|\partial L/\partial H_l\|_F$ (mean of log over seeds)")
        self.grad_ax.set_title("gradient per layer", fontsize=10)
        self.rms_ax.set_ylabel(r"RMS$(H_l)$")
        self.rms_ax.set_title("activation scale per layer", fontsize=10)
        for ax in (self.grad_ax, self.rms_ax):
            ax.set_xlabel("layer $l$")
            plots.use_power_of_ten_ticks(ax.yaxis)
            ax.grid(True, alpha=0.3)
        # Limits that stay while the data fill them (plots.sticky_limits), legends made once and a layout
        # redone only when limits change: a depth step then redraws only the curves and legends (blitted).
        figure.set_layout_engine(plots.StableConstrainedLayout())
        self._limits: dict = {}
        self._tight = False  # the next draw fits the x axes to the data's ends (release_limits)
        self.rms_legend = plots.make_legend(self.rms_ax, fontsize=8, loc="upper right")
        self.grad_legend, self._grad_handles = None, None
        self.corners: dict = {"rms": "upper right", "gradient": "upper right"}  # where each legend was put

    def compute(self, state: dict) -> BatchNormView:
        return experiments.batchnorm_experiment(state, width=self.width, n_seeds=self.n_seeds)

    def draw(self, view: BatchNormView) -> None:
        layers = np.arange(view.bn.net.depth + 1)
        self.bn_line.set_data(layers, view.bn.log10_typical_activation_grad)
        self.plain_line.set_data(layers, view.plain.log10_typical_activation_grad)
        self.theory_line.set_data(layers if view.theory is not None else [],
                                  view.theory if view.theory is not None else [])
        self.theory_line.set_visible(view.theory is not None)
        self.bn_rms.set_data(layers[1:], batchnorm_rms(view.bn))
        self.plain_rms.set_data(layers[1:], batchnorm_rms(view.plain))
        grad = [line.get_ydata() for line in (self.bn_line, self.plain_line, self.theory_line)]
        rms = np.concatenate([self.bn_rms.get_ydata(), self.plain_rms.get_ydata()])
        rms = np.concatenate([rms - 0.2, rms + 0.2, [-1.0, 1.0]])  # at least 10^-1..10^1
        held = False
        # Both panels' depth axes are fitted to layers 0..L (the RMS curves start at layer 1), so they are one
        # axis and grow at the same step of a drag: one full frame, not one each a layer apart.
        for ax, x, values, pad in ((self.grad_ax, layers, np.concatenate(grad), 0.06),
                                   (self.rms_ax, layers, rms, 0.0)):
            xlim, ylim = self._limits.get(ax, (None, None))
            xlim = plots.sticky_x_limits(xlim, x, tight=self._tight)
            ylim = plots.sticky_limits(ylim, values, minimum_span=1.0, pad=pad)
            self._limits[ax] = (xlim, ylim)
            held = held or plots.held_limits(x, xlim, values, ylim, minimum_span=1.0, pad=pad)
            plots.set_limits(ax, x=xlim, y=ylim)
        self._tight, self._held = False, held
        handles = [self.bn_line, self.plain_line] + ([self.theory_line] if view.theory is not None else [])
        if handles != self._grad_handles:  # a new legend only when its entries change
            if self.grad_legend is not None:
                self.grad_legend.remove()
            self.grad_legend = plots.make_legend(self.grad_ax, handles=handles, fontsize=8,
                                                 loc=self.corners["gradient"])
            self._grad_handles = handles
        # Each legend in the corner its curves leave emptiest (kept unless another is clearly emptier), not
        # loc="best", which searches at every draw and so could never be drawn from saved pixels.
        # The corner is the one this dashboard set (self.corners), not read back from the legend.
        for name, legend, ax, x, curves in (("gradient", self.grad_legend, self.grad_ax, layers, grad),
                                            ("rms", self.rms_legend, self.rms_ax, layers[1:],
                                             [self.bn_rms.get_ydata(), self.plain_rms.get_ydata()])):
            current = self.corners[name]
            corner = plots.emptiest_corner(ax, x, [c for c in curves if len(c)], entries=len(legend.texts),
                                           current=current)
            if corner != current:
                plots.move_legend(legend, corner)
                self.corners[name] = corner

    def release_limits(self) -> bool:
        """A drag ended (``Dashboard.end_drag``): if either panel's limits are held (``plots.held_limits``: not
        the ones a fit to the data on screen would set), the next draw fits both anew, the x axes to the data's
        ends, and True; else they stay and False (nothing to redraw)."""
        if not getattr(self, "_held", False):
            return False
        self._limits, self._tight, self._held = {}, True, False
        return True

    def _changing_artists(self) -> list:
        """The curves and the legends (drawn over them); new limits, a new layout or a legend moved to another
        corner are drawn in full (``plots.BlitFrames``)."""
        return [self.bn_line, self.plain_line, self.theory_line, self.bn_rms, self.plain_rms, self.rms_legend,
                *([self.grad_legend] if self.grad_legend is not None else [])]

    def summarise(self, view: BatchNormView) -> str:
        return experiments.batchnorm_summary(view)

    def code_for(self, state: dict) -> str:
        return experiments.batchnorm_code(state, width=self.width, n_seeds=self.n_seeds)

    def plotted(self) -> dict:
        """name → {"x", "mean", ["theory"]} as drawn (the browser suite's kernel probe reads this form)."""
        def data(line):
            return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)

        x, y = data(self.bn_line)
        theory = data(self.theory_line)[1] if self.theory_line.get_visible() else None
        out = {"gradient": {"x": x, "mean": y, "theory": theory}}
        for name, line in (("gradient without BatchNorm", self.plain_line), ("activations", self.bn_rms),
                           ("activations without BatchNorm", self.plain_rms)):
            x, y = data(line)
            out[name] = {"x": x, "mean": y}
        return out
