"""Model descriptions written once: frozen, validated, hashable dataclasses with ``replace`` and ``to_code``.

Every architecture's description (``vglab.MLP``, ``RNN``, ``Transformer``, ``BatchNormMLP``, ``ConvNet``) is a
``Config`` subclass made with the ``@config`` decorator.  Its fields declare their own checks::

    @config
    class RNN(Config):
        cell: str = choice(CELLS, default="vanilla")
        hidden: int = integer(1, MAX_HIDDEN, default=32)
        weight_std: float | None = real(0.0, 100.0, default=None)     # None allowed: the default is None

and ``Config`` gives, once for all of them:

- construction: each field's check runs in field order and its canonical value is stored (``1`` → ``1.0``
  for a real, ``"layernorm"`` → ``"pre"`` for a norm); then the class's ``validate()`` hook checks the rules
  that relate fields (``width % heads``) and sets derived fields.  Errors say what was expected and what came
  (``depth must be an integer in 1..10000, got 0``); an unknown keyword gets a did-you-mean
  (``vglab.core.validation.keywords_checked``).
- ``replace(**changes)``: a copy with some fields changed, validated again (``dataclasses.replace``).
- ``to_code()``: the Python expression ``vglab.Name(...)`` that rebuilds the value: the fields named in
  ``CODE_ALWAYS`` and those without a default always, the others only where they differ from their default.
- hashing and equality over the fields that compare (``dataclass(frozen=True)``), so a description can key a
  cache and be a static argument of ``jax.jit``; derived fields (``field(init=False, compare=False)``) do not
  count.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from typing import ClassVar

import numpy as np

from vglab.core.validation import check_choice, check_float, check_int, keywords_checked

CHECK = "vglab.check"  # the field-metadata key holding a field's check: (name, value) -> canonical value


def checked(check: Callable, *, default=dataclasses.MISSING, optional: bool = False):
    """A dataclass field whose value ``check(name, value)`` validates and canonicalises; with ``optional``
    (or a default of None) None is accepted as it is."""
    optional = optional or default is None

    def run(name, value):
        return value if optional and value is None else check(name, value)

    return dataclasses.field(default=default, metadata={CHECK: run})


def integer(low: int, high: int, **kwargs):
    """An integer field in low..high (not a bool, not a float)."""
    return checked(lambda name, value: check_int(name, value, low, high), **kwargs)


def real(low: float = -math.inf, high: float = math.inf, *, low_inclusive: bool = True, **kwargs):
    """A finite real field in [low, high] ((low, high] without ``low_inclusive``), stored as a float."""
    return checked(lambda name, value: check_float(name, value, low, high, low_inclusive), **kwargs)


def choice(valid: Iterable[str], **kwargs):
    """A field naming one of ``valid`` (did-you-mean for a near miss)."""
    valid = tuple(valid)
    return checked(lambda name, value: check_choice(name, value, valid), **kwargs)


def check_flag(name: str, value) -> bool:
    """True or False, or a NumPy bool (a checkbox's value read from an array): not 0/1, not a string."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def flag(**kwargs):
    """A boolean field."""
    return checked(check_flag, **kwargs)


class Config:
    """The base of every model description (see the module docstring).  Subclasses are made with ``@config``."""

    CODE_ALWAYS: ClassVar[tuple[str, ...]] = ()  # fields ``to_code`` always writes, default or not
    _CHECKS: ClassVar[tuple] = ()  # (name, check) of every checked field in field order, set by ``@config``

    def __post_init__(self):
        set_ = object.__setattr__
        for name, check in self._CHECKS:
            set_(self, name, check(name, getattr(self, name)))
        self.validate()

    def validate(self) -> None:
        """Rules that relate several fields, and derived fields (``object.__setattr__``); none by default."""

    def replace(self, **changes):
        """A copy with some fields changed (validated again, unknown names get a did-you-mean)."""
        return dataclasses.replace(self, **changes)

    def code_parts(self) -> list[str]:
        """``name=value`` for every field ``to_code`` writes, in field order."""
        parts = []
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            if f.name in self.CODE_ALWAYS or f.default is dataclasses.MISSING or value != f.default:
                parts.append(f"{f.name}={value!r}")
        return parts

    def to_code(self) -> str:
        """The Python expression that rebuilds this value, e.g. ``vglab.RNN(cell='lstm', hidden=64, steps=50)``."""
        return f"vglab.{type(self).__name__}({', '.join(self.code_parts())})"


def config(cls: type) -> type:
    """Make ``cls`` (a ``Config`` subclass) a frozen dataclass whose unknown keywords raise ``KeywordError``
    naming ``vglab.<ClassName>`` with a did-you-mean."""
    if not issubclass(cls, Config):
        raise TypeError(f"@config is for subclasses of vglab.core.config.Config, got {cls.__name__}")
    cls = dataclasses.dataclass(frozen=True)(cls)
    cls._CHECKS = tuple((f.name, f.metadata[CHECK]) for f in dataclasses.fields(cls) if CHECK in f.metadata)
    return keywords_checked(cls, owner=f"vglab.{cls.__name__}")
