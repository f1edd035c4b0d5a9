"""What a live frame costs, asserted as work done (never as time): the slider → plot latency target (≤ 100 ms
median, issue 14) is met by doing less per frame, and these tests hold the "less" in place.

- A blitted frame composites each legend from pixels rendered once (``plots.LegendPixels``) instead of
  laying out and rendering its texts again (measured: ~2/3 of a blitted frame of lesson 00 or 02); a legend
  that changed is rendered again; the composite is the legend drawn in place within one 8-bit level, and a
  blitted frame is still exactly the full redraw.
- ipympl's frames are PNG-encoded with zlib's RLE strategy at level 1 (``drawing.quick_png``): the same
  decoded pixels as matplotlib's own encoder, full and diff frames alike.
Timings: benchmarks/latency_breakdown.py and benchmarks/README.md ("Browser latency breakdown").
"""

from __future__ import annotations

import ast
import asyncio
import io
import types
import zlib
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends import backend_webagg_core
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_webagg_core import FigureCanvasWebAggCore
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from PIL import Image

from tests.live_canvas import assert_frame_is_the_full_redraw, change, live_ipympl_canvas, pixels
from vglab.lab import GradientDashboard, drawing, plots


@pytest.fixture
def dash(monkeypatch):
    d = GradientDashboard(depth=30, width=16, n_seeds=2, activation="sigmoid", controls=("depth",),
                          max_depth=60, warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    yield d
    d.close()


def count_legend_draws(monkeypatch) -> list:
    calls = []
    draw = Legend.draw

    def counted(self, renderer):
        calls.append(self)
        return draw(self, renderer)

    monkeypatch.setattr(Legend, "draw", counted)
    return calls


def test_a_blitted_frame_composites_the_legend_without_drawing_it_again(dash, monkeypatch):
    for depth in (31, 32, 31):
        change(dash, depth=depth)
    legend = dash.plots["gradient"].legend
    assert legend.get_animated()  # drawn over the curves, after the background
    draws, renders, blits = count_legend_draws(monkeypatch), dash._frames.legend_renders, dash.frames["blit"]
    for depth in (32, 31, 32):
        change(dash, depth=depth)
    assert dash.frames["blit"] == blits + 3, dash.frames  # the steps kept every limit: blitted
    assert draws == [] and dash._frames.legend_renders == renders  # no legend laid out or rendered again
    assert_frame_is_the_full_redraw(dash)


def test_a_legend_that_changed_is_rendered_again_and_the_frame_is_still_the_full_redraw(dash, monkeypatch):
    for depth in (31, 32, 31):
        change(dash, depth=depth)
    assert dash._frames.render() == "blit"
    legend = dash.plots["gradient"].legend
    renderer = dash.figure.canvas.get_renderer()
    kept = dash._frames._legends[id(legend)]
    assert kept.fits(legend, renderer)
    draws, renders = count_legend_draws(monkeypatch), dash._frames.legend_renders
    plots.set_legend_note(legend, "▼ a new note")
    assert not kept.fits(legend, renderer)  # a changed legend marks itself stale
    dash._frames.render()
    assert draws == [legend] and dash._frames.legend_renders == renders + 1  # rendered again, once
    assert legend.get_title().get_text() == "▼ a new note"
    assert_frame_is_the_full_redraw(dash)
    plots.move_legend(legend, "lower left")  # another corner: rendered again there
    assert not dash._frames._legends[id(legend)].fits(legend, renderer)
    dash._frames.render()
    assert_frame_is_the_full_redraw(dash)
    assert dash._frames._legends[id(legend)].fits(legend, renderer)
    plots.move_legend(legend, "best")  # placed by the data at each draw: never reused
    dash._frames.render()
    assert not dash._frames._legends[id(legend)].fits(legend, renderer)


def test_legend_pixels_know_a_legend_s_corner_from_the_plot_that_asked_for_it():
    """``fits`` reads the loc recorded by ``plots.make_legend``/``move_legend`` (no private ``Legend._loc``): a
    legend in a fixed corner is kept once drawn, one made without a recorded corner or at "best" never is."""
    import inspect

    assert "._loc" not in inspect.getsource(plots)
    figure, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], label="a line")
    kept, unknown = plots.make_legend(ax, loc="upper left"), ax.legend(loc="upper left")
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    assert plots.legend_loc(kept) == "upper left" and plots.legend_loc(unknown) is None
    assert plots.LegendPixels(kept, renderer).fits(kept, renderer)
    assert not plots.LegendPixels(unknown, renderer).fits(unknown, renderer)  # corner not known: drawn anew
    plots.move_legend(kept, "lower right")
    assert plots.legend_loc(kept) == "lower right" and kept.stale
    pixels_now = plots.LegendPixels(kept, renderer)
    assert pixels_now.fits(kept, renderer)
    plots.move_legend(kept, "best")
    kept.stale = False  # even drawn: "best" moves with the data
    assert not pixels_now.fits(kept, renderer)
    plt.close(figure)


def test_the_composited_legend_is_the_legend_drawn_in_place_within_one_level():
    figure, ax = plt.subplots(figsize=(6, 3))
    x = np.arange(50)
    ax.plot(x, -0.3 * x, label=r"$\|\partial L/\partial h_l\|$")
    ax.fill_between(x, -0.3 * x - 3, -0.3 * x + 3, alpha=0.3, label="min–max over seeds")
    legend = ax.legend(loc="upper right", framealpha=0.9, title="▼ a note")
    canvas = figure.canvas
    canvas.draw()
    in_place = pixels(figure)
    legend.set_animated(True)
    canvas.draw()  # everything but the legend
    without = pixels(figure)
    renderer = canvas.get_renderer()
    plots.LegendPixels(legend, renderer).draw(renderer)
    composited = pixels(figure)
    covered = np.any(in_place != without, axis=-1)
    assert covered.sum() > 2000  # the legend's box, texts and handles
    difference = np.abs(composited.astype(int) - in_place.astype(int))
    assert difference.max() <= 1, f"{np.count_nonzero(difference > 1)} pixels differ by more than one level"
    plt.close(figure)


def _decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def web_canvas_frames(canvas, line, clock=None, step: float = 0.0) -> list:
    """(image mode, decoded pixels) of three frames of ``canvas`` (a full one, then two changes of ``line``);
    ``clock``: a one-item list holding the time ``drawing`` reads, moved on by ``step`` after each frame."""
    out = []
    for y in (0, 1, 2):
        line.set_ydata([0, 1, y])
        FigureCanvasAgg.draw(canvas)  # (webagg's draw would also send the frame through a manager)
        canvas._png_is_old = True
        png = canvas.get_diff_image()
        out.append((canvas._current_image_mode, _decoded(png)))
        if clock is not None:
            clock[0] += step
    return out


def test_quick_png_frames_decode_to_the_pixels_of_matplotlib_s_own_frames(monkeypatch):
    monkeypatch.setattr(drawing, "FULL_FRAME_WITHIN", 0.0)  # (frames in quick succession: see the next test)

    def frames(quick: bool) -> list:
        figure = Figure(figsize=(4, 2), dpi=100)
        canvas = FigureCanvasWebAggCore(figure)
        if quick:
            assert drawing.quick_png(canvas)
        else:  # matplotlib's own encoder (quick_png's is installed for the whole process)
            monkeypatch.setattr(backend_webagg_core, "Image", Image)
        ax = figure.add_subplot()
        (line,) = ax.plot([0, 1, 2], [0, 1, 0])
        return web_canvas_frames(canvas, line)

    own, quick = frames(False), frames(True)
    assert [mode for mode, _ in quick] == [mode for mode, _ in own] == ["full", "diff", "diff"]
    for (_, a), (_, b) in zip(quick, own, strict=True):
        np.testing.assert_array_equal(a, b)
    assert np.count_nonzero(quick[1][1][..., 3]) > 0  # a diff frame carries the changed pixels


def test_a_frame_right_after_another_is_sent_whole_so_a_frame_the_browser_dropped_is_repainted(monkeypatch):
    # ipympl's front end drops a frame that a newer one overtakes before it loaded; a diff laid over the
    # dropped frame's predecessor would leave a wrong picture, so frames in quick succession go out whole.
    clock = [1000.0]
    monkeypatch.setattr(drawing, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    figure = Figure(figsize=(4, 2), dpi=100)
    canvas = FigureCanvasWebAggCore(figure)
    drawing.quick_png(canvas)
    (line,) = figure.add_subplot().plot([0, 1, 2], [0, 1, 0])
    quick = web_canvas_frames(canvas, line, clock, step=0.5 * drawing.FULL_FRAME_WITHIN)
    assert [mode for mode, _ in quick] == ["full", "full", "full"]
    clock[0] += drawing.FULL_FRAME_WITHIN
    spaced = web_canvas_frames(canvas, line, clock, step=2 * drawing.FULL_FRAME_WITHIN)
    assert [mode for mode, _ in spaced] == ["diff", "diff", "diff"]
    drawn = np.asarray(canvas.get_renderer().buffer_rgba())
    np.testing.assert_array_equal(quick[-1][1], drawn)  # a whole frame is the whole picture (same state)


def test_quick_png_sends_matplotlib_s_own_frame_and_changes_only_the_encoder_s_options(monkeypatch):
    # Not a copy of FigureCanvasWebAggCore.get_diff_image: matplotlib's method makes every frame (which
    # pixels, diff or full), and its PNG is saved with RLE at level 1 (a copy would pass the first check never).
    made, saved = [], []
    own, save = FigureCanvasWebAggCore.get_diff_image, Image.Image.save

    def counted(self):
        made.append(self)
        return own(self)

    def recorded(self, fp, format=None, **params):  # noqa: A002
        saved.append((format, params))
        return save(self, fp, format, **params)

    monkeypatch.setattr(FigureCanvasWebAggCore, "get_diff_image", counted)
    monkeypatch.setattr(Image.Image, "save", recorded)
    monkeypatch.setattr(drawing, "FULL_FRAME_WITHIN", 0.0)
    figure = Figure(figsize=(4, 2), dpi=100)
    canvas = FigureCanvasWebAggCore(figure)
    assert drawing.quick_png(canvas)
    (line,) = figure.add_subplot().plot([0, 1, 2], [0, 1, 0])
    modes = [mode for mode, _ in web_canvas_frames(canvas, line)]
    assert made == [canvas] * 3 and modes == ["full", "diff", "diff"]
    assert [(f, p) for f, p in saved] == [("png", {"compress_level": 1, "compress_type": zlib.Z_RLE})] * 3
    assert canvas.get_diff_image() is None  # nothing new: no frame (and the next one still a diff)
    assert not canvas._force_full


def test_quick_png_is_applied_once_and_only_to_web_canvases():
    canvas = FigureCanvasWebAggCore(Figure())
    assert drawing.quick_png(canvas) is True and canvas.get_diff_image.vglab_quick
    assert drawing.quick_png(canvas) is False  # already applied
    figure = plt.figure()  # the test session's Agg canvas: no frames to encode
    assert drawing.quick_png(figure.canvas) is False
    plt.close(figure)


def test_the_batchnorm_dashboard_blits_a_depth_step_that_keeps_its_limits_and_lays_out_only_on_new_limits(
        monkeypatch):
    from vglab.lab import BatchNormDashboard

    d = BatchNormDashboard(depth=50, width=32, batch=8, warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    layouts = []
    engine = d.figure.get_layout_engine()
    execute = type(engine).__mro__[1].execute  # the constrained layout itself

    def counted(self, figure):
        layouts.append(figure)
        return execute(self, figure)

    monkeypatch.setattr(type(engine).__mro__[1], "execute", counted)
    for depth in (52, 53, 52):  # (52: the x axis grows to 60 layers; the others keep it)
        change(d, depth=depth)
    limits = [(ax.get_xlim(), ax.get_ylim()) for ax in d.figure.axes]
    blits, laid_out = d.frames["blit"], len(layouts)
    change(d, depth=53)
    assert [(ax.get_xlim(), ax.get_ylim()) for ax in d.figure.axes] == limits
    assert d.frames["blit"] == blits + 1 and len(layouts) == laid_out  # no full frame, no layout
    assert d.plotted()["gradient"]["x"][-1] == 53
    assert_frame_is_the_full_redraw(d)
    assert len(layouts) == laid_out  # a full redraw of unchanged limits reuses the layout too
    d.close()


def test_the_batchnorm_legends_stay_in_the_corner_the_dashboard_put_them_in(monkeypatch):
    # The dashboard keeps the corner it chose (BatchNormDashboard.corners), not matplotlib's private legend._loc.
    from vglab.lab import BatchNormDashboard, batchnorm_dashboards

    source = ast.parse(Path(batchnorm_dashboards.__file__).read_text(encoding="utf-8"))
    assert not [node.lineno for node in ast.walk(source) if isinstance(node, ast.Attribute) and node.attr == "_loc"]
    d = BatchNormDashboard(depth=50, width=32, batch=8, warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    seen = set()
    for depth, activation, residual in ((52, "relu", False), (20, "relu", True), (53, "linear", False),
                                        (8, "relu", False)):
        change(d, depth=depth, activation=activation, residual=residual)
        d.figure.canvas.draw()
        for name, legend, ax in (("gradient", d.grad_legend, d.grad_ax), ("rms", d.rms_legend, d.rms_ax)):
            box, frame = legend.get_window_extent(), ax.get_window_extent()
            drawn = (("upper" if box.y0 + box.y1 > frame.y0 + frame.y1 else "lower") + " "
                     + ("right" if box.x0 + box.x1 > frame.x0 + frame.x1 else "left"))
            assert d.corners[name] == drawn, (depth, activation, name)
            seen.add(drawn)
    assert len(seen) > 1  # (the legends did move)
    d.close()


def drag(d, name: str, values, pause: float) -> list:
    """A live drag of control ``name`` through ``values``, ``pause`` s apart, then a rest of
    ``2 * d.settle_seconds``; returns (x limits, y limits per axes, frames) after each value, then after the rest."""
    out = []

    def seen():
        return ([(tuple(ax.get_xlim()), tuple(ax.get_ylim())) for ax in d.figure.axes], dict(d.frames))

    async def moves():
        for value in values:
            d.controls[name].value = value
            await asyncio.sleep(pause)
            out.append(seen())
        await asyncio.sleep(2 * d.settle_seconds)
        out.append(seen())

    asyncio.run(moves())
    return out


@pytest.mark.parametrize("kind", ["gradient", "batchnorm"])
def test_a_drag_down_keeps_its_limits_while_it_lasts_and_fits_them_to_the_data_when_it_ends(kind, monkeypatch):
    # Lessons 02 and 13: a drag from depth 60 to 31 kept the axis of 60 layers (x to ~61, data to 31), and a
    # fresh fit at 31 rounds the axis up to 40 layers; at the drag's end the axis ends where the data end.
    from vglab.lab import BatchNormDashboard

    def make(depth):
        if kind == "batchnorm":
            made = BatchNormDashboard(depth=depth, width=32, batch=8, max_depth=64, warm_up=False)
        else:
            made = GradientDashboard(depth=depth, width=16, n_seeds=2, activation="sigmoid", controls=("depth",),
                                     max_depth=64, warm_up=False)
        live_ipympl_canvas(made, monkeypatch)
        return made

    d = make(60)  # the depth axis: 60 layers (0–61)
    d.settle_seconds = 1.0  # (a drag ends 1 s after its last step: far from the 0.1 s between steps)
    steps = drag(d, "depth", range(57, 30, -2), pause=0.1)  # 57, 55, …, 31
    during, (ended, frames) = steps[:-1], steps[-1]
    assert all(limits[0][0] == during[0][0][0][0] for limits, _ in during)  # the drag kept the depth axis …
    kept = sum(a[0] == b[0] for a, b in zip(during[:-1], during[1:], strict=True))
    blitted = during[-1][1]["blit"] - during[0][1]["blit"]
    assert kept >= len(during) // 2 and blitted == kept  # … and blitted every step that kept all limits
    assert ended != during[-1][0] and frames["full"] == during[-1][1]["full"] + 1  # once, in full, at its end
    for (xlim, _), ax in zip(ended, d.figure.axes, strict=True):  # the depth axis ends where the data end
        x = np.concatenate([np.asarray(line.get_xdata(), float) for line in ax.get_lines() if line.get_visible()
                            and len(line.get_xdata())])
        if kind == "batchnorm":  # its two panels share one depth axis, layers 0..L (the RMS curves from 1)
            x = np.append(x, 0.0)
        extent = x.max() - x.min()
        assert x.max() == 31 and xlim == pytest.approx((x.min() - 0.02 * extent, x.max() + 0.02 * extent))
    fresh = make(31)  # the y limits: as a new dashboard at 31 fits them
    assert [y for _, y in ended] == [tuple(ax.get_ylim()) for ax in fresh.figure.axes]
    for limits, ax in zip(ended, d.figure.axes, strict=True):  # every drawn value inside its fitted limits
        for line in ax.get_lines():
            y = np.asarray(line.get_ydata(), float)
            if line.get_visible() and y.size:
                assert limits[1][0] <= np.nanmin(y) and np.nanmax(y) <= limits[1][1]
    assert_frame_is_the_full_redraw(d)
    d.close()
    fresh.close()


def test_an_update_pauses_the_warm_up_of_every_dashboard_in_the_kernel_not_only_its_own():
    # Lesson 10 shows a gradient dashboard above a trainer whose warm-up has dozens of programs to compile; a
    # step of the first must not run beside the second's tracing (the GIL back every 5 ms: vglab.lab.warmup).
    class Recorder:
        def __init__(self):
            self.updating, self.calls = 0, []

        def update_started(self):
            self.updating += 1
            self.calls.append("started")

        def update_finished(self, state):
            self.updating -= 1
            self.calls.append(("finished", state))

        def stop(self):
            pass

    first = GradientDashboard(depth=10, width=16, n_seeds=2, controls=("depth",), max_depth=20, warm_up=False)
    second = GradientDashboard(depth=12, width=16, n_seeds=2, controls=("depth",), max_depth=20, warm_up=False)
    own, neighbour = Recorder(), Recorder()
    first.background_warmup, second.background_warmup = own, neighbour
    during = []
    compute = first.compute
    first.compute = lambda state: (during.append((own.updating, neighbour.updating)), compute(state))[1]
    first.set(depth=11)
    assert during == [(1, 1)]  # both warm-ups held while the first dashboard computed and drew
    assert own.calls == ["started", ("finished", first.computed_state)]  # its own re-plans from the new state
    assert neighbour.calls == ["started", ("finished", None)] and neighbour.updating == 0  # the other only waits
    first.close()
    second.close()


@pytest.mark.parametrize("kind", ["gradient", "batchnorm"])
def test_a_settled_change_draws_one_more_frame_only_when_it_left_limits_held(kind, monkeypatch):
    # end_drag (settle_seconds after a live change) drew a frame after *every* settled change: the dashboard's
    # release_limits was True whenever a plot had the hook.  A change that left every limit at its fit (the
    # gradient dashboard's depth 60 → 20: the axes refit to 0–20, a nice span, without headroom) needs no
    # frame; one that kept the limits (60 → 57: the axis of 60 layers stays) is fitted again and drawn in full,
    # and then nothing is held.  (BatchNorm's activation panel always keeps 10^±1 in view, so from depth 60
    # every change down holds its y limits: only the held case.)
    from vglab.lab import BatchNormDashboard

    def make():
        if kind == "batchnorm":
            made = BatchNormDashboard(depth=60, width=32, batch=8, max_depth=64, warm_up=False)
        else:
            made = GradientDashboard(depth=60, width=16, n_seeds=2, activation="sigmoid", controls=("depth",),
                                     max_depth=64, warm_up=False)
        live_ipympl_canvas(made, monkeypatch)
        made.settle_seconds = 0.3
        return made

    if kind == "gradient":
        fitted = make()
        (after_step, frames), (after_rest, rest_frames) = drag(fitted, "depth", [20], pause=0.1)
        assert frames["full"] + frames["blit"] >= 1  # (the step itself was drawn)
        assert rest_frames == frames and after_rest == after_step  # nothing held: no frame at the drag's end
        assert fitted.end_drag() is False
        fitted.close()
    held = make()
    (after_step, frames), (after_rest, rest_frames) = drag(held, "depth", [57], pause=0.1)
    assert after_rest != after_step  # held limits (the axis of 60 layers) fitted to 57 layers …
    assert rest_frames == {**frames, "full": frames["full"] + 1}  # … in one full frame
    assert held.end_drag() is False and held.frames == rest_frames  # then nothing is held: no frame
    assert_frame_is_the_full_redraw(held)
    held.close()


def test_steps_half_a_second_apart_are_one_drag_ended_once(monkeypatch):
    # In a loaded browser (load ~11 on 2 cores) a slider's steps arrive 0.3-0.6 s apart.  With a 0.3 s settle
    # time each of them "ended a drag": end_drag refitted the limits in a full frame, and the next step, whose
    # data left those tight limits, was a full frame again (lesson 00, three browser runs each: median 1609 ms
    # with 0.3 s, 120 ms with 1 s; benchmarks/README).
    d = GradientDashboard(depth=60, width=16, n_seeds=2, activation="sigmoid", controls=("depth",), max_depth=64,
                          warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    monkeypatch.setattr(d, "settle_seconds", type(d).settle_seconds)  # the dashboards' own settle time
    ends = []
    end_drag = d.end_drag
    monkeypatch.setattr(d, "end_drag", lambda: (ends.append(d.state["depth"]), end_drag())[1])
    steps = drag(d, "depth", [57, 56, 55, 54], pause=0.5)
    assert ends == [54]  # one drag, ended once, after its last step
    during = steps[:-1]
    assert during[-1][1]["full"] - during[0][1]["full"] == 0  # the steps after the first kept their limits
    assert steps[-1][1]["full"] == during[-1][1]["full"] + 1  # and the end refitted them in one full frame
    d.close()


def test_the_batchnorm_panels_share_one_depth_axis_that_grows_at_one_step_of_a_drag(monkeypatch):
    """Both panels plot against the layer index (the RMS curves from layer 1): their x limits are the same at
    every step of a drag 54 → 64, so the axis grows once, in one full frame (it grew a step apart before: the
    gradient panel at depth 61, the RMS panel at 62, two full frames)."""
    from vglab.lab import BatchNormDashboard

    d = BatchNormDashboard(depth=54, width=32, batch=8, warm_up=False)
    live_ipympl_canvas(d, monkeypatch)
    full_frames = []
    for depth in range(55, 65):
        before = d.frames["full"]
        change(d, depth=depth)
        assert d.grad_ax.get_xlim() == d.rms_ax.get_xlim()
        full_frames.append(d.frames["full"] - before)
    assert d.grad_ax.get_xlim()[1] > 64  # the axis did grow during the drag (past its 0..60 span) ...
    assert full_frames[61 - 55] == 1 and full_frames[62 - 55] == 0  # ... at depth 61, once for both panels
    d.close()
