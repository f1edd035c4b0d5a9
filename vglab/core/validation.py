"""Input checks shared by every public constructor: errors say what was expected and what came."""

from __future__ import annotations

import difflib
import functools
import inspect
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


MAX_SEEDS = 64  # networks one call draws and runs together
MAX_SEED = 2**31 - 1 - MAX_SEEDS  # seed + n_seeds − 1 stays a non-negative int32


def check_seeds(seed, n_seeds) -> tuple[int, ...]:
    """The seeds seed..seed+n_seeds−1 of a call, as a tuple (seed in 0..MAX_SEED, n_seeds in 1..MAX_SEEDS)."""
    seed = check_int("seed", seed, 0, MAX_SEED)
    n_seeds = check_int("n_seeds", n_seeds, 1, MAX_SEEDS)
    return tuple(range(seed, seed + n_seeds))


class KeywordError(TypeError, ValueError):
    """An unknown keyword argument: a TypeError, as Python raises for one, and a ValueError, like every other
    bad input vglab names (so ``except ValueError`` catches all of them)."""


def check_keywords(owner: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise KeywordError for the first of ``given`` not in ``valid``, with a did-you-mean.

    ``owner`` names the callable: ``vglab.MLP(activaton=...)`` → "vglab.MLP() got an unknown keyword
    'activaton'; did you mean 'activation'? (valid: depth, width, activation, ...)"."""
    valid = list(valid)
    lowered = {v.lower(): v for v in valid}
    for name in given:
        if name not in valid:
            close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
            hint = f"; did you mean {lowered[close[0]]!r}?" if close else ""
            raise KeywordError(f"{owner}() got an unknown keyword {name!r}{hint} (valid: {', '.join(valid)})")


def keywords_checked(target=None, *, owner: str | None = None):
    """Decorator: a function, or a class's ``__init__``, whose unknown keyword arguments raise
    ``KeywordError`` with a did-you-mean instead of Python's bare "unexpected keyword argument".

    A callable taking ``**kwargs`` is returned unchanged (whatever it forwards them to checks them).  For a
    class, ``owner`` defaults to the name of the class actually being made (a subclass's own name)."""
    if target is None:
        return functools.partial(keywords_checked, owner=owner)
    if isinstance(target, type):
        init = target.__dict__.get("__init__")
        if init is not None:
            target.__init__ = _checked(init, owner, method=True)
        return target
    return _checked(target, owner or target.__name__, method=False)


def _checked(function, owner, method: bool):
    parameters = inspect.signature(function).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters) or getattr(function, "_keywords_checked",
                                                                                   False):
        return function
    valid = [p.name for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                      inspect.Parameter.KEYWORD_ONLY)]
    if method:
        valid = valid[1:]  # self
    allowed = frozenset(valid)

    @functools.wraps(function)
    def checked(*args, **kwargs):
        if not allowed.issuperset(kwargs):
            name = owner or (type(args[0]).__name__ if method and args else function.__qualname__)
            check_keywords(name, kwargs, valid)
        return function(*args, **kwargs)

    checked._keywords_checked = True
    return checked
