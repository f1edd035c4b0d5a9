"""Test helpers: drive a dashboard's live (ipympl) rendering path without a browser, and compare frames."""

import asyncio
import types

import numpy as np
import pytest


def live_ipympl_canvas(d, monkeypatch):
    """Make ``d`` render its frames itself, as under %matplotlib widget once ipympl's view is up."""
    canvas = d.figure.canvas
    monkeypatch.setattr(canvas, "manager", types.SimpleNamespace(refresh_all=lambda: None), raising=False)
    monkeypatch.setattr(canvas, "syncing_data_url", False, raising=False)
    monkeypatch.setattr(d, "_static_output", None)
    monkeypatch.setattr(canvas, "draw_idle", lambda: pytest.fail("draw_idle: a round trip through the browser"))
    # Each change() is a step of one drag that goes on (its limits stay): no drag ends on its own in a test,
    # however long a step's frame took; a test ends one with d.end_drag() or by setting settle_seconds.
    monkeypatch.setattr(d, "settle_seconds", 3600.0, raising=False)


def pixels(figure) -> np.ndarray:
    """A copy of the canvas's RGBA buffer."""
    return np.asarray(figure.canvas.buffer_rgba()).copy()


def change(d, **values):
    """Set controls as a drag in a live kernel does (one coalesced update, rendered by the dashboard)."""
    async def drag():
        for name, value in values.items():
            d.controls[name].value = value
        await asyncio.sleep(0.25)

    asyncio.run(drag())


def assert_frame_is_the_full_redraw(d):
    """The frame on the canvas is exactly the whole figure drawn from scratch for the same state."""
    shown = pixels(d.figure)
    d.figure.canvas.draw()
    different = np.count_nonzero(np.any(shown != pixels(d.figure), axis=-1))
    assert different == 0, f"{different} pixels of the rendered frame differ from a full redraw"
    assert d._frames.render() == "full"  # a draw the dashboard did not start leaves it no background
