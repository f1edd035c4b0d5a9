"""The numbers the dashboards show beside a measurement live in the pure layer (issue 14 item 4): the cached
mean-field curve, the sup|φ′| bound and the χ₁ grid in ``vglab.theory``, a training run's summaries in
``vglab.training``, the statistics over seeds in ``vglab.core.results``.  They run with matplotlib, ipywidgets
and IPython unimportable, and the lab only re-exports them under their old names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vglab
from vglab import experiments, theory, training
from vglab.core import results

LAB = Path(vglab.__file__).parent / "lab"

PURE_RUN = r'''
import sys
for name in ("matplotlib", "ipywidgets", "ipympl", "IPython"):
    sys.modules[name] = None  # importing any of them now raises ImportError
import math
import numpy as np
import pytest
import vglab
from vglab import theory, training
from vglab.core.results import mean_and_band

# The mean-field curve: from one cached profile of the deepest net, equal to the direct prediction.
net = vglab.MLP(depth=20, width=64, activation="tanh", weight_std=1.1, bias_std=0.1)
assert theory.mean_field_applies(net) and theory.mean_field_applies(net.replace(residual=True))
assert not any(theory.mean_field_applies(other) for other in (
    net.replace(norm="pre"), vglab.MLP(widths=(3, 5, 5, 2)), net.replace(init="constant"), vglab.RNN()))
assert not theory.mean_field_profile_is_cached(net.replace(depth=50))
curve = theory.cached_predicted_log10_grad(net, -0.3, reuse_depth=50)
assert theory.mean_field_profile_is_cached(net.replace(depth=50))
np.testing.assert_allclose(curve, theory.predicted_log10_grad(net, -0.3), rtol=0, atol=1e-12)
assert curve.shape == (21,) and theory.cached_predicted_log10_grad(net.replace(norm="post"), 0.0) is None
profile = theory.cached_mean_field_profile(net.replace(depth=50))
assert theory.cached_mean_field_profile(net.replace(depth=50)) is profile  # kept, not recomputed

# The closed-form bound sup|φ′|^(L−l) ‖g‖: sigmoid 0.25^(L−l); none where sup|φ′| ≥ 1 or with skips/LN.
sigmoid = vglab.MLP(depth=10, width=8, activation="sigmoid")
np.testing.assert_allclose(theory.log10_derivative_bound_profile(sigmoid, 0.5),
                           0.5 + (10 - np.arange(11)) * math.log10(0.25), rtol=0, atol=1e-12)
for other in (sigmoid.replace(activation="tanh"), sigmoid.replace(activation="relu"),
              sigmoid.replace(residual=True), sigmoid.replace(norm="pre")):
    assert theory.log10_derivative_bound_profile(other, 0.0) is None
with pytest.raises(ValueError, match="log10_derivative_bound_profile expects a vglab.MLP, got RNN"):
    theory.log10_derivative_bound_profile(vglab.RNN(), 0.0)

# The χ₁ grid of the phase diagram, kept per (activation, slope, grids).
grid = theory.cached_chi1_grid("tanh", 0.01, (0.5, 1.0, 2.0), (0.0, 0.1))
np.testing.assert_array_equal(grid, theory.chi1_grid("tanh", np.array([0.5, 1.0, 2.0]), np.array([0.0, 0.1])))
assert grid.shape == (2, 3) and theory.cached_chi1_grid("tanh", 0.01, (0.5, 1.0, 2.0), (0.0, 0.1)) is grid

# Statistics over seeds (or steps) with exact zeros left out.
mean, low, high, zeros = mean_and_band([[0.0, -np.inf, 1.0], [2.0, -np.inf, -np.inf]])
np.testing.assert_array_equal(mean, [1.0, np.nan, 1.0])
np.testing.assert_array_equal(low, [0.0, np.nan, 1.0])
np.testing.assert_array_equal(high, [2.0, np.nan, 1.0])
np.testing.assert_array_equal(zeros, [0, 2, 1])

# A training run's summaries.
rng = np.random.default_rng(0)
data = (rng.normal(size=(64, 5)).astype(np.float32), rng.integers(0, 3, 64).astype(np.int32))
history = vglab.train(vglab.MLP(depth=4, width=8, activation="sigmoid"), data=data, steps=15, seed=0)
np.testing.assert_array_equal(training.mean_update_ratio(history, skip=5), history.update_ratio[5:].mean(axis=0))
ratio = history.update_ratio[5:]
expected = math.log10(ratio[:, :2].mean() / ratio[:, -2:].mean())
assert abs(training.learning_layers_ratio(history, layers=2, skip=5) - expected) <= 1e-12 * abs(expected)
np.testing.assert_allclose(training.profile_statistics(history.log10_update_ratio)[0],
                           np.log10(history.update_ratio).mean(axis=0), rtol=1e-12)
for call, message in [
    (lambda: training.mean_update_ratio(history, skip=15),
     r"skip must be an integer in 0\.\.14 \(steps completed − 1\), got 15"),
    (lambda: training.mean_update_ratio(history, skip=2.5), r"skip must be an integer in 0\.\.14 .*got 2\.5"),
    (lambda: training.learning_layers_ratio(history, layers=0), r"layers must be an integer in 1\.\.4 \(the depth\)"),
    (lambda: training.learning_layers_ratio(history, layers=True), r"layers must be an integer in 1\.\.4"),
    (lambda: training.mean_update_ratio("history"),
     r"mean_update_ratio expects a vglab.TrainingHistory \(what vglab.train returns\), got str"),
]:
    with pytest.raises(ValueError, match=message):
        call()

# The dashboards' experiments (vglab.experiments; tests/test_experiments.py tests each against the engine).
from vglab import experiments
state = dict(depth=6, width=8, activation="sigmoid", init="xavier", sigma_w=None, sigma_b=0.0, residual=False,
             norm="none", residual_scale=1.0, leaky_slope=0.01, seed=0, n_seeds=2, theory=True)
view = experiments.gradient_experiment(state, max_depth=10)
np.testing.assert_array_equal(view.norms.log10_activation_grad, vglab.gradient_norms(
    vglab.MLP(depth=6, width=8, activation="sigmoid"), seed=0, n_seeds=2).log10_activation_grad)
assert experiments.gradient_summary(view).startswith("depth 6, sigmoid: ‖∂L/∂h₀‖/‖∂L/∂h_L‖ ≈ 10^")
assert not any(m.startswith("vglab.lab") for m in sys.modules)

loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "ipywidgets", "ipympl", "IPython")
                and sys.modules[m] is not None)
print("pure numerics ran without", loaded or "matplotlib, ipywidgets, ipympl or IPython")
'''


def test_the_moved_numerics_run_without_matplotlib_or_ipywidgets():
    """In a fresh interpreter where importing matplotlib, ipywidgets, ipympl or IPython raises ImportError."""
    out = subprocess.run([sys.executable, "-c", PURE_RUN], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "pure numerics ran without matplotlib, ipywidgets, ipympl or IPython" in out.stdout


MOVED = {  # old name in the lab → the pure function it now is
    "dashboards": {"theory_profile": theory.cached_mean_field_profile,
                   "theory_profile_is_cached": theory.mean_field_profile_is_cached,
                   "theory_applies": theory.mean_field_applies,
                   "theory_curve": theory.cached_predicted_log10_grad,
                   "bound_curve": theory.log10_derivative_bound_profile},
    "training_dashboards": {"profile_statistics": training.profile_statistics,
                            "mean_update_ratio": training.mean_update_ratio,
                            "learning_layers_ratio": training.learning_layers_ratio},
    "plots": {"mean_and_band": results.mean_and_band},
    "conv_dashboards": {"smoothed_log10": experiments.smoothed_log10},
    "batchnorm_dashboards": {"batchnorm_rms": experiments.batchnorm_rms},
}


def test_the_lab_keeps_the_old_names_as_the_pure_functions_themselves():
    import importlib

    import matplotlib

    matplotlib.use("Agg")
    for module, names in MOVED.items():
        lab = importlib.import_module(f"vglab.lab.{module}")
        for name, pure in names.items():
            assert getattr(lab, name) is pure, (module, name)


def test_the_lab_defines_none_of_the_moved_numerics():
    """Read from the source: no lab module defines these functions (or the old phase-grid cache) again."""
    moved = {name for names in MOVED.values() for name in names} | {"_phase_grid", "_quiet_nan_warnings"}
    defined = {(path.name, node.name) for path in LAB.glob("*.py")
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    assert sorted(d for d in defined if d[1] in moved) == []
    assert len(defined) > 100  # the walk did read the lab
