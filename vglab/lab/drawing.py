"""Drawing from several threads: one lock for every dashboard draw, and matplotlib's mathtext parser serialised.

A dashboard is drawn from more than one thread.  JupyterLab (4.4 on, setting ``commsOverSubshells``, default
``perCommTarget``) sends every widget's comm messages — a slider's new value, ipympl's draw and resize
requests — on a kernel subshell of their own when the kernel has subshells (ipykernel 7 on), and ipykernel
handles a subshell's messages in a thread of its own, with its own asyncio loop, while cells run in the main
thread.  So a cell's ``dash.set(...)`` or a new dashboard's first plot (main thread) and a slider update or a
canvas redraw (the subshell's thread) can draw at the same moment; a training run's reports go to the loop of
whichever thread pressed Train.

Matplotlib is not thread-safe, and two things break:

- Its mathtext parser is one object for the whole process (``MathTextParser._parser``, a
  ``matplotlib._mathtext.Parser``) that keeps the state of the parse in progress on itself (``_state_stack``,
  replaced at the start of every ``parse``), so two threads parsing at once corrupt each other's parse and a
  valid label fails: ``'$10^{1}$' … ParseException: Expected end of text, found '$'``.
  ``serialise_mathtext()`` (applied when ``vglab.lab`` is imported) makes that ``parse`` take ``MATHTEXT_LOCK``,
  so parses run one at a time, for every figure in the process, a dashboard's or not.
- One figure drawn by two threads: one rewrites the artists' data while the other renders them, and the
  blitting bookkeeping (``plots.BlitFrames``) is shared.  Every draw of a dashboard holds ``DRAW_LOCK``
  (re-entrant): the update of its artists and the redraw, a rendered frame, a saved or displayed PNG, pins,
  and every message its ipympl canvas handles (``lock_canvas``).

Neither lock is held while a dashboard computes; no code holding ``MATHTEXT_LOCK`` takes ``DRAW_LOCK``, so the
two cannot deadlock.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import zlib

DRAW_LOCK = threading.RLock()
MATHTEXT_LOCK = threading.Lock()
FULL_FRAME_WITHIN = 0.25  # seconds (quick_png): a frame this soon after the previous one is sent whole


def serialise_mathtext() -> bool:
    """Make ``matplotlib._mathtext.Parser.parse`` hold ``MATHTEXT_LOCK`` (once; True when it does)."""
    from matplotlib import _mathtext

    parse = getattr(_mathtext.Parser, "parse", None)
    if parse is None:
        return False
    if not getattr(parse, "vglab_serialised", False):
        @functools.wraps(parse)
        def serialised(self, *args, **kwargs):
            with MATHTEXT_LOCK:
                return parse(self, *args, **kwargs)

        serialised.vglab_serialised = True
        serialised.unserialised = parse
        _mathtext.Parser.parse = serialised
    return True


def lock_canvas(canvas) -> None:
    """Make ``canvas`` draw, and handle each front-end message (ipympl's draw, refresh, resize), under
    ``DRAW_LOCK``: its own handlers then never run while another thread updates or renders the figure."""
    for name in ("draw", "handle_event"):
        method = getattr(canvas, name, None)
        if method is None or getattr(method, "vglab_locked", False):
            continue

        def locked(*args, _method=method, **kwargs):
            with DRAW_LOCK:
                return _method(*args, **kwargs)

        locked.vglab_locked = True
        setattr(canvas, name, locked)


class QuickPNG:
    """Stands in for PIL's ``Image`` module inside ``matplotlib.backends.backend_webagg_core``, whose
    ``get_diff_image`` encodes each frame with ``Image.fromarray(data).save(png, format="png")``: the same call,
    with zlib's run-length strategy at level 1 instead of PIL's default (level 6).  Everything else is PIL's."""

    OPTIONS = {"compress_level": 1, "compress_type": zlib.Z_RLE}

    def __init__(self, image_module):
        self.image_module = image_module

    def __getattr__(self, name):
        return getattr(self.image_module, name)

    def fromarray(self, *args, **kwargs):
        return _QuickPNGImage(self.image_module.fromarray(*args, **kwargs))


class _QuickPNGImage:
    def __init__(self, image):
        self.image = image

    def __getattr__(self, name):
        return getattr(self.image, name)

    def save(self, fp, format=None, **params):  # noqa: A002 - PIL's name
        if str(format).lower() == "png":
            params = {**QuickPNG.OPTIONS, **params}
        return self.image.save(fp, format, **params)


def quick_png_encoder() -> bool:
    """Make matplotlib's web canvases (ipympl's, webagg's) PNG-encode their frames with ``QuickPNG`` (once,
    for the process; True when matplotlib's frame encoder looks ``Image`` up in its module, as it does)."""
    from matplotlib.backends import backend_webagg_core

    image = getattr(backend_webagg_core, "Image", None)
    if image is None:
        return False
    if not isinstance(image, QuickPNG):
        backend_webagg_core.Image = QuickPNG(image)
    return True


def quick_png(canvas) -> bool:
    """Make a web canvas (ipympl's, matplotlib's webagg) send its frames sooner, and never a diff that could
    be laid over a frame the browser dropped.  True when applied.

    - Encoding: the frame ipympl sends after each update is a PNG of the whole figure (a "diff" frame: the
      changed pixels, the others 0), and encoding it was a third of a blitted frame's time; zlib's RLE at
      level 1 (``QuickPNG``) takes about half as long and gives as small a diff frame (a full frame ~10 %
      larger).  Only the encoder's options change: the frame itself is matplotlib's own
      ``FigureCanvasWebAggCore.get_diff_image`` (which pixels, diff or full, transparency), and PNG is
      lossless, so the browser decodes the same pixels.
    - Whole frames in quick succession: a frame within ``FULL_FRAME_WITHIN`` seconds of the previous one is
      sent whole ("full"), by raising matplotlib's own "next frame full" flag (``_force_full``, which a
      browser's ``refresh`` message raises and ipympl's canvas declares as a trait) before matplotlib makes
      the frame.  ipympl's front end shows a frame by setting its one image's ``src``; a frame that arrives
      before the previous one has loaded replaces it unseen, and every later diff is then laid over the
      wrong picture (seen in the browser suite at load ~20: lesson 13's canvas mixed three layouts after the
      residual checkbox, when the dashboard's own frame and a frame the browser had asked for went out
      together).  A whole frame repaints everything, so no lost frame outlives the next one.

    If a matplotlib release stops reading ``Image`` or ``_force_full`` there, frames are still matplotlib's
    (slower, or diffs again); tests/test_frame_work.py fails on either.
    """
    if not hasattr(canvas, "get_diff_image") or getattr(canvas.get_diff_image, "vglab_quick", False):
        return False
    quick_png_encoder()
    own = canvas.get_diff_image  # matplotlib's (bound)
    last_sent = [-math.inf]

    def get_diff_image():
        now = time.monotonic()
        forced = getattr(canvas, "_force_full", False)
        if now - last_sent[0] < FULL_FRAME_WITHIN:  # the previous frame may not be painted yet
            canvas._force_full = True
        png = own()
        if png is None:  # nothing new to send: the flag stays as it was
            canvas._force_full = forced
        else:
            last_sent[0] = now
        return png

    get_diff_image.vglab_quick = True
    canvas.get_diff_image = get_diff_image
    return True


serialise_mathtext()
