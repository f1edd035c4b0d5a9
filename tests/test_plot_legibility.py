"""Plots a student can read (issue 13, section 4), measured on Agg renders of every notebook's dashboards.

Each dashboard is built as its notebook's Run All leaves it (tests/claims_replay.py), drawn, and then moved
through a sweep of its controls (each slider to its ends, each dropdown option, each checkbox flipped).
At every state, from the rendered artists' bounding boxes (``get_window_extent`` with the canvas's renderer):

- no legend covers a curve, a band, a histogram or a colour map, and no two texts overlap or leave the figure;
- log axes tick at whole decades (or m × 10^k), never at 10^0.25;
- labels, titles and legend entries write sub- and superscripts in mathtext ($h_l$), never as "h_l";
- every text has a WCAG contrast ratio ≥ 4.5 against the pixels behind it;
- curves and bands use the Okabe–Ito colour-blind-safe palette (or greys);
- the axes' ranges follow the data.
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection, QuadMesh  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.patches import StepPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from tests.claims_replay import replay  # noqa: E402
from vglab.lab import plots  # noqa: E402
from vglab.lab.dashboards import Dashboard  # noqa: E402
from vglab.lab.training_dashboards import TrainingDashboard  # noqa: E402

NOTEBOOKS = ["00_start_here", "01_chain_rule", "02_saturating_activations", "03_initialization",
             "04_relu_family", "05_residual_connections", "06_layer_normalization",
             "07_exploding_gradients_and_clipping", "08_recurrent_networks", "09_transformers",
             "10_training_dynamics", "11_jacobian_spectra"]
DECADE_LABEL = re.compile(r"^\$(?:[2-9]\{\\times\})?10\^\{-?\d+\}\$$")
SAFE_COLOURS = [to_rgb(c) for c in plots.OKABE_ITO.values()]


# --------------------------------------------------------------------------------------------- measures
def relative_luminance(rgb) -> float:
    """WCAG 2.1 relative luminance of an sRGB colour (components in 0..1)."""
    rgb = np.asarray(rgb, float)[..., :3]
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def contrast_ratio(a, b):
    """WCAG contrast ratio (L_lighter + 0.05) / (L_darker + 0.05), from 1 to 21."""
    la, lb = relative_luminance(a), relative_luminance(b)
    return (np.maximum(la, lb) + 0.05) / (np.minimum(la, lb) + 0.05)


def test_contrast_ratio_matches_the_wcag_examples():
    assert contrast_ratio((0, 0, 0), (1, 1, 1)) == pytest.approx(21.0)
    assert contrast_ratio(to_rgb("#767676"), (1, 1, 1)) == pytest.approx(4.54, abs=0.01)  # WCAG's AA grey
    assert contrast_ratio(to_rgb("navy"), to_rgb("#053061")) < 1.5  # 03's old "ordered" label


def visible_texts(figure, renderer):
    """(text artist, its box) for every visible, non-empty text drawn in the figure (legend texts included)."""
    out, undrawn = [], set()
    for ax in figure.axes:  # tick labels of ticks outside the view exist but are not drawn
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = high - low
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                loc = tick.get_loc()
                if loc is None or not (low - 1e-6 * span <= loc <= high + 1e-6 * span) or not axis.get_visible():
                    undrawn.update({id(tick.label1), id(tick.label2)})
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or text.get_alpha() == 0:
            continue
        if id(text) in undrawn:
            continue
        if any(not parent.get_visible() for parent in _parents(text)):
            continue
        box = text.get_window_extent(renderer)
        if box.width > 0 and box.height > 0:
            out.append((text, box))
    return out


def _parents(text):
    """The legend or axes a text belongs to (a hidden legend hides its texts)."""
    return [legend for ax in text.figure.axes for legend in [ax.get_legend()]
            if legend is not None and text in legend.findobj(Text)]


def outside_mathtext(text: str) -> str:
    """The parts of a label outside $…$."""
    return re.sub(r"\$[^$]*\$", "", text)


def data_paths(ax):
    """Display-space paths of what ``ax`` plots: (path, filled) for lines, bands, histograms."""
    out = []
    for line in ax.lines:
        if not line.get_visible() or line.get_animated() is None:
            continue
        xy = line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float))
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy):
            out.append((MplPath(xy), False, line))
    for collection in ax.collections:
        if isinstance(collection, PolyCollection) and collection.get_visible():
            for path in collection.get_paths():
                if len(path.vertices):
                    out.append((collection.get_transform().transform_path(path), True, collection))
    for patch in ax.patches:
        if isinstance(patch, StepPatch) and patch.get_visible():
            out.append((patch.get_transform().transform_path(patch.get_path()), True, patch))
    return out


def same_place(a, b) -> bool:
    return np.allclose(a.get_position().bounds, b.get_position().bounds)


def check_figure(figure, where: str) -> None:
    """Every legibility check of one drawn state of a figure; ``where`` names it in the messages."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    fig_box = figure.bbox
    problems = []

    # legends: over no data (a colour map fills its axes: a legend must stay off them)
    for ax in figure.axes:
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer).padded(-1)
        for other in (a for a in figure.axes if a is ax or same_place(a, ax)):
            for path, filled, artist in data_paths(other):
                if filled and path.intersects_bbox(box, filled=True):
                    problems.append(f"legend of '{ax.get_title()}' covers {artist}")
                elif not filled and (path.intersects_bbox(box, filled=False)
                                     or np.any((path.vertices[:, 0] > box.x0) & (path.vertices[:, 0] < box.x1)
                                               & (path.vertices[:, 1] > box.y0)
                                               & (path.vertices[:, 1] < box.y1))):
                    problems.append(f"legend of '{ax.get_title()}' covers line {artist.get_label()!r}")
            if any(isinstance(c, QuadMesh) for c in other.collections):
                if box.overlaps(other.get_window_extent(renderer).padded(-1)):
                    problems.append(f"legend of '{ax.get_title()}' lies on the colour map")

    # texts: inside the figure, not on each other, at least 8 pt, mathtext for sub/superscripts
    texts = visible_texts(figure, renderer)
    for text, box in texts:
        label = text.get_text()
        if not (fig_box.x0 - 1 <= box.x0 and box.x1 <= fig_box.x1 + 1 and fig_box.y0 - 1 <= box.y0
                and box.y1 <= fig_box.y1 + 1):
            problems.append(f"text {label!r} runs off the figure")
        if text.get_fontsize() < 7.5:
            problems.append(f"text {label!r} is {text.get_fontsize()} pt")
        if re.search(r"[_^]", outside_mathtext(label)):
            problems.append(f"text {label!r} writes a sub/superscript outside mathtext")
    legend_texts = {id(t) for ax in figure.axes if ax.get_legend() is not None
                    for t in ax.get_legend().findobj(Text)}
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1:]:
            if id(a) in legend_texts and id(b) in legend_texts:
                continue  # one legend's own rows and title
            if box_a.padded(-1).overlaps(box_b.padded(-1)):
                problems.append(f"texts {a.get_text()!r} and {b.get_text()!r} overlap")
    for ax in figure.axes:  # a legend box never covers a text of its own axes (title, labels, ticks)
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer).padded(-1)
        for text, text_box in texts:
            if id(text) not in legend_texts and text_box.overlaps(box):
                problems.append(f"legend of '{ax.get_title()}' covers text {text.get_text()!r}")

    # log axes: whole decades
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if isinstance(axis.get_major_locator(), plots.PowerOfTenLocator):
                low, high = sorted(axis.get_view_interval())
                labels = [t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_majorticklocs())
                          if low - 1e-9 <= v <= high + 1e-9]
                bad = [label for label in labels if not DECADE_LABEL.match(label)]
                if bad or len(labels) < 2:
                    problems.append(f"log axis of '{ax.get_title()}' ticks at {labels}")

    # palette: Okabe–Ito or greys for every curve, band and histogram
    for ax in figure.axes:
        for path, _, artist in data_paths(ax):
            colours = ([artist.get_color()] if hasattr(artist, "get_color") and not isinstance(
                artist, (PolyCollection, StepPatch)) else [artist.get_facecolor()])
            for colour in colours:
                rgb = np.asarray(to_rgb(np.atleast_2d(colour)[0] if not isinstance(colour, str) else colour))
                grey = np.ptp(rgb) < 1e-6
                if not grey and min(np.abs(rgb - np.asarray(c)).max() for c in SAFE_COLOURS) > 0.01:
                    problems.append(f"{artist} in a colour outside Okabe–Ito: {rgb.round(3)}")

    # contrast: each text against the pixels behind it (the figure drawn without any text)
    colours = {}
    for text, _ in texts:
        colours[id(text)] = text.get_color()
    for text in figure.findobj(Text):
        text.set_alpha(0.0)
    figure.canvas.draw()
    background = np.asarray(figure.canvas.buffer_rgba())[..., :3] / 255.0
    height = background.shape[0]
    for text, box in texts:
        x0, x1 = max(int(box.x0), 0), min(int(np.ceil(box.x1)), background.shape[1])
        y0, y1 = max(int(height - box.y1), 0), min(int(np.ceil(height - box.y0)), height)
        pixels = background[y0:y1, x0:x1].reshape(-1, 3)
        if len(pixels):
            ratio = np.percentile(contrast_ratio(np.asarray(to_rgb(colours[id(text)])), pixels), 5)
            if ratio < 4.5:
                problems.append(f"text {text.get_text()!r}: contrast {ratio:.2f} < 4.5 against its background")
    for text in figure.findobj(Text):
        text.set_alpha(None)
    figure.canvas.draw()
    assert not problems, f"{where}:\n  " + "\n  ".join(dict.fromkeys(problems))


def check_ranges(board, where: str) -> None:
    """Every per-layer panel's axes follow its data: all data inside, and they fill a good part of them."""
    for name, plot in getattr(board, "plots", {}).items():
        if not isinstance(plot, plots.LogProfilePlot) or not len(plot.mean_line.get_xdata()):
            continue
        x = np.asarray(plot.mean_line.get_xdata(), float)
        (x0, x1), (y0, y1) = plot.ax.get_xlim(), plot.ax.get_ylim()
        assert x0 <= x.min() and x.max() <= x1, (where, name)
        assert x.size < 3 or (x.max() - x.min()) >= 0.45 * (x1 - x0), (where, name)
        y = np.asarray(plot.mean_line.get_ydata(), float)
        y = y[np.isfinite(y)]
        if y.size:
            assert y0 <= y.min() and y.max() <= y1, (where, name, (y0, y1))


# --------------------------------------------------------------------------------------------- sweeps
def sweep(board):
    """States one control change away from the notebook's: each slider at its ends, each dropdown option,
    each checkbox flipped (the dashboard is left in the last one)."""
    import ipywidgets as widgets

    start = dict(board.state)
    for name, widget in board.controls.items():
        if isinstance(widget, (widgets.IntSlider, widgets.FloatSlider)):
            values = [widget.min, widget.max]
        elif isinstance(widget, (widgets.Dropdown, widgets.SelectionSlider)):
            values = [o[1] if isinstance(o, tuple) else o for o in widget.options][:4]
        elif isinstance(widget, widgets.Checkbox):
            values = [not widget.value]
        else:
            continue
        for value in values:
            if value != start[name]:
                board.set(**{name: value})
                yield f"{name}={value!r}"
        board.set(**{name: start[name]})


@pytest.fixture(scope="module")
def boards():
    cache = {}

    def get(stem):
        if stem not in cache:
            namespace = replay(stem)
            cache[stem] = {name: value for name, value in namespace.items() if isinstance(value, Dashboard)}
        return cache[stem]

    yield get
    for found in cache.values():
        for board in found.values():
            board.close()


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_dashboard_is_legible_at_the_notebooks_state_and_across_its_controls(stem, boards):
    for name, board in boards(stem).items():
        width, height = board.figure.get_size_inches()
        panels = len(getattr(board, "plots", {})) or 1
        # ≤ 9.6 in: JupyterLab's output area beside the file browser is ~968 px (the browser suite's window); a
        # 10 in figure had its colour bars' labels cut at the right edge (02's heat maps, 03's phase diagram).
        assert 4.4 <= width / max(1, min(panels, 2)) and width <= 9.6 and height >= 3.4, (stem, name, width)
        check_figure(board.figure, f"{stem} {name} (Run All)")
        check_ranges(board, f"{stem} {name}")
        if isinstance(board, TrainingDashboard):
            continue  # a state is a training run of seconds: checked as the notebook leaves it
        for state in sweep(board):
            assert board.error_message == "", (stem, state, board.error_message)
            check_figure(board.figure, f"{stem} {name} at {state}")
            check_ranges(board, f"{stem} {name} at {state}")


def test_the_lstm_panel_follows_the_steps_in_vanilla_mode(boards):
    """08: switching to the vanilla cell at T = 1000 empties the cell-state panel; its axis spans 0..1000
    like the hidden-state panel's, not the LSTM's last 0..300."""
    dash = boards("08_recurrent_networks")["dash"]
    dash.set(cell="lstm", steps=300)
    dash.set(cell="vanilla", steps=1000)
    gradient, cell = dash.plots["gradient"].ax.get_xlim(), dash.plots["cell"].ax.get_xlim()
    assert cell == gradient and cell[1] >= 1000


def test_the_histogram_range_follows_the_spectrum_and_exact_zeros_give_the_rank(boards):
    dash = boards("11_jacobian_spectra")["dash"]
    dash.set(activation="tanh", init="gaussian", depth=64)
    dash.set(depth=2)
    finite = dash.result.log10_singular_values
    low, high = plots.padded_limits(np.append(finite[np.isfinite(finite)], 0.0), minimum_span=0.5)
    x0, x1 = dash.plots["spectrum"].histogram_ax.get_xlim()
    assert (high - low) >= 0.8 * (x1 - x0) * (1 - 1e-9), ((low, high), (x0, x1))
    dash.set(activation="relu", init="orthogonal", depth=64)
    values = dash.result.log10_singular_values
    zeros = int(np.isneginf(values).sum())
    assert zeros > 0
    shown = dash.plotted()["spectrum"]
    assert shown["spread"] == f"histogram · rank {values.size - zeros} of {values.size}"
    assert f"{zeros} of {values.size} singular values exactly 0" in shown["zero_note"]
    assert f"rank {values.size - zeros} of {values.size}" in dash.status.value and "σ_min" not in dash.status.value
