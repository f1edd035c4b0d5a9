import gc
import os
import shutil
import tempfile

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# One persistent JAX compilation cache for the whole test session, empty at its start: the pytest workers and
# every kernel the tests start (nbval, the site's, nbgrader's, JupyterLab's) share it, as a class on one
# JupyterHub shares one, so a program one of them compiled is loaded by the next instead of compiled again
# (lesson 02 under nbval: 30.5 s with the cache off, 16.3 s with a warm one).  Empty at the start, so no test
# depends on programs an earlier run left in ~/.cache/vglab/jax.  A compile-counting test counts a program
# loaded from the cache as a compile (vglab.core.compilation.CompileCounter), so sharing hides no recompile.
# Concurrent writers are safe (vglab writes entries atomically: tests/test_compilation_cache.py runs three
# processes against one directory).  The conftest of the first process (the xdist controller) creates it; the
# workers and kernels inherit the variable.  VGLAB_COMPILATION_CACHE set by the caller (e.g. off) wins.
if "VGLAB_COMPILATION_CACHE" not in os.environ:
    os.environ["VGLAB_COMPILATION_CACHE"] = SESSION_CACHE = tempfile.mkdtemp(prefix="vglab-test-jax-")
else:
    SESSION_CACHE = None


def pytest_unconfigure(config):
    """The process that made the session's cache removes it (the workers leave it to the controller)."""
    if SESSION_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(SESSION_CACHE, ignore_errors=True)


# The longest test files, longest first (from the CI log's --durations), so that `make test -n 2 --dist loadfile`
# does not end on one worker still busy with a long file while the other idles.
LONGEST_FILES = ("test_browser_dashboards.py", "test_site.py", "test_coursework.py", "test_hub.py", "test_cheats.py",
                 "test_notebooks.py", "test_plot_legibility.py", "test_claims_12_convolutional_resnets.py",
                 "test_gradients.py", "test_colab.py", "test_compilation_cache.py")


def pytest_collection_modifyitems(config, items):
    """Run the longest files first (the browser suite first of all); the stable sort keeps every other order.

    Playwright's sync API keeps its event loop installed as the running loop of the main thread for as long as
    the browser lives, and ``asyncio.run`` cannot be called under it: the browser fixtures are module-scoped
    (tests/browser/conftest.py), so the loop is gone before the next file runs in the same process."""
    def rank(item):
        name = item.path.name
        return LONGEST_FILES.index(name) if name in LONGEST_FILES else len(LONGEST_FILES)

    items.sort(key=rank)


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Free every compiled XLA program after each test module.

    Each XLA:CPU executable keeps ~9 memory mappings (code and data sections) for as long as jax caches it, and
    Linux allows a process 65,530 (``vm.max_map_count``).  The whole suite compiles several thousand programs in
    one process: at ~78 % of it the mappings ran out and the next compile segfaulted inside XLA (seen twice in CI;
    40,304 mappings counted at 55 %).  ``jax.clear_caches()`` drops them (300 compiles: 3,139 mappings, 534 after).
    vglab's own caches hold jitted functions, not executables, so they recompile on next use."""
    yield
    import jax

    jax.clear_caches()
    gc.collect()


def _memory_mappings():
    try:
        with open(f"/proc/{os.getpid()}/maps") as maps:
            return sum(1 for _ in maps)
    except OSError:  # not Linux
        return 0


@pytest.fixture(autouse=True)
def _release_compiled_programs_within_a_long_module():
    """The same inside one module, once it holds more than 30,000 mappings (about half the limit)."""
    yield
    if _memory_mappings() > 30_000:
        import jax

        jax.clear_caches()
        gc.collect()
