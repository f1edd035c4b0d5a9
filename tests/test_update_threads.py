"""A dashboard's updates run on its home loop, whichever thread handles the control change.

In JupyterLab 4.6 with ipykernel 7.4 a widget's messages are handled on the main shell (the main thread, where
cells run) or on a kernel subshell's thread with its own asyncio loop: ipykernel routes each message of a comm
to the shell that sent that comm's last message, so a slider's key presses alternate between the two (seen in
the browser suite: the first key of two on the main thread, the second on the subshell's).  Before the fix an
update ran on whichever thread handled the change, two updates ran at once, and the last value could be left
undrawn (the browser's slider read 0.85 while the plot showed 0.8).  Here the subshell is a thread with or
without a running loop of its own; the home loop is the one that made the dashboard.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from vglab.lab import GradientDashboard


def change_from_another_thread(slider, values, own_loop: bool) -> None:
    """Set ``values`` on ``slider`` one after another from a new thread (with a running loop of its own that
    keeps running a while, as a kernel subshell's does, or without any); returns once the thread is done."""

    def plain():
        for value in values:
            slider.value = value

    async def subshell():
        plain()
        await asyncio.sleep(0.3)  # the subshell's loop goes on running (and would run what was put on it)

    worker = threading.Thread(target=(lambda: asyncio.run(subshell())) if own_loop else plain, name="subshell")
    worker.start()
    worker.join()


@pytest.mark.parametrize("own_loop", [False, True], ids=["plain-thread", "thread-with-its-own-loop"])
def test_changes_handled_in_another_thread_are_computed_on_the_home_loop_and_the_last_value_is_drawn(own_loop):
    async def scenario():
        dash = GradientDashboard(depth=5, width=16, n_seeds=2, controls=("depth",), max_depth=12,
                                 warm_up=False)
        computed = []
        compute = dash.compute

        def recording(state):
            computed.append((threading.current_thread().name, state["depth"]))
            return compute(state)

        dash.compute = recording
        slider = dash.controls["depth"]
        slider.value = 6  # a change on the home thread first: its update is scheduled, not run yet
        await asyncio.to_thread(change_from_another_thread, slider, [7, 9], own_loop)
        await asyncio.sleep(0.3)
        try:
            return computed, dict(dash.computed_state), dash.plotted()["gradient"]["x"]
        finally:
            dash.close()

    computed, state, x = asyncio.run(scenario())
    assert computed, "no update ran"
    assert {name for name, _ in computed} == {threading.current_thread().name}, computed
    assert computed[-1][1] == 9 and state["depth"] == 9, (computed, state)
    assert len(x) == 10 and x[-1] == 9  # the plot shows layers 0..9


def test_a_change_from_another_thread_without_a_home_loop_updates_at_once():
    """A dashboard made outside any event loop (a script, a test) updates synchronously, in any thread."""
    dash = GradientDashboard(depth=5, width=16, n_seeds=2, controls=("depth",), max_depth=12, warm_up=False)
    try:
        change_from_another_thread(dash.controls["depth"], [8], own_loop=False)
        assert dash.computed_state["depth"] == 8
    finally:
        dash.close()


def test_a_change_on_the_home_thread_is_scheduled_without_a_hand_off_and_one_from_another_thread_with_one():
    """The hand-off (``call_soon_threadsafe``, which wakes the home loop through its self-pipe) is for
    changes handled in another thread only; on the home thread the update is put on the loop directly.
    benchmarks/latency_breakdown.py measured both: value set → update started 3.4–4.4 ms either way, of which
    ``coalesce_seconds`` (3 ms) is the wait that ends a burst of slider messages."""

    async def scenario():
        dash = GradientDashboard(depth=5, width=16, n_seeds=2, controls=("depth",), max_depth=12,
                                 warm_up=False)
        loop = asyncio.get_running_loop()
        handed, hand_off = [], loop.call_soon_threadsafe

        def recording(*args, **kwargs):
            handed.append(threading.current_thread().name)
            return hand_off(*args, **kwargs)

        loop.call_soon_threadsafe = recording
        slider = dash.controls["depth"]
        try:
            slider.value = 6
            await asyncio.sleep(0.2)
            home = (list(handed), dash.computed_state["depth"])
            await asyncio.to_thread(change_from_another_thread, slider, [8], False)
            await asyncio.sleep(0.2)
            return home, (list(handed), dash.computed_state["depth"])
        finally:
            del loop.call_soon_threadsafe
            dash.close()

    (home_handed, home_depth), (other_handed, other_depth) = asyncio.run(scenario())
    assert home_handed == [] and home_depth == 6
    assert other_handed.count("subshell") == 1 and other_depth == 8  # (asyncio.to_thread hands off its result too)
