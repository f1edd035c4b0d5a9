"""Weight banks: the bounded cache of pre-drawn parameters, their capacity ladder and the memory bound.

Every model draws its parameters per (seed, index), index a layer, a time step, a block or a token
(``vglab.core.streams``), into a *bank*: a NamedTuple of arrays whose rows 0..C−1 hold indices 0..C−1.  The
compiled programs read a bank of capacity C ≥ the depth asked for, with the depth as a dynamic trip count, so:

- the capacity comes from a fixed ladder (``capacity``): the smallest bucket ≥ the depth, so changing the depth
  within a bucket reuses the compiled program; above ``LARGE_BANK_BYTES`` the finer ladder ⌈16·1.25^k⌉
  (``fine_capacity``), so a bank holds at most 1.25× the layers a call needs; never more than the budget;
- a deeper request *grows* the bank: rows C..C′−1 are drawn and appended (``append_rows``), the existing rows are
  kept bit for bit (the draws depend on (seed, index) only, never on the capacity);
- the banks are kept in a bounded least-recently-used cache (``BankCache``), one per architecture;
- a request whose float32 arrays alone would exceed the model's budget is refused with a message that names the
  product, the bytes, the bound and what to reduce (``check_budget``);
- an engine's entry checks the model and the seeds and fetches its bank in one call (``checked_bank``).

``BankCache`` is the package's one bounded LRU: it also keeps the mean-field profiles of ``vglab.theory``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import jax.numpy as jnp

from vglab.core.validation import check_seeds

# Above this size a bank's capacity follows the finer ladder, so it holds at most 1.25× the layers the call
# needs (MLP depth 65, width 1024, 4 seeds: 80 layers, 1.25 GiB, not 256 layers, 4 GiB).
LARGE_BANK_BYTES = 256 * 2**20
FINE_BUCKET_RATIO = 1.25
GIB = 2**30


def check_budget(need_bytes: int, budget_bytes: int, subject: str, reduce: str, of: str = "") -> None:
    """Raise ValueError when ``need_bytes`` > ``budget_bytes``: "<subject> X GiB [of <of>], above the B GiB
    bound; reduce <reduce>" (subject names the product and its verb, e.g. "depth × width² × n_seeds = 257 ×
    1024² × 4 float32 weights need")."""
    if need_bytes > budget_bytes:
        detail = f" of {of}" if of else ""
        raise ValueError(f"{subject} {need_bytes / GIB:.1f} GiB{detail}, above the {budget_bytes / GIB:.0f} GiB "
                         f"bound; reduce {reduce}")


def fine_capacity(depth: int, coarse: int, bytes_per_layer: int, large_bytes: int = LARGE_BANK_BYTES) -> int:
    """``coarse`` (a bucket ≥ depth) where that bank is at most ``large_bytes``; otherwise the smallest rung
    ⌈16·1.25^k⌉ ≥ depth (below ``coarse``): still a fixed ladder, so depth changes between rungs reuse the
    compiled program."""
    if coarse * bytes_per_layer <= large_bytes:
        return coarse
    rung = 16.0
    while math.ceil(rung) < depth:
        rung *= FINE_BUCKET_RATIO
    return int(max(depth, min(coarse, math.ceil(rung))))


def capacity(need: int, buckets: Sequence[int], bytes_per_row: int | None = None, budget_bytes: int | None = None,
             large_bytes: int | None = LARGE_BANK_BYTES) -> int:
    """The rows a bank serving ``need`` rows holds: the smallest bucket ≥ need (``need`` itself past the last
    bucket), on the finer ladder once the bank would exceed ``large_bytes`` (``fine_capacity``; None: never),
    and at most the rows ``budget_bytes`` holds, but never below ``need``."""
    fits = None if budget_bytes is None else budget_bytes // bytes_per_row
    for bucket in buckets:
        if bucket >= need:
            fine = large_bytes is not None and bytes_per_row is not None
            rows = fine_capacity(need, bucket, bytes_per_row, large_bytes) if fine else bucket
            return int(max(need, rows if fits is None else min(rows, fits)))
    return int(need)


def append_rows(bank, axis: int = 1, concatenate: Callable = jnp.concatenate, **rows):
    """``bank`` (a NamedTuple) with ``rows[name]`` appended to its field ``name`` along ``axis`` (the rows of
    indices C..C′−1 after the existing 0..C−1); the other fields unchanged."""
    return bank._replace(**{name: concatenate([getattr(bank, name), more], axis=axis) for name, more in rows.items()})


class BankCache:
    """A bounded least-recently-used cache of banks: key → bank, at most ``size`` kept (the oldest dropped).

    ``get`` marks a bank as used; ``put`` stores one as the most recent; ``grown`` returns the cached bank when
    it is ``enough`` for the request, else the one ``make(old)`` builds from it (``old`` the cached, too small
    bank or None), stored.  ``budget_bytes`` is the model's bound for one call's arrays (``check``; None: a cache
    of something else, e.g. ``vglab.theory``'s mean-field profiles).  Any value may be cached, None included
    (``get``'s ``default`` tells a cached None from a missing key).  Safe to use
    from several threads (a dashboard's warm-up runs beside the kernel's calls); ``make`` runs outside the lock,
    so two threads may draw the same bank, identically."""

    def __init__(self, size: int, budget_bytes: int | None = None):
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self.budget_bytes = budget_bytes
        self._banks: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._banks)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._banks

    def keys(self) -> list:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._banks)

    def get(self, key: Hashable, default=None):
        """The bank cached for ``key`` (now the most recently used), or ``default``."""
        with self._lock:
            if key not in self._banks:
                return default
            self._banks.move_to_end(key)
            return self._banks[key]

    def put(self, key: Hashable, bank):
        """Store ``bank`` for ``key`` as the most recently used, dropping the least recently used beyond
        ``size``; returns ``bank``."""
        with self._lock:
            self._banks.pop(key, None)
            self._banks[key] = bank
            while len(self._banks) > self.size:
                self._banks.popitem(last=False)
        return bank

    def grown(self, key: Hashable, enough: Callable, make: Callable):
        """The cached bank if ``enough(bank)``, else ``make(cached bank or None)``, stored for ``key``."""
        bank = self.get(key)
        if bank is not None and enough(bank):
            return bank
        return self.put(key, make(bank))

    def clear(self) -> None:
        """Forget every cached bank (frees memory)."""
        with self._lock:
            self._banks.clear()

    def check(self, need_bytes: int, subject: str, reduce: str, of: str = "") -> None:
        """``check_budget`` against this cache's ``budget_bytes``."""
        check_budget(need_bytes, self.budget_bytes, subject, reduce, of)


def checked_bank(function: str, net, expects: type, seed, n_seeds, bank: Callable) -> tuple:
    """The entry of an engine over a cached bank of draws (the RNN's, the transformer's), written once: checks that
    ``net`` is an ``expects`` and the seeds (``check_seeds``), and returns (seeds, bank(net, seeds))."""
    if not isinstance(net, expects):
        raise ValueError(f"{function} expects a vglab.{expects.__name__}, got {type(net).__name__}")
    seeds = check_seeds(seed, n_seeds)
    return seeds, bank(net, seeds)
