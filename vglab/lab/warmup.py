"""Compiling, in the background, what a dashboard's controls can reach, so the first switch is as fast as the next.

A dashboard compiles one XLA program per static setting (activation, residual, norm, init family, width,
n_seeds; a recurrent one per cell and activation, a transformer per skip, norm and activation, a training one
per activation, skip, norm, init, optimizer and clipping on/off); the first time a student picks another
activation the plot waits for that compile (0.3–3 s on two cores).  After the first plot, ``Warmup`` works
through the settings one control change away from the plotted
state (``dashboard.warm_variants(state)``: each activation, init, residual and norm option) in a daemon thread,
running ``dashboard.warm_variant(variant)`` for each (the compile, the weights it draws, its theory curve), so
that switch finds everything ready.  After every update it plans again from the new state.

It yields to the dashboard.  A variant starts only when no update is pending or running and none has finished
for ``quiet_seconds``.  A variant already running pauses where it is as soon as an update is pending or
running, and goes on once the dashboard has been quiet for ``quiet_seconds`` (``_pause``; the thread's
profile function, ``sys.setprofile`` in this thread only, looks at every function call).  Why: JAX traces and
lowers a program in Python, holding the GIL, and CPython hands the GIL between two busy threads only every
``sys.getswitchinterval()`` (5 ms), so an update arriving then ran its Python (compute, artists, status) in
5 ms turns, at half speed or worse; the CPU priority cannot help with that (measured with a main-thread probe:
during tracing and lowering it waited for the GIL almost all the time, during XLA's compile no more than
beside a GIL-free numpy loop).  A full garbage collection in this thread holds the GIL too (0.3–0.9 s under
load with ~200,000 objects): ``freeze_long_lived()`` freezes the objects alive at the first warm-up of a
kernel, so later collections scan only newer ones.

Not under this module's control: XLA compiles on its own thread pool, made when JAX starts, at the kernel's
CPU priority, so the lowest priority this thread takes (Linux) does not reach the compile itself; a compile
in progress shares the cores with an update at equal priority.

``start(dashboard)`` starts one inside a live kernel (a running event loop), unless ``VGLAB_WARMUP`` is 0, off,
false or no; scripts and tests start one explicitly with ``start(dashboard, force=True)`` and can ``wait()``.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections import deque

ENV = "VGLAB_WARMUP"
_OFF = {"0", "off", "false", "no", "none"}


def enabled(environ=os.environ) -> bool:
    """Whether dashboards warm up in the background (``VGLAB_WARMUP`` unset or anything but 0/off/false/no)."""
    return environ.get(ENV, "").strip().lower() not in _OFF


def _lowest_priority() -> None:
    """Give this thread the lowest CPU priority (Linux: setpriority on the thread id is per thread)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


class Warmup:
    """The background warm-up of one dashboard (see the module docstring).

    ``warmed``: the keys (``dashboard.warm_key``) done, in order; ``log``: (key, start, end) monotonic times of
    each variant; ``failed``: (key, exception) of variants that raised (the dashboard shows such an error itself
    when the student picks that setting).
    """

    quiet_seconds = 0.3
    yield_mid_variant = True  # pause a running variant while an update is pending or running (_pause)
    pause_limit = 0.1
    max_pause = 2.0

    def __init__(self, dashboard, *, start: bool = True):
        self.dashboard = dashboard
        self.warmed: list = []
        self.log: list[tuple] = []
        self.failed: list[tuple] = []
        self._done: set = set()
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._updating = 0
        self._update_began = 0.0  # when the running update started (monotonic)
        self._run_until = 0.0  # a forced end of a pause lets the variant run until then
        self.pauses = 0  # times a variant stopped in its middle for the dashboard (see _pause)
        self.paused_seconds = 0.0
        self._running = False
        self._stopped = False
        self._last_activity = time.monotonic()
        self._thread = threading.Thread(target=self._work, name=f"vglab-warmup-{dashboard.kind}", daemon=True)
        if start:
            self._thread.start()

    # ---- called by the dashboard (main thread)
    def plan(self, state: dict) -> None:
        """Queue the variants of ``state`` not warmed yet (replacing the variants of an older state)."""
        dashboard = self.dashboard
        with self._cond:
            self._queue.clear()
            seen = set(self._done)
            for variant in dashboard.warm_variants(state):
                key = dashboard.warm_key(variant)
                if key not in seen:
                    seen.add(key)
                    self._queue.append((key, variant))
            self._cond.notify_all()

    def update_started(self) -> None:
        with self._cond:
            if not self._updating:
                self._update_began = time.monotonic()
            self._updating += 1
            self._last_activity = time.monotonic()

    def update_finished(self, state: dict | None) -> None:
        with self._cond:
            self._updating -= 1
            self._last_activity = time.monotonic()
            self._cond.notify_all()
        if state is not None and not self._stopped:
            self._done.add(self.dashboard.warm_key(state))  # what is on screen is compiled
            self.plan(state)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()

    # ---- for scripts and tests
    @property
    def pending(self) -> int:
        """Variants still to warm (the one running included)."""
        with self._cond:
            return len(self._queue) + self._running

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every planned variant is warm (True) or ``timeout`` seconds passed (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._stopped or (not self._queue and not self._running), timeout)

    # ---- the thread
    def _busy(self) -> bool:
        dashboard = self.dashboard
        return bool(self._updating or getattr(dashboard, "_pending", False)
                    or getattr(dashboard, "_scheduled", False)
                    or getattr(dashboard, "running", False))  # a training dashboard's run in its thread

    def _next(self):
        """The next (key, variant) once the dashboard is quiet, or None when stopped."""
        with self._cond:
            while True:
                if self._stopped:
                    return None
                if self._queue:
                    quiet_for = time.monotonic() - self._last_activity
                    if self._busy():
                        self._cond.wait(0.02)  # a pending change sets a flag without notifying: poll
                    elif quiet_for < self.quiet_seconds:
                        self._cond.wait(self.quiet_seconds - quiet_for)
                    else:
                        key, variant = self._queue.popleft()
                        if key in self._done:
                            continue
                        self._running = True
                        return key, variant
                else:
                    self._cond.wait()

    def _yield_hook(self):
        """This thread's profile function (``sys.setprofile``, called at every Python and C function call and
        return in this thread only): while an update is pending or running, it pauses the variant where it
        is (``_pause``), so the update runs without this thread taking the GIL back every 5 ms."""
        def hook(frame, event, arg):
            if self._updating_or_pending() and not self._stopped and time.monotonic() >= self._run_until:
                self._pause()

        return hook

    def _pause(self) -> None:
        """Wait, in the middle of a variant, until the dashboard has been quiet for ``quiet_seconds``.

        Two limits keep a pause from waiting for something that waits for this thread (a lock it holds, a
        program it is compiling that the update needs too): an update that has run for ``pause_limit``
        seconds, or a pause of ``max_pause`` seconds, ends it, and the variant then runs for ``pause_limit``
        seconds before it can pause again.
        """
        started = time.monotonic()
        with self._cond:
            self.pauses += 1
            while not self._stopped:
                now = time.monotonic()
                if ((self._updating and now - self._update_began >= self.pause_limit)
                        or now - started >= self.max_pause):
                    self._run_until = now + self.pause_limit
                    break
                if not self._updating_or_pending() and now - self._last_activity >= self.quiet_seconds:
                    break
                self._cond.wait(0.01)
            self.paused_seconds += time.monotonic() - started

    def _updating_or_pending(self) -> bool:
        dashboard = self.dashboard
        return bool(self._updating or getattr(dashboard, "_pending", False)
                    or getattr(dashboard, "_scheduled", False))

    def _work(self) -> None:
        _lowest_priority()
        hook = self._yield_hook() if self.yield_mid_variant else None
        while (item := self._next()) is not None:
            key, variant = item
            start = time.monotonic()
            sys.setprofile(hook)  # this thread only, for the variant only
            try:
                self.dashboard.warm_variant(variant)
            except Exception as error:  # noqa: BLE001 - a variant that fails is skipped, never shown here
                self.failed.append((key, error))
            finally:
                sys.setprofile(None)
            end = time.monotonic()
            with self._cond:
                self._done.add(key)
                self.warmed.append(key)
                self.log.append((key, start, end))
                self._running = False
                self._cond.notify_all()


_FROZEN: list = []  # whether freeze_long_lived() ran in this process


def freeze_long_lived() -> bool:
    """Move every object alive now out of the garbage collector's reach, once per process (True the first time).

    A full collection (generation 2) scans every tracked object: ~200,000 once JAX, matplotlib and a dashboard
    are loaded, 0.8–1.0 s here under load (and a few hundred ms during the warm-up's tracing, holding the GIL,
    so a step then waits for it).  After ``gc.freeze()`` it scans only newer objects (2 ms after one more
    compile).  The young generations are collected first, so the first plot's own garbage is not kept; what
    is frozen (modules, JAX's caches, the first dashboard) lives as long as the kernel anyway.
    """
    if _FROZEN or not gc.isenabled():
        return False
    gc.collect(1)
    gc.freeze()
    _FROZEN.append(True)
    return True


def start(dashboard, *, force: bool = False) -> Warmup | None:
    """A running ``Warmup`` for ``dashboard`` (also set as ``dashboard.background_warmup``, replacing one that
    ran), planned from its plotted state; or None: when ``VGLAB_WARMUP``
    is off, when no event loop runs in this thread (a script, a test) unless ``force``, or when the dashboard
    has nothing to warm (``warm_variants`` empty)."""
    if not enabled():
        return None
    if not force:
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return None
        freeze_long_lived()  # in a live kernel only: a test session frees its compiled programs by collecting
    state = dashboard.computed_state if dashboard.computed_state is not None else dashboard.state
    if not dashboard.warm_variants(state):
        return None
    if dashboard.background_warmup is not None:
        dashboard.background_warmup.stop()
    warmup = Warmup(dashboard)
    warmup._done.add(dashboard.warm_key(state))
    warmup.plan(state)
    dashboard.background_warmup = warmup  # its updates now pause it and re-plan it
    return warmup
