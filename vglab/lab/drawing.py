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
import threading

DRAW_LOCK = threading.RLock()
MATHTEXT_LOCK = threading.Lock()


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


serialise_mathtext()
