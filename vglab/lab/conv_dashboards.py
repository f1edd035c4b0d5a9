"""The degradation dashboard (lesson 12): training curves and per-layer gradients of plain vs residual 1-D
convolutional networks on MNIST-1D.  The experiment is ``vglab.experiments``' degradation_* functions (over
``vglab.models.convolutional.degradation_experiment``); this module only draws them."""

from __future__ import annotations

import numpy as np

from vglab import experiments
from vglab.experiments import smoothed_log10
from vglab.lab import plots
from vglab.lab.dashboards import Dashboard, make_control
from vglab.models import convolutional

COLOURS = (plots.OKABE_ITO["blue"], plots.OKABE_ITO["vermillion"], plots.OKABE_ITO["bluish green"])


class DegradationDashboard(Dashboard):
    """Left: training loss per step of a shallow plain, a deep plain and a deep residual network.  Right: their
    exact per-layer ‖∂L/∂h_l‖ at initialisation.  Controls: the deep depth, the training length, the seed
    (each setting is trained once per kernel, ``degradation_experiment``)."""

    kind = "degradation"

    def __init__(self, deep: int = 24, steps: int = convolutional.DEGRADATION["steps"], seed: int = 0):
        controls = {"deep": make_control("deep", deep, options=(12, 24), description="deep nets' layers"),
                    "steps": make_control("steps", steps, options=(100, 300, 600), description="training steps"),
                    "seed": make_control("seed", seed, options=(0, 1, 2), description="seed")}
        super().__init__(controls, title="Plain vs residual convolutional networks on MNIST-1D",
                         figsize=(9.0, 3.8), warm_up=False)

    def setup_figure(self, figure) -> None:
        self.loss_ax, self.grad_ax = figure.subplots(1, 2)
        self.loss_lines = [self.loss_ax.plot([], [], color=c, linewidth=1.4)[0] for c in COLOURS]
        self.grad_lines = [self.grad_ax.plot([], [], color=c, marker="o", markersize=3, linewidth=1.4)[0]
                           for c in COLOURS]
        self.loss_ax.set_xlabel("training step")
        self.loss_ax.set_ylabel("training loss (batch, smoothed)")
        plots.use_power_of_ten_ticks(self.loss_ax.yaxis)
        self.grad_ax.set_xlabel("layer $l$")
        self.grad_ax.set_ylabel(r"$\|\partial L/\partial h_l\|$ at initialisation")
        plots.use_power_of_ten_ticks(self.grad_ax.yaxis)
        for ax in (self.loss_ax, self.grad_ax):
            ax.grid(True, alpha=0.3)
        figure.set_layout_engine("constrained")

    def compute(self, state: dict) -> dict:
        return experiments.degradation_run(state)

    def draw(self, result: dict) -> None:
        for (label, (history, log10_grad)), loss_line, grad_line in zip(
                result.items(), self.loss_lines, self.grad_lines, strict=True):
            loss_line.set_data(np.arange(1, history.steps + 1), smoothed_log10(history.loss))
            loss_line.set_label(f"{label}: final {history.train_loss:.2f}")
            grad_line.set_data(np.arange(log10_grad.size), log10_grad)
            grad_line.set_label(label)
        self.loss_ax.relim()
        self.loss_ax.autoscale_view()
        self.grad_ax.relim()
        self.grad_ax.autoscale_view()
        plots.make_legend(self.loss_ax, fontsize=8, loc="upper right", title="train loss (whole split)",
                          title_fontsize=8)
        plots.make_legend(self.grad_ax, fontsize=8, loc="best")

    def summarise(self, result: dict) -> str:
        return experiments.degradation_summary(result)

    def code_for(self, state: dict) -> str:
        return experiments.degradation_code(state)

    def plotted(self) -> dict:
        """label → (steps, smoothed log10 loss, layers, log10 ‖∂L/∂h_l‖) as drawn."""
        return {line.get_label().split(":")[0]: (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()),
                                                 np.asarray(grad.get_xdata()), np.asarray(grad.get_ydata()))
                for line, grad in zip(self.loss_lines, self.grad_lines, strict=True)}
