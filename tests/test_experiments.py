"""The lab's experiments are pure functions (``vglab.experiments``, issue 14 item 4): state → network → result →
summary, and the code to copy.

1. In a fresh interpreter where matplotlib, ipywidgets, ipympl and IPython cannot be imported, each experiment
   runs on the state a lesson's dashboard has (``STATES``, read from the lesson's constructor call) and its
   result equals the engine called directly, bit for bit; its summary quotes the engine's 10^x; its code,
   exec'd, reproduces the result.
2. In-process, each dashboard built as the lesson builds it has exactly that state, and its compute, summary
   and code are the experiment's (the same arrays, the same strings).
3. No module of ``vglab.lab`` calls an engine (``vglab.gradient_norms`` …), the theory or a model module's
   function directly: they go through ``vglab.experiments`` (read from the source).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import vglab  # noqa: E402
from vglab import experiments  # noqa: E402

LAB = Path(vglab.__file__).parent / "lab"

_MLP = dict(sigma_b=0.0, residual=False, norm="none", residual_scale=1.0, leaky_slope=0.01, seed=0, theory=True)
# name → (the lesson's dashboard call, its state): what ``dashboard.state`` is right after the lesson's cell.
STATES = {
    "gradient_00": dict(depth=20, width=64, activation="tanh", init="xavier", sigma_w=None, n_seeds=4, **_MLP),
    "histograms_02": dict(depth=50, width=64, activation="sigmoid", init="xavier", sigma_w=None, n_seeds=4,
                          **_MLP),
    "spectrum_11": dict(depth=16, width=64, activation="tanh", init="gaussian", sigma_w=1.0, n_seeds=1, **_MLP),
    "recurrent_08": dict(cell="vanilla", steps=100, hidden=64, activation="tanh", spectral_radius=1.0,
                         forget_bias=1.0, input_std=1.0, seed=0, n_seeds=4),
    "transformer_09": dict(depth=48, width=64, heads=4, seq_len=8, residual=True, norm="pre", activation="gelu",
                           weight_std=1.0, seed=0, n_seeds=2),
    "batchnorm_13": dict(depth=50, batch=32, activation="relu", residual=False),
    "degradation_12": dict(deep=24, steps=300, seed=0),
    "training_10": dict(depth=20, width=32, activation="sigmoid", init="xavier", sigma_w=None, residual=False,
                        norm="none", residual_scale=1.0, leaky_slope=0.01, data="digits", steps=200,
                        optimizer="sgd", learning_rate=0.1, clip_norm=0.0, batch_size=64, seed=0),
}

PURE_RUN = r'''
import math, sys
for name in ("matplotlib", "ipywidgets", "ipympl", "IPython"):
    sys.modules[name] = None  # importing any of them now raises ImportError
import numpy as np
import vglab
from vglab import experiments as E, theory
from vglab.models import batchnorm, convolutional

STATES = __STATES__
eq = np.testing.assert_array_equal


def run_code(code):
    scope = {}
    exec(code, scope)
    return scope


def power(x):
    return f"10^{round(float(x), 1) + 0.0:.1f}"  # −0.04 → 10^0.0, not 10^-0.0


# ---- gradient, lesson 00: tanh depth 20, xavier (σ_w follows the init), 4 seeds, depth slider up to 100
s = STATES["gradient_00"]
net = E.gradient_network(s)
assert net == vglab.MLP(depth=20, width=64, activation="tanh", init="xavier"), net
view = E.gradient_experiment(s, max_depth=100)
ref = vglab.gradient_norms(net, seed=0, n_seeds=4)
for field in ("log10_activation_grad", "log10_weight_grad", "log10_gradient_ratio", "log10_rms_activation_grad"):
    eq(getattr(view.norms, field), getattr(ref, field))
predicted = theory.predicted_log10_grad(net, float(ref.log10_rms_activation_grad[-1]))
np.testing.assert_allclose(view.theory, predicted, rtol=0, atol=1e-9)
assert view.bound is None and view.distributions is None and not view.theory_pending  # sup|tanh′| = 1: no bound
summary = E.gradient_summary(view)
assert summary == f"depth 20, tanh: ‖∂L/∂h₀‖/‖∂L/∂h_L‖ ≈ {power(np.mean(ref.log10_gradient_ratio))}", summary
scope = run_code(E.gradient_code(s))
eq(scope["result"].log10_activation_grad, ref.log10_activation_grad)
np.testing.assert_allclose(scope["theory"], view.theory, rtol=0, atol=1e-9)

# the interactive route: a profile not cached yet is handed to theory_later, then filled in
later = []
fresh = {**s, "sigma_b": 0.37}
pending = E.gradient_experiment(fresh, max_depth=100, theory_later=later.append)
assert pending.theory_pending and pending.theory is None and len(later) == 1
assert later[0] == E.gradient_network(fresh).replace(depth=100)
assert E.gradient_summary(pending).endswith(" (theory: computing…)")
E.compute_mean_field(later[0])
filled = E.with_theory(pending, max_depth=100)
assert not filled.theory_pending and filled.norms is pending.norms
np.testing.assert_allclose(filled.theory, theory.predicted_log10_grad(
    E.gradient_network(fresh), float(pending.norms.log10_rms_activation_grad[-1])), rtol=0, atol=1e-9)

# σ_w snapping: within half a slider step of the init's value it is that value (He's √2 shown as 1.4)
he = {**s, "init": "he", "sigma_w": 1.4}
assert E.gradient_network(he, sigma_w_step=0.05).weight_std is None
assert E.gradient_network(he, sigma_w_step=0.05).sigma_w == math.sqrt(2)
assert E.gradient_network(he).weight_std == 1.4  # no slider: only within SNAP_TOLERANCE
assert E.gradient_network({**he, "sigma_w": 1.5}, sigma_w_step=0.05).weight_std == 1.5
assert E.snap_weight_std(1.0000000000000002, "xavier") is None and E.snap_weight_std(None, "he") is None

# ---- gradient with histograms, lesson 02: sigmoid depth 50 (bound 0.25^(L−l)‖g‖), histograms over 16 inputs
s = STATES["histograms_02"]
net = E.gradient_network(s)
view = E.gradient_experiment(s, max_depth=64, histograms=True)
ref = vglab.gradient_norms(net, seed=0, n_seeds=4)
eq(view.norms.log10_activation_grad, ref.log10_activation_grad)
log10_g = float(ref.log10_rms_activation_grad[-1])
np.testing.assert_allclose(view.bound, log10_g + (50 - np.arange(51)) * math.log10(0.25), rtol=0, atol=1e-9)
dist = vglab.layer_distributions(net, seed=0, batch=16, bins=60)
for field in ("gradient_counts", "gradient_edges", "activation_counts", "saturation_counts", "saturated_fraction"):
    eq(getattr(view.distributions, field), getattr(dist, field))
assert power(np.mean(ref.log10_gradient_ratio)) in E.gradient_summary(view)

# ---- phase diagram, lesson 03: χ₁ at the net and over the grid
net = vglab.MLP(depth=50, width=64, activation="tanh", weight_std=1.2, bias_std=0.1)
w2, b2 = np.linspace(0.05, 5.0, 34), np.linspace(0.0, 1.0, 21)
point = E.phase_point(net, w2, b2)
eq(point.grid, theory.chi1_grid("tanh", w2, b2, 0.01))
assert point.chi1 == theory.chi1("tanh", 1.2, 0.1) and point.note == ""
assert abs(point.sigma_w2 - 1.44) < 1e-12 and abs(point.sigma_b2 - 0.01) < 1e-12
assert E.phase_point(net.replace(activation="gelu"), w2, b2).grid is None
assert E.phase_point(net.replace(activation="gelu"), w2, b2).note == "phase diagram not computed for gelu"
plain_note = E.phase_point(net.replace(residual=True), w2, b2, grid=False).note
assert plain_note == "diagram: plain net (no skip, no LayerNorm)"

# ---- spectrum, lesson 11: tanh depth 16, Gaussian weights, the σ_w slider at 1.0 (step 0.05)
s = STATES["spectrum_11"]
spectrum = E.spectrum_experiment(s, sigma_w_step=0.05)
net = vglab.MLP(depth=16, width=64, activation="tanh", init="gaussian")
assert spectrum.net == net
ref = vglab.jacobian_spectrum(net, seed=0)
eq(spectrum.log10_singular_values, ref.log10_singular_values)
values = ref.log10_singular_values
assert E.spectrum_summary(spectrum) == (f"depth 16, tanh, gaussian: σ_max = {power(values[0])}, "
                                        f"σ_min = {power(values[-1])}")
eq(run_code(E.spectrum_code(s, sigma_w_step=0.05))["spectrum"].log10_singular_values, values)

# ---- recurrent, lesson 08: vanilla tanh RNN, ρ = 1, 100 steps (inputs drawn for the slider's 1000)
s = STATES["recurrent_08"]
net = E.recurrent_network(s)
assert net == vglab.RNN(cell="vanilla", hidden=64, steps=100, activation="tanh", spectral_radius=1.0)
view = E.recurrent_experiment(s, max_steps=1000)
ref = vglab.gradient_norms(net, seed=0, n_seeds=4)
eq(view.norms.log10_activation_grad, ref.log10_activation_grad)
log10_g = float(np.mean(ref.log10_activation_grad[:, -1]))
assert view.theory is None and view.bound is None  # tanh with ρ = 1: γρ = 1, no decay bound; not linear
assert E.recurrent_summary(view) == (f"T = 100, vanilla tanh, ρ = 1: ‖∂L/∂h₀‖/‖∂L/∂h_T‖ ≈ "
                                     f"{power(np.mean(ref.log10_gradient_ratio))}")
eq(run_code(E.recurrent_code(s))["result"].log10_activation_grad, ref.log10_activation_grad)
linear = {**s, "activation": "linear", "spectral_radius": 0.9}
view = E.recurrent_experiment(linear, max_steps=1000)
log10_g = float(np.mean(view.norms.log10_activation_grad[:, -1]))
np.testing.assert_allclose(view.theory, log10_g + (100 - np.arange(101)) * math.log10(0.9), rtol=0, atol=1e-9)
scope = run_code(E.recurrent_code(linear))
np.testing.assert_allclose(scope["theory"], view.theory, rtol=0, atol=1e-12)
lstm = {**s, "cell": "lstm"}
view = E.recurrent_experiment(lstm, max_steps=1000)
ref = vglab.gradient_norms(E.recurrent_network(lstm), seed=0, n_seeds=4)
eq(view.norms.log10_cell_grad, ref.log10_cell_grad)
assert f"mean forget gate {np.mean(ref.forget_gate_mean):.2f}" in E.recurrent_summary(view)
assert E.recurrent_network({**lstm, "activation": "relu"}) == E.recurrent_network(lstm)  # ignored by gated cells

# ---- transformer, lesson 09: 48 pre-LN residual blocks (drawn for the slider's 96)
s = STATES["transformer_09"]
net = E.transformer_network(s)
assert net == vglab.Transformer(depth=48, width=64, heads=4, seq_len=8, residual=True, norm="pre",
                                activation="gelu")
view = E.transformer_experiment(s, max_depth=96)
ref = vglab.gradient_norms(net, seed=0, n_seeds=2)
eq(view.norms.log10_activation_grad, ref.log10_activation_grad)
eq(view.log10_rms, np.concatenate([ref.log10_input_rms[:, None], ref.log10_activation_rms], axis=1))
assert power(np.mean(ref.log10_gradient_ratio)) in E.transformer_summary(view)
assert E.transformer_summary(view).startswith("48 blocks, residual, pre-LN, gelu: ")
eq(run_code(E.transformer_code(s))["result"].log10_activation_grad, ref.log10_activation_grad)
assert E.transformer_network({**s, "norm": "none"}).norm is None

# ---- BatchNorm, lesson 13: ReLU depth 50, batch 32 (width 128, 2 seeds: the dashboard's own)
s = STATES["batchnorm_13"]
net = E.batchnorm_network(s, width=128)
assert net == batchnorm.BatchNormMLP(depth=50, width=128, batch=32, activation="relu", init="he")
view = E.batchnorm_experiment(s, width=128, n_seeds=2)
bn = vglab.gradient_norms(net, seed=0, n_seeds=2)
plain = vglab.gradient_norms(batchnorm.without_batchnorm(net), seed=0, n_seeds=2)
eq(view.bn.log10_activation_grad, bn.log10_activation_grad)
eq(view.plain.log10_activation_grad, plain.log10_activation_grad)
eq(view.theory, batchnorm.predicted_log10_grad(net, bn.log10_typical_activation_grad[-1]))
eq(E.batchnorm_rms(view.bn), np.mean(bn.log10_activation_rms, axis=0))
assert E.batchnorm_summary(view) == (f"‖∂L/∂H_0‖/‖∂L/∂H_L‖ with BN ≈ {power(np.mean(bn.log10_gradient_ratio))}, "
                                     f"without ≈ {power(np.mean(plain.log10_gradient_ratio))} "
                                     "(mean over 2 seeds of log10)")
eq(run_code(E.batchnorm_code(s, width=128, n_seeds=2))["result"].log10_activation_grad, bn.log10_activation_grad)

# ---- training, lesson 10: sigmoid depth 20 on digits, SGD 0.1 (30 of the lesson's 200 steps, for time)
s = {**STATES["training_10"], "steps": 30}
run = E.training_arguments(s)
assert run == dict(net=vglab.MLP(depth=20, width=32, activation="sigmoid"), data="digits", steps=30,
                   optimizer="sgd", learning_rate=0.1, clip_norm=None, batch_size=64, seed=0, eval_every=1)
reports, partials = [], []
history = E.run_training(run, report=lambda done, steps: reports.append(done), partial=partials.append,
                         partial_seconds=0.0)
ref = vglab.train(**run)
for field in ("loss", "log10_grad_norms", "update_ratio", "test_accuracy"):
    eq(getattr(history, field), getattr(ref, field))
assert reports[0] == 0 and reports[-1] == 30 and len(partials) == 30
eq(partials[-1].loss, ref.loss)
eq(partials[-1].log10_grad_norms, ref.log10_grad_norms)
summary = E.training_summary(E.TrainingView(history))
assert summary.startswith(f"depth 20, sigmoid, sgd lr 0.1: 30/30 steps, loss {ref.loss[0]:.3g} → {ref.loss[-1]:.3g}")
assert summary.endswith(f", test accuracy {ref.test_accuracy[-1]:.2f}")
assert E.training_summary(E.TrainingView(history), stale=True).endswith(" · settings changed: press Train")
eq(run_code(E.training_code(s))["history"].loss, ref.loss)
stopped = E.run_training(run, should_stop=lambda: True)  # ends after the first step, history kept
assert stopped.interrupted and stopped.steps_completed == 1
assert E.end_note(stopped) == "stopped after 1 of 30 steps (history kept)" and E.end_step(stopped) == 0.5
code = E.training_code(s, shown=stopped)
assert "# stopped after 1 of 30 steps" in code
eq(run_code(code)["history"].loss, stopped.loss)

loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "ipywidgets", "ipympl", "IPython")
                and sys.modules[m] is not None)
assert not any(m.startswith("vglab.lab") for m in sys.modules), "an experiment imported the lab"
print("experiments ran without", loaded or "matplotlib, ipywidgets, ipympl or IPython")
'''


# The degradation experiment trains on MNIST-1D, whose generator (the mnist1d package) imports matplotlib itself:
# there only ipywidgets and IPython are made unimportable, and the lab must still not be loaded.
DEGRADATION_RUN = r"""
import sys
for name in ("ipywidgets", "ipympl", "IPython"):
    sys.modules[name] = None
import numpy as np
from vglab import experiments as E
from vglab.models import convolutional

STATES = __STATES__


def run_code(code):
    scope = {}
    exec(code, scope)
    return scope


# ---- degradation, lesson 12: plain 4 / plain 24 / residual 24 conv nets, 300 steps
s = STATES["degradation_12"]
result = E.degradation_run(s)
assert result is convolutional.degradation_experiment(24, 300, 0)  # the engine's own (cached) run
summary = E.degradation_summary(result)
for label, (h, log10_grad) in result.items():
    assert f"{label}: train loss {h.train_loss:.3f}" in summary
assert run_code(E.degradation_code(s))["runs"] is result
import vglab
for label, net in convolutional.degradation_nets(24).items():  # ‖∂L/∂h_l‖ at init: the engine's, bit for bit
    np.testing.assert_array_equal(result[label][1], vglab.gradient_norms(net, seed=0).log10_activation_grad[0])
loss = np.array([4.0, 2.0, 1.0])
np.testing.assert_allclose(E.smoothed_log10(loss, window=2), np.log10([4.0, 3.0, 1.5]), rtol=1e-12)

assert not any(m.startswith("vglab.lab") for m in sys.modules), "an experiment imported the lab"
print("degradation ran without the lab")
"""


def test_each_experiment_runs_without_widgets_and_equals_the_engine():
    """In a fresh interpreter where importing matplotlib, ipywidgets, ipympl or IPython raises ImportError."""
    code = PURE_RUN.replace("__STATES__", repr(STATES))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "experiments ran without matplotlib, ipywidgets, ipympl or IPython" in out.stdout


def test_the_degradation_experiment_runs_without_widgets_and_is_the_engine_s_run():
    code = DEGRADATION_RUN.replace("__STATES__", repr(STATES))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stderr[-4000:]
    assert "degradation ran without the lab" in out.stdout


# --------------------------------------------------------------------------------------------- in-process
def _same(a, b):
    """Two results hold the same numbers: every array field equal (NaN equal to NaN), recursively."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for name in a.__dataclass_fields__:
            _same(getattr(a, name), getattr(b, name))
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _same(a[key], b[key])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b, (a, b)


def test_the_gradient_and_spectrum_dashboards_compute_exactly_their_experiment():
    from vglab.lab import GradientDashboard, SpectrumDashboard

    dash = GradientDashboard(depth=20, width=64, controls=("depth", "activation", "init"), max_depth=100,
                             warm_up=False)
    state = STATES["gradient_00"]
    assert dash.state == state
    view = experiments.gradient_experiment(state, max_depth=100)
    _same(dash.result, view)
    _same(dash.compute(state), view)
    assert dash.summarise(dash.result) == experiments.gradient_summary(view)
    assert dash.code == experiments.gradient_code(state)
    dash.close()
    hist = GradientDashboard(depth=50, width=64, activation="sigmoid", controls=("depth", "activation"),
                             activations=("sigmoid", "tanh"), panels=("gradient", "histograms"), max_depth=64,
                             warm_up=False)
    assert hist.state == STATES["histograms_02"]
    _same(hist.result, experiments.gradient_experiment(STATES["histograms_02"], max_depth=64, histograms=True))
    hist.close()
    spec = SpectrumDashboard(depth=16, width=64, activation="tanh", init="gaussian", max_depth=64,
                             controls=("depth", "activation", "init", "sigma_w"),
                             activations=("tanh", "relu", "linear"), inits=("gaussian", "orthogonal"),
                             warm_up=False)
    state = STATES["spectrum_11"]
    assert spec.state == state
    spectrum = experiments.spectrum_experiment(state, sigma_w_step=0.05)
    np.testing.assert_array_equal(spec.result.log10_singular_values, spectrum.log10_singular_values)
    assert spec.result.net == spectrum.net
    assert spec.summarise(spec.result) == experiments.spectrum_summary(spectrum)
    assert spec.code == experiments.spectrum_code(state, sigma_w_step=0.05)
    spec.set(init="orthogonal", sigma_w=1.0)
    assert spec.result.net == experiments.spectrum_experiment(spec.state, sigma_w_step=0.05).net
    spec.close()


def test_the_sequence_dashboards_compute_exactly_their_experiment():
    from vglab.lab import RecurrentDashboard, TransformerDashboard

    rnn = RecurrentDashboard(cell="vanilla", steps=100, hidden=64, activation="tanh", n_seeds=4, max_steps=1000,
                             warm_up=False)
    state = STATES["recurrent_08"]
    assert rnn.state == state
    view = experiments.recurrent_experiment(state, max_steps=1000)
    _same(rnn.result.theory, view.theory)
    np.testing.assert_array_equal(rnn.result.norms.log10_activation_grad, view.norms.log10_activation_grad)
    assert rnn.summarise(rnn.result) == experiments.recurrent_summary(view)
    assert rnn.code == experiments.recurrent_code(state)
    rnn.close()
    tf = TransformerDashboard(depth=48, width=64, heads=4, residual=True, norm="pre", activation="gelu",
                              n_seeds=2, max_depth=96, warm_up=False)
    state = STATES["transformer_09"]
    assert tf.state == state
    view = experiments.transformer_experiment(state, max_depth=96)
    np.testing.assert_array_equal(tf.result.norms.log10_activation_grad, view.norms.log10_activation_grad)
    np.testing.assert_array_equal(tf.result.log10_rms, view.log10_rms)
    assert tf.summarise(tf.result) == experiments.transformer_summary(view)
    assert tf.code == experiments.transformer_code(state)
    tf.close()


def test_the_batchnorm_and_training_dashboards_compute_exactly_their_experiment():
    from vglab.lab import BatchNormDashboard, TrainingDashboard

    bn = BatchNormDashboard(depth=50, batch=32, activation="relu", residual=False, warm_up=False)
    state = STATES["batchnorm_13"]
    assert bn.state == state
    view = experiments.batchnorm_experiment(state, width=128, n_seeds=2)
    _same(bn.result.theory, view.theory)
    np.testing.assert_array_equal(bn.result.plain.log10_activation_grad, view.plain.log10_activation_grad)
    np.testing.assert_array_equal(bn.result.bn.log10_activation_grad, view.bn.log10_activation_grad)
    assert bn.summarise(bn.result) == experiments.batchnorm_summary(view)
    assert bn.code == experiments.batchnorm_code(state, width=128, n_seeds=2)
    bn.close()
    trainer = TrainingDashboard(depth=20, width=32, activation="sigmoid", steps=30,
                                controls=("depth", "activation", "init", "residual", "norm", "optimizer",
                                          "learning_rate", "steps"), max_depth=60)
    state = {**STATES["training_10"], "steps": 30}  # the lesson's 200 steps, shortened for time
    assert trainer.state == state
    assert trainer.run_arguments() == experiments.training_arguments(state)
    history = experiments.run_training(experiments.training_arguments(state))
    np.testing.assert_array_equal(trainer.result.history.loss, history.loss)
    np.testing.assert_array_equal(trainer.result.history.log10_update_ratio, history.log10_update_ratio)
    assert trainer.summarise(trainer.result) == experiments.training_summary(experiments.TrainingView(history))
    assert trainer.code == experiments.training_code(state, shown=history)
    trainer.close()


def test_the_degradation_dashboard_shows_the_experiment_s_run():
    from vglab.lab import DegradationDashboard

    dash = DegradationDashboard(deep=12, steps=100, seed=0)  # options of the lesson's controls, for time
    state = dict(deep=12, steps=100, seed=0)
    assert dash.state == state and dash.result is experiments.degradation_run(state)
    assert dash.summarise(dash.result) == experiments.degradation_summary(dash.result)
    assert dash.code == experiments.degradation_code(state)
    dash.close()


def test_the_moved_names_stay_importable_from_the_lab():
    from vglab.lab import batchnorm_dashboards, conv_dashboards, dashboards, sequence_dashboards, training_dashboards

    assert dashboards.GradientView is experiments.GradientView
    assert dashboards.PHASE_ACTIVATIONS is experiments.PHASE_ACTIVATIONS
    assert dashboards.HISTOGRAM_BATCH == experiments.HISTOGRAM_BATCH == 16
    assert dashboards._tidy is experiments.tidy and dashboards._power_text is experiments.power_text
    assert sequence_dashboards.SequenceView is experiments.SequenceView
    assert batchnorm_dashboards.BatchNormView is experiments.BatchNormView
    assert batchnorm_dashboards.batchnorm_rms is experiments.batchnorm_rms
    assert batchnorm_dashboards.INIT_FOR is experiments.BATCHNORM_INIT
    assert conv_dashboards.smoothed_log10 is experiments.smoothed_log10
    assert training_dashboards.TrainingView is experiments.TrainingView
    assert training_dashboards.NO_CLIP == experiments.NO_CLIP == 0.0


# --------------------------------------------------------------------------------------------- the lab's calls
ENGINES = {"gradient_norms", "jacobian_spectrum", "layer_distributions", "unit_activity", "train", "reserve",
           "train_convnet", "degradation_experiment"}
PURE_MODULES = ("vglab.theory", "vglab.training", "vglab.models", "vglab.core.chain", "vglab.core.banks")


def numerical_calls(source: str) -> list[str]:
    """Calls in ``source`` that reach the numerics other than through vglab.experiments: ``vglab.<engine>(…)``,
    a function of the theory, training or a model module (``theory.chi1(…)``, ``recurrent.reserve(…)``; a
    model's class, ``vglab.RNN(…)``, is not a computation), or a function imported from one of those."""
    tree = ast.parse(source)
    modules, functions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full.startswith(PURE_MODULES) and alias.name[0].islower():
                    bound = alias.asname or alias.name
                    # a module (from vglab import theory) or a function (from vglab.theory import chi1)
                    (modules if full in _MODULE_NAMES else functions).add(bound)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PURE_MODULES):
                    modules.add(alias.asname or alias.name)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            owner, name = func.value.id, func.attr
            if (owner == "vglab" and name in ENGINES) or (owner in modules and name[0].islower()):
                found.append(f"{owner}.{name}")
        elif isinstance(func, ast.Name) and func.id in functions:
            found.append(func.id)
    return found


_MODULE_NAMES = {"vglab.theory", "vglab.training", "vglab.models.recurrent", "vglab.models.transformer",
                 "vglab.models.batchnorm", "vglab.models.convolutional", "vglab.models.jacobians",
                 "vglab.models.mlp", "vglab.models.activity", "vglab.models.stack"}


def test_no_lab_module_calls_an_engine_or_the_theory_except_through_experiments():
    offending = {path.name: numerical_calls(path.read_text(encoding="utf-8")) for path in sorted(LAB.glob("*.py"))}
    assert {name: calls for name, calls in offending.items() if calls} == {}
    assert len(offending) >= 10  # the walk did read the lab


def test_the_call_check_finds_the_direct_calls_the_lab_used_to_make():
    """The check is not vacuous: the calls the dashboards made before vglab.experiments are found."""
    before = '''
import vglab
from vglab import theory
from vglab.models import recurrent
from vglab.theory import pascanu_log10_bound as pascanu_bound

def compute(net, state):
    recurrent.reserve(net, 0, 4)
    norms = vglab.gradient_norms(net, seed=state["seed"], n_seeds=state["n_seeds"])
    if theory.mean_field_applies(net):
        pass
    vglab.RNN(hidden=8)  # a model's constructor: not a computation
    return norms, pascanu_bound(net, 0.0), vglab.jacobian_spectrum(net)
'''
    assert sorted(numerical_calls(before)) == sorted(["recurrent.reserve", "vglab.gradient_norms",
                                                       "theory.mean_field_applies", "pascanu_bound",
                                                       "vglab.jacobian_spectrum"])


@pytest.mark.parametrize("name", sorted(set(STATES) - {"degradation_12"}))
def test_each_lesson_state_names_a_valid_network(name):
    """The states above are complete: each builds its network (a typo in a key would fail here first)."""
    s = STATES[name]
    kind = name.split("_")[0]
    network = {"gradient": experiments.gradient_network, "histograms": experiments.gradient_network,
               "spectrum": experiments.gradient_network, "recurrent": experiments.recurrent_network,
               "transformer": experiments.transformer_network, "training": experiments.training_network,
               "batchnorm": lambda st: experiments.batchnorm_network(st, width=128)}[kind]
    network(s)


# --------------------------------------------------------------------------------------------- bad states, words
@pytest.mark.parametrize(("kind", "change", "message"), [
    ("gradient_00", {"width": None}, r"gradient state: width is None; it needs a value"),
    ("gradient_00", {"sedd": 1}, r"unknown gradient state key 'sedd'; did you mean 'seed'\? \(valid: depth, width, "),
    ("gradient_00", {"residual": "maybe"}, r"gradient state: residual must be True or False, got 'maybe'"),
    ("gradient_00", {"depth": 2.5}, r"gradient state: depth must be an integer, got 2\.5"),
    ("gradient_00", {"sigma_b": "0.1"}, r"gradient state: sigma_b must be a number, got '0\.1'"),
    ("gradient_00", {"activation": 3}, r"gradient state: activation must be a name \(a string\), got 3"),
    ("recurrent_08", {"spectral_radius": None}, r"recurrent state: spectral_radius is None"),
    ("transformer_09", {"heads": True}, r"transformer state: heads must be an integer, got True"),
    ("training_10", {"steps": None}, r"training state: steps is None; it needs a value"),
    ("batchnorm_13", {"activation": "sigmoid"},
     r"unknown activation for the BatchNorm lesson 'sigmoid' \(valid: relu, linear, tanh\)"),
    ("degradation_12", {"seed": None}, r"degradation state: seed is None"),
])
def test_a_bad_state_gets_a_clear_error_naming_what_was_expected(kind, change, message):
    """Review item 5: every experiment checks its state (``experiments.check_state``) before it builds a
    network: a ValueError naming the key and what it needs, never a bare KeyError or TypeError."""
    state = {**STATES[kind], **change}
    call = {"gradient_00": experiments.gradient_network, "recurrent_08": experiments.recurrent_network,
            "transformer_09": experiments.transformer_network, "training_10": experiments.training_arguments,
            "batchnorm_13": lambda s: experiments.batchnorm_network(s, width=8),
            "degradation_12": experiments.degradation_code}[kind]
    with pytest.raises(ValueError, match=message):
        call(state)


def test_a_missing_key_or_a_non_dict_is_named_and_optional_none_is_accepted():
    state = dict(STATES["gradient_00"])
    del state["width"]
    with pytest.raises(ValueError, match=r"the gradient state lacks 'width' \(a gradient state has the keys depth, "):
        experiments.gradient_network(state)
    with pytest.raises(ValueError, match=r"a recurrent state is a dict with keys cell, hidden, .*; got list"):
        experiments.recurrent_network([1])
    assert experiments.gradient_network(STATES["gradient_00"]).weight_std is None  # σ_w None: the init's own
    assert experiments.training_arguments(STATES["training_10"])["clip_norm"] is None
    numpy_flag = experiments.gradient_network({**STATES["gradient_00"], "residual": np.bool_(True)})
    assert numpy_flag.residual is True  # a NumPy bool is a flag (core.config.check_flag), stored as bool
    for name, state in STATES.items():  # every lesson's state passes as it is
        assert experiments.check_state(state, name.split("_")[0].replace("histograms", "gradient")
                                       .replace("spectrum", "gradient")) is state


def test_summary_words():
    """Review item 7: no "10^-0.0", no "1 seeds", no "≈ 0 exactly"; the zero's reason is the one that holds."""
    assert experiments.power_text(-0.04) == "10^0.0" and experiments.power_text(-0.05) == "10^-0.1"
    assert experiments.power_text(-31.24) == "10^-31.2"
    assert experiments.counted(1, "seed") == "1 seed" and experiments.counted(4, "seed") == "4 seeds"
    assert experiments.mean_power_text([-2.0, -4.0]) == "≈ 10^-3.0"
    assert experiments.mean_power_text([-2.0, -np.inf], "why") == "≈ 10^-2.0 (1 of 2 seeds exactly 0: why)"
    assert experiments.mean_power_text([-np.inf], "why") == "= 0 exactly (why)"
    assert experiments.mean_power_text([-np.inf]) == "= 0 exactly"


def test_an_exactly_zero_gradient_is_explained_by_its_actual_cause():
    """Review item 3: σ_w = 0 is not "every unit dead".  σ_w = 0 (no skip): every W_l = 0, so the summary and
    the ▼ note say so; ReLU width 4 (σ_w 0.3, σ_b 1, depth 60): some seeds have a layer with every unit inactive;
    the remaining seeds' mean is the one quoted."""
    s = STATES["gradient_00"]
    zero = experiments.gradient_experiment({**s, "init": "gaussian", "sigma_w": 0.0})
    assert np.all(np.isneginf(zero.norms.log10_gradient_ratio))
    assert experiments.gradient_summary(zero) == ("depth 20, tanh: ‖∂L/∂h₀‖/‖∂L/∂h_L‖ = 0 exactly "
                                                  "(σ_w = 0: every weight is 0)")
    assert "inactive" not in experiments.gradient_summary(zero)
    relu = experiments.gradient_experiment({**s, "depth": 60, "width": 4, "activation": "relu", "init": "gaussian",
                                            "sigma_w": 0.3, "sigma_b": 1.0})
    ratio = relu.norms.log10_gradient_ratio
    zeros = int(np.isneginf(ratio).sum())
    assert 0 < zeros < 4 and np.all(relu.norms.dead_fraction[np.isneginf(ratio)].max(axis=1) == 1.0)
    assert experiments.gradient_summary(relu).endswith(
        f"≈ 10^{np.mean(ratio[np.isfinite(ratio)]):.1f} ({zeros} of 4 seeds exactly 0: every unit of a layer inactive)")
    skip = experiments.gradient_experiment({**s, "init": "gaussian", "sigma_w": 0.0, "residual": True})
    assert np.all(np.isfinite(skip.norms.log10_gradient_ratio))  # the identity carries δ: nothing is 0


def test_the_transformer_summary_names_the_smallest_position_below_the_output():
    """Review item 4: the smallest relative gradient is looked for below the output only (l < L; h₀ the input),
    "1 block" in the singular, and a stack whose gradient grows towards the input says so."""
    t = STATES["transformer_09"]
    plain = experiments.transformer_experiment({**t, "depth": 12, "residual": False, "norm": "none"})
    grads = plain.norms.log10_activation_grad
    relative = np.mean(grads[:, :-1] - grads[:, -1:], axis=0)
    lowest = int(np.argmin(relative))
    where = "the input h₀" if lowest == 0 else f"h_{lowest} (after block {lowest})"
    assert experiments.transformer_summary(plain).endswith(
        f"; smallest at {where}: {experiments.power_text(relative[lowest])} of the output's")
    one = experiments.transformer_experiment({**t, "depth": 1})
    assert experiments.transformer_summary(one).startswith("1 block, residual, pre-LN, gelu: ")
    pre = experiments.transformer_experiment(t)  # lesson 09's pre-LN stack: every h_l's gradient ≥ the output's
    g = pre.norms.log10_activation_grad
    assert np.all(np.mean(g[:, :-1] - g[:, -1:], axis=0) >= 0)
    assert experiments.transformer_summary(pre).endswith("; every h_l at least the output's")
