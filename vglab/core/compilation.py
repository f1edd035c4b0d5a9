"""Compiling vglab's kernels, and counting compilations (the slow step a slider drag must never wait for).

``exact_jit`` is the ``jax.jit`` every vglab kernel is compiled with: it traces the kernel with every float32
matrix product at full float32 precision.  JAX's default lets XLA compute a float32 product in TensorFloat-32 on
NVIDIA GPUs from Ampere on (10-bit mantissa, relative error ≈ 10⁻³ per product) and in bfloat16 on TPUs; the
lab's numbers must agree with float64 references on every device, so vglab never takes that default.  On CPUs
the two are the same computation.

``CompileCounter().count`` grows by one for every backend compilation JAX reports through ``jax.monitoring``
(the event ``/jax/core/compile/backend_compile_duration``), so a test or a benchmark can assert that changing
the depth, the number of steps or a weight scale compiled nothing new (a program loaded from the persistent
cache counts too: the process did not have it; ``.loaded`` counts those).

Compiled programs persist across kernels: importing vglab turns on JAX's persistent compilation cache in the
user's cache directory (``~/.cache/vglab/jax`` on Linux, honouring ``XDG_CACHE_HOME``; ``~/Library/Caches`` on
macOS, ``%LOCALAPPDATA%`` on Windows), so a second kernel loads the programs the first one compiled instead of
compiling them again.  ``VGLAB_COMPILATION_CACHE=<dir>`` chooses the directory (a JupyterHub can point every
student at one), ``VGLAB_COMPILATION_CACHE=off`` (or 0, false, no) leaves JAX's cache off, and a cache directory
the user gave JAX itself (``JAX_COMPILATION_CACHE_DIR``, ``jax.config``) is left as it is.  JAX trusts its
cache: whoever can write to the directory can run code in every kernel that reads it, so share one only among
people who trust each other (or let only the instructor write it).

Several kernels may share one cache directory (two notebooks open, a JupyterHub's shared directory, pytest
workers).  JAX's own file cache (``jax._src.lru_cache.LRUCache``, jax 0.4.35–0.10) takes no lock unless a
size limit is set (``jax_compilation_cache_max_size``, which needs the ``filelock`` package) and writes an
entry in place (``exists()``, then ``write_bytes``): a kernel reading that entry at the same moment gets a
truncated file, which zlib rejects, so JAX warns ("Error reading persistent compilation cache entry") and
compiles again.  vglab therefore writes each entry atomically — into a temporary file in the same directory,
then ``os.replace`` onto its name (atomic on POSIX and Windows) — so a reader sees either no entry or the
whole one, and two writers of one key leave one whole entry (``make_cache_writes_atomic``;
tests/test_compilation_cache.py runs three processes against one directory).  The file write is pure
Python: the native step of a cache write (``executable.serialize()``) touches no file and no other process.


What selects a program and what is traced (``Structure``/``Scalars``, issue 14 item 2): each engine passes its
compiled program two NamedTuples, ``Structure`` (static, hashable: the options that change the traced code, e.g.
the MLP's activation/residual/norm, the RNN's cell/activation, the transformer's heads) and ``Scalars`` (traced
numbers: changing them recompiles nothing).  A generic splitter was considered — the ``@config`` fields
(``vglab.core.config``) marked static or traced, one function returning (static tuple, traced tuple) — and not
adopted: the structures are 2–5 plain field names, and what a program is fed is rarely the field itself but a
number derived from it (σ_w/√n; log σ_b as −inf for σ_b = 0; log α only with a residual; log(σ_w/√n) split into
a float32 (hi, lo) pair so a scale entering a thousand layers is rounded once), different per model.  A generic
split would hand over the raw fields and leave each model its ``_scalars`` conversion all the same, while the
program's arguments would lose their names (a tuple instead of ``scalars.log_weight_scale``).  So the per-model
NamedTuples stay; the one piece they share, the float64 → (hi, lo) float32 split, is the candidate for a core
helper (the MLP's ``_split_float64`` and the RNN's inline copy in ``recurrent._scalars``).  Not measured: no
code was moved."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import warnings
from pathlib import Path

import jax

EXACT_MATMUL_PRECISION = "highest"  # lax.Precision.HIGHEST: float32 products computed in float32


def exact_precision():
    """A context in which JAX records every float32 product (``dot_general``) at full float32 precision,
    whether it is traced for ``jit`` or run op by op."""
    return jax.default_matmul_precision(EXACT_MATMUL_PRECISION)


def exact_jit(fun=None, **jit_options):
    """``jax.jit(fun, **jit_options)``, with ``fun`` traced under ``exact_precision()``.

    Every ``dot_general`` the trace records (``@``, ``jnp.einsum``, ``jnp.matmul``, inside ``lax.scan`` too)
    carries ``precision = HIGHEST``; the setting is read at trace time, so it holds whatever the caller's own
    default is.  Usable as ``@exact_jit``, ``@exact_jit(static_argnames=...)`` or
    ``@partial(exact_jit, static_argnames=...)``."""
    if fun is None:
        return functools.partial(exact_jit, **jit_options)

    @functools.wraps(fun)
    def traced_exactly(*args, **kwargs):
        with exact_precision():
            return fun(*args, **kwargs)

    return jax.jit(traced_exactly, **jit_options)

BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
CACHE_HIT_EVENT = "/jax/compilation_cache/cache_hits"


class CompileCounter:
    """Counts the programs this process had to make from the moment it is made: ``count`` every one (JAX's
    backend-compile event covers a compile and a load from the persistent compilation cache alike),
    ``loaded`` those the persistent cache supplied, ``compiled`` the rest.  Listeners cannot be removed: make
    few."""

    def __init__(self):
        self.count = 0
        self.loaded = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen_duration)
        jax.monitoring.register_event_listener(self._listen_event)

    @property
    def compiled(self) -> int:
        return self.count - self.loaded

    def _listen_duration(self, event, duration, **kwargs):
        if event == BACKEND_COMPILE_EVENT:
            self.count += 1

    def _listen_event(self, event, **kwargs):
        if event == CACHE_HIT_EVENT:
            self.loaded += 1


# --------------------------------------------------------------------------------------------- persistent cache
CACHE_ENV = "VGLAB_COMPILATION_CACHE"
_OFF = {"0", "off", "false", "no", "none"}
MIN_COMPILE_SECONDS = 0.0  # cache every program: a cold kernel's first plot runs dozens of small ones


def user_cache_dir(environ=os.environ, platform: str = sys.platform) -> Path:
    """Where vglab keeps compiled programs by default: the platform's per-user cache directory + vglab/jax
    (``$XDG_CACHE_HOME/vglab/jax``, else ``~/.cache/vglab/jax``; ``~/Library/Caches/vglab/jax`` on macOS;
    ``%LOCALAPPDATA%\\vglab\\Cache\\jax`` on Windows), the layout platformdirs uses."""
    home = Path(environ.get("HOME") or Path.home())
    if platform == "darwin":
        return home / "Library" / "Caches" / "vglab" / "jax"
    if platform.startswith("win"):
        local = environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(local) / "vglab" / "Cache" / "jax"
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache"
    return base / "vglab" / "jax"


def compilation_cache_dir(environ=os.environ) -> Path | None:
    """The directory ``VGLAB_COMPILATION_CACHE`` names (``~`` expanded), the user's cache directory when it is
    unset or empty, or None when it says off (0, off, false, no, none)."""
    value = environ.get(CACHE_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    return Path(os.path.expanduser(value)) if value else user_cache_dir(environ)


def enable_compilation_cache(path: str | os.PathLike | None = None) -> str | None:
    """Turn on JAX's persistent compilation cache in ``path`` (default: ``compilation_cache_dir()``) and
    return the directory JAX now uses (None: no cache).

    A directory already given to JAX (``JAX_COMPILATION_CACHE_DIR``, ``jax.config.update``) wins and is
    returned unchanged.  A directory that cannot be created or written leaves the cache off with a warning:
    the lab works without it, only its first plots are slower.
    """
    make_cache_writes_atomic()  # also for a cache the user turned on in JAX itself
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    target = compilation_cache_dir() if path is None else Path(path)
    if target is None:
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
        if not os.access(target, os.W_OK | os.X_OK):
            raise PermissionError(f"not writable: {target}")
    except OSError as error:
        warnings.warn(f"vglab: no persistent compilation cache ({error}); set {CACHE_ENV} to a writable "
                      f"directory, or to off", RuntimeWarning, stacklevel=2)
        return None
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_dir", str(target))
    return str(target)


def _atomic_put(original):
    """``LRUCache.put`` writing the entry through a temporary file and ``os.replace`` (see the module
    docstring); a cache with eviction (JAX holds a file lock then) or on a non-local filesystem keeps JAX's
    own ``put``."""

    @functools.wraps(original)
    def put(self, key: str, value: bytes) -> None:
        where = str(self.path)
        if getattr(self, "eviction_enabled", True) or ("://" in where and not where.startswith("file://")):
            return original(self, key, value)
        if not key:
            raise ValueError("key cannot be empty")
        folder = Path(where.removeprefix("file://"))
        target = folder / f"{key}{_cache_suffix()}"
        if target.exists():
            return
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{key[:64]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(value)
            try:
                os.replace(temporary, target)
            except PermissionError:  # Windows: a reader holds the entry another writer just made
                if not target.exists():
                    raise
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    put.vglab_atomic = True
    return put


def _cache_suffix() -> str:
    from jax._src import lru_cache

    return lru_cache._CACHE_SUFFIX


def make_cache_writes_atomic() -> bool:
    """Make JAX's file cache write each entry atomically (True), or leave it (False: this JAX has no
    ``LRUCache.put`` of the known shape, and its own writes stand)."""
    try:
        from jax._src import lru_cache
    except ImportError:
        return False
    cls = getattr(lru_cache, "LRUCache", None)
    original = getattr(cls, "put", None)
    if original is None or not isinstance(getattr(lru_cache, "_CACHE_SUFFIX", None), str):
        return False
    if not getattr(original, "vglab_atomic", False):
        cls.put = _atomic_put(original)
    return True


enable_compilation_cache()
