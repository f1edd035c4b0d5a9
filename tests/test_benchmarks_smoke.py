"""The benchmark's problems and peers compute vglab's numbers (correctness only; timing lives in benchmarks/).

Every peer gets vglab's own draws (``benchmarks.problems``) and must reproduce vglab's per-layer gradient
norms, forward statistics, spectra and RNN/LSTM gradients within ``problems.LOG10_TOLERANCE``.  PyTorch is a
benchmark-only dependency: its peers are skipped when it is not installed.
"""

import importlib.util

import numpy as np
import pytest

import vglab
from benchmarks import problems
from benchmarks.peers import jax_eager, numpy_backprop

PEERS = [numpy_backprop, jax_eager]
if importlib.util.find_spec("torch") is not None:
    from benchmarks.peers import torch_eager

    PEERS += [torch_eager, torch_eager.Autograd]
else:
    PEERS.append(pytest.param(None, marks=pytest.mark.skip(reason="torch not installed (benchmark-only)")))

MLPS = [
    vglab.MLP(depth=12, width=16),  # tanh, Xavier
    vglab.MLP(depth=9, width=12, activation="relu", init="he", bias_std=0.1),  # dead units, biases
    vglab.MLP(depth=60, width=8, activation="sigmoid"),  # vanishing: ~1e-40, below float32's normal range
]


def _peer_id(peer):
    return getattr(peer, "NAME", "none")


@pytest.mark.parametrize("peer", PEERS, ids=_peer_id)
@pytest.mark.parametrize("net", MLPS, ids=lambda n: f"{n.activation}-{n.depth}x{n.width}")
def test_mlp_gradient_norms_agree(peer, net):
    problem = problems.mlp_problem(net, n_seeds=2, seed=3)
    reference = vglab.gradient_norms(net, seed=3, n_seeds=2)
    result = peer.mlp_gradient_norms(peer.prepare_mlp(problem))
    if peer.NAME == "torch_autograd" and net.activation == "sigmoid":
        # Plain float32 autograd underflows (‖∂L/∂h_0‖ ~ 1e-40 here): the benchmark's check must refuse it.
        with pytest.raises(AssertionError, match="log10_activation_grad"):
            problems.check_agreement(reference, result, peer.NAME)
        return
    assert set(result) >= {"log10_activation_grad", "log10_weight_grad"}
    diffs = problems.check_agreement(reference, result, peer.NAME)
    assert np.all(np.isfinite(result["log10_activation_grad"]))
    assert len(diffs) == 5


def test_the_check_catches_a_wrong_peer():
    net = MLPS[0]
    reference = vglab.gradient_norms(net)
    result = numpy_backprop.mlp_gradient_norms(numpy_backprop.prepare_mlp(problems.mlp_problem(net)))
    result["log10_activation_grad"] = result["log10_activation_grad"] + 0.01  # a 2.3 % error
    with pytest.raises(AssertionError, match="log10_activation_grad"):
        problems.check_agreement(reference, result, "wrong")


@pytest.mark.parametrize("peer", [p for p in PEERS if getattr(p, "NAME", "") != "torch_autograd"],
                         ids=_peer_id)
@pytest.mark.parametrize("net", [vglab.MLP(depth=6, width=8), vglab.MLP(depth=30, width=16, activation="sigmoid")],
                         ids=lambda n: f"{n.activation}-{n.depth}x{n.width}")
def test_spectra_agree(peer, net):
    reference = vglab.jacobian_spectrum(net)
    result = peer.mlp_spectrum(peer.prepare_mlp(problems.mlp_problem(net)))
    problems.check_agreement(reference, result, peer.NAME)


@pytest.mark.parametrize("peer", [p for p in PEERS if getattr(p, "NAME", "") != "torch_autograd"],
                         ids=_peer_id)
@pytest.mark.parametrize("cell", ["vanilla", "lstm"])
def test_rnn_gradient_norms_agree(peer, cell):
    net = vglab.RNN(cell=cell, hidden=8, steps=40)
    reference = vglab.gradient_norms(net, seed=1, n_seeds=2)
    result = peer.rnn_gradient_norms(peer.prepare_rnn(problems.rnn_problem(net, n_seeds=2, seed=1)))
    problems.check_agreement(reference, result, peer.NAME)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch not installed (benchmark-only)")
def test_the_torch_training_step_records_what_vglab_train_records():
    from benchmarks.peers.torch_eager import Autograd
    from vglab import training

    net = vglab.MLP(depth=6, width=32, activation="relu", init="he")
    data = training.as_data("digits")
    history = vglab.train(net, "digits", steps=1, batch_size=len(data.y_train), learning_rate=0.1)
    params = training.initial_parameters(net, data.x_train.shape[1], data.classes, seed=0)
    step = Autograd.training_step(net, data, params, learning_rate=0.1)
    reference = problems.first_training_step(history)
    first, again = step(), step()  # each call restarts from the same parameters
    assert set(first) == set(problems.TRAINING_RECORDS)
    problems.check_agreement(reference, first, "torch")
    problems.check_agreement(reference, again, "torch")
    for name, error in (("update_ratio", first["update_ratio"] * 0.01), ("accuracy", 2.0 / len(data.y_train))):
        wrong = dict(first, **{name: first[name] + error})  # 1 % of a ratio; two examples classified otherwise
        with pytest.raises(AssertionError, match=name):
            problems.check_agreement(reference, wrong, "wrong")


def test_work_counts():
    flops, moved = problems.gradient_norms_work(200, 256, 1)
    assert moved == 2 * 200 * 256 * 256 * 4  # the 52 MB weight bank, read forward and backward
    assert flops == pytest.approx(200 * 4 * 256**2, rel=0.05)  # matvecs dominate
    flops, moved = problems.spectrum_work(50, 512)
    assert flops == pytest.approx(50 * 34 / 3 * 512**3) and moved == 50 * 512 * 512 * 4


def test_an_accelerator_run_writes_its_own_readme_section(tmp_path, monkeypatch):
    from benchmarks import run

    monkeypatch.setattr(run, "markdown", lambda results: results["text"])
    readme = tmp_path / "README.md"
    readme.write_text("# b\n<!-- results:start -->\nCPU table\n<!-- results:end -->\n## after\n")
    run.write_readme({"text": "GPU table 1"}, readme, section="results-gpu")
    run.write_readme({"text": "GPU table 2"}, readme, section="results-gpu")
    text = readme.read_text()
    assert "CPU table" in text and "## after" in text
    assert "GPU table 2" in text and "GPU table 1" not in text
    assert text.count("<!-- results-gpu:start -->") == 1


def test_cpu_and_accelerator_results_go_to_different_files():
    from benchmarks import run

    cpu, gpu = run.output_names("cpu", quick=False), run.output_names("gpu", quick=True)
    assert cpu == {"json": "results.json", "plot": "results.png", "section": "results"}
    assert gpu == {"json": "results_gpu_quick.json", "plot": "results_gpu.png", "section": "results-gpu"}
    assert [run.percent(f) for f in (0.00033, 0.083, 0.67, 1.0)] == ["0.033", "8.3", "67", "100"]


def test_goals_say_n_a_when_no_workload_is_memory_bound():
    from benchmarks import run

    row = {"workload": "gradient norms", "config": "depth 200, width 256, 1 seed", "ms": {"vglab": 10.0, "torch": 30.0},
           "bound": "compute", "floor_ms": 0.05, "fraction_of_floor": 0.005, "gflops": 5.0}
    inter = {"depth_change_compiles": 0, "depths": [3, 7], "depth_change_ms": 9.0, "dashboard_compiles": 0}
    verdicts = {goal: verdict for goal, _, verdict in run.goals([row], inter)}
    assert verdicts["≥ 2× PyTorch eager, gradient norms depth 200 width 256"] == "met"
    assert verdicts["memory-bound workloads within 1.5× of the bandwidth floor (floor > 0.5 ms)"] == "n/a"
    memory_row = dict(row, bound="memory", floor_ms=1.0)
    verdicts = {goal: verdict for goal, _, verdict in run.goals([memory_row], inter)}
    assert verdicts["memory-bound workloads within 1.5× of the bandwidth floor (floor > 0.5 ms)"] == "not met"


def test_goals_state_the_ceilings_of_the_building_blocks():
    from benchmarks import run

    # Hand-computed: 34/3 n³ per layer, 16/3 n³ of QR at 32 GFLOP/s and 6 n³ at 200: 11.33 / (0.1667 + 0.03)
    # = 57.6 GFLOP/s, 28.8 % of 200.
    assert run.spectrum_ceiling(32.0, 200.0) == pytest.approx(0.288, abs=5e-4)
    assert run.spectrum_ceiling(1e12, 200.0) == pytest.approx((34 / 3) / 6)  # an infinitely fast QR

    def row(workload, config, bound, floor_ms, **extra):
        return {"workload": workload, "config": config, "ms": {"vglab": 10.0}, "bound": bound,
                "floor_ms": floor_ms, "fraction_of_floor": floor_ms / 10.0, "gflops": 32.0, **extra}

    rows = [row("gradient norms", "depth 30, width 64, 1 seed", "memory", 0.6, bounds_ms={run.BARE_CHAIN: 1.2}),
            row("gradient norms", "depth 5, width 64, 1 seed", "memory", 0.1, bounds_ms={run.BARE_CHAIN: 0.3}),
            row("gradient norms", "depth 30, width 64, 8 seeds", "memory", 4.0),
            row("Jacobian spectrum", "depth 50, width 256", "compute", 50.0)]
    ceilings = run.measure_ceilings({"matmul_gflops": 200.0}, budget_s=0.3)
    assert set(ceilings["qr_gflops"]) == {256, 512}
    assert ceilings["spectrum_fraction"][256] == run.spectrum_ceiling(ceilings["qr_gflops"][256], 200.0)
    fixed = {"qr_gflops": {256: 31.0, 512: 40.0}, "spectrum_fraction": {256: 0.28, 512: 0.35}}
    inter = {"depth_change_compiles": 0, "depths": [3], "depth_change_ms": 9.0, "dashboard_compiles": 0}
    measured = {goal: text for goal, text, _ in run.goals(rows, inter, fixed)}
    # Only the row with a floor above 0.5 ms counts: 1.2 ms of bare products over a 0.6 ms floor.
    assert "already take 2.0–2.0× its bandwidth floor (depth 30, width 64: 2.0×)" in measured[
        "memory-bound workloads within 1.5× of the bandwidth floor (floor > 0.5 ms)"]
    assert "QR (Q formed) at 31 / 40 GFLOP/s (n = 256 / 512) caps the algorithm at 28 / 35 %" in measured[
        "spectra ≥ 60 % of the measured matmul rate"]
    no_bounds = [dict(r, bounds_ms={}) for r in rows]
    assert "ceiling" not in " ".join(text for _, text, _ in run.goals(no_bounds, inter))


def test_bench_run_times_bounds_apart_from_the_peers():
    from benchmarks import run

    calls = []
    bench = run.Bench({"matmul_gflops": 200.0, "bandwidth_gbs": 30.0}, [], {}, budget_s=0.05)
    row = bench.run("gradient norms", "depth 3, width 8, 1 seed", lambda: calls.append("vglab"), 1e3, 1e6, {},
                    bounds={run.BARE_CHAIN: lambda: calls.append("bound")})
    assert set(row["ms"]) == {"vglab"} and set(row["bounds_ms"]) == {run.BARE_CHAIN}
    assert calls.count("bound") >= 3 and calls.count("vglab") >= 3  # timed in the same rounds


# --------------------------------------------------------------------------------------------- ConvNet
def _conv_peers():
    from benchmarks.peers.conv_backprop import JaxEager, NumPy

    peers = [NumPy, JaxEager]
    if importlib.util.find_spec("torch") is not None:
        from benchmarks.peers import torch_conv

        return peers + [torch_conv]
    return peers + [pytest.param(None, marks=pytest.mark.skip(reason="torch not installed (benchmark-only)"))]


CONV_PEERS = _conv_peers()
CONV_NETS = [
    vglab.ConvNet(depth=3, channels=4, length=12, bias_std=0.1),  # plain ReLU, biases
    vglab.ConvNet(depth=4, channels=4, length=12, kernel=3, activation="tanh", residual=True, residual_scale=0.5,
                  norm="pre"),  # residual branch scale, pre-LayerNorm
]


@pytest.mark.parametrize("peer", CONV_PEERS, ids=_peer_id)
@pytest.mark.parametrize("net", CONV_NETS, ids=lambda n: "residual-ln" if n.residual else "plain")
def test_conv_gradient_norms_agree(peer, net):
    reference = vglab.gradient_norms(net, seed=1, n_seeds=2)
    result = peer.conv_gradient_norms(peer.prepare_conv(problems.conv_problem(net, n_seeds=2, seed=1)))
    assert result["log10_activation_grad"].shape == (2, net.depth + 1)
    assert np.all(np.isfinite(result["log10_activation_grad"]))
    problems.check_agreement(reference, result, peer.NAME)


def test_the_conv_check_catches_a_flipped_kernel():
    from benchmarks.peers.conv_backprop import NumPy

    net = CONV_NETS[0]
    problem = problems.conv_problem(net)
    flipped = problems.ConvProblem(net, 1, problem.weights[:, :, ::-1], problem.biases, problem.inputs,
                                   problem.directions)  # a convolution where vglab (and conv1d) correlate
    with pytest.raises(AssertionError, match="log10_activation_grad"):
        problems.check_agreement(vglab.gradient_norms(net), NumPy.conv_gradient_norms(NumPy.prepare_conv(flipped)),
                                 "flipped")


@pytest.fixture(scope="module")
def conv_training():
    """A residual pre-LN ConvNet's first training step on a little MNIST-1D, vglab's result, and the history of
    ``train_convnet`` for one step with the same arguments."""
    from vglab.models import convolutional

    net = vglab.ConvNet(depth=3, channels=4, residual=True, norm="pre")
    data = convolutional.mnist1d(n_train=60, n_test=10, seed=0)
    problem = problems.conv_training_problem(net, data, batch_size=20, learning_rate=3e-3, seed=2)
    history = vglab.train_convnet(net, data, steps=1, learning_rate=3e-3, batch_size=20, seed=2)
    return problem, problems.vglab_conv_training_step(problem)(), history


def test_the_conv_training_reference_is_train_convnets_first_step(conv_training):
    problem, reference, history = conv_training
    assert set(reference) == {"loss", "accuracy", "log10_grad_norms", *(f"new_{k}" for k in problems.CONV_PARAMETERS)}
    assert float(reference["loss"]) == history.loss[0] and float(reference["accuracy"]) == history.accuracy[0]
    np.testing.assert_array_equal(reference["log10_grad_norms"], history.log10_grad_norms[0])
    step = reference["new_weights"] - problem.params["weights"]
    np.testing.assert_allclose(np.abs(step), 3e-3, rtol=0.01)  # Adam's first step: ≈ lr on every entry


@pytest.mark.parametrize("peer", CONV_PEERS, ids=_peer_id)
def test_conv_training_step_agrees(peer, conv_training):
    problem, reference, _ = conv_training
    prepared = peer.prepare_conv_training(problem)
    first, again = peer.conv_training_step(prepared), peer.conv_training_step(prepared)  # same start each call
    assert set(first) == set(reference)
    problems.check_agreement(reference, first, peer.NAME)
    problems.check_agreement(reference, again, peer.NAME)


def test_the_conv_training_check_catches_a_wrong_step(conv_training):
    from benchmarks.peers.conv_backprop import NumPy

    problem, reference, _ = conv_training
    result = NumPy.conv_training_step(NumPy.prepare_conv_training(problem))
    wrong = dict(result, new_stem_bias=2 * problem.params["stem_bias"] - result["new_stem_bias"])  # steps reversed
    with pytest.raises(AssertionError, match="new_stem_bias"):
        problems.check_agreement(reference, wrong, "wrong")
    other_batch = problems.ConvTrainingProblem(**{**problem.__dict__, "x": problem.x[::-1].copy()})  # x, y mismatched
    with pytest.raises(AssertionError, match="loss"):
        problems.check_agreement(reference, NumPy.conv_training_step(NumPy.prepare_conv_training(other_batch)), "wrong")


def test_conv_work_counts():
    net = vglab.ConvNet(depth=24, channels=16, kernel=5, length=40)
    flops, moved = problems.conv_gradient_norms_work(net, 1)
    assert moved == 2 * 24 * 5 * 16 * 16 * 4
    assert flops == pytest.approx(24 * 4 * 40 * 5 * 16**2, rel=0.1)  # the convolutions dominate
    flops, moved = problems.conv_training_work(net, batch_size=100, classes=10)
    assert flops == pytest.approx(3 * 2 * 100 * 40 * 5 * 16**2 * 24, rel=0.05)


def test_a_conv_only_run_has_its_own_files_and_no_interactivity_goal():
    from benchmarks import run

    assert run.output_names("cpu", quick=True, only="conv") == {
        "json": "results_conv_quick.json", "plot": "results_conv.png", "section": "results-conv"}
    row = {"workload": "ConvNet gradient norms", "config": "lesson 12", "ms": {"vglab": 2.0, "torch_autograd": 1.0},
           "bound": "compute", "floor_ms": 0.01, "fraction_of_floor": 0.005, "gflops": 1.0}
    verdicts = {goal: verdict for goal, _, verdict in run.goals([row], None)}
    assert verdicts == {"every workload at least as fast as every peer": "not met",
                        "memory-bound workloads within 1.5× of the bandwidth floor (floor > 0.5 ms)": "n/a"}
