"""Input checks shared by every public constructor: errors say what was expected and what came."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable


def check_choice(kind: str, value, valid: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``valid``; else a ValueError naming the valid ones (with a did-you-mean)."""
    valid = list(valid)
    if isinstance(value, str) and value in valid:
        return value
    hint = ""
    if isinstance(value, str):
        close = difflib.get_close_matches(value.lower(), valid, n=1, cutoff=0.5)
        if close:
            hint = f"; did you mean {close[0]!r}?"
    raise ValueError(f"unknown {kind} {value!r}{hint} (valid: {', '.join(valid)})")


def check_int(name: str, value, low: int, high: int) -> int:
    """An integer (not a bool, not a float) in low..high inclusive."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value}")
    return int(value)


def check_float(name: str, value, low: float = -math.inf, high: float = math.inf,
                low_inclusive: bool = True) -> float:
    """A finite real number in [low, high] (or (low, high] when ``low_inclusive`` is False)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    too_low = value < low if low_inclusive else value <= low
    if too_low or value > high:
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")
    return value
