"""Matplotlib drawing for the dashboards: artists are created once, then only their data change.

No widgets here (``vglab.lab.dashboards`` adds those); every class takes an ``Axes`` and owns a fixed set of
artists that ``update`` rewrites in place (``set_data``, ``set_verts``, ``set_array``), so a dashboard never
adds a figure or an artist per slider step.

Magnitudes are plotted as log10 values on a linear axis whose ticks read as powers of ten: a float log axis
cannot show sigmoid's 1e-630 at depth 1000, a log10 value of −630 can.  An *exactly* zero value (log10 = −inf,
e.g. a layer whose ReLUs are all inactive) is never dropped silently: it is marked with a ▼ on the lower edge
of the axes and explained in a note ("exactly 0 (every unit of a layer inactive)", the reason the caller gives).

Each plot names the artists an update changes (``animated_artists()``) and sets axis limits only when they
change (``set_limits``; sticky limits, ``sticky_limits``/``sticky_x_limits``), so ``BlitFrames`` can redraw a
slider step as those artists over a saved background and everything else only when it changed.  Sticky
limits hold only during a drag: when it ends, ``release_limits()`` lets the dashboard's last draw fit them
to the data again (``Dashboard.end_drag``), so a drag down does not leave a half-empty axis.
"""

from __future__ import annotations

import math
import weakref

import contourpy
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.layout_engine import ConstrainedLayoutEngine, PlaceHolderLayoutEngine, TightLayoutEngine
from matplotlib.legend import Legend
from matplotlib.ticker import FuncFormatter, Locator, MaxNLocator

from vglab.core.results import mean_and_band  # the statistics over seeds: pure, in the core

# Okabe & Ito (2008), "Color Universal Design": told apart with every common colour-vision deficiency.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
# The dashboards name colours as matplotlib's tab10 does; they are drawn in Okabe–Ito's.
_TAB_TO_OKABE_ITO = {"tab:blue": "#0072B2", "tab:orange": "#E69F00", "tab:green": "#009E73",
                     "tab:red": "#D55E00", "tab:purple": "#CC79A7", "tab:brown": "#D55E00",
                     "tab:cyan": "#56B4E9", "tab:olive": "#F0E442", "tab:pink": "#CC79A7"}
ZERO_COLOUR = OKABE_ITO["vermillion"]  # the ▼ markers of exact zeros
NOTE_COLOUR = "#A03C00"  # text about exact zeros and stopped runs: a darker vermillion, ≥ 4.5:1 on white
PIN_COLOURS = ("0.45", "#56B4E9", "#E69F00", "0.7", "#F0E442")
MAX_PINS = len(PIN_COLOURS)
LEGEND_FONT = 8
TITLE_FONT = 10


def palette(colour: str) -> str:
    """A tab10 colour name as its Okabe–Ito colour (any other colour unchanged)."""
    return _TAB_TO_OKABE_ITO.get(colour, colour)


# --------------------------------------------------------------------------------------------- helpers
def power_of_ten_label(log10_value: float, _position=None) -> str:
    """The label of a log10 value: −630 → '$10^{-630}$', log10 20 → '$2{\\times}10^{1}$', 0.5 → '$10^{0.5}$'."""
    if not math.isfinite(log10_value):
        return ""
    rounded = round(log10_value)
    if abs(log10_value - rounded) < 1e-9:
        return f"$10^{{{rounded:d}}}$"
    decade = math.floor(log10_value)
    mantissa = 10.0 ** (log10_value - decade)
    if abs(mantissa - round(mantissa)) < 1e-6 and 2 <= round(mantissa) <= 9:
        return f"${round(mantissa):d}{{\\times}}10^{{{decade:d}}}$"
    return f"$10^{{{log10_value:.3g}}}$"


DECADE_STEPS = tuple(m * 10**e for e in range(6) for m in (1, 2, 5))


class PowerOfTenLocator(Locator):
    """Ticks of a linear axis that holds log10 values, where a log axis would put them: at whole decades,
    every 1, 2, 5, 10, 20, … decades (at most ``nbins`` + 1 ticks); in a view with fewer than two whole
    decades, also at 2× and 5× each decade (then at every m × 10^k), never at 10^0.25."""

    def __init__(self, nbins: int = 6):
        self.nbins = nbins

    def __call__(self):
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin, vmax):
        low, high = sorted((float(vmin), float(vmax)))
        if not (math.isfinite(low) and math.isfinite(high)):
            return np.zeros(0)
        for step in DECADE_STEPS:
            ticks = np.arange(math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9) + 1) * step
            if ticks.size <= self.nbins + 1:
                break
        if ticks.size >= 2:
            return ticks
        for mantissas in ((1, 2, 5), (1, 2, 3, 5, 7), range(1, 10)):
            ticks = np.array([k + math.log10(m) for k in range(math.floor(low), math.ceil(high) + 1)
                              for m in mantissas])
            ticks = ticks[(ticks >= low - 1e-9) & (ticks <= high + 1e-9)]
            if ticks.size >= 2:
                break
        return ticks


def use_power_of_ten_ticks(axis) -> None:
    """Label a linear axis holding log10 values as powers of ten (``PowerOfTenLocator``)."""
    axis.set_major_locator(PowerOfTenLocator())
    axis.set_major_formatter(FuncFormatter(power_of_ten_label))


def padded_limits(values, minimum_span: float = 1.0, pad: float = 0.06) -> tuple[float, float]:
    """(low, high) around the finite entries of ``values`` with a margin; (−1, 1) when none is finite."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return -1.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    span = max(high - low, minimum_span)
    middle = 0.5 * (low + high)
    low, high = min(low, middle - span / 2), max(high, middle + span / 2)
    return low - pad * span, high + pad * span


def set_limits(ax: Axes, *, x=None, y=None) -> None:
    """Set the x and/or y limits of ``ax`` only where they differ: matplotlib marks the figure stale (to be
    drawn in full, see ``BlitFrames``) on every ``set_xlim``, even to the same values."""
    if x is not None and tuple(ax.get_xlim()) != tuple(x):
        ax.set_xlim(*x)
    if y is not None and tuple(ax.get_ylim()) != tuple(y):
        ax.set_ylim(*y)


NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def nice_step(span: float, intervals: int = 6) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k that cuts ``span`` into at most ``intervals`` steps."""
    raw = max(float(span), 1e-12) / intervals
    decade = 10.0 ** math.floor(math.log10(raw))
    return next(m * decade for m in NICE_STEPS if m * decade >= raw * (1 - 1e-9))


def sticky_limits(current, values, *, minimum_span: float = 1.0, pad: float = 0.06, headroom: float = 0.1,
                  fill: float = 0.5) -> tuple[float, float]:
    """Axis limits that change rarely, so that most slider steps redraw only the data (blitting).

    ``current`` (low, high) is kept while the finite ``values`` lie inside it with a margin of 1% of its span
    and their padded span (``padded_limits``) fills at least ``fill`` of it (no squeezed curve); otherwise
    new limits are the padded range rounded out to a nice step (``nice_step``, a twentieth of the span),
    widened first by ``headroom`` of its span on each side when the data left the current limits.  Every
    finite value is always inside the returned limits.
    """
    low, high = padded_limits(values, minimum_span=minimum_span, pad=pad)
    grown = False
    if current is not None:
        a, b = current
        margin = 0.01 * (b - a)
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        inside = finite.size == 0 or (a + margin <= finite.min() and finite.max() <= b - margin)
        if inside and (high - low) >= fill * (b - a):
            return float(a), float(b)
        grown = not inside
    if grown:  # the data left the limits (e.g. a deeper net): leave room for the next steps
        span = high - low
        low, high = low - headroom * span, high + headroom * span
    step = nice_step(high - low, intervals=20)
    return float(math.floor(low / step) * step), float(math.ceil(high / step) * step)


NICE_ENDS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def sticky_x_limits(current, x, pad: float = 0.02, fill: float = 0.5, tight: bool = False) -> tuple[float, float]:
    """Limits (x0 − pad·S, x0 + (1 + pad)·S) for positions ``x`` from x0 = min(x), with S the smallest
    1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k ≥ max(x) − x0 (at least 1); ``current`` is kept while it has
    the same x0 and max(x) − x0 stays within [fill·S, S], so a depth drag rarely changes the axis.
    ``tight`` (a drag's end, ``release_limits``): S = max(x) − x0 itself (at least 1), the data to the edge."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (-pad, 1 + pad) if current is None else current
    x0, extent = float(x.min()), float(x.max() - x.min())
    if current is not None:
        a, b = current
        span = (b - a) / (1 + 2 * pad)
        if abs(a + pad * span - x0) < 1e-9 * max(1.0, span) and fill * span <= extent <= span * (1 + 1e-9):
            return float(a), float(b)
    extent = max(extent, 1.0)
    if tight:
        return x0 - pad * extent, x0 + (1 + pad) * extent
    decade = 10.0 ** math.floor(math.log10(extent))
    span = next(m * decade for m in NICE_ENDS if m * decade >= extent * (1 - 1e-9))
    return x0 - pad * span, x0 + (1 + pad) * span


def held_limits(x=None, xlim=None, values=None, ylim=None, *, minimum_span: float = 1.0, pad: float = 0.06,
                room: bool = False) -> bool:
    """Whether limits on screen are *held* (sticky): not the ones a fit to the data now shown would set, so
    that a drag's end (``release_limits``) must fit and draw them again.

    x: ``xlim`` is held unless it is ``sticky_x_limits(None, x, tight=True)`` (the data's ends);
    y: ``ylim`` is held unless it is ``sticky_limits(None, values, minimum_span, pad)`` (a fresh fit, without
    the headroom a growing drag adds); ``room``: the y range was widened to clear a legend (counted as held,
    since a fit may widen it otherwise).  A None pair is not checked."""
    if xlim is not None and x is not None and tuple(xlim) != sticky_x_limits(None, x, tight=True):
        return True
    if ylim is not None and values is not None:
        if room or tuple(ylim) != sticky_limits(None, values, minimum_span=minimum_span, pad=pad):
            return True
    return False


def _band_vertices(x, low, high) -> np.ndarray:
    """The closed polygon between two curves (their NaN-free parts), as fill_between would draw it."""
    ok = np.isfinite(low) & np.isfinite(high)
    if not ok.any():
        return np.zeros((0, 2))
    x, low, high = np.asarray(x, float)[ok], low[ok], high[ok]
    return np.concatenate([np.column_stack([x, high]), np.column_stack([x[::-1], low[::-1]])])


def _ranges(indices: np.ndarray) -> str:
    """'0–12, 20' for the sorted integers [0..12, 20]."""
    parts, start, prev = [], None, None
    for i in indices.tolist():
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}–{prev}" if prev > start else f"{start}")
            start = prev = i
    if start is not None:
        parts.append(f"{start}–{prev}" if prev > start else f"{start}")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------- profiles
class LogProfilePlot:
    """A per-layer (or per-time-step) magnitude in log10 over several seeds.

    Draws the mean over seeds (solid), the min–max band over seeds (shaded), optional reference curves
    (mean-field theory, a closed-form bound; dashed), faint pinned curves kept for comparison, and ▼ markers
    with a note where the value is exactly zero.  ``update`` changes the data of these artists only.
    """

    REFERENCE_STYLES = {
        "rms": dict(color="#CC79A7", linestyle="-.", linewidth=1.5, label="root mean square over seeds"),
        "theory": dict(color="black", linestyle="--", linewidth=1.3, label="mean-field theory"),
        "bound": dict(color=OKABE_ITO["vermillion"], linestyle=":", linewidth=1.8,
                      label=r"$\sup|\varphi'|^{L-l}$ (bound if $\|W\|_2 \leq 1$)"),
    }

    def __init__(self, ax: Axes, *, ylabel: str = r"$\|\partial L/\partial h_l\|$  (log scale)",
                 xlabel: str = "layer $l$", title: str | None = None, colour: str = "tab:blue",
                 label: str = "measured (mean of seeds)",
                 reference_labels: dict | None = None):
        """reference_labels: legend labels replacing the default ones ("theory", "bound"), e.g. for a
        bound per time step instead of per layer."""
        self.ax = ax
        colour = palette(colour)
        (self.mean_line,) = ax.plot([], [], color=colour, linewidth=2.0, label=label, zorder=3)
        self.band = ax.fill_between([0, 1], [0, 0], [0, 0], color=colour, alpha=0.25, linewidth=0,
                                    label="min–max over seeds", zorder=2)
        self.band.set_verts([np.zeros((0, 2))])
        self.references = {}
        for name, style in self.REFERENCE_STYLES.items():
            style = {**style, "label": (reference_labels or {}).get(name, style["label"])}
            (line,) = ax.plot([], [], zorder=4, **style)
            line.set_visible(False)
            self.references[name] = line
        (self.zero_markers,) = ax.plot([], [], linestyle="none", marker="v", markersize=7, color=ZERO_COLOUR,
                                       transform=ax.get_xaxis_transform(), clip_on=False, zorder=5,
                                       label="exactly 0")
        self.zero_markers.set_visible(False)  # shown by update() where a value is exactly 0
        self.zero_note = ""  # what the legend's title says about exact zeros ('' when there are none)
        self.empty_note = ax.text(0.5, 0.5, "", transform=ax.transAxes, ha="center", va="center", fontsize=10,
                                  color="0.35", zorder=6)
        self.empty_note.set_visible(False)  # shown by clear()
        self.pins: list = []
        self.position_name = xlabel.split()[-1].strip("$") if xlabel else "l"
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title, fontsize=TITLE_FONT)
        use_power_of_ten_ticks(ax.yaxis)
        ax.grid(True, alpha=0.3)
        self.legend = None
        self.corner = "upper right"  # where the legend is (see place_legend)
        self._legend_key = ()
        self._legend_sizes: dict = {}
        self._xlim = self._ylim = None  # kept while the data fit them (see sticky_limits)
        self._x = np.zeros(0)
        self._zero_what = ""

    def update(self, x, log10_values, *, references: dict | None = None,
               zero_reason: str = "") -> None:
        """x: (n,) positions; log10_values: (n_seeds, n) or (n,); references: name → (n,) curve or None;
        zero_reason: why a value can be exactly 0, for the ▼ note (e.g. "every unit of a layer inactive")."""
        x = np.asarray(x, dtype=float)
        values = np.atleast_2d(np.asarray(log10_values, dtype=float))
        if values.shape[-1] != x.shape[0]:
            raise ValueError(f"{values.shape[-1]} values for {x.shape[0]} positions")
        mean, low, high, zero_count = mean_and_band(values)
        self._x, self._zero_what = x, zero_reason
        self.empty_note.set_visible(False)  # shown by clear() only
        self.mean_line.set_data(x, mean)
        self.band.set_verts([_band_vertices(x, low, high)])
        shown = [mean, low, high]
        for name, line in self.references.items():
            curve = None if references is None else references.get(name)
            line.set_visible(curve is not None)
            if curve is not None:
                curve = np.asarray(curve, dtype=float)
                line.set_data(x[: curve.shape[0]], curve)
                shown.append(curve)
        for pin in self.pins:
            shown.append(pin.get_ydata())
        self._show_zeros(x, zero_count, values.shape[0])
        self._refresh_legend()
        curves = [(x, mean)] + [(line.get_xdata(), line.get_ydata()) for line in self.references.values()
                                if line.get_visible()] + [(pin.get_xdata(), pin.get_ydata()) for pin in self.pins]
        self._xlim = sticky_x_limits(self._xlim, x, tight=getattr(self, "_tight", False))
        self._tight = False
        values = np.concatenate([np.ravel(s) for s in shown])
        self._ylim = place_with_room(self.ax, self.legend, self._legend_sizes, self, curves, [(x, low, high)],
                                     values, self._xlim, self._ylim, minimum_span=1.0)
        self._held = held_limits(x, self._xlim, values, self._ylim, minimum_span=1.0, room=self._legend_room)
        self.legend.set_visible(True)

    def _show_zeros(self, x, zero_count, n_seeds):
        where = np.flatnonzero(zero_count > 0)
        self.zero_markers.set_data(x[where], np.full(where.shape, 0.0))
        self.zero_markers.set_visible(bool(where.size))  # (an empty unclipped line would widen tight bboxes)
        text = ""
        if where.size:
            positions = _ranges(np.round(x[where]).astype(int))
            why = f" ({self._zero_what})" if self._zero_what else ""
            text = f"▼ exactly 0{why}\nat {self.position_name} = {positions}"
            if n_seeds > 1:
                most = int(zero_count.max())
                text += f" in {most} of {n_seeds} seeds"
                text += "" if most == n_seeds else ";\ncurve and band: the other seeds"
        self.zero_note = text

    def clear(self, note: str = "", x=None) -> None:
        """Show no curve (same artists, empty data), with ``note`` in the middle of the axes (e.g. why); the
        x axis spans ``x`` when given (the positions a neighbouring panel shows), not the last curve's."""
        if x is not None:
            self._xlim = sticky_x_limits(self._xlim, np.asarray(x, dtype=float))
            set_limits(self.ax, x=self._xlim)
            self._held = held_limits(x, self._xlim)
        self._x = np.zeros(0)
        self.mean_line.set_data([], [])
        self.band.set_verts([np.zeros((0, 2))])
        for line in self.references.values():
            line.set_visible(False)
        self.zero_markers.set_data([], [])
        self.zero_markers.set_visible(False)
        self.zero_note = ""
        self.empty_note.set_text(note)
        self.empty_note.set_visible(bool(note))
        self._refresh_legend()  # made once here too, so a later update adds no artist
        self.legend.set_visible(False)  # back with the next update

    def pin(self, label: str) -> None:
        """Keep the current mean curve as a faint line named ``label`` (MAX_PINS at most, oldest dropped)."""
        pin_copy(self.pins, self.ax, self.mean_line, label, alpha=0.9)
        self._refresh_legend()

    def clear_pins(self) -> None:
        remove_pins(self.pins)
        self._refresh_legend()

    def _refresh_legend(self):
        handles = [self.mean_line, self.band] + [ln for ln in self.references.values() if ln.get_visible()]
        if self.zero_note:
            handles.append(self.zero_markers)
        handles += self.pins
        refresh_legend(self, self.ax, handles, self.zero_note)  # in the corner update() chose (place_legend)

    def release_limits(self) -> bool:
        """A drag ended (``Dashboard.end_drag``): if the limits on screen are not the ones a fit to this data
        would set (``held_limits``: kept by ``sticky_limits``, widened with headroom, or a nice x span), forget
        them, so that the next update fits them anew, the x axis to the data's ends
        (``sticky_x_limits(tight=True)``), and return True; else keep them and return False (nothing to redraw)."""
        if not getattr(self, "_held", False):
            return False
        self._xlim = self._ylim = None
        self._legend_room, self._tight, self._held = False, True, False
        return True

    def animated_artists(self) -> list:
        """The artists an update changes (data, notes, legend): drawn over a saved background (``BlitFrames``)."""
        return ([self.band, self.mean_line, *self.references.values(), *self.pins, self.zero_markers,
                 self.empty_note] + ([self.legend] if self.legend is not None else []))

    def data(self) -> dict:
        """What is on screen, read back from the artists (for tests and for students)."""
        out = {"x": np.asarray(self.mean_line.get_xdata(), float),
               "mean": np.asarray(self.mean_line.get_ydata(), float),
               "zeros_at": np.asarray(self.zero_markers.get_xdata(), float),
               "zero_note": self.zero_note}
        for name, line in self.references.items():
            out[name] = np.asarray(line.get_ydata(), float) if line.get_visible() else None
        return out


LEGEND_CORNERS = ("upper right", "upper left", "lower left", "lower right")  # preferred first
# legend → the loc its plot asked for (make_legend, move_legend): matplotlib offers no public getter for it
_ASKED_LOC: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def make_legend(ax, *, loc: str, **kwargs) -> Legend:
    """``ax.legend(loc=loc, **kwargs)``, the corner it was asked for recorded (``legend_loc``)."""
    legend = ax.legend(loc=loc, **kwargs)
    _ASKED_LOC[legend] = loc
    return legend


def move_legend(legend: Legend, loc: str) -> None:
    """``legend.set_loc(loc)``, recorded (``legend_loc``); the legend is then stale and drawn anew."""
    legend.set_loc(loc)
    _ASKED_LOC[legend] = loc


def legend_loc(legend: Legend) -> str | None:
    """The loc a legend was made with or last moved to by ``make_legend``/``move_legend``; None for a legend
    made otherwise (its corner unknown)."""
    return _ASKED_LOC.get(legend)


def pin_copy(pins: list, ax: Axes, line, label: str, **style) -> None:
    """Append to ``pins`` a faint copy of ``line``'s current data on ``ax``, named ``label``, in the first of
    PIN_COLOURS no kept pin has; at MAX_PINS the oldest pin is removed first (its colour goes to the new one, so
    no two pins ever share a colour)."""
    if len(pins) == MAX_PINS:
        pins.pop(0).remove()
    used = {pin.get_color() for pin in pins}
    colour = next(c for c in PIN_COLOURS if c not in used)
    (copy,) = ax.plot(line.get_xdata(), line.get_ydata(), color=colour, linewidth=1.2, label=label, zorder=1,
                      **style)
    pins.append(copy)


def remove_pins(pins: list) -> None:
    """Remove every pinned line of ``pins`` from its axes (the list is left empty)."""
    while pins:
        pins.pop().remove()


def refresh_legend(plot, ax, handles: list, note: str) -> None:
    """A plot's legend of ``handles`` in ``plot.corner`` of ``ax``, with ``note`` as its title: made anew only
    when the handles changed (``plot.legend``, keyed by ``plot._legend_key``), otherwise only its note set."""
    key = tuple(id(h) for h in handles)
    if plot.legend is None or key != plot._legend_key:
        if plot.legend is not None:
            plot.legend.remove()
        plot.legend = make_legend(ax, handles=handles, fontsize=LEGEND_FONT, loc=plot.corner, framealpha=0.9,
                                  alignment="left", handlelength=1.6)
        plot.legend.set_in_layout(False)  # inside the axes: the layout leaves room for it there
        plot._legend_key = key
    set_legend_note(plot.legend, note)


def set_legend_note(legend, note: str) -> None:
    """Show ``note`` (exact zeros, a stopped run) as the legend's title, in NOTE_COLOUR: one box with the
    entries it explains, so the note never covers the legend or the other way round."""
    title = legend.get_title()
    if title.get_text() != note:
        legend.set_title(note or None, prop={"size": LEGEND_FONT})
        legend.get_title().set_color(NOTE_COLOUR)


def legend_size(legend, ax, cache: dict) -> tuple[float, float, float, float]:
    """(width, height, x pad, y pad) of ``legend``'s box as fractions of ``ax``, measured with the canvas's
    renderer once per content and axes size (``cache``)."""
    figure = ax.figure
    renderer = figure.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    key = (id(legend), legend.get_title().get_text(), round(box.width), round(box.height), figure.dpi)
    if key not in cache:
        extent = legend.get_window_extent(renderer)
        pad = legend.borderaxespad * legend.prop.get_size_in_points() * figure.dpi / 72
        cache.clear()
        cache[key] = (extent.width / box.width, extent.height / box.height, pad / box.width,
                      pad / box.height)
    return cache[key]


def _across(ax, u0, u1, curves, bands, samples: int = 160):
    """Highest and lowest data (axes fractions) at ``samples`` x positions from u0 to u1 (axes fractions):
    curves (x, y) interpolated, bands (x, low, high) as their extent; NaN where there are none."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    xs = x0 + (x1 - x0) * np.linspace(u0, u1, samples)
    top = np.full(samples, -np.inf)
    bottom = np.full(samples, np.inf)

    def at(x, y):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < 2:
            inside = ok & (x >= min(xs[0], xs[-1])) & (x <= max(xs[0], xs[-1]))
            out = np.full(samples, np.nan)
            if inside.any():
                out[0] = y[inside].max()
                out[-1] = y[inside].min()
            return out
        return np.interp(xs, x[ok], y[ok], left=np.nan, right=np.nan)

    with np.errstate(invalid="ignore"):
        for x, y in curves:
            v = (at(x, y) - y0) / (y1 - y0)
            top, bottom = np.fmax(top, v), np.fmin(bottom, v)
        for x, low, high in bands:
            top = np.fmax(top, (at(x, high) - y0) / (y1 - y0))
            bottom = np.fmin(bottom, (at(x, low) - y0) / (y1 - y0))
    return top, bottom


def place_legend(ax, size, curves, bands, current: str | None = None, margin: float = 0.015):
    """Where ``ax``'s legend covers no data: (corner, None) for a corner whose box (``size``, from
    ``legend_size``) no curve or band reaches (the current corner first, then LEGEND_CORNERS' order), else
    (corner, limit): the corner that needs the least extra room and the y value the axis must reach for the
    data to clear it ((y1', "top") above an upper corner's box, (y0', "bottom") below a lower one's)."""
    width, height, pad_u, pad_v = size
    (y0, y1) = ax.get_ylim()
    best = None
    order = ([current] if current in LEGEND_CORNERS else []) + [c for c in LEGEND_CORNERS if c != current]
    for corner in order:
        u0, u1 = (1 - pad_u - width, 1 - pad_u) if "right" in corner else (pad_u, pad_u + width)
        top, bottom = _across(ax, u0, u1, curves, bands)
        if "upper" in corner:
            edge = 1 - pad_v - height - margin  # the data must stay below this
            highest = np.max(top[np.isfinite(top)], initial=-np.inf)
            if highest <= edge:
                return corner, None
            need = (y0 + (y1 - y0) * highest / max(edge, 0.05), "top")
            cost = highest / max(edge, 0.05)
        else:
            edge = pad_v + height + margin  # the data must stay above this
            lowest = np.min(bottom[np.isfinite(bottom)], initial=np.inf)
            if lowest >= edge:
                return corner, None
            need = (y1 - (y1 - y0) * (1 - lowest) / max(1 - edge, 0.05), "bottom")
            cost = (1 - lowest) / max(1 - edge, 0.05)
        if best is None or cost < best[0] - 1e-9:
            best = (cost, corner, need)
    return best[1], best[2]


def _lay_out(figure) -> None:
    """Run the figure's StableTightLayout now (it does nothing unless the limits changed)."""
    engine = figure.get_layout_engine()
    if isinstance(engine, StableTightLayout):
        engine.execute(figure)


def place_with_room(ax, legend, cache, owner, curves, bands, values, xlim, ylim, *, minimum_span: float,
                    pad: float = 0.06):
    """Set ``ax``'s limits (x: ``xlim``; y: sticky around ``values``) and put ``legend`` in a corner where it
    covers no data, widening the y range on that side when no corner is free.  ``owner.corner`` holds the
    corner (moving the legend is a full frame).  Returns the y limits."""
    set_limits(ax, x=xlim)
    # While the range holds room for the legend, the data may fill a quarter of it (else it would shrink
    # back and grow again on every step).
    roomy = getattr(owner, "_legend_room", False)
    previous = ylim
    ylim = sticky_limits(ylim, values, minimum_span=minimum_span, pad=pad, fill=0.25 if roomy else 0.5)
    owner._legend_room = roomy and ylim == previous
    set_limits(ax, y=ylim)
    _lay_out(ax.figure)  # new limits, new tick labels: the axes' final size, before measuring in it
    size = legend_size(legend, ax, cache)
    corner, need = place_legend(ax, size, curves, bands, owner.corner)
    if need is not None:  # no corner is free: make room above (or below) the data for the legend
        ylim = sticky_limits(ylim, np.append(values, need[0]), minimum_span=minimum_span, pad=pad, fill=0.25)
        owner._legend_room = True
        set_limits(ax, y=ylim)
        _lay_out(ax.figure)
        corner, _ = place_legend(ax, legend_size(legend, ax, cache), curves, bands, corner)
    if corner != owner.corner:
        move_legend(legend, corner)
        owner.corner = corner
    return ylim


def emptiest_corner(ax: Axes, x, curves, entries: int, current: str | None = None, tolerance: int = 2) -> str:
    """The corner of ``ax`` whose legend-sized box covers the fewest points of ``curves`` (each (n,) or (k, n)
    over ``x``), for a legend of ``entries`` rows: what ``loc="best"`` finds, without matplotlib's search,
    which measures every candidate box against every path vertex at each draw (half the draw time of a
    one-panel dashboard).  Box: 45% of the width, 0.06 + 0.065·entries of the height (8-pt legend rows).
    The ``current`` corner is kept while it covers at most ``tolerance`` points more than the best one, so
    the legend does not jump between corners on every slider step.
    """
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    u = (np.asarray(x, float) - x0) / ((x1 - x0) or 1.0)
    width, height = 0.45, min(0.06 + 0.065 * entries, 0.9)
    counts = []
    for corner in LEGEND_CORNERS:
        in_x = u >= 1 - width if "right" in corner else u <= width
        count = 0
        for curve in curves:
            v = (np.atleast_2d(np.asarray(curve, float)) - y0) / ((y1 - y0) or 1.0)
            in_y = v >= 1 - height if "upper" in corner else v <= height
            count += int(np.count_nonzero(in_y[:, : u.shape[0]] & in_x[: v.shape[-1]]))
        counts.append(count)
    if current in LEGEND_CORNERS and counts[LEGEND_CORNERS.index(current)] <= min(counts) + tolerance:
        return current
    return LEGEND_CORNERS[int(np.argmin(counts))]


class FractionPlot:
    """A share in [0, 1] per layer (dead or saturated units): mean over seeds and the min–max band."""

    def __init__(self, ax: Axes, *, ylabel: str, xlabel: str = "layer $l$", title: str | None = None,
                 colour: str = "tab:purple"):
        self.ax = ax
        colour = palette(colour)
        (self.mean_line,) = ax.plot([], [], color=colour, linewidth=2.0, label="mean of seeds")
        self.band = ax.fill_between([0, 1], [0, 0], [0, 0], color=colour, alpha=0.25, linewidth=0,
                                    label="min–max over seeds")
        self.band.set_verts([np.zeros((0, 2))])
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        self.title = title or ""
        ax.set_title(self.title, fontsize=TITLE_FONT)
        ax.grid(True, alpha=0.3)
        self.note = ax.title  # "<title> · mean over layers 50.8%": above the axes, never over the curve
        self._xlim = None

    def update(self, x, fractions) -> None:
        x = np.asarray(x, dtype=float)
        values = np.atleast_2d(np.asarray(fractions, dtype=float))
        mean = values.mean(axis=0)
        self.mean_line.set_data(x, mean)
        self.band.set_verts([_band_vertices(x, values.min(axis=0), values.max(axis=0))])
        self._xlim = sticky_x_limits(self._xlim, x, tight=getattr(self, "_tight", False))
        self._tight = False
        self._held = held_limits(x, self._xlim)
        set_limits(self.ax, x=self._xlim)
        average = f"mean {100 * mean.mean():.1f}%" if mean.size else ""
        self.note.set_text("\n".join(part for part in (self.title, average) if part))  # two short lines

    def release_limits(self) -> bool:
        """A drag ended: if the x limits are not the data's ends (``held_limits``), forget them so the next
        update fits them there, and return True; else False (nothing to redraw)."""
        if not getattr(self, "_held", False):
            return False
        self._xlim, self._tight, self._held = None, True, False
        return True

    def animated_artists(self) -> list:
        """The artists an update changes (curve, band, the title with the average): drawn over a saved
        background (``BlitFrames``)."""
        return [self.band, self.mean_line, self.note]

    def data(self) -> dict:
        return {"x": np.asarray(self.mean_line.get_xdata(), float),
                "mean": np.asarray(self.mean_line.get_ydata(), float)}


# --------------------------------------------------------------------------------------------- histograms
class LayerHistogramPlot:
    """Per-layer histograms as one heat map: column l is layer l's histogram, shaded by the share of that
    layer's entries in each bin (``vglab.layer_distributions``), so a distribution that drifts or spreads with
    depth is a band that bends or widens.  ``log_values``: the bins are log10 values, ticked as powers of ten.
    Entries left out of the map (``zeros`` in ``update``: exact zeros, which have no logarithm) are counted in
    the shares' denominator and their share noted under the title as "<zero_label>: x % of entries";
    ``note`` in ``update`` adds another line there (e.g. entries beyond the range, drawn in the end bins).
    ``reference``: a dashed line across the map at that value (a threshold, in the bins' units)."""

    def __init__(self, ax: Axes, *, ylabel: str, title: str, xlabel: str = "layer $l$",
                 log_values: bool = True, colour_label: str = "share of the layer's entries",
                 zero_label: str = "exact zeros", reference: float | None = None):
        self.ax = ax
        self.image = ax.imshow(np.zeros((1, 1)), origin="lower", aspect="auto", cmap="Blues",
                               interpolation="nearest", vmin=0.0, vmax=1.0, extent=(0.0, 1.0, 0.0, 1.0))
        colourbar = ax.figure.colorbar(self.image, cax=ax.inset_axes([1.03, 0.0, 0.04, 1.0]))
        colourbar.set_label(colour_label, fontsize=LEGEND_FONT)
        colourbar.ax.tick_params(labelsize=LEGEND_FONT)
        self.colourbar = colourbar
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # layers are whole numbers
        if log_values:
            use_power_of_ten_ticks(ax.yaxis)
        self.reference = None
        if reference is not None:  # grey: readable over light and dark shades alike
            self.reference = ax.axhline(reference, color="0.35", linewidth=1.2, linestyle="--")
        self.title, self.zero_label = title, zero_label
        ax.set_title(title, fontsize=TITLE_FONT)
        self.note = ax.title
        self.shares = np.zeros((0, 0))
        self.edges = np.zeros(0)
        self.layers = np.zeros(0)

    def update(self, layers, edges, counts, zeros=None, note: str = "") -> None:
        """layers (R,), edges (bins+1,), counts (R, bins), zeros (R,) entries left out of the map (exact
        zeros); ``note``: an extra line under the title."""
        layers, edges = np.asarray(layers, float), np.asarray(edges, float)
        counts = np.asarray(counts, float)
        zeros = np.zeros(len(counts)) if zeros is None else np.asarray(zeros, float)
        totals = counts.sum(axis=1) + zeros
        self.shares = counts / np.where(totals > 0, totals, 1.0)[:, None]
        self.edges, self.layers = edges, layers
        self.image.set_data(self.shares.T)
        half = 0.5 * (layers[1] - layers[0]) if layers.size > 1 else 0.5
        extent = (layers[0] - half, layers[-1] + half, edges[0], edges[-1])
        self.image.set_extent(extent)
        top = max(float(self.shares.max(initial=0.0)), 1e-6)
        self.image.set_clim(0.0, top)
        ticks = MaxNLocator(5).tick_values(0.0, top)
        self.colourbar.set_ticks(ticks[(ticks >= 0.0) & (ticks <= top * (1 + 1e-9))])  # none beyond the bar
        self.ax.set_xlim(extent[0], extent[1])
        self.ax.set_ylim(extent[2], extent[3])
        zero_share = zeros.sum() / max(totals.sum(), 1.0)
        zero_note = f"{self.zero_label}: {100 * zero_share:.1f}% of entries" if zero_share > 0 else ""
        self.note.set_text("\n".join(part for part in (self.title, zero_note, note) if part))

    def animated_artists(self) -> list:
        """The heat map, its threshold line and the title with its note (new limits or colour-bar ticks make
        a full frame)."""
        return [self.image, *([self.reference] if self.reference is not None else []), self.note]

    def data(self) -> dict:
        return {"layers": self.layers, "edges": self.edges, "shares": self.shares, "note": self.note.get_text()}


# --------------------------------------------------------------------------------------------- phase diagram
class PhaseDiagram:
    """The order/chaos phase diagram of a deep random net (Poole et al. 2016; Schoenholz et al. 2017).

    Colour: log10 χ₁ over (σ_w², σ_b²), with χ₁ = σ_w² E[φ′(√q* u)²] the per-layer factor of E‖∂L/∂h‖²;
    blue (χ₁ < 1) is the ordered phase where gradients vanish, red (χ₁ > 1) the chaotic phase where they
    explode.  The black line is the edge of chaos χ₁ = 1; the star is the current (σ_w², σ_b²).
    """

    COLOUR_LIMIT = 0.5  # colours saturate at χ₁ = 10^±0.5 (a factor of ~3 per layer)

    def __init__(self, ax: Axes, sigma_w2: np.ndarray, sigma_b2: np.ndarray, *, title: str | None = None):
        self.ax = ax
        self.sigma_w2, self.sigma_b2 = np.asarray(sigma_w2, float), np.asarray(sigma_b2, float)
        shape = (self.sigma_b2.size, self.sigma_w2.size)
        self.mesh = ax.pcolormesh(self.sigma_w2, self.sigma_b2, np.zeros(shape), shading="nearest",
                                  cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-self.COLOUR_LIMIT,
                                                                   vmax=self.COLOUR_LIMIT))
        (self.edge,) = ax.plot([], [], color="black", linewidth=2.0, label=r"edge of chaos $\chi_1 = 1$")
        (self.marker,) = ax.plot([], [], marker="*", markersize=15, color=OKABE_ITO["yellow"],
                                 markeredgecolor="black", linestyle="none", label="current setting", zorder=5,
                                 clip_on=False)  # a setting on the grid's edge (σ_b = 0) shows whole
        self.marker.set_in_layout(False)  # (an unclipped artist would otherwise move the layout with it)
        # The phases are named by the colour bar (black text on white, not navy on dark blue).
        colourbar = ax.figure.colorbar(self.mesh, cax=ax.inset_axes([1.04, 0.0, 0.05, 1.0]),
                                       ticks=[-self.COLOUR_LIMIT, 0.0, self.COLOUR_LIMIT])
        colourbar.ax.set_yticklabels(["ordered:\nvanish", r"$\chi_1 = 1$", "chaotic:\nexplode"],
                                     fontsize=LEGEND_FONT)
        colourbar.set_label(r"$\chi_1$ per layer", fontsize=LEGEND_FONT)
        self.colourbar = colourbar
        ax.set_xlabel(r"$\sigma_w^2$")
        ax.set_ylabel(r"$\sigma_b^2$")
        half_w = 0.5 * (self.sigma_w2[1] - self.sigma_w2[0]) if self.sigma_w2.size > 1 else 0.0
        half_b = 0.5 * (self.sigma_b2[1] - self.sigma_b2[0]) if self.sigma_b2.size > 1 else 0.0
        ax.set_xlim(self.sigma_w2[0] - half_w, self.sigma_w2[-1] + half_w)  # the whole cells (shading nearest)
        ax.set_ylim(self.sigma_b2[0] - half_b, self.sigma_b2[-1] + half_b)
        ax.set_title(title or "order/chaos phase diagram", fontsize=TITLE_FONT)
        # Below the axes (the colours fill them): the legend, its title the note on the current setting.
        self.legend = make_legend(ax, handles=[self.edge, self.marker], fontsize=LEGEND_FONT, loc="upper center",
                                  bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False, title=" ",
                                  title_fontsize=LEGEND_FONT)
        self.note = self.legend.get_title()
        self.note.set_color(NOTE_COLOUR)
        self.chi1 = None

    def animated_artists(self) -> list:
        """The artists an update changes (the current point, its note, the χ₁ title); the χ₁ map and the edge
        of chaos change only with the activation (a full frame)."""
        return [self.marker, self.legend, self.ax.title]  # the legend carries the note in its title

    def set_title(self, text: str) -> None:
        """Change the title's text (e.g. the χ₁ of the current setting) without a new layout."""
        self.ax.title.set_text(text)

    def set_grid(self, chi1: np.ndarray | None) -> None:
        """chi1: (len(σ_b²), len(σ_w²)) values of χ₁, or None when unavailable for this activation."""
        if chi1 is None:
            self.chi1 = None
            self.mesh.set_visible(False)
            self.edge.set_data([], [])
            return
        self.chi1 = np.asarray(chi1, dtype=float)
        with np.errstate(divide="ignore"):
            log_chi = np.log10(self.chi1)
        limit = self.COLOUR_LIMIT
        self.mesh.set_visible(True)
        self.mesh.set_array(np.clip(log_chi, -limit, limit).ravel())
        lines = contourpy.contour_generator(self.sigma_w2, self.sigma_b2, self.chi1,
                                            line_type="Separate").lines(1.0)
        if lines:
            points = np.concatenate([np.vstack([ln, [np.nan, np.nan]]) for ln in lines])
            self.edge.set_data(points[:, 0], points[:, 1])
        else:
            self.edge.set_data([], [])

    def set_point(self, sigma_w2: float, sigma_b2: float, note: str = "") -> None:
        self.marker.set_data([sigma_w2], [sigma_b2])
        self.note.set_text(note or " ")  # a blank line keeps the legend's height (the layout reserved it)

    def data(self) -> dict:
        return {"point": (float(self.marker.get_xdata()[0]), float(self.marker.get_ydata()[0]))
                if len(self.marker.get_xdata()) else None,
                "edge": (np.asarray(self.edge.get_xdata(), float), np.asarray(self.edge.get_ydata(), float)),
                "chi1": self.chi1}


# --------------------------------------------------------------------------------------------- spectra
class SpectrumPlot:
    """Singular values σ_i of the input–output Jacobian ∂h_L/∂h_0: sorted (left) and as a histogram (right).

    Both in log10; σ_i = 1 for all i is dynamical isometry (Saxe et al. 2014; Pennington et al. 2017).
    Exactly zero singular values (−inf, a rank-deficient Jacobian, e.g. dead ReLUs) are marked ▼ on the
    lower edge of the sorted plot and counted in its legend's title; the histogram's title then gives the
    rank ("rank 23 of 64"), not a ratio σ_max/σ_min over the nonzero values only.
    """

    def __init__(self, sorted_ax: Axes, histogram_ax: Axes, *, bins: int = 30, colour: str = "tab:green"):
        self.sorted_ax, self.histogram_ax, self.bins = sorted_ax, histogram_ax, bins
        colour = palette(colour)
        (self.sorted_line,) = sorted_ax.plot([], [], color=colour, linewidth=2.0, marker=".", markersize=3,
                                             label=r"$\sigma_i$ (descending)")
        self.isometry = sorted_ax.axhline(0.0, color="black", linewidth=0.8, linestyle="--",
                                          label=r"$\sigma = 1$ (isometry)")
        (self.zero_markers,) = sorted_ax.plot([], [], linestyle="none", marker="v", markersize=6,
                                              color=ZERO_COLOUR, transform=sorted_ax.get_xaxis_transform(),
                                              clip_on=False, label="exactly 0")
        self.zero_markers.set_visible(False)
        self.zero_note = ""
        sorted_ax.set_xlabel("index $i$ (largest first)")
        sorted_ax.set_ylabel(r"singular value $\sigma_i$  (log scale)")
        sorted_ax.set_title(r"sorted spectrum of $\partial h_L/\partial h_0$", fontsize=TITLE_FONT)
        use_power_of_ten_ticks(sorted_ax.yaxis)
        sorted_ax.grid(True, alpha=0.3)
        self.stairs = histogram_ax.stairs(np.zeros(bins), np.linspace(-1, 1, bins + 1), fill=True,
                                          color=colour, alpha=0.6)
        histogram_ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
        histogram_ax.set_xlabel(r"singular value $\sigma$  (log scale)")
        histogram_ax.set_ylabel("count")
        histogram_ax.set_title("histogram", fontsize=TITLE_FONT)
        use_power_of_ten_ticks(histogram_ax.xaxis)
        self.spread_note = histogram_ax.title  # "histogram · σ_max/σ_min = 10^23.3" (or the rank)
        self.pins: list = []
        self.legend = None
        self.corner = "upper right"  # where the legend is (see place_legend)
        self._legend_key = ()
        self._legend_sizes: dict = {}
        self._refresh_legend()
        self._sorted_ylim = self._histogram_xlim = None  # kept while the data fit them (see sticky_limits)
        self._histogram_top = 0.0

    def _refresh_legend(self) -> None:
        handles = [self.sorted_line, self.isometry] + ([self.zero_markers] if self.zero_note else [])
        handles += self.pins
        refresh_legend(self, self.sorted_ax, handles, self.zero_note)

    def release_limits(self) -> bool:
        """A drag ended: if any limit on screen is not the one a fit to this spectrum would set (``held_limits``
        for the sorted values and the histogram's range; the histogram's top), forget them so the next update
        fits them anew, and return True; else False (nothing to redraw)."""
        if not getattr(self, "_held", False):
            return False
        self._sorted_ylim = self._histogram_xlim = None
        self._histogram_top = 0.0
        self._legend_room, self._held = False, False
        return True

    def animated_artists(self) -> list:
        """The artists an update changes (spectrum, histogram, its title, the legend drawn over them)."""
        return [*self.pins, self.sorted_line, self.zero_markers, self.stairs, self.spread_note,
                *([self.legend] if self.legend is not None else [])]

    def update(self, log10_singular_values) -> None:
        values = np.asarray(log10_singular_values, dtype=float)
        index = np.arange(1, values.size + 1)
        finite = values[np.isfinite(values)]
        zero = np.flatnonzero(np.isneginf(values))
        shown_values = np.where(np.isneginf(values), np.nan, values)
        self.sorted_line.set_data(index, shown_values)
        self.zero_markers.set_data(index[zero], np.zeros(zero.size))
        self.zero_markers.set_visible(bool(zero.size))
        self.zero_note = (f"▼ {zero.size} of {values.size} singular values\nexactly 0 (rank-deficient)"
                          if zero.size else "")
        self._refresh_legend()
        finite_and_isometry = np.concatenate([finite, [0.0]])  # σ = 1 stays in view
        low, high = padded_limits(finite_and_isometry, minimum_span=0.5)
        shown = [finite, [0.0]] + [p.get_ydata() for p in self.pins]
        curves = [(index, shown_values), ([0.5, values.size + 0.5], [0.0, 0.0])]
        curves += [(p.get_xdata(), p.get_ydata()) for p in self.pins]
        sorted_values = np.concatenate([np.ravel(s) for s in shown])
        self._sorted_ylim = place_with_room(self.sorted_ax, self.legend, self._legend_sizes, self, curves, [],
                                            sorted_values, (0.5, values.size + 0.5), self._sorted_ylim,
                                            minimum_span=0.5)
        edges = np.linspace(low, high, self.bins + 1)  # bins over the data
        counts, _ = np.histogram(finite, bins=edges)
        self.stairs.set_data(counts, edges)
        # The histogram's range follows the data: kept only while they fill 80% of it.
        self._histogram_xlim = sticky_limits(self._histogram_xlim, finite_and_isometry, minimum_span=0.5,
                                             fill=0.8)
        top = max(1, counts.max()) * 1.1
        if not 0.5 * self._histogram_top <= top <= self._histogram_top:
            self._histogram_top = float(math.ceil(top * 1.2))
        self._held = (held_limits(None, None, sorted_values, self._sorted_ylim, minimum_span=0.5,
                                  room=self._legend_room)
                      or held_limits(None, None, finite_and_isometry, self._histogram_xlim, minimum_span=0.5)
                      or self._histogram_top != float(math.ceil(top * 1.2)))
        set_limits(self.histogram_ax, x=self._histogram_xlim, y=(0.0, self._histogram_top))
        if zero.size == values.size:
            spread = "all σ exactly 0"
        elif zero.size:
            spread = f"rank {finite.size} of {values.size}"
        else:
            spread = rf"$\sigma_{{max}}/\sigma_{{min}}$ = {power_of_ten_label(round(finite[0] - finite[-1], 1))}"
        self.spread_note.set_text(f"histogram · {spread}")

    def pin(self, label: str) -> None:
        """Keep the current sorted spectrum as a faint line named ``label`` (MAX_PINS at most, oldest dropped)."""
        pin_copy(self.pins, self.sorted_ax, self.sorted_line, label)
        self._refresh_legend()

    def clear_pins(self) -> None:
        remove_pins(self.pins)
        self._refresh_legend()

    def data(self) -> dict:
        counts = self.stairs.get_data()
        return {"index": np.asarray(self.sorted_line.get_xdata(), float),
                "log10_singular_values": np.asarray(self.sorted_line.get_ydata(), float),
                "histogram": (np.asarray(counts.values), np.asarray(counts.edges)),
                "zero_note": self.zero_note.replace("\n", " "),
                "spread": self.spread_note.get_text()}


# --------------------------------------------------------------------------------------------- training
class TrainingCurvePlot:
    """The training loss per step (log10, left axis) and the held-out accuracy (right axis) of one run.

    Artists are made once; ``update`` rewrites their data.  A run that diverged or was stopped ends at a
    dashed vertical line; the legend's title says why.  The legend sits in a band above both curves that
    the axes' ranges leave free (loss and accuracy can be anywhere below it).
    """

    def __init__(self, ax: Axes, *, title: str = "training curves"):
        self.ax = ax
        (self.loss_line,) = ax.plot([], [], color=OKABE_ITO["blue"], linewidth=1.2,
                                    label="training loss (batch)")
        self.accuracy_ax = ax.twinx()
        (self.accuracy_line,) = self.accuracy_ax.plot([], [], color=OKABE_ITO["bluish green"], marker="o",
                                                      markersize=3, linewidth=1.2, label="test accuracy")
        self.end_line = ax.axvline(0.0, color=ZERO_COLOUR, linestyle="--", linewidth=1.2)
        self.end_line.set_visible(False)
        ax.set_xlabel("step")
        ax.set_ylabel("loss  (log scale)")
        use_power_of_ten_ticks(ax.yaxis)
        ax.grid(True, alpha=0.3)
        ax.set_title(title, fontsize=TITLE_FONT)
        self.accuracy_ax.set_ylabel("test accuracy")
        self.accuracy_ax.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
        # On the accuracy axes (drawn after the loss axes), so no curve is drawn over it.
        self.legend = make_legend(self.accuracy_ax, handles=[self.loss_line, self.accuracy_line],
                                  fontsize=LEGEND_FONT, loc="upper left", framealpha=0.9, alignment="left")
        self.legend.set_in_layout(False)  # inside the axes: the layout leaves room for it there
        self.note = self.legend.get_title()
        self._legend_sizes: dict = {}
        self._room = None

    def animated_artists(self) -> list:
        return [self.legend]

    def update(self, steps, log10_loss, test_steps, test_accuracy, *, total_steps: int, end_step=None,
               note: str = "") -> None:
        """steps, log10_loss: (k,); test_steps, test_accuracy: (m,); end_step: where a run stopped early."""
        self.loss_line.set_data(np.asarray(steps, float), np.asarray(log10_loss, float))
        self.accuracy_line.set_data(np.asarray(test_steps, float), np.asarray(test_accuracy, float))
        self.end_line.set_visible(end_step is not None)
        if end_step is not None:
            self.end_line.set_xdata([end_step, end_step])
        set_legend_note(self.legend, note)
        set_limits(self.ax, x=(-0.5, max(total_steps, 1) - 0.5))
        width, height, _, pad_v = legend_size(self.legend, self.accuracy_ax, self._legend_sizes)
        below = 1 - 2 * pad_v - height - 0.02  # both curves stay under this fraction of the axes' height
        low, high = padded_limits(log10_loss, minimum_span=0.5)
        set_limits(self.ax, y=(low, low + (high - low) / below))
        set_limits(self.accuracy_ax, y=(-0.02, -0.02 + 1.04 / below))

    def data(self) -> dict:
        """What is on screen (no "x"/"mean" keys: these are curves over steps, not per-layer profiles)."""
        return {"steps": np.asarray(self.loss_line.get_xdata(), float),
                "log10_loss": np.asarray(self.loss_line.get_ydata(), float),
                "test_steps": np.asarray(self.accuracy_line.get_xdata(), float),
                "test_accuracy": np.asarray(self.accuracy_line.get_ydata(), float),
                "end_step": float(self.end_line.get_xdata()[0]) if self.end_line.get_visible() else None,
                "note": self.note.get_text()}


# --------------------------------------------------------------------------------------------- frames
class StableTightLayout(TightLayoutEngine):
    """``tight_layout`` at a draw, but only when what it depends on changed: the axes' limits (hence the
    tick labels), the figure's size and dpi, and the titles of legends placed outside their axes.  Then it
    runs twice (one pass is not always its own fixed point), so a redraw of an unchanged figure is the very
    same picture (a blitted frame equals a full redraw), and a frame that changed only data costs nothing."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._laid_out_for = None

    @staticmethod
    def _key(figure):
        legends = [ax.get_legend() for ax in figure.axes]
        return (tuple(figure.get_size_inches()), figure.dpi,
                tuple((ax.get_xlim(), ax.get_ylim()) for ax in figure.axes),
                tuple(legend.get_title().get_text() for legend in legends
                      if legend is not None and legend.get_in_layout()))

    def execute(self, figure):
        key = self._key(figure)
        if key == self._laid_out_for:
            return
        super().execute(figure)
        super().execute(figure)
        self._laid_out_for = key


class StableConstrainedLayout(ConstrainedLayoutEngine):
    """``constrained_layout`` at a draw, but only when what it depends on changed (``StableTightLayout._key``:
    the axes' limits, the figure's size and dpi, the titles of legends in the layout).  Its result for an
    unchanged figure is the layout it already has, so skipping it draws the same picture; a frame that
    changed only data (with limits that stay, ``sticky_limits``) then costs no layout (it was ~45 % of a
    full frame of lesson 13's two panels)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._laid_out_for = None

    def execute(self, figure):
        key = StableTightLayout._key(figure)
        if key == self._laid_out_for:
            return None
        result = super().execute(figure)
        self._laid_out_for = key
        return result


class BlitFrames:
    """Render a figure's frames by blitting when only its changing artists changed (matplotlib's "faster
    rendering by using blitting" pattern), else in full.

    ``changing_artists()`` names the artists an update rewrites (curves, bands, notes, legends: each plot's
    ``animated_artists()``).  They are marked animated, so the figure's own draw leaves them out and they are
    drawn after it, over everything else (a saved figure stacks them by zorder instead).  A full frame drawn
    by ``render()`` saves its pixels without them as the background; the next ``render()`` restores that
    background and draws only them, as long as nothing else changed.  "Nothing else changed" is matplotlib's
    own bookkeeping, not a list of ours: a change of any artist that is not animated (limits, ticks, a
    title, a new legend or pin, a resize or a dpi change) marks the figure stale, while changing the data
    of an animated artist does not.  A frame is blitted only when the figure is not stale, the canvas has
    the background's size and the animated artists are the ones the background was saved without;
    otherwise it is drawn in full.  Any draw that ``render()`` did not start (a browser's redraw request,
    ``draw_without_rendering``, a test) drops the background, so the next frame is full again.

    Saving (``savefig``) draws animated artists like any other, so saved figures are complete; plain
    ``canvas.draw()`` calls are complete too, through the ``draw_event``.

    A legend drawn over the curves is most of a blitted frame's time (its texts' glyphs are laid out and
    rendered again at every draw: ~20 of a ~30 ms frame on a quiet machine).  So each animated legend is
    rendered once, alone, on a transparent canvas of the figure's size (``LegendPixels``) and composited
    over the frame (Porter–Duff "over": the same pixels as drawing it there, within one 8-bit level); it is
    rendered again when it changed (a new title, entry or corner marks it stale), when its anchor (the
    axes' box) or the canvas changed, and at every full frame.  Full and blitted frames composite the same
    rendering, so a blitted frame is still exactly the full redraw.
    """

    def __init__(self, figure, changing_artists):
        self.figure = figure
        self._changing_artists = changing_artists
        self._background = None
        self._background_key = None
        self._rendering = False
        self.frames = {"full": 0, "blit": 0}
        self.legend_renders = 0  # legends rendered alone (LegendPixels); reused by the frames in between
        self._legends: dict = {}  # id(legend) → LegendPixels
        self._animate()
        if isinstance(figure.get_layout_engine(), (type(None), PlaceHolderLayoutEngine)):
            # Laid out again at every full draw (not at a blitted frame): tick labels that widen with the
            # data ("10^-600"), an outside legend or a colour bar never run off the figure or into each other.
            figure.set_layout_engine(StableTightLayout())
        # A closure, not the bound method: the canvas's callback registry holds bound methods weakly, and
        # the animated artists must be drawn for as long as the figure lives.
        figure.canvas.mpl_connect("draw_event", lambda event: self._after_full_draw(event))

    def _ordered(self) -> list:
        """The changing artists in drawing order (by zorder, as the axes would draw them)."""
        return sorted(self._changing_artists(), key=lambda artist: artist.get_zorder())

    def _animate(self) -> list:
        """The changing artists, animated, in drawing order."""
        artists = self._ordered()
        for artist in artists:
            artist.set_animated(True)
        return artists

    def _key(self, artists) -> tuple:
        return self.figure.canvas.get_width_height(physical=True), tuple(id(artist) for artist in artists)

    def _after_full_draw(self, event) -> None:
        canvas = self.figure.canvas
        if event.canvas is not canvas or canvas.is_saving():
            return  # a savefig draws the animated artists itself
        artists = self._ordered()
        left_out = [artist for artist in artists if artist.get_animated()]  # the figure's draw skipped these
        self._background = self._background_key = None
        self._legends.clear()  # a full frame renders the legends again
        if len(left_out) < len(artists):  # new artists (a new legend) are in these pixels: no background
            for artist in artists:
                artist.set_animated(True)
        elif self._rendering:
            self._background = canvas.copy_from_bbox(self.figure.bbox)
            self._background_key = self._key(artists)
        self._draw(left_out, event.renderer)

    def _draw(self, artists, renderer) -> None:
        for artist in artists:
            if isinstance(artist, Legend):
                self._draw_legend(artist, renderer)
            else:
                artist.draw(renderer)
        # Drawing moves the inner boxes of legends and text frames, which are not animated themselves and
        # report that as a change; nothing but these draws ran, so the figure is as drawn.
        self.figure.stale = False

    def _draw_legend(self, legend, renderer) -> None:
        if not legend.get_visible():
            return
        pixels = self._legends.get(id(legend))
        if pixels is None or not pixels.fits(legend, renderer):
            pixels = self._legends[id(legend)] = LegendPixels(legend, renderer)
            self.legend_renders += 1
        pixels.draw(renderer)

    def render(self) -> str:
        """Render the current state into the canvas and send it: "blit" or "full" (which one ran)."""
        canvas = self.figure.canvas
        artists = self._animate()
        if (not artists or self._background is None or self.figure.stale
                or self._key(artists) != self._background_key):
            self._background = self._background_key = None  # kept only if the draw below completes
            self._rendering = True
            try:
                canvas.draw()
            finally:
                self._rendering = False
            self.frames["full"] += 1
            return "full"
        canvas.restore_region(self._background)
        self._draw(artists, canvas.get_renderer())
        canvas.blit(self.figure.bbox)
        self.frames["blit"] += 1
        return "blit"


class LegendPixels:
    """One legend rendered alone: its RGBA pixels on a transparent canvas the size of ``renderer``'s, cut to
    the legend's box (plus a 3-pixel margin for antialiased edges), composited with ``draw``.

    ``fits(legend, renderer)``: these pixels still show ``legend`` as it would be drawn now — the same legend,
    not stale (any change of its texts, entries, title, corner or visibility marks it so; drawing clears
    it), in a fixed corner (the loc its plot asked for, ``legend_loc``: ``"best"`` follows the data and a
    legend made without ``make_legend`` has no known corner, so both are rendered at every frame), the same
    anchor box (the axes') and the same canvas size and dpi.
    """

    MARGIN = 3

    def __init__(self, legend, renderer):
        self.legend_id = id(legend)
        self.key = self._key(legend, renderer)
        alone = RendererAgg(renderer.width, renderer.height, renderer.dpi)  # transparent
        legend.draw(alone)  # (leaves the legend not stale)
        box = legend.legendPatch.get_window_extent()
        height, margin = renderer.height, self.MARGIN
        x0, y0 = max(int(math.floor(box.x0)) - margin, 0), max(int(math.floor(box.y0)) - margin, 0)
        x1 = min(int(math.ceil(box.x1)) + margin, renderer.width)
        y1 = min(int(math.ceil(box.y1)) + margin, height)
        rows = np.asarray(alone.buffer_rgba())[height - y1: height - y0, x0:x1]
        self.x, self.y = x0, y0
        self.image = rows[::-1].copy() if rows.size else None  # draw_image takes the bottom row first

    @staticmethod
    def _key(legend, renderer) -> tuple:
        return (id(legend), renderer.width, renderer.height, renderer.dpi,
                tuple(legend.get_bbox_to_anchor().bounds))

    def fits(self, legend, renderer) -> bool:
        fixed = legend_loc(legend) not in (None, "best", 0)  # "best" moves with the data at every draw
        return fixed and not legend.stale and self._key(legend, renderer) == self.key

    def draw(self, renderer) -> None:
        if self.image is None:
            return
        gc = renderer.new_gc()
        try:
            renderer.draw_image(gc, self.x, self.y, self.image)
        finally:
            gc.restore()
