"""``make lab`` from a clean clone: it installs the package with its [lab] extra, starts JupyterLab (as root
too: CI and Docker run as root, where JupyterLab refuses to start without --allow-root), says which URL to open
when no browser can start, and serves the notebooks.

The clone gets a fresh virtual environment that sees this interpreter's site-packages through a .pth file, so
``make lab``'s own ``pip install -e ".[lab]"`` really runs (and installs the clone's vglab into it) without
downloading JAX and JupyterLab again.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.lab


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _venv_seeing_this_one(venv: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "_parent_environment.pth").write_text("\n".join(sorted(here)) + "\n")
    return python


def test_make_lab_starts_jupyterlab_from_a_clean_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    python = _venv_seeing_this_one(clone / ".venv")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "BROWSER"}}
    env["JUPYTER_RUNTIME_DIR"] = str(tmp_path / "runtime")
    log = tmp_path / "make-lab.log"
    with open(log, "w") as out:
        make = subprocess.Popen(
            ["make", "lab", f"PORT={port}",
             "LAB_ARGS=--ip=127.0.0.1"],
            cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # The URL to open is the one JupyterLab prints (with the token it generated); use exactly that.
        printed = rf"http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)"
        deadline = time.monotonic() + 300  # pip install -e ".[lab]" (its build backend may come from PyPI)
        while not (found := re.search(printed, log.read_text())) or not _answers(
                f"http://127.0.0.1:{port}/api/status?token={found.group(1)}"):
            assert make.poll() is None, f"make lab exited with {make.returncode}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no URL or no answer on port {port}:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        token = found.group(1)
        assert _answers(found.group(0))  # the printed URL opens JupyterLab
        # the notebooks folder is what it serves
        assert _answers(f"http://127.0.0.1:{port}/api/contents/00_start_here.ipynb?token={token}&content=0")
        assert "make lab: no display here, so no browser opens" in log.read_text()
        # make lab installed the clone's vglab (editable) into the clone's environment
        where = subprocess.run([str(python), "-c", "import vglab; print(vglab.__file__)"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)
        assert where.stdout.strip().startswith(str(clone)), where.stdout + where.stderr
        assert (clone / ".venv" / ".lab-installed").exists()
    finally:
        with_group = make.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
            make.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(with_group, signal.SIGKILL)
            make.wait(timeout=20)
