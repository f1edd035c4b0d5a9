import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
# No persistent JAX compilation cache for the test session and the kernels it starts, so that no test depends
# on programs an earlier run left in ~/.cache/vglab/jax.  (A clean-clone CI run once segfaulted inside
# compilation_cache.put_executable_and_time; its native step, executable.serialize(), touches no file, and a later
# run crashed at the same place with the cache off.  Sharing one directory between processes is tested in
# tests/test_compilation_cache.py, which sets the variable itself in each process it starts.)
os.environ.setdefault("VGLAB_COMPILATION_CACHE", "off")


def pytest_collection_modifyitems(config, items):
    """Run the browser suite last.

    Playwright's sync API keeps its event loop installed as the running loop of the main thread for as
    long as the browser lives (a session fixture); any later test calling ``asyncio.run`` would fail with
    "cannot be called from a running event loop".  The stable sort keeps every other order unchanged.
    """
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
