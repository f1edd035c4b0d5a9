"""JAX's persistent compilation cache, on by default: where it lives, how the environment moves or disables it,
and that a second process loads what the first compiled (each process run fresh, as a kernel starts)."""

import json
import os
import subprocess
import sys
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
