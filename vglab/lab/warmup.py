"""Compiling, in the background, what a dashboard's controls can reach, so the first switch is as fast as the next.

A dashboard compiles one XLA program per static setting (activation, residual, norm, init family, width,
n_seeds; a recurrent one per cell and activation, a transformer per skip, norm and activation, a training one
per activation, skip, norm, init, optimizer and clipping on/off); the first time a student picks another
activation the plot waits for that compile (0.3–3 s on two cores).  After the first plot, ``Warmup`` works
through the settings one control change away from the plotted
state (``dashboard.warm_variants(state)``: each activation, init, residual and norm option) in a daemon thread,
running ``dashboard.warm_variant(variant)`` for each (the compile, the weights it draws, its theory curve), so
that switch finds everything ready.  After every update it plans again from the new state.

It yields to the dashboard: a variant starts only when no update is pending or running and none has finished
for ``quiet_seconds``; an update that arrives during a variant's compile runs at once (the compile cannot be
interrupted, so the thread runs at the lowest CPU priority on Linux and the kernel's own work comes first).

``start(dashboard)`` starts one inside a live kernel (a running event loop), unless ``VGLAB_WARMUP`` is 0, off,
false or no; scripts and tests start one explicitly with ``start(dashboard, force=True)`` and can ``wait()``.
"""

from __future__ import annotations

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

    def __init__(self, dashboard, *, start: bool = True):
        self.dashboard = dashboard
        self.warmed: list = []
        self.log: list[tuple] = []
        self.failed: list[tuple] = []
        self._done: set = set()
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._updating = 0
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
            self._updating += 1
            self._last_activity = time.monotonic()

    def update_finished(self, state: dict | None) -> None:
        with self._cond:
            self._updating -= 1
            self._last_activity = time.monotonic()
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

    def _work(self) -> None:
        _lowest_priority()
        while (item := self._next()) is not None:
            key, variant = item
            start = time.monotonic()
            try:
                self.dashboard.warm_variant(variant)
            except Exception as error:  # noqa: BLE001 - a variant that fails is skipped, never shown here
                self.failed.append((key, error))
            end = time.monotonic()
            with self._cond:
                self._done.add(key)
                self.warmed.append(key)
                self.log.append((key, start, end))
                self._running = False
                self._cond.notify_all()


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
