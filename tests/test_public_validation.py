"""Every public function checks its arguments like the constructors do: type, range, finiteness, names."""

import math

import numpy as np
import pytest

import vglab
from vglab import theory

NAN = math.nan
MLP = vglab.MLP(depth=3, width=4)
RNN = vglab.RNN(hidden=4, steps=5, spectral_radius=0.5)


@pytest.mark.parametrize("call,message", [
    (lambda: theory.predicted_log10_grad(None), r"predicted_log10_grad expects a vglab\.MLP, got NoneType"),
    (lambda: theory.predicted_log10_grad(MLP, NAN), r"log10_output_grad must be finite, got nan"),
    (lambda: theory.predicted_log10_grad(MLP, "0"), r"log10_output_grad must be a real number, got '0'"),
    (lambda: theory.mean_field_profile(RNN), r"mean_field_profile expects a vglab\.MLP, got RNN"),
    (lambda: theory.pascanu_log10_bound(MLP, 0.0), r"pascanu_log10_bound expects a vglab\.RNN, got MLP"),
    (lambda: theory.pascanu_log10_bound(RNN, math.inf), r"log10_output_grad must be finite, got inf"),
    (lambda: theory.linear_rnn_log10_grad(MLP, 0.0), r"linear_rnn_log10_grad expects a vglab\.RNN, got MLP"),
    (lambda: theory.chi(-1.0, "tanh", 1.0), r"q must be in \[0\.0, inf\], got -1\.0"),
    (lambda: theory.chi(NAN, "tanh", 1.0), r"q must be finite, got nan"),
    (lambda: theory.chi(1.0, "tanh", -1.0), r"sigma_w must be in \[0\.0, 100\.0\], got -1\.0"),
    (lambda: theory.chi(1.0, "tahn", 1.0), r"unknown activation 'tahn'; did you mean 'tanh'\?"),
    (lambda: theory.chi1("leaky_relu", 1.0, leaky_slope=NAN), r"leaky_slope must be finite, got nan"),
    (lambda: theory.chi1("relu", 1.0, sigma_b=-0.5), r"sigma_b must be in \[0\.0, 100\.0\], got -0\.5"),
    (lambda: theory.chi1("relu", "1"), r"sigma_w must be a real number, got '1'"),
    (lambda: theory.q_star("tanh", 1.0, q0=-1.0), r"q0 must be in \[0\.0, 1000000000000\.0\], got -1\.0"),
    (lambda: theory.length_map(1.0, "gelu", 1.0, NAN), r"sigma_b must be finite, got nan"),
    (lambda: theory.depth_scale("tanh", 1.0, leaky_slope=20.0), r"leaky_slope must be in \[-10\.0, 10\.0\]"),
    (lambda: theory.mean_activation("relu", -2.0), r"q must be in \[0\.0, inf\], got -2\.0"),
    (lambda: theory.mean_square_activation("sigmod", 1.0), r"did you mean 'sigmoid'\?"),
    (lambda: theory.mean_square_derivative("tanh", None), r"q must be a real number, got None"),
    (lambda: theory.log10_derivative_bound("sigmoid", -1), r"depth must be an integer in 0\.\.1000000000, got -1"),
    (lambda: theory.log10_derivative_bound("sigmoid", 2.5), r"depth must be an integer"),
    (lambda: theory.critical_sigma_w("tanh", sigma_b=NAN), r"sigma_b must be finite, got nan"),
    (lambda: theory.chi1_grid("tanh", [1.0, -2.0], [0.0]), r"sigma_w2 must be a 1-D array of finite variances"),
    (lambda: theory.chi1_grid("tanh", [1.0], [[0.0]]), r"sigma_b2 must be a 1-D array of finite variances"),
    (lambda: theory.chi1_grid("tanh", [1.0], ["a"]), r"sigma_b2 must be a 1-D array of variances"),
    (lambda: theory.mean_field_profile(MLP.replace(depth=5)).log10_grad(6), r"depth must be an integer in 1\.\.5"),
    (lambda: theory.mean_field_profile(MLP).log10_grad(2, NAN), r"log10_output_grad must be finite, got nan"),
    (lambda: vglab.sup_derivative("leaky_relu", NAN), r"leaky_slope must be finite, got nan"),
    (lambda: vglab.sup_derivative("leaky_relu", "0.1"), r"leaky_slope must be a real number, got '0\.1'"),
    (lambda: vglab.sup_derivative("rel", 0.1), r"unknown activation 'rel'; did you mean 'relu'\?"),
], ids=lambda x: "" if callable(x) else x[:40])
def test_public_functions_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_valid_arguments_still_work_including_the_saturated_limit():
    assert 0.0 <= theory.chi(math.inf, "tanh", 1.0) < 1e-6  # q = ∞ (capped at 1e12): tanh saturated
    assert theory.chi(np.float32(1.0), "relu", np.float64(2.0) ** 0.5) == pytest.approx(1.0)
    assert theory.depth_scale("relu", 0.0) == 0.0  # σ_w = 0: χ₁ = 0, the gradient is gone after one layer
    assert vglab.sup_derivative("leaky_relu", -3.0) == 3.0
    assert theory.chi1_grid("tanh", np.array([1.0, 4.0]), [0.0]).shape == (1, 2)


@pytest.mark.parametrize("label,message", [
    (10**9, r"data y_train must hold class labels in 0\.\.9999 \(at most 10000 classes.*got a label of 1000000000"),
    (10**10, r"got a label of 10000000000"),
    (-1, r"data y_train must be a 1-D array of integer class labels"),
])
def test_train_rejects_labels_out_of_range_before_allocating(label, message):
    x = np.zeros((4, 3), np.float32)
    y = np.array([0, 1, 1, label], np.int64)
    with pytest.raises(ValueError, match=message):
        vglab.train(vglab.MLP(depth=2, width=4), data=(x, y), steps=1, batch_size=2)


def test_train_rejects_float_labels_and_test_labels_out_of_range():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"integer class labels 0\.\.C−1, got dtype float64"):
        vglab.train(MLP, data=(x, np.array([0.0, 1.0, 1.0, 0.0])), steps=1, batch_size=2)
    y = np.array([0, 1, 1, 0])
    with pytest.raises(ValueError, match=r"data y_test must hold class labels in 0\.\.9999"):
        vglab.train(MLP, data=(x, y, x, np.array([0, 1, 2, 10**6])), steps=1, batch_size=2)
