"""Live dashboards for the notebooks: controls (ipywidgets) + a pure compute + an in-place draw.

A ``Dashboard`` is

    controls  name → widget (sliders, dropdowns, checkboxes) whose values form ``.state``
    compute   state → result, pure: a ``vglab.experiments`` function (which calls the engines)
    draw      result → None, rewrites the data of artists made once by ``vglab.lab.plots``
    status    an HTML line (CSS class ``vglab-status``) rewritten after every redraw
    code      ``.code``: the vglab calls that reproduce the plot, shown by a "Show code" button
    errors    any exception in compute or draw is shown in the dashboard (CSS class ``vglab-error``); the last
              good plot stays and the next change is computed as usual

Only the latest value of a dragged slider is computed.  A change only marks the dashboard dirty and, inside
a running kernel, schedules one update on the kernel's asyncio loop; the update reads the controls when it
runs, so a burst of slider messages handled before it gives one computation, and the last computation
always sees the final values.  Without a running event loop (a script, a test), a change updates at once;
``update_now()`` updates synchronously in every case, and ``set(**values)`` changes several controls and
updates once.

The figure is made inside ``plt.ioff()`` and its ipympl canvas (``%matplotlib widget``) is placed in the
dashboard's own layout, so it is shown exactly once; the figure and its artists are never recreated.

Subclasses (or the ``compute=``/``draw=``/``code=`` arguments) supply the experiment; ``GradientDashboard``,
``SpectrumDashboard`` and ``PhaseDiagramDashboard`` are the ones the notebooks use.

What a test (or a browser) can rely on:

    .vglab-dashboard            the root box (plus .vglab-gradient-dashboard / .vglab-spectrum-dashboard)
    .vglab-control-<name>       each control (depth, width, activation, init, sigma-w, sigma-b, residual,
                                norm, residual-scale, leaky-slope, seed, n-seeds); descriptions "depth", "σ_w"
    .vglab-status-text          inside the status; ``data-update`` counts completed redraws, and the other
                                ``data-*`` attributes hold the state that is plotted (data-depth="50" …);
                                ``data-error="1"`` while an error is shown
    .vglab-error                the error message (hidden when there is none)
    .vglab-show-code, .vglab-code, .vglab-save, .vglab-save-path, .vglab-pin, .vglab-clear-pins
    Python side: .state, .set(**values), .update_now(), .result, .plotted(), .code, .save(path),
                 .computations (compute calls), .updates (redraws), .timings, .error_message, .figure,
                 .frames (ipympl frames rendered in full and blitted)
With ipympl (once its view is up) the frame is rendered right after the status line goes out, so "draw" in
the status is the time to update the artists, not to paint pixels.  Frames are blitted (``plots.BlitFrames``):
when an update changed only the plots' data, notes and legends, those are drawn over the saved background;
any other change (new axis limits, a pin, a resize) renders the whole figure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import io
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

import vglab
from vglab import experiments, theory
from vglab.core.activations import ACTIVATIONS
from vglab.core.init import INITS, default_weight_std
from vglab.core.validation import check_choice, keywords_checked

# The experiments themselves (state → network → result → summary, and the code to copy) are pure functions in
# vglab.experiments; the dashboards below call them and draw what they return.  The old names stay importable.
from vglab.experiments import (  # noqa: F401
    HISTOGRAM_BATCH,
    HISTOGRAM_BINS,
    PHASE_ACTIVATIONS,
    GradientView,
)
from vglab.experiments import power_text as _power_text  # noqa: F401
from vglab.experiments import tidy as _tidy
from vglab.lab import cells, drawing, plots, warmup
from vglab.lab.sliders import GridFloatSlider
from vglab.models.jacobians import SATURATION_LEVEL

NORM_CHOICES = (("none", "none"), ("pre-LN", "pre"), ("post-LN", "post"))
_LIVE: weakref.WeakSet = weakref.WeakSet()  # the dashboards made in this process and not collected
WIDTH_CHOICES = (16, 32, 64, 128, 256, 512)

# name → (description shown on the widget, CSS-safe slug)
CONTROL_LABELS = {
    "depth": "depth", "width": "width", "activation": "activation", "init": "init", "sigma_w": "σ_w",
    "sigma_b": "σ_b", "residual": "residual", "norm": "norm", "leaky_slope": "leaky slope", "seed": "seed",
    "n_seeds": "seeds", "theory": "theory", "residual_scale": "α (skip branch)",
}


# Shown only once the browser has lost the kernel behind the dashboard: ipywidgets marks every view of a
# widget whose kernel is gone with the class jupyter-widgets-disconnected (and a broken-link icon).
RESTART_NOTE = (
    "<style>.vglab-restart-note{display:none}"
    ".jupyter-widgets-disconnected .vglab-restart-note{display:block}</style>"
    '<div class="vglab-restart-note" style="color:#8a1c00; border:1px solid #8a1c00; padding:0.3em 0.5em">'
    "<b>This dashboard is disconnected:</b> the kernel behind it was restarted or shut down, so Python "
    "forgot it; its controls (broken-link icon) no longer change the plot. "
    "Run the notebook again from the top, <b>Run ▸ Run All Cells</b> (or the cells from the imports down to "
    "this one), and use the new dashboard this cell then shows.</div>")


# --------------------------------------------------------------------------------------------- controls
def make_control(name: str, value, *, low=None, high=None, step=None, options=None,
                 description: str | None = None, slider: bool = False) -> widgets.ValueWidget:
    """A standard control with a stable description and the CSS class ``vglab-control-<name>``.

    Integers with bounds become an IntSlider, floats a FloatSlider, bools a Checkbox, values with
    ``options`` a Dropdown (a SelectionSlider with ``slider=True``, e.g. widths that each compile a
    program), unbounded integers (seed) an IntText.
    """
    description = description or CONTROL_LABELS.get(name, name)
    common = dict(description=description, style={"description_width": "initial"},
                  layout=widgets.Layout(width="auto", min_width="230px"))
    if options is not None and slider:
        widget = widgets.SelectionSlider(options=list(options), value=value, continuous_update=False,
                                         **common)  # a new value may compile: on release only
    elif options is not None:
        widget = widgets.Dropdown(options=list(options), value=value, **common)
    elif isinstance(value, bool):
        widget = widgets.Checkbox(value=value, indent=False, **common)
    elif isinstance(value, int) and low is not None and high is not None:
        widget = widgets.IntSlider(value=value, min=low, max=high, step=step or 1, continuous_update=True,
                                   **common)
    elif isinstance(value, int):
        widget = widgets.IntText(value=value, **common)
    elif low is not None and high is not None:
        # on the browser's own step grid: the browser never sends a snapped copy back (vglab.lab.sliders)
        widget = GridFloatSlider(value=value, min=low, max=high, step=step or 0.01, readout_format=".3g",
                                     continuous_update=True, **common)
    else:
        widget = widgets.FloatText(value=value, **common)
    widget.add_class(f"vglab-control-{name.replace('_', '-')}")
    return widget


def pin_buttons(dashboard) -> tuple[widgets.Button, widgets.Button]:
    """"Pin curve" and "Clear pins" buttons (classes vglab-pin, vglab-clear-pins) calling the dashboard's
    ``pin()`` and ``clear_pins()``; pass them as ``extra_buttons``."""
    pin = widgets.Button(description="Pin curve", icon="thumb-tack",
                         tooltip="keep the current curve as a faint reference")
    pin.add_class("vglab-pin")
    pin.on_click(lambda _: dashboard.pin())
    clear = widgets.Button(description="Clear pins")
    clear.add_class("vglab-clear-pins")
    clear.on_click(lambda _: dashboard.clear_pins())
    return (pin, clear)


def _running_loop():
    """The asyncio loop running in this thread (the kernel's, inside a notebook), or None."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _same_number(old, new) -> bool:
    """True for a float change within rounding (a browser slider snaps 1.0 to 1.0000000000000002 on its
    step grid when it first renders, and sends that back): not worth a recomputation."""
    floats = isinstance(old, float) and isinstance(new, float)
    return floats and math.isclose(old, new, rel_tol=1e-9, abs_tol=1e-12)


def _error_message(error: BaseException) -> str:
    """'depth must be an integer in 1..10000, got 0' for ValueErrors; 'TypeError: …' for anything else."""
    text = str(error) or type(error).__name__
    return text if isinstance(error, ValueError) else f"{type(error).__name__}: {text}"


def _milliseconds(seconds: float) -> str:
    return f"{1000 * seconds:.1f} ms"


# --------------------------------------------------------------------------------------------- base class
class Dashboard:
    """Controls + compute + draw + status + code + error display, with latest-value-only updates.

    controls:  name → widget; ``state`` is {name: widget.value} plus the ``fixed`` values.
    compute:   state → result (or override ``compute``); must not touch the figure.
    draw:      result → None (or override ``draw``); updates artists made in ``setup_figure``.
    code:      state → str (or override ``code_for``): the vglab calls that reproduce the result.
    setup:     figure → None (or override ``setup_figure``): make the axes and artists once.
    summary:   result → str (or override ``summarise``): a short text for the status line.
    """

    kind = "dashboard"
    coalesce_seconds = 0.003  # quiet time that ends a burst of slider messages
    max_wait_seconds = 0.1  # a continuous drag still redraws at least this often
    # A drag has ended when no change came this long after its last update or frame (end_drag).  1 s, not 0.3:
    # in a loaded browser (load ~11 on 2 cores) a held key's steps arrive 0.3-0.6 s apart, and each "end"
    # refitted the limits in a full frame that made the next step a full frame too (benchmarks/README).
    settle_seconds = 1.0
    warm_controls: tuple = ()  # choice controls whose options the background warm-up compiles (vglab.lab.warmup)
    background_warmup = None  # the running vglab.lab.warmup.Warmup, if any

    def __init_subclass__(cls, **kwargs):
        """Every dashboard's constructor names a mistyped keyword's closest parameter (did-you-mean)."""
        super().__init_subclass__(**kwargs)
        keywords_checked(cls)

    def __init__(self, controls: Mapping[str, widgets.ValueWidget], *, fixed: Mapping | None = None,
                 compute: Callable | None = None, draw: Callable | None = None, code: Callable | None = None,
                 setup: Callable | None = None, summary: Callable | None = None, title: str = "",
                 figsize: tuple[float, float] = (9.0, 3.8), extra_buttons: tuple = (), warm_up: bool = True,
                 save_path: str | None = None):
        self.controls = dict(controls)
        self.fixed = dict(fixed or {})
        for name, fn in (("compute", compute), ("draw", draw), ("code_for", code), ("setup_figure", setup),
                         ("summarise", summary)):
            if fn is not None:
                setattr(self, name, fn)
        self.title = title
        self.result = None
        self.computed_state: dict | None = None
        self.last_error: BaseException | None = None
        self.computations = 0  # calls of compute (including failed ones)
        self.updates = 0  # completed redraws
        self.timings = {"compute": math.nan, "draw": math.nan}
        self._pending = False
        self._scheduled = False
        self._render_scheduled = False
        self._drawn_at = 0.0  # (time.monotonic) the last update or frame ended: a drag ends settle_seconds later
        self._changes = self._changes_seen = 0
        self._first_change_at = 0.0
        self._schedule_lock = threading.Lock()  # request_update runs in any thread; _flush on the home loop
        self._loop = _running_loop()  # the home loop (see request_update)
        self._hold = 0
        self.interactive = False  # True while an update runs for a control change in a live kernel
        cells.adopt(self)  # a cell run again replaces the dashboards its previous run made
        _LIVE.add(self)  # (update_now pauses every live dashboard's warm-up)
        with plt.ioff():
            self.figure = plt.figure(figsize=figsize)
        drawing.lock_canvas(self.figure.canvas)  # its own draws wait for ours, and ours for them
        drawing.quick_png(self.figure.canvas)  # (ipympl) frames PNG-encoded in about half the time
        self.setup_figure(self.figure)
        self._frames = plots.BlitFrames(self.figure, self._changing_artists)
        self._build_layout(extra_buttons, save_path or f"vglab_{self.kind}.png")
        for widget in self.controls.values():
            widget.observe(self._on_control_change, names="value")
        if warm_up:
            self.warm_up()
        self.update_now()
        self.background_warmup = warmup.start(self)  # in a live kernel: what the controls reach, compiled

    # ---- hooks for subclasses
    def setup_figure(self, figure) -> None:
        figure.add_subplot(1, 1, 1)

    def compute(self, state: dict):
        raise NotImplementedError("pass compute= or override Dashboard.compute")

    def draw(self, result) -> None:
        raise NotImplementedError("pass draw= or override Dashboard.draw")

    def code_for(self, state: dict) -> str:
        return "# no code for this dashboard"

    def summarise(self, result) -> str:
        return ""

    def warm_up(self) -> None:
        """Compile what the first drags will need (default: nothing beyond the first update)."""

    def warm_variants(self, state: dict) -> list[dict]:
        """The states one change of a ``warm_controls`` control away from ``state`` (background warm-up)."""
        variants = []
        for name in self.warm_controls:
            widget = self.controls.get(name)
            if isinstance(widget, widgets.Checkbox):
                values = [False, True]
            elif isinstance(widget, widgets.Dropdown):
                values = [option[1] if isinstance(option, tuple) else option for option in widget.options]
            else:
                continue
            variants += [self.warm_state(state, name, value) for value in values if value != state[name]]
        return variants

    def warm_state(self, state: dict, name: str, value) -> dict:
        """``state`` with control ``name`` set to ``value``, as the control's own observers would leave it."""
        return {**state, name: value}

    def warm_key(self, state: dict):
        """What a warmed variant is known by (two states with one key need one warm-up)."""
        return tuple(sorted(state.items()))

    def warm_variant(self, state: dict) -> None:
        """Compile (and cache) what showing ``state`` needs, without touching the figure or the widgets; runs
        in the warm-up thread."""

    def equivalent(self, state: dict, other: dict) -> bool:
        """Whether two states give the same result (then an update redraws nothing)."""
        return state == other

    def pin(self) -> None:
        """Keep the plotted curve of every panel in ``pin_targets()`` as a faint reference named
        ``pin_label(state)`` (the Pin curve button)."""
        if self.computed_state is None:
            return
        label = self.pin_label(self.computed_state)
        with drawing.DRAW_LOCK:
            for plot in self.pin_targets():
                plot.pin(label)
            self._redraw_figure()

    def clear_pins(self) -> None:
        """Drop the pinned curves (the Clear pins button)."""
        with drawing.DRAW_LOCK:
            for plot in self.pin_targets():
                plot.clear_pins()
            self._redraw_figure()

    def pin_targets(self) -> list:
        """The plots that keep pinned curves: by default every per-layer profile panel."""
        return [plot for plot in getattr(self, "plots", {}).values() if isinstance(plot, plots.LogProfilePlot)]

    def pin_label(self, state: dict) -> str:
        """The legend entry of a curve pinned in ``state``."""
        return ""

    # ---- layout
    def _build_layout(self, extra_buttons, save_path):
        canvas = self.figure.canvas
        if isinstance(canvas, widgets.DOMWidget):  # ipympl: the canvas is itself a widget
            for attribute, value in (("header_visible", False), ("footer_visible", False),
                                     ("toolbar_position", "left"), ("resizable", False)):
                with contextlib.suppress(Exception):
                    setattr(canvas, attribute, value)
            self._figure_box = canvas
            self._static_output = None
        else:  # inline or headless backend: a static image, replaced after each redraw
            self._static_output = widgets.Output()
            self._figure_box = self._static_output
        self.status = widgets.HTML(value="")
        self.status.add_class("vglab-status")
        self.error = widgets.HTML(value="", layout=widgets.Layout(display="none"))
        self.error.add_class("vglab-error")
        self.code_view = widgets.HTML(value="", layout=widgets.Layout(display="none"))
        self.code_view.add_class("vglab-code")
        self.restart_note = widgets.HTML(value=RESTART_NOTE)
        self.restart_note.add_class("vglab-restart")
        self.code_button = widgets.Button(description="Show code", icon="code",
                                          tooltip="the vglab calls that reproduce this plot")
        self.code_button.add_class("vglab-show-code")
        self.code_button.on_click(lambda _: self.toggle_code())
        self.save_path = widgets.Text(value=save_path, description="file",
                                      layout=widgets.Layout(width="260px"))
        self.save_path.add_class("vglab-save-path")
        self.save_button = widgets.Button(description="Save figure", icon="save",
                                          tooltip="save as PNG or PDF (by the file's extension)")
        self.save_button.add_class("vglab-save")
        self.save_button.on_click(lambda _: self._save_clicked())
        buttons = [self.code_button, self.save_path, self.save_button, *extra_buttons]
        children = []
        if self.title:
            children.append(widgets.HTML(f"<b>{html.escape(self.title)}</b>"))
        children += [widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap")),
                     self._figure_box, self.status, self.restart_note, self.error, widgets.HBox(buttons),
                     self.code_view]
        self.widget = widgets.VBox(children)
        self.widget.add_class("vglab-dashboard")
        self.widget.add_class(f"vglab-{self.kind}")

    static_dpi = 100  # resolution of the PNG copy in the display data (the site shows it ~700 px wide)

    def _repr_mimebundle_(self, **kwargs):
        """The live widget view (JupyterLab, VS Code, Colab) plus ``image/png``, a picture of the figure as
        it is now, which front-ends without widgets show instead (the course website, GitHub, nbviewer, a
        notebook without ipympl).  Works with ipywidgets 8 (``_repr_mimebundle_``) and 7 (Colab's)."""
        if hasattr(self.widget, "_repr_mimebundle_"):
            bundle = dict(self.widget._repr_mimebundle_(**kwargs))
        else:  # ipywidgets 7 displays through _ipython_display_; the same view, built here
            bundle = {"application/vnd.jupyter.widget-view+json":
                      {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}}
            self.widget._handle_displayed()  # (its callbacks take no arguments)
        buffer = io.BytesIO()
        with drawing.DRAW_LOCK:
            self.figure.savefig(buffer, format="png", dpi=self.static_dpi)
        bundle["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
        state = ", ".join(f"{name}={value!r}" for name, value in self.state.items())
        bundle["text/plain"] = f"{type(self).__name__}({state[:200]})"
        return bundle

    # ---- state
    @property
    def state(self) -> dict:
        """The current values of the controls and the fixed parameters (a float slider's value as it reads,
        1.5, not the 1.5000000000000002 its step grid holds)."""
        return {**self.fixed, **{name: _tidy(w.value) if isinstance(w, widgets.FloatSlider) else w.value
                                 for name, w in self.controls.items()}}

    @property
    def code(self) -> str:
        """The vglab calls that reproduce the plot now shown (the last successful update)."""
        return self.code_for(self.computed_state if self.computed_state is not None else self.state)

    @contextlib.contextmanager
    def hold_updates(self):
        """Change several controls without triggering an update per change (update afterwards)."""
        self._hold += 1
        try:
            yield
        finally:
            self._hold -= 1

    def set(self, **values) -> None:
        """Change controls programmatically and update once, synchronously.

        An unknown control name raises ValueError (a programming error); a value a control cannot take is
        shown in the dashboard's error area, like any other error, and leaves the state unchanged.  The
        browser receives each control's final value only (not the σ_w an init choice set on the way).
        Returns None, so ``dash.set(...)`` as a cell's last line displays no second copy of the dashboard.
        """
        for name in values:
            check_choice("control", name, self.controls)
        try:
            with self.hold_updates(), contextlib.ExitStack() as batched:
                for widget in self.controls.values():
                    batched.enter_context(widget.hold_sync())
                for name, value in values.items():
                    self._assign(name, value)
        except (ValueError, TypeError) as error:
            self._show_error(error)
            return
        self.update_now()

    def _assign(self, name, value):
        widget = self.controls[name]
        if isinstance(widget, (widgets.Dropdown, widgets.SelectionSlider)):
            values = [option[1] if isinstance(option, tuple) else option for option in widget.options]
            if value not in values:
                check_choice(name, str(value), [str(v) for v in values])  # raises, with a did-you-mean
        elif isinstance(widget, (widgets.IntSlider, widgets.FloatSlider)):
            kind = "an integer" if isinstance(widget, widgets.IntSlider) else "a number"
            ok_type = (isinstance(value, (int, np.integer)) if isinstance(widget, widgets.IntSlider)
                       else isinstance(value, (int, float, np.number))) and not isinstance(value, bool)
            if not ok_type or not widget.min <= value <= widget.max:
                raise ValueError(f"{name} must be {kind} in {widget.min}..{widget.max} on this dashboard, "
                                 f"got {value!r}")
        widget.value = value

    # ---- updating
    def _on_control_change(self, change):
        if self._hold or _same_number(change["old"], change["new"]):
            return
        self.request_update()

    def request_update(self) -> None:
        """Mark the dashboard dirty; inside a running event loop, schedule one update for all pending changes.

        The update waits until no change has arrived for ``coalesce_seconds`` (a burst of queued slider
        messages is handled in well under a millisecond each), but never longer than ``max_wait_seconds``
        after the first change, so a long drag still redraws as it goes.

        Every update runs on the dashboard's home loop (``_home_loop``): in a kernel, the main thread's, where
        the cells run.  ipykernel 7 handles a widget's messages on the main shell or on a subshell's thread,
        whichever sent that comm's last message (in JupyterLab 4.6 a slider's key presses alternate between
        the two); a change handled in another thread only marks the dashboard dirty and hands the update to
        the home loop, so one thread computes and draws, in order, and the last value is always drawn.
        """
        loop = self._home_loop()
        if loop is None:
            self._pending = True
            self._changes += 1
            self.update_now()
            return
        with self._schedule_lock:
            self._pending = True
            self._changes += 1
            if self._scheduled:
                return
            self._scheduled = True
            self._first_change_at, self._changes_seen = loop.time(), self._changes
        if loop is _running_loop():
            loop.call_later(self.coalesce_seconds, self._flush, loop)
        else:  # handled in another thread (a kernel subshell): the home loop runs the update
            loop.call_soon_threadsafe(loop.call_later, self.coalesce_seconds, self._flush, loop)

    def _home_loop(self):
        """The event loop updates run on: the one that ran when the dashboard was made (a kernel's main loop)
        while it still runs, else the calling thread's running loop (None outside any loop: update at once)."""
        loop = self._loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            return loop
        return _running_loop()

    def _flush(self, loop):
        with self._schedule_lock:
            still_arriving = self._changes != self._changes_seen
            if still_arriving and loop.time() - self._first_change_at < self.max_wait_seconds:
                self._changes_seen = self._changes
                loop.call_later(self.coalesce_seconds, self._flush, loop)
                return
            self._scheduled = False
            pending = self._pending
        if pending:
            self.interactive = True  # a slider drag: slow extras may finish in the background
            try:
                self.update_now()
            finally:
                self.interactive = False
            loop.call_later(self.settle_seconds, self._settle, loop, self._changes)

    def _settle(self, loop, changes: int) -> None:
        """After a live update: the drag has ended when no change came since and the dashboard has been quiet
        (no update, no frame) for ``settle_seconds`` — a frame that kept the loop busy past the timer counts
        as activity, since the messages of a continuing drag may be waiting behind it."""
        with self._schedule_lock:
            if self._changes != changes or self._scheduled or self._pending:
                return  # a newer change: its own update settles later
        wait = self._drawn_at + self.settle_seconds - time.monotonic()
        if wait > 0:
            loop.call_later(wait, self._settle, loop, changes)
            return
        self.end_drag()

    def end_drag(self) -> bool:
        """The drag has ended: the limits it kept (sticky limits, so that its steps could be blitted) are
        fitted again to the data on screen, as a dashboard made at this state would fit them, and the figure
        is redrawn (in full: the limits changed).  Nothing is recomputed.  When no plot held limits
        (``release_limits`` False: every limit is already the fit) nothing is drawn, so a settled change
        costs no extra frame.  True when the limits were released."""
        if self.result is None or self.last_error is not None or getattr(self, "running", False):
            return False  # (a training run in progress draws its own frames)
        try:
            with drawing.DRAW_LOCK:
                if not self.release_limits():
                    return False
                self.draw(self.result)
                self._redraw_figure()
        except Exception as error:  # noqa: BLE001 - shown like any other error
            self._show_error(error)
            return False
        return True

    def release_limits(self) -> bool:
        """Hook: forget the limits held during a drag, so the next draw fits them to its data; default: each
        plot's ``release_limits()``, which forgets its limits and returns True only when they were held (not
        what a fit to its data would set).  True when any plot released limits: only then does ``end_drag``
        draw again (a drag that left every limit fitted ends without another frame)."""
        released = False
        for plot in getattr(self, "plots", {}).values():
            release = getattr(plot, "release_limits", None)
            if release is not None and release():  # (every plot's, not only up to the first that held)
                released = True
        return released

    def update_now(self, force: bool = False):
        """Compute the current state and redraw, synchronously.  Returns the result (None after an error).

        A state ``equivalent`` to the one on screen is not recomputed unless ``force``.  The background
        warm-up waits while it runs, and plans from the new state afterwards.
        """
        # Every dashboard's warm-up in the kernel waits, not only this one's: a page with two dashboards (lesson
        # 10: a gradient dashboard over a trainer with dozens of programs to warm) otherwise compiled the other's
        # programs beside each step, taking the GIL back every 5 ms (vglab.lab.warmup).
        own = self.background_warmup
        others = [w for w in (getattr(d, "background_warmup", None) for d in list(_LIVE) if d is not self)
                  if w is not None]
        for background in ([own] if own is not None else []) + others:
            background.update_started()
        try:
            return self._update(force)
        finally:
            if own is not None:
                own.update_finished(self.computed_state)
            for background in others:
                background.update_finished(None)  # (plans only from its own dashboard's states)

    def _update(self, force: bool):
        self._pending = False
        state = self.state
        unchanged = self.computed_state is not None and self.equivalent(state, self.computed_state)
        if unchanged and self.last_error is None and not force:
            self.computed_state = state
            return self.result
        self._announce(state)
        start = time.perf_counter()
        try:
            self.computations += 1
            result = self.compute(state)
            computed = time.perf_counter()
            with drawing.DRAW_LOCK:  # another thread may be drawing (vglab.lab.drawing)
                self.draw(result)
                self._redraw_figure()
        except Exception as error:  # noqa: BLE001 - a dashboard shows every error and keeps working
            self._show_error(error)
            return None
        drawn = time.perf_counter()
        self.result, self.computed_state = result, state
        self.timings = {"compute": computed - start, "draw": drawn - computed}
        self._drawn_at = time.monotonic()
        self.updates += 1
        self._clear_error()
        self._update_status()
        if self.code_view.layout.display != "none":
            self.code_view.value = self._code_html()
        return result

    def _announce(self, state: dict) -> None:
        """Hook: say in the status line that a slow step (a first compile) is coming; default: nothing."""

    def _redraw_figure(self):
        if self._static_output is None:
            canvas = self.figure.canvas
            loop = _running_loop()
            connected = getattr(canvas, "syncing_data_url", True) is False  # ipympl: the view has initialized
            if loop is not None and connected and hasattr(getattr(canvas, "manager", None), "refresh_all"):
                # ipympl (webagg): draw_idle() only asks the browser to ask back for a draw, a round trip
                # through the frontend before rendering starts.  Updates are already coalesced, so render
                # right after this update's status goes out, and send the frame (draw() ends in
                # manager.refresh_all()).
                if not self._render_scheduled:
                    self._render_scheduled = True
                    loop.call_soon(self._render_frame)
            else:
                canvas.draw_idle()
            return
        self.figure.canvas.draw()
        if "inline" in plt.get_backend():
            from IPython.display import display

            with self._static_output:
                self._static_output.clear_output(wait=True)
                display(self.figure)

    def _changing_artists(self) -> list:
        """The artists an update rewrites: those each plot names (``animated_artists``); see BlitFrames."""
        return [artist for plot in getattr(self, "plots", {}).values() if hasattr(plot, "animated_artists")
                for artist in plot.animated_artists()]

    @property
    def frames(self) -> dict:
        """How many frames the live (ipympl) path rendered in full and how many it blitted."""
        return dict(self._frames.frames)

    def _render_frame(self):
        self._render_scheduled = False
        try:
            with drawing.DRAW_LOCK:
                self._frames.render()
        except Exception as error:  # noqa: BLE001 - shown like any other error
            self._show_error(error)
        self._drawn_at = time.monotonic()

    def _status_attributes(self) -> dict:
        """data-* attributes of the status element: the update counter and the plotted state."""
        state = self.computed_state or {}
        attributes = {"update": self.updates}
        attributes.update({k: v for k, v in state.items() if isinstance(v, (int, float, str, bool))})
        return attributes

    def _update_status(self):
        summary = self.summarise(self.result)
        text = (f"update {self.updates}" + (f" · {summary}" if summary else "")
                + f" · compute {_milliseconds(self.timings['compute'])}"
                + f" · draw {_milliseconds(self.timings['draw'])}")
        attributes = " ".join(f'data-{k.replace("_", "-")}="{html.escape(str(v))}"'
                              for k, v in self._status_attributes().items())
        self.status.value = f'<span class="vglab-status-text" {attributes}>{html.escape(text)}</span>'

    def _show_error(self, error: BaseException):
        self.last_error = error
        message = _error_message(error)
        self.error.value = (f'<div class="vglab-error-message" style="color:#b00020; font-weight:bold">'
                            f"⚠ {html.escape(message)}</div>")
        self.error.layout.display = "block"
        state = " ".join(f'data-{k}="{v}"' for k, v in (("update", self.updates), ("error", "1")))
        self.status.value = (f'<span class="vglab-status-text" {state}>update {self.updates} · error: '
                             f"{html.escape(message)} (the plot shows the last valid setting)</span>")

    def _clear_error(self):
        self.last_error = None
        if self.error.layout.display != "none":
            self.error.value = ""
            self.error.layout.display = "none"

    @property
    def error_message(self) -> str:
        """The error now shown ('' when none)."""
        return "" if self.last_error is None else _error_message(self.last_error)

    # ---- code and saving
    def _code_html(self) -> str:
        return f'<pre style="margin:0.3em 0">{html.escape(self.code)}</pre>'

    def toggle_code(self, show: bool | None = None) -> None:
        show = self.code_view.layout.display == "none" if show is None else show
        if show:
            self.code_view.value = self._code_html()
        self.code_view.layout.display = "block" if show else "none"
        self.code_button.description = "Hide code" if show else "Show code"

    def save(self, path) -> str:
        """Save the figure as PNG or PDF (chosen by the extension); returns the path."""
        path = str(path)
        suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        check_choice("figure format", suffix, ("png", "pdf", "svg"))
        with drawing.DRAW_LOCK:
            self.figure.savefig(path, dpi=150, bbox_inches="tight")
        return path

    def _save_clicked(self):
        try:
            path = self.save(self.save_path.value)
        except Exception as error:  # noqa: BLE001
            self._show_error(error)
            return
        self._clear_error()
        self.status.value = self.status.value.replace("</span>", f" · saved {html.escape(path)}</span>")

    def close(self) -> None:
        """Close the figure and the widgets (the dashboard stops updating) and stop its warm-up."""
        if self.background_warmup is not None:
            self.background_warmup.stop()
        plt.close(self.figure)
        self.widget.close()


# --------------------------------------------------------------------------------------------- gradients
# GradientView (what a gradient experiment computed) lives in vglab.experiments.


# Legend names of the gradient panel: what each curve is, so that theory is compared with its own quantity.
TYPICAL_LABEL = "typical: mean of log over seeds"
THEORY_LABELS = {"rms": r"√mean $\|\delta_l\|^2$ over seeds",
                 "theory": r"mean-field $\sqrt{E\|\delta_l\|^2}$, width → ∞"}

_THEORY_POOL: ThreadPoolExecutor | None = None

# The numbers the gradient panel adds to a measurement are pure and live in vglab.theory, cached there for live
# use (one mean-field profile of the deepest net serves every depth; chi1 grids by activation); the dashboards
# call them there.  Their old names here stay importable (lessons' claims tests use theory_profile).
theory_profile = theory.cached_mean_field_profile
theory_profile_is_cached = theory.mean_field_profile_is_cached
theory_applies = theory.mean_field_applies
bound_curve = theory.log10_derivative_bound_profile
theory_curve = theory.cached_predicted_log10_grad  # (net, log10_output_grad, max_depth): reuse_depth = max_depth


def _theory_pool() -> ThreadPoolExecutor:
    """The one worker thread that computes slow mean-field profiles while the measurement is shown."""
    global _THEORY_POOL
    if _THEORY_POOL is None:
        _THEORY_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vglab-theory")
    return _THEORY_POOL


class Panel(NamedTuple):
    """One panel a ``GradientDashboard`` can show: ``make(ax)`` builds its plot once, ``draw(board, plot,
    view)`` updates that plot in place from a ``GradientView`` (no new figure per update)."""

    make: Callable
    draw: Callable


def _layers(view: GradientView, first: int = 0) -> np.ndarray:
    return np.arange(first, view.net.depth + 1)


def _make_phase(ax):
    return plots.PhaseDiagram(ax, np.linspace(0.05, 5.0, 34), np.linspace(0.0, 1.0, 21))


def _draw_histograms(board, plot, view):
    d = view.distributions
    plot.update(_layers(view), d.gradient_edges, d.gradient_counts, d.gradient_zero)


def _draw_activation_histograms(board, plot, view):
    """h_{l,i} over φ's range (sigmoid [0, 1], tanh [−1, 1], else [−4, 4]); beyond it: the end bins, noted."""
    d = view.distributions
    outside = d.activation_outside_share
    note = f"beyond the range: {100 * outside:.1f}% (in the end bins)" if outside > 0 else ""
    plot.update(_layers(view, 1), d.activation_edges, d.activation_counts, note=note)


def _draw_saturation_histograms(board, plot, view):
    """log10(|φ′(z_{l,i})|/sup|φ′|) over [−6, 0] (below: the first bin); φ′ = 0 exactly is left out, noted."""
    d = view.distributions
    saturated = f"saturated (dashed line and below): {100 * d.saturated_fraction.mean():.1f}%"
    plot.update(_layers(view, 1), d.saturation_edges, d.saturation_counts, d.saturation_zero, note=saturated)


HISTOGRAM_PANELS = ("histograms", "activation_histograms", "saturation_histograms")  # need layer_distributions


GRADIENT_PANELS = {
    "gradient": Panel(
        lambda ax: plots.LogProfilePlot(ax, title="gradient per layer", label=TYPICAL_LABEL,
                                        reference_labels=THEORY_LABELS),
        lambda board, plot, view: plot.update(_layers(view), view.norms.log10_activation_grad, references={
            "theory": view.theory, "bound": view.bound, "rms": view.rms},
            zero_reason=experiments.zero_gradient_reason(view.norms))),
    "weights": Panel(
        lambda ax: plots.LogProfilePlot(ax, ylabel=r"$\|\partial L/\partial W_l\|_F$  (log scale)",
                                        title="weight gradient per layer", colour="tab:orange"),
        lambda board, plot, view: plot.update(_layers(view, 1), view.norms.log10_weight_grad,
                                              zero_reason=experiments.zero_gradient_reason(view.norms))),
    "activations": Panel(
        lambda ax: plots.LogProfilePlot(ax, ylabel=r"RMS$(h_l)$  (log scale)", title="activation scale per layer",
                                        colour="tab:green"),
        lambda board, plot, view: plot.update(_layers(view, 1), view.norms.log10_activation_rms,
                                              zero_reason="every unit zero")),
    "dead": Panel(
        lambda ax: plots.FractionPlot(ax, ylabel="inactive units (φ′ = 0)",
                                      title="inactive units per layer (each seed's input)"),
        lambda board, plot, view: plot.update(_layers(view, 1), view.norms.dead_fraction)),
    "saturated": Panel(
        lambda ax: plots.FractionPlot(ax, ylabel="saturated units (|φ′| ≤ 0.1 sup|φ′|)",
                                      title="saturated units per layer", colour="tab:brown"),
        lambda board, plot, view: plot.update(_layers(view, 1), view.norms.saturated_fraction)),
    "phase": Panel(_make_phase, lambda board, plot, view: board._draw_phase(plot, view.net)),
    "histograms": Panel(
        lambda ax: plots.LayerHistogramPlot(ax, ylabel=r"$|\partial L/\partial h_{l,i}|$  (log scale)",
                                            title=f"gradient entries per layer ({HISTOGRAM_BATCH} inputs)"),
        _draw_histograms),
    "activation_histograms": Panel(
        lambda ax: plots.LayerHistogramPlot(ax, ylabel=r"activation $h_{l,i}$", log_values=False,
                                            title=f"activations per layer ({HISTOGRAM_BATCH} inputs)"),
        _draw_activation_histograms),
    "saturation_histograms": Panel(
        lambda ax: plots.LayerHistogramPlot(
            ax, ylabel=r"$|\varphi'(z_{l,i})|\,/\,\sup|\varphi'|$  (log scale)", zero_label="φ′ = 0 exactly",
            reference=math.log10(SATURATION_LEVEL),
            title=f"saturation per layer ({HISTOGRAM_BATCH} inputs)"),
        _draw_saturation_histograms),
}


class GradientDashboard(Dashboard):
    """Per-layer gradient magnitudes ‖∂L/∂h_l‖ of a deep MLP, live.

    Parameters are the ``vglab.MLP`` fields plus seed and n_seeds; ``controls`` names those that get a
    widget (the others stay fixed).  ``panels`` picks the plots, left to right:

        "gradient"     log10 ‖∂L/∂h_l‖: seeds' band and mean of log10 (the typical gradient), the root mean
                       square over seeds with the mean-field theory of that same quantity √E‖δ_l‖², and the
                       sup|φ′|^(L−l)‖g‖ line (the bound where ‖W_l‖₂ ≤ 1)
        "weights"      log10 ‖∂L/∂W_l‖_F per layer
        "activations"  log10 RMS(h_l), the forward signal scale
        "dead"         share of units with φ′(z) = 0 exactly for each seed's input (inactive ReLUs; a unit
                       is *dead* only when inactive for every input: ``vglab.unit_activity``)
        "saturated"    share of units with |φ′(z)| ≤ 0.1 sup|φ′|
        "phase"        order/chaos diagram over (σ_w², σ_b²) with the current setting marked
        "histograms"   per-layer histograms of the gradient entries log10|∂L/∂h_l,i| over a batch of inputs
                       (``vglab.layer_distributions``): a layer × bin heat map
        "activation_histograms"  the same heat map of the activations h_l,i (over φ's range)
        "saturation_histograms"  the same heat map of log10(|φ′(z_l,i)|/sup|φ′|) over [−6, 0], a dashed line
                       at the saturation threshold 0.1 sup|φ′| (ReLU's φ′ = 0 entries left out, their share noted)

    The mean-field curve can take seconds for saturating nets with large variance q (residual tanh at depth
    1000); it is cached per network and, during a live drag, computed in a worker thread and drawn when
    ready, so the measurement never waits for it.  ``update_now()`` and ``set()`` compute it synchronously.

    σ_w: choosing an ``init`` sets the σ_w slider to that scheme's value (Xavier 1, He √2); moving the slider
    then overrides it (``weight_std``).  ``max_depth`` bounds the depth slider; the constructor computes
    once at that depth, so every later depth drag is a compiled program's cached run.
    """

    kind = "gradient-dashboard"

    def __init__(self, *, depth: int = 20, width: int = 64, activation: str = "tanh", init: str = "xavier",
                 sigma_w: float | None = None, sigma_b: float = 0.0, residual: bool = False, norm=None,
                 residual_scale: float = 1.0, leaky_slope: float = 0.01, seed: int = 0, n_seeds: int = 4,
                 controls=("depth", "activation", "init"), panels=("gradient",), max_depth: int = 200,
                 activations=None, inits=None, widths=WIDTH_CHOICES, sigma_w_range=(0.1, 4.0),
                 sigma_b_range=(0.0, 1.0), show_theory: bool = True, show_bound: bool = True,
                 title: str = "", figsize=None, warm_up: bool = True):
        net = vglab.MLP(depth=depth, width=width, activation=activation, init=init, weight_std=sigma_w,
                        bias_std=sigma_b, residual=residual, norm=norm, residual_scale=residual_scale,
                        leaky_slope=leaky_slope)
        if not 1 <= depth <= max_depth:
            raise ValueError(f"depth must be an integer in 1..{max_depth} (max_depth), got {depth}")
        for panel in panels:
            check_choice("panel", panel, self.PANELS)
        for name in controls:
            check_choice("control", name, CONTROL_LABELS)
        self.panels, self.max_depth = tuple(panels), max_depth
        self.show_bound = show_bound
        # Without a σ_w control and without a given σ_w, σ_w follows the init (None: the init's own scale).
        follows_init = sigma_w is None and "sigma_w" not in controls
        values = dict(depth=depth, width=width, activation=activation, init=init,
                      sigma_w=None if follows_init else net.sigma_w,
                      sigma_b=sigma_b, residual=residual, norm=net.norm or "none",
                      residual_scale=residual_scale, leaky_slope=leaky_slope,
                      seed=seed, n_seeds=n_seeds, theory=show_theory)
        specs = dict(
            depth=dict(low=1, high=max_depth),
            width=dict(options=sorted(set(widths) | {width})),
            activation=dict(options=list(activations or ACTIVATIONS)),
            init=dict(options=list(inits or INITS)),
            sigma_w=dict(low=sigma_w_range[0], high=sigma_w_range[1], step=0.05),
            sigma_b=dict(low=sigma_b_range[0], high=sigma_b_range[1], step=0.01),
            norm=dict(options=list(NORM_CHOICES)),
            leaky_slope=dict(low=0.0, high=1.0, step=0.01),
            residual_scale=dict(low=0.05, high=2.0, step=0.05),
            n_seeds=dict(low=1, high=16),
        )
        made = {name: make_control(name, values[name], **specs.get(name, {})) for name in controls}
        fixed = {name: value for name, value in values.items() if name not in made}
        self._compiled_keys: set = set()
        if "init" in made and "sigma_w" in made:
            made["init"].observe(self._init_sets_sigma_w, names="value")
        wide = 0.8 if {"phase", *HISTOGRAM_PANELS} & set(panels) else 0.0  # a colour bar
        # At most 9.6 in: JupyterLab's output area is ~968 px wide beside the file browser (1400 px window), and the
        # browser suite's screenshots of 10 in figures cut the colour bars' labels at the right edge (02, 03).
        figsize = figsize or (min(9.6, 4.4 * len(panels) + 0.4 + wide), 3.8)
        super().__init__(made, fixed=fixed, title=title, figsize=figsize, warm_up=warm_up,
                         extra_buttons=pin_buttons(self))

    PANELS = tuple(GRADIENT_PANELS)  # the registry above: name → (make a plot on an axes, draw a view on it)

    # ---- controls
    def _init_sets_sigma_w(self, change):
        with self.hold_updates():
            self.controls["sigma_w"].value = default_weight_std(change["new"])

    @property
    def sigma_w_step(self) -> float | None:
        """The σ_w slider's step (σ_w within half of it of the init's value is that value), None without one."""
        return self.controls["sigma_w"].step if "sigma_w" in self.controls else None

    def network(self, state: dict | None = None) -> vglab.MLP:
        """The ``vglab.MLP`` a state describes (``experiments.gradient_network``: σ_w within half a slider step
        of the init's own value counts as that value, ``weight_std=None``)."""
        return experiments.gradient_network(self.state if state is None else state, sigma_w_step=self.sigma_w_step)

    def equivalent(self, state: dict, other: dict) -> bool:
        keys = ("seed", "n_seeds", "theory")
        return (all(state[k] == other[k] for k in keys)
                and self.network(state) == self.network(other))

    # ---- figure
    def setup_figure(self, figure):
        axes = figure.subplots(1, len(self.panels), squeeze=False)[0]
        self.plots = {panel: GRADIENT_PANELS[panel].make(ax) for ax, panel in zip(axes, self.panels, strict=True)}
        figure.tight_layout()

    # ---- compute
    def _options(self) -> dict:
        """What the experiment needs to know of this dashboard beyond the state."""
        return dict(sigma_w_step=self.sigma_w_step, max_depth=self.max_depth,
                    histograms=bool(set(HISTOGRAM_PANELS) & set(self.panels)))

    def compute(self, state: dict) -> GradientView:
        """``experiments.gradient_experiment``; during a live drag a mean-field curve not cached yet is
        computed in the worker thread (``_start_theory``) and drawn when ready."""
        view = experiments.gradient_experiment(state, **self._options(), show_bound=self.show_bound,
                                               theory_later=self._start_theory if self.interactive else None)
        self._compiled_keys.add(self._compile_key(state))
        return view

    def _start_theory(self, deepest: vglab.MLP) -> None:
        """Compute a mean-field curve in a worker thread (it can take seconds for saturating nets with
        large q), then redraw it if the plot still shows that network; the measurement does not wait."""
        loop = _running_loop()

        def work():
            try:
                experiments.compute_mean_field(deepest)
            except Exception:  # noqa: BLE001 - the theory line is an extra; the plot stays without it
                return
            loop.call_soon_threadsafe(self._theory_ready, deepest)

        _theory_pool().submit(work)

    def _theory_ready(self, deepest: vglab.MLP) -> None:
        view = self.result
        if view is None or not view.theory_pending:
            return
        if experiments.theory_depth(view.net, self.max_depth) != deepest:
            return  # the plot moved on; its own curve is on its way
        self.result = experiments.with_theory(view, max_depth=self.max_depth)
        try:
            with drawing.DRAW_LOCK:
                self.draw(self.result)
                self._redraw_figure()
        except Exception as error:  # noqa: BLE001
            self._show_error(error)
            return
        self._update_status()

    def _compile_key(self, state):
        return experiments.program_key(self.network(state), state["n_seeds"])

    def _announce(self, state):
        if self._compile_key(state) not in self._compiled_keys and self.updates:
            self.status.value = ('<span class="vglab-status-text vglab-busy">compiling the program for this '
                                 "setting (once, about a second)…</span>")

    def warm_up(self):
        """Compute once at ``max_depth``: draws every layer's weights and compiles the program the depth
        slider reuses, so the first drag is as fast as the others."""
        state = self.state
        if "depth" in self.controls and state["depth"] != self.max_depth:
            with contextlib.suppress(ValueError):
                self.compute({**state, "depth": self.max_depth})

    # ---- background warm-up (vglab.lab.warmup): every activation, init family, skip and norm option
    warm_controls = ("activation", "init", "residual", "norm")

    def warm_state(self, state, name, value):
        variant = {**state, name: value}
        if name == "init" and "sigma_w" in self.controls:
            variant["sigma_w"] = default_weight_std(value)  # what _init_sets_sigma_w does to the slider
        return variant

    def _warm_net(self, state) -> vglab.MLP:
        """The network a state shows, at the depth whose weights and program the depth slider reuses."""
        net = self.network(state)
        return net.replace(depth=self.max_depth) if "depth" in self.controls else net

    def warm_key(self, state):
        return (self._compile_key(state), self._warm_net(state), state["seed"], state["theory"])

    def warm_variant(self, state):
        phase = self.plots.get("phase")
        experiments.warm_gradient(state, **self._options(), at_depth=self._warm_net(state).depth,
                                  phase_grid=None if phase is None else (phase.sigma_w2, phase.sigma_b2))
        self._compiled_keys.add(self._compile_key(state))

    def warm_variants(self, state):
        """Each option's variant; those needing a program not compiled yet come first."""
        variants = super().warm_variants(state)
        return sorted(variants, key=lambda v: self._compile_key(v) in self._compiled_keys)

    # ---- draw
    def draw(self, view: GradientView) -> None:
        for panel, plot in self.plots.items():
            GRADIENT_PANELS[panel].draw(self, plot, view)

    def _draw_phase(self, plot: plots.PhaseDiagram, net: vglab.MLP):
        key = (net.activation, net.leaky_slope)
        new_grid = getattr(plot, "key", None) != key
        point = experiments.phase_point(net, plot.sigma_w2, plot.sigma_b2, grid=new_grid)
        if new_grid:
            plot.set_grid(point.grid)
            plot.key = key
        plot.set_point(point.sigma_w2, point.sigma_b2, point.note)
        plot.set_title(f"order/chaos: χ₁ = {point.chi1:.3g} here")

    def pin_label(self, s: dict) -> str:
        label = f"{s['activation']}, {s['init']}, $\\sigma_w$={self.network(s).sigma_w:.2f}, L={s['depth']}"
        if s["residual"]:
            label += ", skip" + (f" α={s['residual_scale']:.2f}" if s["residual_scale"] != 1.0 else "")
        if s["norm"] != "none":
            label += f", {s['norm']}-LN"
        return label

    # ---- text
    def summarise(self, view: GradientView) -> str:
        return experiments.gradient_summary(view)

    def code_for(self, state: dict) -> str:
        return experiments.gradient_code(state, sigma_w_step=self.sigma_w_step)

    def plotted(self) -> dict:
        """The data on screen, per panel, read back from the artists."""
        return {panel: plot.data() for panel, plot in self.plots.items()}


# --------------------------------------------------------------------------------------------- spectra
class SpectrumDashboard(GradientDashboard):
    """Singular values of the input–output Jacobian ∂h_L/∂h_0 (``vglab.jacobian_spectrum``), live.

    Same parameters and controls as ``GradientDashboard`` (n_seeds is unused: one network).  Dynamical
    isometry (Saxe et al. 2014; Pennington, Schoenholz & Ganguli 2017) is every σ_i ≈ 1: orthogonal weights
    with tanh near the edge of chaos keep the spectrum narrow, Gaussian weights and ReLU spread it.
    """

    kind = "spectrum-dashboard"

    def __init__(self, *, depth: int = 16, width: int = 64, max_depth: int = 64,
                 controls=("depth", "activation", "init"), **kwargs):
        kwargs.setdefault("n_seeds", 1)
        super().__init__(depth=depth, width=width, max_depth=max_depth, controls=controls,
                         panels=("gradient",), figsize=kwargs.pop("figsize", (9.2, 3.8)), **kwargs)

    def setup_figure(self, figure):
        sorted_ax, histogram_ax = figure.subplots(1, 2)
        self.plots = {"spectrum": plots.SpectrumPlot(sorted_ax, histogram_ax)}
        figure.tight_layout()

    def compute(self, state):
        spectrum = experiments.spectrum_experiment(state, sigma_w_step=self.sigma_w_step)
        self._compiled_keys.add(self._compile_key(state))
        return spectrum

    def warm_key(self, state):
        return (self._compile_key(state), self._warm_net(state), state["seed"])

    def warm_variant(self, state):
        experiments.spectrum_experiment(state, sigma_w_step=self.sigma_w_step,
                                        max_depth=self.max_depth if "depth" in self.controls else None)
        self._compiled_keys.add(self._compile_key(state))

    def draw(self, spectrum) -> None:
        self.plots["spectrum"].update(spectrum.log10_singular_values)

    def pin_targets(self) -> list:
        return [self.plots["spectrum"]]

    def pin_label(self, s: dict) -> str:
        return f"{s['activation']}, {s['init']}, $\\sigma_w$={self.network(s).sigma_w:.2f}, L={s['depth']}"

    def summarise(self, spectrum) -> str:
        return experiments.spectrum_summary(spectrum)

    def code_for(self, state):
        return experiments.spectrum_code(state, sigma_w_step=self.sigma_w_step)

    def plotted(self) -> dict:
        return {"spectrum": self.plots["spectrum"].data()}


def PhaseDiagramDashboard(**kwargs) -> GradientDashboard:  # noqa: N802 - reads as a class at the call site
    """A GradientDashboard with σ_w and σ_b sliders, the gradient plot and the order/chaos phase diagram."""
    kwargs.setdefault("controls", ("depth", "activation", "init", "sigma_w", "sigma_b"))
    kwargs.setdefault("panels", ("gradient", "phase"))
    kwargs.setdefault("activations", ("tanh", "relu", "sigmoid", "linear"))
    return GradientDashboard(**kwargs)


# Dashboards for recurrent nets, transformers and training runs live in their own modules (they import this
# one); ``vglab.lab.dashboards.RecurrentDashboard`` etc. reach them lazily.
_ELSEWHERE = {"RecurrentDashboard": "sequence_dashboards", "TransformerDashboard": "sequence_dashboards",
              "TrainingDashboard": "training_dashboards"}


def __getattr__(name: str):
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(f"vglab.lab.{_ELSEWHERE[name]}"), name)
    raise AttributeError(f"module 'vglab.lab.dashboards' has no attribute {name!r}")
