"""Counting XLA compilations: the slow step a slider drag must never wait for.

``CompileCounter().count`` grows by one for every backend compilation JAX reports through ``jax.monitoring``
(the event ``/jax/core/compile/backend_compile_duration``), so a test or a benchmark can assert that changing
the depth, the number of steps or a weight scale compiled nothing new.
"""

from __future__ import annotations

import jax

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


class CompileCounter:
    """Counts XLA backend compilations from the moment it is made (listeners cannot be removed: make few)."""

    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            self.count += 1
