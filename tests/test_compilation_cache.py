"""JAX's persistent compilation cache, on by default: where it lives, how the environment moves or disables it,
and that a second process loads what the first compiled (each process run fresh, as a kernel starts)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vglab.core.compilation import compilation_cache_dir, user_cache_dir

PROBE = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import vglab
import jax
from vglab.core.compilation import CompileCounter
counter = CompileCounter()
if {compute}:
    vglab.gradient_norms(vglab.MLP(depth=5, width=8, activation="sigmoid", residual=True), n_seeds=2)
print(json.dumps({{"dir": jax.config.jax_compilation_cache_dir,
                   "min_seconds": jax.config.jax_persistent_cache_min_compile_time_secs,
                   "compiled": counter.compiled, "loaded": counter.loaded,
                   "warnings": [str(w.message) for w in caught]}}))
"""


def probe(tmp_path: Path, compute: bool = False, **env) -> dict:
    """Run a fresh Python that imports vglab with HOME=tmp_path and only the given cache variables set."""
    environ = {k: v for k, v in os.environ.items()
               if k not in {"VGLAB_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR", "XDG_CACHE_HOME"}}
    environ.update(HOME=str(tmp_path), **env)
    done = subprocess.run([sys.executable, "-c", PROBE.format(compute=compute)], env=environ, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------- the rule
def test_the_default_is_the_users_cache_directory():
    assert user_cache_dir({"HOME": "/home/ann"}, "linux") == Path("/home/ann/.cache/vglab/jax")
    assert user_cache_dir({"HOME": "/home/ann", "XDG_CACHE_HOME": "/fast/cache"}, "linux") == Path(
        "/fast/cache/vglab/jax")
    # the XDG spec: a relative XDG_CACHE_HOME is invalid and ignored
    assert user_cache_dir({"HOME": "/home/ann", "XDG_CACHE_HOME": "rel"}, "linux") == Path(
        "/home/ann/.cache/vglab/jax")
    assert user_cache_dir({"HOME": "/Users/ann"}, "darwin") == Path("/Users/ann/Library/Caches/vglab/jax")
    assert user_cache_dir({"HOME": "C:/Users/ann", "LOCALAPPDATA": "C:/Users/ann/AppData/Local"},
                          "win32") == Path("C:/Users/ann/AppData/Local/vglab/Cache/jax")


@pytest.mark.parametrize("value", ["0", "off", "OFF", "false", "no", "none", " off "])
def test_the_environment_variable_turns_it_off(value):
    assert compilation_cache_dir({"HOME": "/home/ann", "VGLAB_COMPILATION_CACHE": value}) is None


def test_the_environment_variable_names_a_shared_directory():
    environ = {"HOME": "/home/ann", "VGLAB_COMPILATION_CACHE": "/srv/vglab-cache"}
    assert compilation_cache_dir(environ) == Path("/srv/vglab-cache")
    environ["VGLAB_COMPILATION_CACHE"] = ""  # set but empty: the default
    assert compilation_cache_dir(environ) == Path("/home/ann/.cache/vglab/jax")


# ----------------------------------------------------------------------------------------- a real import
def test_importing_vglab_turns_the_cache_on_in_the_users_cache_directory(tmp_path):
    seen = probe(tmp_path)
    assert seen["dir"] == str(tmp_path / ".cache" / "vglab" / "jax")
    assert (tmp_path / ".cache" / "vglab" / "jax").is_dir()
    assert seen["min_seconds"] == 0.0  # every program is kept, small ones too
    assert seen["warnings"] == []


def test_the_environment_variable_moves_it_and_turns_it_off(tmp_path):
    shared = tmp_path / "shared" / "cache"
    assert probe(tmp_path, VGLAB_COMPILATION_CACHE=str(shared))["dir"] == str(shared)
    assert shared.is_dir()
    assert probe(tmp_path, VGLAB_COMPILATION_CACHE="off")["dir"] is None


def test_a_directory_given_to_jax_itself_is_left_alone(tmp_path):
    mine = tmp_path / "jax-own"
    seen = probe(tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine), VGLAB_COMPILATION_CACHE=str(tmp_path / "no"))
    assert seen["dir"] == str(mine)
    assert not (tmp_path / "no").exists()


def test_a_directory_that_cannot_be_made_warns_and_leaves_the_cache_off(tmp_path):
    (tmp_path / "a-file").write_text("")
    seen = probe(tmp_path, VGLAB_COMPILATION_CACHE=str(tmp_path / "a-file" / "cache"))
    assert seen["dir"] is None
    assert any("no persistent compilation cache" in w and "VGLAB_COMPILATION_CACHE" in w for w in seen["warnings"])


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "cache"
    first = probe(tmp_path, compute=True, VGLAB_COMPILATION_CACHE=str(cache))
    assert first["compiled"] >= 1 and first["loaded"] == 0
    entries = sorted(path.name for path in cache.iterdir())
    assert any(name.startswith("jit__gradient_norms_program-") for name in entries), entries
    second = probe(tmp_path, compute=True, VGLAB_COMPILATION_CACHE=str(cache))
    assert second["loaded"] == first["compiled"] and second["compiled"] == 0
    off = probe(tmp_path, compute=True, VGLAB_COMPILATION_CACHE="off")  # the control: off compiles again
    assert off["compiled"] == first["compiled"] and off["loaded"] == 0


# ----------------------------------------------------------------------------------------- shared by processes
RAW_WORKER = """
import hashlib, json, sys, time
mode, folder, go = sys.argv[1], sys.argv[2], float(sys.argv[3])
if mode == "vglab":
    import vglab.core.compilation  # makes the cache's writes atomic
from jax._src import lru_cache
cache = lru_cache.LRUCache(folder, max_size=-1)  # what JAX builds for a cache without a size limit
def value(key):
    return hashlib.sha256(key.encode()).digest() * (1 << 17)  # 4 MiB, different for every key
while time.time() < go:
    time.sleep(0.001)
torn = reads = writes = 0
for i in range(40):
    key = f"entry{i}"
    for attempt in range(3):
        got = cache.get(key)
        if got is None:
            cache.put(key, value(key)); writes += 1
        else:
            reads += 1; torn += got != value(key)
print(json.dumps({"torn": torn, "reads": reads, "writes": writes}))
"""


def run_together(scripts: list[list[str]], env: dict, start_in: float = 8.0) -> list[dict]:
    """Start every ``python -c`` argument list at once (each waits for the same wall-clock instant after
    its imports), wait for all, and return the JSON each printed last; every one must exit 0."""
    go = time.time() + start_in
    procs = [subprocess.Popen([sys.executable, "-c", args[0], *args[1:], str(go)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in scripts]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_three_processes_never_read_a_half_written_entry(tmp_path):
    """Three processes read and write the same 40 entries (4 MiB each) of one cache directory at once: with
    vglab's writes no read returns anything but the whole entry.  The control, JAX's own in-place write,
    hands out torn entries under the same load (seen: 59–77 of ~150 reads per process), so this test can
    tell the two apart."""
    env = {**os.environ, "VGLAB_COMPILATION_CACHE": "off"}
    ours = run_together([[RAW_WORKER, "vglab", str(tmp_path / "vglab")] for _ in range(3)], env)
    theirs = run_together([[RAW_WORKER, "jax", str(tmp_path / "jax")] for _ in range(3)], env)
    assert sum(r["reads"] for r in ours) > 0 and sum(r["writes"] for r in ours) >= 40
    assert [r["torn"] for r in ours] == [0, 0, 0], ours
    assert sum(r["torn"] for r in theirs) > 0, theirs  # the hazard is real in this JAX
    entries = sorted(p.name for p in (tmp_path / "vglab").iterdir())
    assert entries == sorted(f"entry{i}-cache" for i in range(40))  # no temporary file left behind


COMPILE_WORKER = """
import json, sys, time, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import vglab
    from vglab.core.compilation import CompileCounter
    counter = CompileCounter()
    activations, go = sys.argv[1].split(","), float(sys.argv[2])
    while time.time() < go:
        time.sleep(0.002)
    out = {}
    for name in activations:
        g = vglab.gradient_norms(vglab.MLP(depth=6, width=8, activation=name), n_seeds=2)
        out[name] = np.asarray(g.log10_activation_grad, dtype=float).ravel().tolist()
print(json.dumps({"out": out, "compiled": counter.compiled, "loaded": counter.loaded,
                  "warnings": [str(w.message) for w in caught]}))
"""
SHARED_PLAN = ["tanh,relu", "tanh,sigmoid", "tanh,gelu"]  # one program all three compile, one each alone


def test_three_kernels_compiling_into_one_cache_finish_and_agree(tmp_path):
    """Three processes compile the same program (tanh) and one program each into one cache directory at
    the same moment: all finish, none warns (a torn entry would make JAX warn and recompile), each number
    equals the uncached computation of this test process, and a later process loads all four programs."""
    import numpy as np

    import vglab

    reference = {name: np.asarray(vglab.gradient_norms(vglab.MLP(depth=6, width=8, activation=name),
                                                       n_seeds=2).log10_activation_grad, dtype=float).ravel()
                 for name in ["tanh", "relu", "sigmoid", "gelu"]}
    env = {**{k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"},
           "VGLAB_COMPILATION_CACHE": str(tmp_path / "cache")}
    together = run_together([[COMPILE_WORKER, plan] for plan in SHARED_PLAN], env)
    for seen in together:
        assert seen["warnings"] == []
        assert seen["compiled"] + seen["loaded"] >= 2
        for name, values in seen["out"].items():
            np.testing.assert_allclose(values, reference[name], rtol=0, atol=1e-6)
    assert not [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith("-cache")]
    later = run_together([[COMPILE_WORKER, "tanh,relu,sigmoid,gelu"]], env, start_in=0)[0]
    assert later["warnings"] == [] and later["compiled"] == 0 and later["loaded"] >= 4
    for name, values in later["out"].items():
        np.testing.assert_allclose(values, reference[name], rtol=0, atol=1e-6)
