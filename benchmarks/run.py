#!/usr/bin/env python
"""One command that measures vglab against its peers and this machine's floor: ``make bench``
(= ``python benchmarks/run.py``; ``--quick`` for a subset, ``--no-readme`` to only print).

Method (a shared, noisy 2-core machine):
- every implementation of a workload is first run once and its output checked against vglab's
  (``benchmarks.problems.check_agreement``); only agreeing peers are timed;
- repetitions are interleaved (vglab, peer 1, peer 2, ..., vglab, ...), so a burst of load from elsewhere hits
  all of them alike; we report medians and ratios (peer time / vglab time);
- the floor is measured in the same run: float32 matmul rate (NumPy and jit'ed JAX, the larger is used) and
  memory read bandwidth (the larger of a NumPy matrix–vector product and a jit'ed JAX sum over 256 MiB);
  a workload's floor time is max(FLOP / rate, bytes / bandwidth) and vglab's fraction is floor / vglab.

Results are printed and written between the markers of ``benchmarks/README.md`` (a table, the goals, the
machine, the date and the command), with ``benchmarks/results.png`` and ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import vglab  # noqa: E402
from benchmarks import problems  # noqa: E402
from benchmarks.peers import available_conv_peers, available_peers  # noqa: E402
from vglab.core.compilation import CompileCounter, exact_jit  # noqa: E402
from vglab.models import jacobians, recurrent, transformer  # noqa: E402

MiB = 2**20
PEER_BYTES_LIMIT = 320 * MiB  # peers each hold their own copy of the weights: keep the shared machine alive
VGLAB_BYTES_LIMIT = 1100 * MiB
SLOW_CALL_S = 30.0  # a call slower than this is timed once (its checked run), not repeated


# --------------------------------------------------------------------------------------------- timing
def interleaved(fns: dict, budget_s: float, min_reps: int = 3, max_reps: int = 15, first: dict | None = None):
    """{name: [seconds, ...]}: round-robin repetitions of already-warm callables.

    The number of rounds fits ``budget_s`` given the first (check) call's time, within [min_reps, max_reps];
    callables whose first call took over SLOW_CALL_S keep that single measurement."""
    first = first or {}
    times = {name: [] for name in fns}
    repeat = {name: fn for name, fn in fns.items() if first.get(name, 0.0) <= SLOW_CALL_S}
    for name in fns:
        if name not in repeat:
            times[name].append(first[name])
    per_round = sum(first.get(name, 0.01) for name in repeat) or 0.01
    rounds = int(min(max_reps, max(min_reps, budget_s // per_round)))
    for _ in range(rounds if repeat else 0):
        for name, fn in repeat.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def median_ms(values) -> float:
    return 1e3 * statistics.median(values)


# --------------------------------------------------------------------------------------------- floor
def measure_floor(budget_s: float) -> dict:
    """float32 matmul rate (NumPy on the CPU, jit'ed JAX on JAX's device, full float32 as vglab computes) and
    memory read bandwidth, interleaved.  On an accelerator JAX's sizes grow (8192³ product, 2 GiB read) so
    that one call is long against its launch."""
    on_cpu = jax.default_backend() == "cpu"
    n, jn = 1024, 1024 if on_cpu else 8192
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    ja, jb = (jnp.asarray(a), jnp.asarray(b)) if on_cpu else jax.random.normal(jax.random.key(0), (2, jn, jn))
    jmm = exact_jit(jnp.matmul)
    big = rng.standard_normal((16384, 4096), np.float32)  # 256 MiB
    x = rng.standard_normal(4096).astype(np.float32)
    jbig = jnp.asarray(big) if on_cpu else jax.random.normal(jax.random.key(1), (131072, 4096))  # 2 GiB
    jsum = jax.jit(jnp.sum)
    fns = {
        "numpy_matmul": lambda: a @ b,
        "jax_matmul": lambda: jmm(ja, jb).block_until_ready(),
        "numpy_gemv": lambda: big @ x,
        "jax_sum": lambda: jsum(jbig).block_until_ready(),
    }
    for fn in fns.values():
        fn()
    times = interleaved(fns, budget_s, min_reps=5, max_reps=30, first={k: 0.05 for k in fns})
    work = {"numpy_matmul": 2.0 * n**3, "jax_matmul": 2.0 * jn**3, "numpy_gemv": float(big.nbytes),
            "jax_sum": float(jbig.nbytes)}
    rate = {"numpy_matmul": "numpy_matmul_gflops", "jax_matmul": "jax_matmul_gflops",
            "numpy_gemv": "numpy_gemv_gbs", "jax_sum": "jax_sum_gbs"}
    floor = {rate[k]: work[k] / statistics.median(times[k]) / 1e9 for k in fns}
    floor["best_of_runs"] = {rate[k]: work[k] / min(times[k]) / 1e9 for k in fns}
    floor["sizes"] = {"numpy_matmul": n, "jax_matmul": jn, "numpy_read_mib": big.nbytes // MiB,
                      "jax_read_mib": jbig.nbytes // MiB}
    floor["matmul_gflops"] = max(floor["numpy_matmul_gflops"], floor["jax_matmul_gflops"])
    floor["bandwidth_gbs"] = max(floor["numpy_gemv_gbs"], floor["jax_sum_gbs"])
    return floor


def combine_floors(samples: list[dict]) -> dict:
    """The floor measured at the start and at the end of the run: the larger of the two medians of each rate
    (a burst of load from elsewhere lowers a rate, never raises it, so the larger is the machine's)."""
    out = {k: max(s[k] for s in samples) for k in samples[0] if k not in ("best_of_runs", "sizes")}
    out["sizes"] = samples[0]["sizes"]
    out["best_of_runs"] = {k: max(s["best_of_runs"][k] for s in samples) for k in samples[0]["best_of_runs"]}
    out["samples"] = len(samples)
    return out


def refloor(rows: list[dict], floor: dict) -> None:
    """Recompute every row's floor time, bound and vglab's fraction of it with the combined floor."""
    for row in rows:
        row["floor_ms"], row["bound"] = floor_ms(floor, row["flops"], row["bytes"])
        row["fraction_of_floor"] = row["floor_ms"] / row["ms"]["vglab"]


def floor_ms(floor: dict, flops: float, nbytes: float) -> tuple[float, str]:
    compute = flops / (floor["matmul_gflops"] * 1e9)
    memory = nbytes / (floor["bandwidth_gbs"] * 1e9)
    return 1e3 * max(compute, memory), ("memory" if memory >= compute else "compute")


BARE_CHAIN = "bare_chain"  # the name a row's ``bounds_ms`` gives the time of ``_matvec_chain``


@exact_jit
def _matvec_chain(weights, u):
    """tanh(W_l u) forward then tanh(u W_l) back through every layer: the matrix–vector products of one-seed
    gradient norms, nothing else."""
    depth = weights.shape[0]
    u = jax.lax.fori_loop(0, depth, lambda l, u: jnp.tanh(weights[l] @ u), u)
    return jax.lax.fori_loop(0, depth, lambda i, u: jnp.tanh(u @ weights[depth - 1 - i]), u)


QR_REPEATS = 10


@exact_jit
def _qr_chain(a):
    """``QR_REPEATS`` dependent QR factorisations with Q formed, as ``vglab.jacobian_spectrum`` takes them."""
    return jax.lax.fori_loop(0, QR_REPEATS, lambda i, m: jnp.linalg.qr(m)[0] + 1e-3 * a, a)


def spectrum_ceiling(qr_gflops: float, matmul_gflops: float) -> float:
    """Largest share of the matmul rate the exact spectrum can reach: of its 34/3 n³ per layer, 16/3 n³ are two
    QR factorisations with Q formed (4/3 n³ + 4/3 n³ each) at ``qr_gflops``, the other 6 n³ at best at the
    matmul rate."""
    return (34 / 3) / ((16 / 3) / qr_gflops + 6 / matmul_gflops) / matmul_gflops


def measure_ceilings(floor: dict, budget_s: float) -> dict:
    """The rate of the n×n QR factorisations (Q formed; n = 256, 512; the faster of single-threaded and threaded
    LAPACK on the CPU) that take 16/3 of the spectrum's 34/3 n³ per layer (``qr_gflops``), and the share of the
    matmul rate that caps the spectrum at (``spectrum_fraction``, see ``spectrum_ceiling``)."""
    rng = np.random.default_rng(0)
    mats = {n: jnp.asarray(rng.standard_normal((n, n), np.float32)) for n in (256, 512)}
    fns = {f"qr{n}": (lambda m=m: _qr_chain(m).block_until_ready()) for n, m in mats.items()}
    times = {}
    for context in (jacobians.single_threaded_lapack, contextlib.nullcontext):
        with context():
            for fn in fns.values():
                fn()  # compiled, and LAPACK's threads set up
            first = {k: timed(fn)[1] for k, fn in fns.items()}
            for k, v in interleaved(fns, budget_s / 2, min_reps=3, max_reps=15, first=first).items():
                times[k] = min(times.get(k, math.inf), statistics.median(v))
    qr = {n: QR_REPEATS * 8 / 3 * n**3 / times[f"qr{n}"] / 1e9 for n in mats}
    return {"qr_gflops": qr, "spectrum_fraction": {n: spectrum_ceiling(q, floor["matmul_gflops"])
                                                   for n, q in qr.items()}}


# --------------------------------------------------------------------------------------------- workloads
class Bench:
    def __init__(self, floor, peers, missing, budget_s):
        self.floor, self.peers, self.missing, self.budget_s = floor, peers, missing, budget_s
        self.rows: list[dict] = []

    def run(self, workload: str, config: str, vglab_fn, flops, nbytes, peer_calls: dict, reference_key=None,
            note: str = "", bounds: dict | None = None):
        """Check every peer against vglab's output, then time all of them interleaved; append a row.

        ``bounds``: {name: callable} timed in the same rounds but kept apart (``row["bounds_ms"]``): programs
        that do part of vglab's work, whose time bounds vglab's from below under the same conditions."""
        reference, t_first = timed(vglab_fn)  # compiles (if needed) and checks
        reference, t_first = timed(vglab_fn)
        fns, first, notes = {"vglab": vglab_fn}, {"vglab": t_first}, {}
        for name, fn in (bounds or {}).items():
            fn()
            fns[name], first[name] = fn, timed(fn)[1]
        for name, (prepared_fn, result_fn) in peer_calls.items():
            try:
                prepared = prepared_fn()
                result, t_peer = timed(lambda prepared=prepared, result_fn=result_fn: result_fn(prepared))
                diffs = problems.check_agreement(reference, result, name)
            except AssertionError as error:
                notes[name] = f"disagrees: {error}"
                continue
            fns[name] = lambda prepared=prepared, result_fn=result_fn: result_fn(prepared)
            first[name] = t_peer
            notes[name] = f"max |Δlog10| {max(diffs.values()):.1e}"
        times = interleaved(fns, self.budget_s, first=first)
        bounds_ms = {k: median_ms(times.pop(k)) for k in (bounds or {})}
        f_ms, kind = floor_ms(self.floor, flops, nbytes)
        row = {"workload": workload, "config": config, "flops": flops, "bytes": nbytes, "floor_ms": f_ms,
               "bound": kind, "ms": {k: median_ms(v) for k, v in times.items()},
               "reps": {k: len(v) for k, v in times.items()}, "notes": notes, "note": note}
        if bounds_ms:
            row["bounds_ms"] = bounds_ms
        row["fraction_of_floor"] = f_ms / row["ms"]["vglab"]
        row["gflops"] = flops / (row["ms"]["vglab"] * 1e6)
        row["gbs"] = nbytes / (row["ms"]["vglab"] * 1e6)
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row


def peer_calls(peers, prepare: str, call: str, problem, skip: tuple = ()):
    calls = {}
    for peer in peers:
        if peer.NAME in skip or not hasattr(peer, call):
            continue
        calls[peer.NAME] = (lambda peer=peer: getattr(peer, prepare)(problem), getattr(peer, call))
    return calls


def gradient_norm_configs(quick: bool):
    if quick:
        return [(200, 256, 1), (50, 64, 8), (1000, 64, 1), (10, 512, 1)]
    return [(d, w, s) for w in (64, 256, 512) for d in (10, 50, 200, 1000) for s in (1, 8)]


def bench_gradient_norms(bench: Bench, quick: bool):
    for depth, width, seeds in gradient_norm_configs(quick):
        weight_bytes = 4 * depth * width * width * seeds
        config = f"depth {depth}, width {width}, {seeds} seed{'s' if seeds > 1 else ''}"
        if weight_bytes > VGLAB_BYTES_LIMIT:
            print(f"skip gradient norms {config}: {weight_bytes / MiB:.0f} MiB of weights", flush=True)
            continue
        net = vglab.MLP(depth, width)
        calls = {}
        if weight_bytes <= PEER_BYTES_LIMIT:
            problem = problems.mlp_problem(net, seeds)
            calls = peer_calls(bench.peers, "prepare_mlp", "mlp_gradient_norms", problem)
        flops, nbytes = problems.gradient_norms_work(depth, width, seeds)
        note = "" if calls else "peers skipped (weights above the peers' memory limit)"
        bounds = None
        if seeds == 1:  # the bare matrix–vector products of the same depth and width
            chain_weights, u = jnp.full((depth, width, width), 1.0 / width, jnp.float32), jnp.ones(width, jnp.float32)
            bounds = {BARE_CHAIN: lambda w=chain_weights, u=u: _matvec_chain(w, u).block_until_ready()}
        bench.run("gradient norms", config, lambda net=net, s=seeds: vglab.gradient_norms(net, n_seeds=s),
                  flops, nbytes, calls, note=note, bounds=bounds)
        calls = problem = bounds = chain_weights = None
        jacobians.clear_weight_cache()
        gc.collect()


def bench_spectra(bench: Bench, quick: bool):
    configs = [(50, 256)] if quick else [(50, 256), (50, 512), (200, 256), (200, 512)]
    per_layer: dict = {}  # (peer, width) → seconds per layer at depth 50, to skip hopeless runs
    for depth, width in configs:
        net = vglab.MLP(depth, width)
        problem = problems.mlp_problem(net, 1)
        calls = peer_calls(bench.peers, "prepare_mlp", "mlp_spectrum", problem, skip=("torch_autograd",))
        note = ""
        for name in list(calls):
            predicted = per_layer.get((name, width), 0.0) * depth
            if predicted > 4 * SLOW_CALL_S:
                del calls[name]
                note += f"{name} skipped (predicted {predicted:.0f} s from depth 50); "
        flops, nbytes = problems.spectrum_work(depth, width)
        row = bench.run("Jacobian spectrum", f"depth {depth}, width {width}",
                        lambda net=net: vglab.jacobian_spectrum(net), flops, nbytes, calls, note=note)
        row["naive_product_gflops"] = problems.naive_spectrum_flops(depth, width) / (row["ms"]["vglab"] * 1e6)
        for name, ms in row["ms"].items():
            per_layer.setdefault((name, width), ms / 1e3 / depth)
        jacobians.clear_weight_cache()
        gc.collect()


def bench_recurrent(bench: Bench, quick: bool):
    configs = [("vanilla", 256, 1), ("lstm", 128, 1)]
    if not quick:
        configs += [("vanilla", 256, 8), ("lstm", 128, 8)]
    for cell, hidden, seeds in configs:
        net = vglab.RNN(cell=cell, hidden=hidden, steps=1000)
        problem = problems.rnn_problem(net, seeds)
        calls = peer_calls(bench.peers, "prepare_rnn", "rnn_gradient_norms", problem, skip=("torch_autograd",))
        flops, nbytes = problems.rnn_work(net, seeds)
        bench.run(f"{'LSTM' if cell == 'lstm' else 'RNN'} gradients", f"1000 steps, hidden {hidden}, {seeds} seed"
                  + ("s" if seeds > 1 else ""), lambda net=net, s=seeds: vglab.gradient_norms(net, n_seeds=s),
                  flops, nbytes, calls)
        recurrent.clear_cache()


def transformer_work(net: vglab.Transformer, seeds: int) -> tuple[float, float]:
    """Forward per block: Q, K, V, O (4·2Td²), scores and mixing (2·2T²d), MLP (2·2·m·Td²); the per-block
    vjp costs about twice the forward.  Bytes: the block's weights, read forward and again backward."""
    T, d, m = net.seq_len, net.width, net.mlp_ratio
    forward = 8 * T * d * d + 4 * T * T * d + 4 * m * T * d * d
    return seeds * net.depth * 3.0 * forward, seeds * 2.0 * net.depth * net.floats_per_block * 4


def bench_transformer(bench: Bench, quick: bool):
    for seeds in (1,) if quick else (1, 4):
        net = vglab.Transformer(depth=96, width=128, heads=4)
        flops, nbytes = transformer_work(net, seeds)
        bench.run("transformer gradients", f"96 blocks, width 128, 4 heads, 8 tokens, pre-LN, {seeds} seed"
                  + ("s" if seeds > 1 else ""), lambda net=net, s=seeds: vglab.gradient_norms(net, n_seeds=s), flops,
                  nbytes, {}, note="no peer implemented")
        transformer.clear_cache()


def bench_training(bench: Bench, peers_available: bool):
    """Per-step time of ``vglab.train`` (full batch of digits, SGD), from the difference of two run lengths
    so the once-per-run setup cancels; PyTorch autograd's step records the same numbers and is checked against
    vglab's first step (``problems.first_training_step``) before it is timed."""
    from vglab import training

    net = vglab.MLP(depth=20, width=128, activation="relu", init="he")
    data = training.as_data("digits")
    n = len(data.y_train)
    short, long_ = 5, 25

    def run(steps):
        return vglab.train(net, "digits", steps=steps, batch_size=n, learning_rate=0.1, eval_every=steps)

    def vglab_step():
        a, ta = timed(lambda: run(short))
        b, tb = timed(lambda: run(long_))
        return b, (tb - ta) / (long_ - short)

    run(short)
    history, _ = vglab_step()
    reference = problems.first_training_step(history)
    features = data.x_train.shape[1]
    flops = 3 * 2.0 * n * (features * net.width + net.depth * net.width**2 + net.width * data.classes)
    nbytes = 4.0 * 3 * net.depth * (net.width**2 + net.width)  # read, gradient written, update read/write
    per_step = []
    peer_ms, notes = {}, {}
    torch_step = None
    if peers_available:
        from benchmarks.peers.torch_eager import Autograd

        params = training.initial_parameters(net, features, data.classes, seed=0)
        torch_step = Autograd.training_step(net, data, params, learning_rate=0.1)
        try:
            diffs = problems.check_agreement(reference, torch_step(), "torch")
            notes["torch_autograd"] = f"max |Δ| {max(diffs.values()):.1e}"
        except (AssertionError, FloatingPointError) as error:
            notes["torch_autograd"] = f"disagrees: {error}"
            torch_step = None
    torch_times = []
    for _ in range(5):
        per_step.append(vglab_step()[1])
        if torch_step is not None:
            torch_times.append(timed(torch_step)[1])
    ms = {"vglab": median_ms(per_step)}
    if torch_times:
        peer_ms["torch_autograd"] = median_ms(torch_times)
    f_ms, kind = floor_ms(bench.floor, flops, nbytes)
    row = {"workload": "training step", "config": f"MLP depth 20, width 128, ReLU+He, full batch of {n} digits, SGD",
           "flops": flops, "bytes": nbytes, "floor_ms": f_ms, "bound": kind, "ms": {**ms, **peer_ms},
           "reps": {"vglab": len(per_step), "torch_autograd": len(torch_times)}, "notes": notes,
           "note": "vglab: per step incl. recording (difference of 25- and 5-step runs)"}
    row["fraction_of_floor"] = f_ms / ms["vglab"]
    row["gflops"] = flops / (ms["vglab"] * 1e6)
    row["gbs"] = nbytes / (ms["vglab"] * 1e6)
    bench.rows.append(row)
    print(format_row(row), flush=True)


PREBUILT_STACK = "prebuilt_stack"  # the name a ConvNet row's ``bounds_ms`` gives its chain on a Stack built once
FRESH_STACK = "fresh_stack"  # ... and a first call for its (net, seed), parameters drawn and a Stack built


def bench_convnet(bench: Bench, peers, quick: bool):
    """Lesson 12's ConvNets (``convolutional.degradation_nets()``: 16 channels, kernel 5, 40 positions; plain 4
    and 24 layers, residual + pre-LayerNorm 24): exact gradient norms at initialisation (the public call, its
    parameter draw included) and one ``train_convnet`` step (batch 100 of MNIST-1D, Adam, lr 3e-3) from the
    lesson's seed 0, each checked against the ConvNet peers (``available_conv_peers``) before it is timed."""
    from vglab.models import convolutional

    sizes = convolutional.DEGRADATION
    nets = list(convolutional.degradation_nets().items())
    shape = lambda net: f"{net.channels} channels, kernel {net.kernel}, {net.length} positions"  # noqa: E731
    for label, net in nets[1:] if quick else nets:
        problem = problems.conv_problem(net)
        calls = peer_calls(peers, "prepare_conv", "conv_gradient_norms", problem)
        flops, nbytes = problems.conv_gradient_norms_work(net, 1)
        stack = net.as_stack(0)  # drawn once: what the public call costs beyond its compiled chain

        def fresh(net=net):  # the first call for a (net, seed): parameters drawn, Stack built
            convolutional._STACKS.clear()
            return vglab.gradient_norms(net)

        row = bench.run("ConvNet gradient norms", f"lesson 12, {label}, {shape(net)}",
                        lambda net=net: vglab.gradient_norms(net), flops, nbytes, calls,
                        bounds={PREBUILT_STACK: lambda stack=stack: stack.gradient_profile(seed=0),
                                FRESH_STACK: fresh})
        row["note"] = (f"vglab: the public call, {row['ms']['vglab']:.3g} ms, reuses the Stack ConvNet.as_stack "
                       f"keeps per (net, seed); the same chain on a Stack built once takes "
                       f"{row['bounds_ms'][PREBUILT_STACK]:.3g} ms; a first call (parameters drawn, Stack built) "
                       f"{row['bounds_ms'][FRESH_STACK]:.3g} ms")
    data = convolutional.cached_mnist1d(sizes["n_train"], sizes["n_test"])
    for label, net in nets[-1:] if quick else nets:
        problem = problems.conv_training_problem(net, data, batch_size=sizes["batch_size"],
                                                 learning_rate=sizes["learning_rate"], seed=0)
        calls = peer_calls(peers, "prepare_conv_training", "conv_training_step", problem)
        flops, nbytes = problems.conv_training_work(net, sizes["batch_size"], problem.classes)
        bench.run("ConvNet training step", f"lesson 12, {label}, batch {sizes['batch_size']} of MNIST-1D, Adam",
                  problems.vglab_conv_training_step(problem), flops, nbytes, calls,
                  note="vglab: one jit'ed step of train_convnet (convolutional._train_step); peers: the same step, "
                  "checked on loss, accuracy, log10 ‖∂loss/∂W_l‖ and every parameter after the update")
    gc.collect()


# --------------------------------------------------------------------------------------------- interactivity


def bench_interactivity(counter: CompileCounter) -> dict:
    out = {}
    # First call of a never-compiled option (GELU) at depth 200, width 256: compile + weight draw + run.
    net = vglab.MLP(200, 256, activation="gelu")
    before = counter.count
    _, first = timed(lambda: vglab.gradient_norms(net))
    _, second = timed(lambda: vglab.gradient_norms(net))
    out["first_call_s"], out["first_call_compiles"], out["warm_call_ms"] = first, counter.count - before, 1e3 * second
    # Depth changes after warm-up: depths within the 256-layer bucket, each a new value.
    depths = [37, 150, 199, 64, 256, 3, 120, 201, 90, 180, 17, 230]
    before, times = counter.count, []
    for depth in depths:
        times.append(timed(lambda d=depth: vglab.gradient_norms(net.replace(depth=d)))[1])
    out["depth_change_ms"] = median_ms(times)
    out["depth_change_max_ms"] = 1e3 * max(times)
    out["depth_change_compiles"] = counter.count - before
    out["depths"] = depths
    # One dashboard update (matplotlib Agg): compute + redraw, share of plotting.
    import matplotlib

    matplotlib.use("Agg")
    from vglab.lab.dashboards import GradientDashboard

    dash = GradientDashboard(depth=200, width=256, n_seeds=4, max_depth=256, controls=("depth",),
                             panels=("gradient", "weights"))
    compute, draw = [], []
    before = counter.count
    for depth in depths:
        dash.set(depth=depth)
        compute.append(dash.timings["compute"])
        draw.append(dash.timings["draw"])
    out["dashboard_compute_ms"], out["dashboard_draw_ms"] = median_ms(compute), median_ms(draw)
    out["dashboard_total_ms"] = median_ms([c + d for c, d in zip(compute, draw, strict=True)])
    out["dashboard_draw_share"] = out["dashboard_draw_ms"] / (out["dashboard_compute_ms"] + out["dashboard_draw_ms"])
    out["dashboard_compiles"] = counter.count - before
    out["dashboard"] = "GradientDashboard(depth=200, width=256, n_seeds=4, panels=('gradient', 'weights'))"
    # The live path renders frames itself (vglab.lab.plots.BlitFrames): depth steps that keep the axis limits
    # redraw only the curves over the saved background.
    frames, kinds = [], []
    for depth in range(190, 201):
        with dash.hold_updates():
            dash.controls["depth"].value = depth
        dash.draw(dash.compute(dash.state))
        start = time.perf_counter()
        kinds.append(dash._frames.render())
        frames.append(time.perf_counter() - start)
    out["dashboard_blit_ms"] = median_ms([t for t, k in zip(frames, kinds, strict=True) if k == "blit"] or [math.nan])
    out["dashboard_blits"] = f"{kinds.count('blit')} of {len(kinds)}"
    dash.close()
    return out


# --------------------------------------------------------------------------------------------- report
PEER_ORDER = ("numpy", "torch", "torch_autograd", "jax_eager")


def percent(fraction: float) -> str:
    """100·fraction with two significant digits below 10 % (0.033 %, 8.3 %), whole numbers above (67 %)."""
    value = 100 * fraction
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def format_row(row) -> str:
    peers = ", ".join(f"{k} {v:.3g} ms ({v / row['ms']['vglab']:.2g}x)" for k, v in row["ms"].items()
                      if k != "vglab")
    return (f"{row['workload']:22s} {row['config']:44s} vglab {row['ms']['vglab']:9.3g} ms  "
            f"floor {row['floor_ms']:8.3g} ms ({row['bound']}, {percent(row['fraction_of_floor'])}%)  {peers}")


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (math.nan,) * 3
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":")[1].strip()
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "python": platform.python_version(),
            "platform": platform.platform(), "jax": jax.__version__,
            "device": f"{jax.devices()[0]} ({jax.devices()[0].device_kind})",
            "numpy": np.__version__, "load_average_1_5_15": [round(x, 2) for x in load]}


def memory_bound_rows(rows) -> list[dict]:
    """The rows the memory goal judges: memory-bound, with a floor above 0.5 ms."""
    return [r for r in rows if r["bound"] == "memory" and r["floor_ms"] > 0.5]


def chain_ceiling(rows) -> str:
    """What the bare matrix–vector products (``bounds_ms``, timed in the same rounds as vglab) of each one-seed
    memory-bound row take against its bandwidth floor; "" when none was timed."""
    timed_rows = [r for r in memory_bound_rows(rows) if BARE_CHAIN in r.get("bounds_ms", {})]
    if not timed_rows:
        return ""
    multiples = {r["config"].removesuffix(", 1 seed"): r["bounds_ms"][BARE_CHAIN] / r["floor_ms"] for r in timed_rows}
    return ("the bare jit'ed matrix–vector products of each one-seed row (same depth and width, forward and back, "
            f"no bookkeeping, timed in the same rounds) already take {min(multiples.values()):.1f}–"
            f"{max(multiples.values()):.1f}× its bandwidth floor ("
            + "; ".join(f"{k}: {v:.1f}×" for k, v in multiples.items()) + ")")


def qr_ceiling(ceilings: dict) -> str:
    """The QR rates ``measure_ceilings`` found and the cap they put on the spectrum, in one phrase."""
    q, f = ceilings["qr_gflops"], ceilings["spectrum_fraction"]
    return ("QR (Q formed) at " + " / ".join(f"{q[n]:.0f}" for n in sorted(q)) + " GFLOP/s (n = "
            + " / ".join(str(n) for n in sorted(q)) + ") caps the algorithm at "
            + " / ".join(f"{100 * f[n]:.0f}" for n in sorted(f)) + " % of the matmul rate")


def goals(rows, inter, ceilings: dict | None = None) -> list[tuple[str, str, str]]:
    """(goal, what was measured, verdict) for each goal of issue 7, with the ceilings of vglab's compiled
    building blocks where they were measured (the rows' bare chains, ``measure_ceilings``)."""
    out = []

    def find(workload, config):
        return next((r for r in rows if r["workload"] == workload and r["config"] == config), None)

    r = find("gradient norms", "depth 200, width 256, 1 seed")
    if r and "torch" in r["ms"]:
        ratio = r["ms"]["torch"] / r["ms"]["vglab"]
        autograd = r["ms"].get("torch_autograd", math.nan) / r["ms"]["vglab"]
        out.append(("≥ 2× PyTorch eager, gradient norms depth 200 width 256",
                    f"vglab {r['ms']['vglab']:.2f} ms; torch hand-written {r['ms']['torch']:.2f} ms ({ratio:.2f}×), "
                    f"torch autograd {autograd:.2f}×", "met" if ratio >= 2 else "not met"))
    beaten = [(r["workload"], r["config"], k, v / r["ms"]["vglab"]) for r in rows for k, v in r["ms"].items()
              if k != "vglab" and v < r["ms"]["vglab"]]
    checked = sum(len(r["ms"]) - 1 for r in rows)
    out.append(("every workload at least as fast as every peer",
                f"{checked - len(beaten)} of {checked} comparisons"
                + ("" if not beaten else "; slower than: " + "; ".join(
                    f"{k} on {w} ({c}) at {x:.2f}×" for w, c, k, x in beaten)),
                "met" if not beaten else "not met"))
    memory = memory_bound_rows(rows)
    chain = chain_ceiling(rows)
    within = [r for r in memory if r["ms"]["vglab"] <= 1.5 * r["floor_ms"]]
    out.append(("memory-bound workloads within 1.5× of the bandwidth floor (floor > 0.5 ms)",
                f"{len(within)} of {len(memory)}; " + "; ".join(
                    f"{r['workload']} {r['config']}: {r['ms']['vglab'] / r['floor_ms']:.1f}×" for r in memory[:8])
                + (f"; ceiling: {chain}" if chain else "")
                if memory else "no workload here has a memory floor above 0.5 ms",
                ("met" if len(within) == len(memory) else "not met") if memory else "n/a"))
    spectra = [r for r in rows if r["workload"] == "Jacobian spectrum"]
    if spectra:
        parts = [f"{r['config']}: {r['gflops']:.1f} GFLOP/s" for r in spectra]
        ok = all(r["fraction_of_floor"] >= 0.6 for r in spectra)
        if ceilings:
            parts.append(f"ceiling: {qr_ceiling(ceilings)}")
        out.append(("spectra ≥ 60 % of the measured matmul rate", "; ".join(parts), "met" if ok else "not met"))
    if inter is None:  # a partial run (--only) measures no interactivity
        return out
    out.append(("depth changes cost no compile",
                f"{inter['depth_change_compiles']} compiles over {len(inter['depths'])} new depths "
                f"(median {inter['depth_change_ms']:.1f} ms); dashboard: {inter['dashboard_compiles']}",
                "met" if inter["depth_change_compiles"] == 0 and inter["dashboard_compiles"] == 0 else "not met"))
    return out


def markdown(results) -> str:
    fl, rows, inter = results["floor"], results["rows"], results["interactivity"]
    sz = fl["sizes"]
    m = results["machine"]
    lines = [
        f"Measured {results['date']} with `{results['command']}` ({results['elapsed_s'] / 60:.1f} min).",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; {m['platform']}; Python {m['python']}, "
        f"jax {m['jax']} on `{m['device']}`, NumPy {m['numpy']}"
        + (f", {results['peer_versions']}" if results.get("peer_versions") else "") + ". "
        f"Load average at start {results['load_start']}, at end {m['load_average_1_5_15']} "
        "(shared machine: absolute times are noisy, ratios from interleaved runs less so).",
        "",
        "**Floor** (medians of interleaved runs, the larger of the start and end of the run; best single run in "
        "brackets): "
        f"float32 matmul NumPy {sz['numpy_matmul']}³ {fl['numpy_matmul_gflops']:.0f} GFLOP/s "
        f"[{fl['best_of_runs']['numpy_matmul_gflops']:.0f}], jit'ed JAX {sz['jax_matmul']}³ (full float32) "
        f"{fl['jax_matmul_gflops']:.0f} GFLOP/s [{fl['best_of_runs']['jax_matmul_gflops']:.0f}]; memory read: "
        f"NumPy gemv over {sz['numpy_read_mib']} MiB {fl['numpy_gemv_gbs']:.1f} GB/s "
        f"[{fl['best_of_runs']['numpy_gemv_gbs']:.1f}], jit'ed JAX sum over {sz['jax_read_mib']} MiB "
        f"{fl['jax_sum_gbs']:.1f} GB/s [{fl['best_of_runs']['jax_sum_gbs']:.1f}]. The floor of a workload is "
        f"max(FLOP / {fl['matmul_gflops']:.0f} GFLOP/s, bytes / {fl['bandwidth_gbs']:.1f} GB/s).",
        "",
    ]
    if results.get("ceilings"):
        chain = chain_ceiling(rows)
        lines += [
            "**Ceilings** (what vglab's compiled building blocks take here, bounding any program made of them): "
            + (f"{chain}; " if chain else "") + qr_ceiling(results["ceilings"])
            + " (the exact spectrum spends 16/3 n³ of its 34/3 n³ per layer in two n×n QRs with Q formed, "
            "timed through LAPACK, the faster of one thread and the default threads; the rest is counted at the "
            "matmul rate).",
            "",
        ]
    if results.get("missing"):
        lines += ["Peers not run: " + "; ".join(f"{k}: {v}" for k, v in results["missing"].items()), ""]
    lines += ["| workload | configuration | MFLOP | MB | floor ms (bound) | **vglab ms** | of floor "
              "| NumPy | PyTorch | PyTorch autograd | JAX no jit |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        v = r["ms"]["vglab"]
        cells = []
        for peer in PEER_ORDER:
            if peer in r["ms"]:
                cells.append(f"{r['ms'][peer]:.3g} ({r['ms'][peer] / v:.2g}×)")
            elif "disagrees" in r["notes"].get(peer, ""):
                cells.append("disagrees")
            else:
                cells.append("–")
        lines.append(f"| {r['workload']} | {r['config']} | {r['flops'] / 1e6:.4g} | {r['bytes'] / 1e6:.4g} "
                     f"| {r['floor_ms']:.3g} ({r['bound']}) | **{v:.3g}** | {percent(r['fraction_of_floor'])} % "
                     f"| {' | '.join(cells)} |")
    lines += ["", "Peer cells: median ms (peer time / vglab time; above 1× vglab is faster). \"disagrees\": the "
              "peer's output failed the agreement check and was not timed (the reason is in the notes). "
              "Notes:", ""]
    for r in rows:
        extra = [r["note"]] if r["note"] else []
        extra += [f"{k}: {v}" for k, v in r["notes"].items() if v.startswith("disagrees")]
        if r["workload"] == "Jacobian spectrum":
            extra.append(f"{r['gflops']:.1f} GFLOP/s of the graded-QR algorithm (34/3 n³ per layer), "
                         f"{r['naive_product_gflops']:.1f} GFLOP/s counted as the naive product (2n³ per layer)")
        if extra:
            lines.append(f"- {r['workload']}, {r['config']}: " + "; ".join(extra))
    lines += [] if inter is None else [
              "", "**Interactivity** (MLP depth 200, width 256, tanh unless stated):", "",
              f"- first call of a never-compiled option (GELU, depth 200, width 256): {inter['first_call_s']:.2f} s "
              f"({inter['first_call_compiles']} XLA compiles, weight draw included); the same call warm: "
              f"{inter['warm_call_ms']:.1f} ms",
              f"- a depth change after warm-up ({len(inter['depths'])} new depths 3..256): median "
              f"{inter['depth_change_ms']:.1f} ms, max {inter['depth_change_max_ms']:.1f} ms, "
              f"**{inter['depth_change_compiles']} compiles** (jax.monitoring backend-compile events)",
              f"- one dashboard update, `{inter['dashboard']}`, matplotlib Agg: "
              f"compute {inter['dashboard_compute_ms']:.1f} ms + redraw {inter['dashboard_draw_ms']:.1f} ms = "
              f"{inter['dashboard_total_ms']:.1f} ms (median); "
              f"plotting is {100 * inter['dashboard_draw_share']:.0f} % of it; "
              f"{inter['dashboard_compiles']} compiles; in the live path a depth step that keeps the axis limits "
              f"is blitted instead ({inter['dashboard_blits']} steps 190→200): "
              f"{inter['dashboard_blit_ms']:.1f} ms per frame (median; Agg only, ipympl's PNG diff not included)"]
    lines += ["", "**Goals of issue 7** (evaluated by the script from the numbers above):", "",
              "| goal | measured | |", "|---|---|---|"]
    for goal, measured, verdict in results["goals"]:
        lines.append(f"| {goal} | {measured} | {verdict} |")
    lines += ["", f"![peer time / vglab time per workload]({results['plot']})", ""]
    return "\n".join(lines)


def plot(results, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    labels = [f"{r['workload']}\n{r['config']}" for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.5))
    y = np.arange(len(rows))
    height = 0.8 / (len(PEER_ORDER) + 1)
    for i, peer in enumerate(PEER_ORDER):
        values = [r["ms"].get(peer, np.nan) / r["ms"]["vglab"] for r in rows]
        ax.barh(y + i * height, values, height, label=f"{peer} / vglab")
    values = [r["fraction_of_floor"] for r in rows]
    ax.barh(y + len(PEER_ORDER) * height, values, height, label="vglab fraction of floor", color="black")
    ax.axvline(1.0, color="grey", lw=1)
    ax.set_xscale("log")
    ax.set_yticks(y + 0.4, labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("time ratio (> 1: vglab faster) / fraction of floor")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"vglab benchmarks, {results['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def output_names(backend: str, quick: bool, only: str | None = None) -> dict:
    """Where a run's results go: the CPU keeps the plain names; an accelerator run gets its own JSON, plot and
    README section, so neither overwrites the other; so does a run of only some rows (``--only conv``)."""
    tag = ("" if backend == "cpu" else f"_{backend}") + (f"_{only}" if only else "")
    return {"json": f"results{tag}{'_quick' if quick else ''}.json", "plot": f"results{tag}.png",
            "section": "results" + tag.replace("_", "-")}


def write_readme(results, path: Path, section: str = "results"):
    """Replace the text between ``<!-- {section}:start -->`` and ``<!-- {section}:end -->`` (appended if absent)."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    text = path.read_text() if path.exists() else f"# vglab benchmarks\n\n{start}\n{end}\n"
    if start not in text or end not in text:
        text += f"\n{start}\n{end}\n"
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{markdown(results)}\n{end}{tail}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a subset of the workloads (a few minutes)")
    parser.add_argument("--no-readme", action="store_true", help="print only; do not rewrite README/PNG/JSON")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timed runs per workload")
    parser.add_argument("--only", choices=("conv",), default=None,
                        help="only these rows (conv: lesson 12's ConvNet), written to their own README section")
    args = parser.parse_args(argv)
    budget = args.budget or (4.0 if args.quick else 8.0)
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "") + (f" --only {args.only}"
                                                                                 if args.only else "")
    started = time.perf_counter()
    load_start = [round(x, 2) for x in os.getloadavg()]
    counter = CompileCounter()
    peers, missing = available_peers()
    conv_peers, conv_missing = available_conv_peers()
    missing.update(conv_missing)
    print(f"peers: {', '.join(p.NAME for p in peers)}; missing: {missing or 'none'}", flush=True)
    floor = measure_floor(budget)
    print(json.dumps({k: v for k, v in floor.items() if k != "best_of_runs"}, indent=None), flush=True)
    bench = Bench(floor, peers, missing, budget)
    if args.only is None:
        bench_gradient_norms(bench, args.quick)
        bench_spectra(bench, args.quick)
        bench_recurrent(bench, args.quick)
        bench_transformer(bench, args.quick)
        bench_training(bench, peers_available="torch" not in missing)
    bench_convnet(bench, conv_peers, args.quick)
    inter = bench_interactivity(counter) if args.only is None else None
    floor = combine_floors([floor, measure_floor(budget)])
    print(json.dumps({k: v for k, v in floor.items() if k != "best_of_runs"}, indent=None), flush=True)
    refloor(bench.rows, floor)
    print(json.dumps(inter), flush=True)
    ceilings = measure_ceilings(floor, budget) if args.only is None else None
    print(json.dumps(ceilings), flush=True)
    names = output_names(jax.default_backend(), args.quick, args.only)
    results = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "command": command,
               "machine": machine(), "load_start": load_start, "floor": floor, "rows": bench.rows,
               "interactivity": inter, "ceilings": ceilings, "missing": missing,
               "plot": names["plot"],
               "peer_versions": ", ".join(sorted({p.version() for p in peers if p.NAME != "numpy"}))}
    results["goals"] = goals(bench.rows, inter, ceilings)
    results["elapsed_s"] = time.perf_counter() - started
    for goal, measured, verdict in results["goals"]:
        print(f"[{verdict}] {goal}: {measured}")
    if not args.no_readme:
        (HERE / names["json"]).write_text(json.dumps(results, indent=1, default=str))
        plot(results, HERE / names["plot"])
        write_readme(results, HERE / "README.md", section=names["section"])
        print(f"wrote {HERE / 'README.md'}, {names['plot']}, {names['json']}")


if __name__ == "__main__":
    main()
