"""The peers vglab is compared with.  Each module (or class) offers NAME, LABEL, version() and, per
workload it implements, ``prepare_<workload>(problem)`` (untimed: arrays into the peer's own type and
layout) and ``<workload>(prepared)`` (timed: returns NumPy arrays named and shaped like vglab's result).
"""

from __future__ import annotations

import importlib


def available_peers() -> tuple[list, dict]:
    """(peers that import, {name: reason} for those that do not, e.g. torch not installed)."""
    peers, missing = [], {}
    from benchmarks.peers import numpy_backprop

    peers.append(numpy_backprop)
    try:
        torch_eager = importlib.import_module("benchmarks.peers.torch_eager")
    except ImportError as error:  # torch is a benchmark-only dependency (benchmarks/requirements.txt)
        missing["torch"] = f"not installed ({error}); pip install -r benchmarks/requirements.txt"
    else:
        peers += [torch_eager, torch_eager.Autograd]
    from benchmarks.peers import jax_eager

    peers.append(jax_eager)
    return peers, missing


def available_conv_peers() -> tuple[list, dict]:
    """The peers of the ConvNet workloads (``conv_backprop``'s NumPy and JAX-eager, PyTorch eager's autograd
    with ``F.conv1d``), and {name: reason} for those that do not import."""
    from benchmarks.peers.conv_backprop import JaxEager, NumPy

    peers, missing = [NumPy], {}
    try:
        torch_conv = importlib.import_module("benchmarks.peers.torch_conv")
    except ImportError as error:
        missing["torch"] = f"not installed ({error}); pip install -r benchmarks/requirements.txt"
    else:
        peers.append(torch_conv)
    return peers + [JaxEager], missing
