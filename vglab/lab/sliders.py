"""Float sliders whose values are exactly the ones the browser's slider can hold, so it never sends one back.

JupyterLab draws an ipywidgets ``FloatSlider`` with noUiSlider (15.4 in ipywidgets 8.1), which keeps a
position in percent and snaps it to the step grid::

    pct   = (v − min)·100 / (max − min)                     toStepping
    pct   = round(pct / s)·s,  s = step·100 / (max − min)   getStep (JavaScript Math.round)
    value = pct·(max − min) / 100 + min                     fromStepping

In floating point this moves most values by an ulp (min 0.1, step 0.05: 1.0 → 1.0000000000000002), and the
view reports any value that differs from the model's back to the kernel: when it first draws the slider, and
whenever the kernel sets a value.  That report can arrive late: after ``Run All`` it reached the kernel after
the next cell's ``dash.set(sigma_w=1.5)`` had run, and set σ_w back to 1.0 (issue 13).  ``GridFloatSlider``
stores every value as the browser would snap it (``browser_snap``), so the view has nothing to report.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import traitlets


def _js_round(x: float) -> float:
    """JavaScript's Math.round: the nearest integer, halves toward +∞ (Python's round() halves to even)."""
    low = math.floor(x)
    return float(low + 1) if x - low >= 0.5 else float(low)


def browser_snap(value: float, low: float, high: float, step: float) -> float:
    """The value noUiSlider 15.4 holds after ``set(value)`` on a slider over [low, high] with ``step``, in the
    same IEEE double operations, in the same order (nouislider.js: toStepping, getStep, limit, fromStepping)."""
    value, low, high, step = float(value), float(low), float(high), float(step)
    span = high - low
    if span <= 0:
        return low
    step_pct = (step * 100) / span / (100 / (100 - 0))  # handleStepPoint: fromPercentage / subRangeRatio
    if value >= high:
        pct = 100.0
    else:
        shifted = value + abs(low) if low < 0 else value - low
        pct = 0 + ((shifted * 100) / span) / (100 / (100 - 0))
    if pct != 100 and step_pct:
        pct = 0 + _js_round((pct - 0) / step_pct) * step_pct
    pct = max(min(pct, 100.0), 0.0)
    if pct >= 100:
        return high
    return ((pct - 0) * (100 / (100 - 0)) * span) / 100 + low


def on_browser_grid(value: float, low: float, high: float, step: float) -> float:
    """``browser_snap`` applied until it no longer moves the value (once or twice): a value the browser keeps."""
    for _ in range(4):
        snapped = browser_snap(value, low, high, step)
        if snapped == value:
            break
        value = snapped
    return value


class GridFloatSlider(widgets.FloatSlider):
    """A ``FloatSlider`` that stores each value as the browser's slider would hold it (``on_browser_grid``):
    the value the kernel sets is the value the browser shows, and no snapped copy comes back."""

    @traitlets.validate("value")
    def _validate_value(self, proposal):  # replaces FloatSlider's validator
        value = min(max(float(proposal["value"]), self.min), self.max)  # FloatSlider's own clamping
        return on_browser_grid(value, self.min, self.max, self.step)
