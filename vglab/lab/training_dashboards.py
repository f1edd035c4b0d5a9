"""A live dashboard over ``vglab.train``: how every layer's gradient and weights move during a training run.

``TrainingDashboard`` is a ``vglab.lab.dashboards.Dashboard`` (same status line, error display, ``.state``,
``.set``, ``.result``, ``.plotted()``, ``.code``, ``.save``, pins) whose compute is a training run.  Its
panels, left to right:

    "gradient"  log10 ‖∂loss/∂W_l‖_F per layer l = 1..depth: mean over the run's steps, min–max band over steps
    "ratio"     log10 ‖ΔW_l‖_F / ‖W_l‖_F per layer, the update-to-weight ratio (same statistics); a layer whose
                ratio stays ≪ the others' does not learn (a common rule of thumb is ≈ 1e-3 for every layer)
    "curves"    the training loss per step (log10, left axis) and the held-out accuracy (right axis); a
                diverged run ends at a dashed line where the non-finite step was detected (and not applied)

A run takes seconds (the first run of a configuration also compiles its training step), so the dashboard
trains when asked, not on every slider step:

- ``Train`` (the button, or ``.train()``) runs ``vglab.train`` for the current settings.  In a live kernel
  it runs in a worker thread: the kernel stays responsive, the plots and the progress bar update in place
  as it goes, and ``Stop`` (or ``.stop()``) ends it after the current step, keeping the history so far on
  screen (``history.interrupted``).  Without a running event loop (a script, a test) it runs synchronously.
- Moving a control in a live kernel marks the plot as out of date (the status says so) and, with
  ``auto_train=True``, starts a new run for the latest value once the drag pauses (the base class's
  coalescing; a newer run supersedes an older one).  ``.set(**values)`` and ``.update_now()`` train
  synchronously, in every case, as on every dashboard.

Per-layer records (``TrainingHistory``) index the body's weight matrices W_1..W_depth; the plotted x is the
layer number l = 1..depth.  ``.code`` is the ``vglab.train`` call whose history gives exactly the plotted
profiles (for a stopped run: the same call with ``steps`` = the steps completed).

The experiment itself is pure, in ``vglab.experiments`` (training_network, training_arguments, run_training,
training_summary, training_code); this module schedules runs (a worker thread, Stop, superseded runs) and
draws them.

What a test (or a browser) can rely on, besides the base class's classes: ``.vglab-training-dashboard``
(root), ``.vglab-train``, ``.vglab-stop``, ``.vglab-progress``; the controls ``.vglab-control-<name>`` for
depth, width, activation, init, sigma-w, residual, norm, optimizer, learning-rate, clip-norm, steps, seed;
the status line's ``data-steps-completed``, ``data-diverged`` and ``data-interrupted``.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import ipywidgets as widgets
import numpy as np

import vglab
from vglab import experiments, training
from vglab.core.activations import ACTIVATIONS
from vglab.core.init import INITS, default_weight_std
from vglab.core.validation import check_choice, check_float
from vglab.datasets import DATASETS
from vglab.experiments import NO_CLIP, TrainingView
from vglab.experiments import end_note as _end_note
from vglab.experiments import end_step as _end_step
from vglab.experiments import partial_history as _partial_history  # noqa: F401 - its old name
from vglab.lab import plots
from vglab.lab.dashboards import (
    NORM_CHOICES,
    WIDTH_CHOICES,
    Dashboard,
    _running_loop,
    make_control,
    pin_buttons,
)
from vglab.lab.drawing import DRAW_LOCK

# The numbers of a run are pure, in vglab.training, and stay importable from here by their old names (notebook
# 10 and its claims tests use them): profile_statistics (the plotted mean and band over steps), mean_update_ratio
# and learning_layers_ratio (how many decades less the first layers move than the last).
from vglab.training import learning_layers_ratio, mean_update_ratio, profile_statistics  # noqa: F401

LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
CLIP_NORMS = (0.1, 0.3, 1.0, 3.0, 10.0)
CONTROLS = ("depth", "width", "activation", "init", "sigma_w", "residual", "norm", "optimizer",
            "learning_rate", "clip_norm", "steps", "seed")
LABELS = {"learning_rate": "learning rate", "clip_norm": "clip ‖g‖ at", "sigma_w": "σ_w"}
PANELS = ("gradient", "ratio", "curves")
LIVE_REDRAW_SECONDS = 0.5  # a running (background) run redraws its partial history this often


# --------------------------------------------------------------------------------------------- dashboard
class TrainingDashboard(Dashboard):
    """Per-layer gradient norms and update-to-weight ratios of a ``vglab.train`` run, plus its loss and
    accuracy, for the network and optimizer the controls describe (see the module docstring).

    Parameters are ``vglab.MLP``'s (depth, width, activation, init, sigma_w = weight_std, residual, norm,
    residual_scale, leaky_slope) and ``vglab.train``'s (data, steps, optimizer, learning_rate, clip_norm,
    batch_size, seed); ``controls`` names those that get a widget, the others stay fixed.  Choosing an
    optimizer sets the learning rate to its default (sgd 0.1, momentum 0.01, adam 0.001); choosing an init
    sets the σ_w control to that scheme's value.  ``clip_norm=None`` (the control's "off") does not clip.
    """

    kind = "training-dashboard"

    def __init__(self, *, depth: int = 20, width: int = 32, activation: str = "sigmoid", init: str = "xavier",
                 sigma_w: float | None = None, residual: bool = False, norm=None, residual_scale: float = 1.0,
                 leaky_slope: float = 0.01, data: str = "digits", steps: int = 200, optimizer: str = "sgd",
                 learning_rate: float | None = None, clip_norm: float | None = None, batch_size: int = 64,
                 seed: int = 0, controls=("depth", "activation", "init", "residual", "norm", "optimizer",
                                          "learning_rate", "clip_norm", "steps"),
                 panels=PANELS, max_depth: int = 60, max_steps: int = 2000, auto_train: bool = False,
                 activations=None, inits=None, title: str = "", figsize=None):
        net = vglab.MLP(depth=depth, width=width, activation=activation, init=init, weight_std=sigma_w,
                        residual=residual, norm=norm, residual_scale=residual_scale, leaky_slope=leaky_slope)
        if not 1 <= depth <= max_depth:
            raise ValueError(f"depth must be an integer in 1..{max_depth} (max_depth), got {depth}")
        if not 10 <= steps <= max_steps:
            raise ValueError(f"steps must be an integer in 10..{max_steps} (max_steps), got {steps}")
        check_choice("data", data, DATASETS)
        optimizer = check_choice("optimizer", optimizer, training.OPTIMIZERS)
        learning_rate = training.DEFAULT_LEARNING_RATES[optimizer] if learning_rate is None else learning_rate
        learning_rate = check_float("learning_rate", learning_rate, 0.0, 100.0, low_inclusive=False)
        clip = NO_CLIP if clip_norm is None else check_float("clip_norm", clip_norm, 0.0, 1e6,
                                                             low_inclusive=False)
        for name in controls:
            check_choice("control", name, CONTROLS)
        for panel in panels:
            check_choice("panel", panel, PANELS)
        self.panels, self.max_depth, self.auto_train = tuple(panels), max_depth, bool(auto_train)
        values = dict(depth=depth, width=width, activation=activation, init=init,
                      sigma_w=net.sigma_w if "sigma_w" in controls else sigma_w, residual=residual,
                      norm=net.norm or "none", residual_scale=residual_scale, leaky_slope=leaky_slope,
                      data=data, steps=steps, optimizer=optimizer, learning_rate=learning_rate, clip_norm=clip,
                      batch_size=batch_size, seed=seed)
        specs = dict(
            depth=dict(low=1, high=max_depth),
            width=dict(options=sorted(set(WIDTH_CHOICES) | {width})),
            activation=dict(options=list(activations or ACTIVATIONS)),
            init=dict(options=list(inits or INITS)),
            sigma_w=dict(low=0.1, high=4.0, step=0.05),
            norm=dict(options=list(NORM_CHOICES)),
            optimizer=dict(options=list(training.OPTIMIZERS)),
            learning_rate=dict(options=[(f"{v:g}", v) for v in sorted(set(LEARNING_RATES) | {learning_rate})]),
            clip_norm=dict(options=[("off", NO_CLIP)] + [(f"{v:g}", v) for v in sorted(set(CLIP_NORMS)
                                                                                     | {clip} - {NO_CLIP})]),
            steps=dict(low=10, high=max_steps, step=10),
        )
        made = {name: make_control(name, values[name], description=LABELS.get(name), **specs.get(name, {}))
                for name in controls}
        fixed = {name: value for name, value in values.items() if name not in made}
        if "init" in made and "sigma_w" in made:
            made["init"].observe(self._init_sets_sigma_w, names="value")
        if "optimizer" in made and "learning_rate" in made:
            made["optimizer"].observe(self._optimizer_sets_learning_rate, names="value")
        self._lock = threading.Lock()
        self._job = 0  # the newest run; older runs' results are dropped
        self._stop_event = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self.running = False  # a background run is in progress
        self.stale = False  # the controls changed since the plotted run (auto_train=False, live kernel)
        self._build_training_row()
        if figsize is None:
            figsize = (9.6, 3.6) if len(panels) == 3 else (min(9.2, 4.4 * len(panels) + 0.4), 3.6)
        super().__init__(made, fixed=fixed, title=title, figsize=figsize, warm_up=False,
                         extra_buttons=pin_buttons(self))
        self.widget.add_class("vglab-training-dashboard")
        children = list(self.widget.children)
        at = 1 + next(i for i, child in enumerate(children) if isinstance(child, widgets.HBox))
        self.widget.children = (*children[:at], self.training_row, *children[at:])

    # ---- controls
    def _init_sets_sigma_w(self, change):
        with self.hold_updates():
            self.controls["sigma_w"].value = default_weight_std(change["new"])

    def _optimizer_sets_learning_rate(self, change):
        with self.hold_updates():
            self.controls["learning_rate"].value = training.DEFAULT_LEARNING_RATES[change["new"]]

    def _assign(self, name, value):
        if name == "clip_norm" and value is None:
            value = NO_CLIP
        super()._assign(name, value)

    def _build_training_row(self):
        self.train_button = widgets.Button(description="Train", icon="play", button_style="success",
                                           tooltip="train with the current settings")
        self.train_button.add_class("vglab-train")
        self.train_button.on_click(lambda _: self.train())
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="stop after the current step; the history so far stays")
        self.stop_button.add_class("vglab-stop")
        self.stop_button.on_click(lambda _: self.stop())
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="step 0",
                                            style={"description_width": "initial"},
                                            layout=widgets.Layout(width="320px"))
        self.progress.add_class("vglab-progress")
        self.training_row = widgets.HBox([self.train_button, self.stop_button, self.progress])

    @property
    def sigma_w_step(self) -> float | None:
        """The σ_w control's step (σ_w within half of it of the init's value is that value), None without one."""
        return self.controls["sigma_w"].step if "sigma_w" in self.controls else None

    def network(self, state: dict | None = None) -> vglab.MLP:
        """The ``vglab.MLP`` a state describes (``experiments.training_network``: σ_w within half a slider step
        of the init's value is the init's own scale, ``weight_std=None``)."""
        return experiments.training_network(self.state if state is None else state, sigma_w_step=self.sigma_w_step)

    def run_arguments(self, state: dict | None = None) -> dict:
        """The keyword arguments of ``vglab.train`` for a state (``experiments.training_arguments``)."""
        return experiments.training_arguments(self.state if state is None else state,
                                              sigma_w_step=self.sigma_w_step)

    def equivalent(self, state: dict, other: dict) -> bool:
        return self.run_arguments(state) == self.run_arguments(other)

    # ---- background warm-up (vglab.lab.warmup): the training step of each option a choice control offers
    warm_controls = ("activation", "init", "residual", "norm", "optimizer", "clip_norm")

    def warm_state(self, state, name, value):
        variant = {**state, name: value}
        if name == "init" and "sigma_w" in self.controls:
            variant["sigma_w"] = default_weight_std(value)  # what _init_sets_sigma_w does to the slider
        if name == "optimizer" and "learning_rate" in self.controls:
            variant["learning_rate"] = training.DEFAULT_LEARNING_RATES[value]
        return variant

    def warm_key(self, state):
        """What the compiled programs of a run depend on: the step's structure (activation, skip, norm,
        optimizer, clipping on/off), the shapes (depth, width, batch, data) and the init family."""
        run = self.run_arguments(state)
        net = run["net"]
        return (net.activation, net.residual, net.norm, net.depth, net.width, net.init, run["optimizer"],
                run["clip_norm"] is not None, run["batch_size"], run["data"])

    def warm_variant(self, state):
        """One training step of the variant: compiles its initialisation, step and evaluation."""
        experiments.warm_training(state, sigma_w_step=self.sigma_w_step)

    # ---- training
    def compute(self, state: dict) -> TrainingView:
        """A synchronous run (``update_now``, ``set``): progress bar updated as it goes."""
        self._stop_event = threading.Event()
        return TrainingView(self._run(state, self._stop_event, report=self._show_progress))

    def _run(self, state, stop_event, report, partial=None) -> vglab.TrainingHistory:
        """``vglab.train`` for ``state``; ``report(step, steps)`` shows progress, ``partial(history)`` is
        called with the history so far every LIVE_REDRAW_SECONDS, and ``stop_event`` ends the run (kept)."""
        return experiments.run_training(self.run_arguments(state), report=report, partial=partial,
                                        should_stop=stop_event.is_set, partial_seconds=LIVE_REDRAW_SECONDS)

    def _show_progress(self, done: int, steps: int) -> None:
        self.progress.max = steps
        self.progress.value = done
        self.progress.description = f"step {done}/{steps}"

    def train(self) -> None:
        """Train with the current settings: in a worker thread inside a live kernel (plots update as it
        goes, Stop ends it), synchronously otherwise."""
        if _running_loop() is None:
            self.update_now(force=True)
        else:
            self.start()

    def start(self) -> None:
        """Start a background run of the current settings (a run in progress is stopped and dropped)."""
        loop = _running_loop()
        if loop is None:
            raise RuntimeError("TrainingDashboard.start needs a running event loop (a live kernel); "
                               "use .train() or .update_now()")
        state = self.state
        with self._lock:
            self._job += 1
            job = self._job
            self._stop_event.set()
            self._stop_event = stop_event = threading.Event()
        self.running = True
        self.stop_button.disabled = False
        self._announce(state)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vglab-train")

        def call(fn, *args):
            loop.call_soon_threadsafe(fn, *args)

        def work():
            if job != self._job:
                return  # superseded before it started
            start = time.perf_counter()
            try:
                history = self._run(state, stop_event, report=lambda d, s: call(self._live_progress, job, d, s),
                                    partial=lambda h: call(self._live_partial, job, h))
            except Exception as error:  # noqa: BLE001 - shown in the dashboard
                call(self._live_failed, job, error)
                return
            call(self._live_finished, job, state, history, time.perf_counter() - start)

        self._pool.submit(work)

    def stop(self) -> None:
        """Stop the running run after its current step; its history so far is kept and shown."""
        self._stop_event.set()

    def _live_progress(self, job, done, steps):
        if job == self._job:
            self._show_progress(done, steps)

    def _live_partial(self, job, history):
        if job != self._job:
            return
        try:
            self._draw_and_redraw(TrainingView(history, running=True))
        except Exception as error:  # noqa: BLE001
            self._show_error(error)

    def _draw_and_redraw(self, view):
        """Draw ``view`` and redraw the figure, holding the drawing lock (``vglab.lab.drawing``: a run's
        reports arrive on the loop of the thread that pressed Train, which in JupyterLab is a kernel subshell's
        thread, not the main thread that runs cells)."""
        with DRAW_LOCK:
            self.draw(view)
            self._redraw_figure()

    def _live_failed(self, job, error):
        if job == self._job:
            self._finish_running()
            self.computations += 1
            self._show_error(error)

    def _live_finished(self, job, state, history, seconds):
        """Show a finished (or stopped, or diverged) background run, with the bookkeeping of update_now."""
        if job != self._job:
            return
        self._finish_running()
        self.computations += 1
        view = TrainingView(history)
        drawing = time.perf_counter()
        try:
            self._draw_and_redraw(view)
        except Exception as error:  # noqa: BLE001
            self._show_error(error)
            return
        self.result, self.computed_state = view, state
        self.timings = {"compute": seconds, "draw": time.perf_counter() - drawing}
        self.updates += 1
        self.stale = not self.equivalent(self.state, state)
        self._clear_error()
        self._update_status()
        if self.code_view.layout.display != "none":
            self.code_view.value = self._code_html()

    def _finish_running(self):
        self.running = False
        self.stop_button.disabled = True

    def _cancel_background(self):
        with self._lock:
            if self.running:
                self._job += 1
                self._stop_event.set()
        self._finish_running()

    # ---- updating (the base class's coalescing decides when; a live update runs in the background)
    def request_update(self) -> None:
        if self.auto_train or _running_loop() is None:
            super().request_update()
            return
        self.stale = not (self.computed_state is not None and self.equivalent(self.state, self.computed_state))
        if self.result is not None and self.last_error is None:
            self._update_status()

    def update_now(self, force: bool = False):
        if self.interactive:  # a coalesced control change in a live kernel (auto_train): train in background
            self._pending = False
            if force or self.computed_state is None or not self.equivalent(self.state, self.computed_state):
                self.start()
            return self.result
        self._cancel_background()
        self.stale = False
        return super().update_now(force)

    def _announce(self, state):
        self.status.value = ('<span class="vglab-status-text vglab-busy" data-update="'
                             f'{self.updates}">training… (the first run of a configuration also compiles its '
                             "step, a few seconds)</span>")

    def close(self) -> None:
        self._cancel_background()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        super().close()

    # ---- figure
    def setup_figure(self, figure):
        axes = figure.subplots(1, len(self.panels), squeeze=False)[0]
        self.plots = {}
        for ax, panel in zip(axes, self.panels, strict=True):
            if panel == "gradient":
                plot = plots.LogProfilePlot(ax, ylabel=r"$\|\partial\,\mathrm{loss}/\partial W_l\|_F$  (log scale)",
                                            title="weight gradient per layer", colour="tab:orange",
                                            label="mean over steps")
            elif panel == "ratio":
                plot = plots.LogProfilePlot(ax, ylabel=r"$\|\Delta W_l\|_F\,/\,\|W_l\|_F$  (log scale)",
                                            title="update-to-weight ratio per layer", colour="tab:purple",
                                            label="mean over steps")
            else:
                plot = plots.TrainingCurvePlot(ax)
            if isinstance(plot, plots.LogProfilePlot):
                plot.band.set_label("min–max over steps")
            self.plots[panel] = plot
        figure.tight_layout()

    def draw(self, view: TrainingView) -> None:
        history = view.history
        layers = np.arange(1, history.net.depth + 1)
        for panel, plot in self.plots.items():
            if panel == "gradient":
                plot.update(layers, history.log10_grad_norms, zero_reason="no gradient at any step")
            elif panel == "ratio":
                plot.update(layers, history.log10_update_ratio, zero_reason="layer never moved")
            else:
                log10_loss = experiments.training_log10_loss(history)
                plot.update(np.arange(history.steps_completed), log10_loss, history.eval_steps,
                            history.test_accuracy, total_steps=history.steps, end_step=_end_step(history),
                            note=_end_note(history, view.running))

    def pin_label(self, state: dict) -> str:
        net = self.result.net  # the trained net (pins follow runs, not unapplied control changes)
        label = f"{net.activation}, {net.init}, L={net.depth}"
        label += ", skip" if net.residual else ""
        return label + (f", {net.norm}-LN" if net.norm else "")

    def plotted(self) -> dict:
        """The data on screen, per panel, read back from the artists ("gradient"/"ratio": x = layers 1..depth
        and the mean over steps; "curves": steps, log10 loss, test accuracy)."""
        return {panel: plot.data() for panel, plot in self.plots.items()}

    # ---- text
    def summarise(self, view: TrainingView) -> str:
        return experiments.training_summary(view, stale=self.stale)

    def _status_attributes(self) -> dict:
        attributes = super()._status_attributes()
        if self.result is not None:
            h = self.result.history
            attributes.update(steps_completed=h.steps_completed, diverged=h.diverged, interrupted=h.interrupted)
        return attributes

    def code_for(self, state: dict) -> str:
        shown = self.result.history if self.result is not None and state == self.computed_state else None
        return experiments.training_code(state, sigma_w_step=self.sigma_w_step, shown=shown)
