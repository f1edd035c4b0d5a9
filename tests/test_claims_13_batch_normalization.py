"""Every claim notebook 13 (batch normalization) makes, built and asserted.

Each test quotes its sentence (checked to be still in the notebook) and builds the configuration the lesson
states; the dashboard tests replay the notebook's own ``dash = BatchNormDashboard(…)`` and read what it plots."""

import math

import numpy as np
import pytest

import vglab
from tests import notebook_replay

STEM = "13_batch_normalization"
pytestmark = pytest.mark.slow
SQRT_HALF = math.log10(math.sqrt(0.5))


def says(text):
    assert " ".join(text.split()) in " ".join(notebook_replay.markdown(STEM).split()), text


@pytest.fixture(scope="module")
def lesson_net():
    net = vglab.BatchNormMLP(depth=50, width=128, batch=32, activation="relu")
    return vglab.gradient_norms(net, seed=0, n_seeds=2)


@pytest.fixture(scope="module")
def dash():
    return notebook_replay.build(STEM, warm_up=False)


def test_13_every_layer_keeps_rms_sqrt_half(lesson_net):
    """"Every layer's activations have RMS $\\sqrt{1/2}$ (a ReLU of a unit-variance unit), at layer 1 and at
    layer 50" — within 2 % at every layer of both seeds."""
    says("Every layer's activations have RMS $\\sqrt{1/2}$ (a ReLU of a unit-variance unit), at layer 1 and at layer 50")
    np.testing.assert_allclose(10 ** lesson_net.log10_activation_rms, math.sqrt(0.5), rtol=0.02)


def test_13_yet_the_input_gradient_is_above_ten_thousand_times_the_output(lesson_net):
    """"Yet the input gradient is more than $10^4$ times the output gradient." — on each seed."""
    says("Yet the input gradient is more than $10^4$ times the output gradient.")
    assert np.all(lesson_net.log10_gradient_ratio > 4.0)


def test_13_batch_32_grows_about_12_percent_faster_than_the_limit(lesson_net):
    """"measured beyond layer 5, the growth is about 12 % faster than that limit" — 7 % to 17 % above
    ½ log10 π/(π−1) per layer (layers 45 → 5, root mean square over the 2 seeds)."""
    says("measured beyond layer 5, the growth is about 12 % faster than that limit")
    g = lesson_net.log10_rms_activation_grad
    ratio = (g[5] - g[45]) / 40 / (0.5 * math.log10(vglab.theory.batchnorm_gradient_growth("relu")))
    assert 1.07 < ratio < 1.17


def test_13_at_batch_128_width_256_it_agrees_within_5_percent():
    """"at batch 128 and width 256 it agrees within 5 %" — 40 layers, 4 seeds, layers 35 → 5."""
    says("at batch 128 and width 256 it agrees within 5 %")
    net = vglab.BatchNormMLP(depth=40, width=256, batch=128, activation="relu")
    g = vglab.gradient_norms(net, seed=0, n_seeds=4).log10_rms_activation_grad
    predicted = 0.5 * math.log10(vglab.theory.batchnorm_gradient_growth("relu"))
    assert (g[5] - g[35]) / 30 == pytest.approx(predicted, rel=0.05)


def test_13_end_state_four_decades_flat_vermillion_flat_blue_activations(dash):
    """End state after Run All: "the blue gradient falls by about four decades from the input to the output
    while the vermillion one stays flat, and the blue activations are a flat line at $\\sqrt{1/2}$" — as
    plotted: 3.5 to 5 decades; the no-BN curve within half a decade end to end; blue RMS within 0.01 decades
    of √½ at every layer; the prediction is drawn."""
    says("the blue gradient falls by about four decades from the input to the output while the vermillion one "
         "stays flat, and the blue activations are a flat line at $\\sqrt{1/2}$")
    assert dash.state["residual"] is False and dash.state["activation"] == "relu" and dash.state["depth"] == 50
    lines = dash.plotted()
    bn = lines["gradient"]["mean"]
    plain = lines["gradient without BatchNorm"]["mean"]
    rms = lines["activations"]["mean"]
    assert 3.5 < bn[0] - bn[-1] < 5.0
    assert np.ptp(plain) < 0.5
    np.testing.assert_allclose(rms, SQRT_HALF, atol=0.01)
    assert lines["gradient"]["theory"].size == 51 and dash.theory_line.get_visible()


def test_13_try_1_residual_about_ten_times_and_without_bn_ten_decades(dash):
    """Try this 1: "With BatchNorm the input gradient is now only about ten times the output's" (10^0.5 to
    10^1.5 as plotted) and "without BatchNorm the residual ReLU net's gradient and activations both grow by
    more than ten decades"."""
    says("With BatchNorm the input gradient is now only about ten times the output's")
    says("without BatchNorm the residual ReLU net's gradient and activations both grow by more than ten decades")
    dash.set(residual=True)
    try:
        lines = dash.plotted()
        bn = lines["gradient"]["mean"]
        plain = lines["gradient without BatchNorm"]["mean"]
        plain_rms = lines["activations without BatchNorm"]["mean"]
        assert 0.5 < bn[0] - bn[-1] < 1.5
        assert plain[0] - plain[-1] > 10 and plain_rms[-1] - plain_rms[0] > 10
        assert not dash.theory_line.get_visible()  # the prediction is for plain nets only
    finally:
        dash.set(residual=False)


def test_13_try_2_linear_explosion_grows_as_the_batch_shrinks(dash):
    """Try this 2: "the explosion is small at large batch and grows as the batch shrinks" — linear, batch 128
    < 32 < 8 in decades gained, batch 128 under half a decade."""
    says("the explosion is small at large batch and grows as the batch shrinks")
    decades = {}
    try:
        for batch in (128, 32, 8):
            dash.set(activation="linear", batch=batch)
            bn = dash.plotted()["gradient"]["mean"]
            decades[batch] = bn[0] - bn[-1]
    finally:
        dash.set(activation="relu", batch=32)
    assert decades[128] < 0.5 and decades[128] < decades[32] < decades[8]


def test_13_try_3_tanh_explodes_too(dash):
    """Try this 3: "BN's explosion does not need ReLU (about two decades over 50 layers, where the same tanh net
    without BN decays" — tanh with BN gains 1.5 to 2.5 decades as plotted, without BN it loses (< 0)."""
    says("BN's explosion does not need ReLU (about two decades over 50 layers, where the same tanh net without BN decays")
    try:
        dash.set(activation="tanh")
        lines = dash.plotted()
        bn = lines["gradient"]["mean"]
        plain = lines["gradient without BatchNorm"]["mean"]
        assert 1.5 < bn[0] - bn[-1] < 2.5 and plain[0] - plain[-1] < 0.0
    finally:
        dash.set(activation="relu")


def test_13_try_4_decades_in_proportion_to_depth(dash):
    """Try this 4: "in the plain BN net the decades grow in proportion to depth" — depth 64 gains 1.7 to 2.3
    times the decades of depth 32."""
    says("in the plain BN net the decades grow in proportion to depth")
    gained = {}
    try:
        for depth in (32, 64):
            dash.set(depth=depth)
            bn = dash.plotted()["gradient"]["mean"]
            gained[depth] = bn[0] - bn[-1]
    finally:
        dash.set(depth=50)
    assert 1.7 < gained[64] / gained[32] < 2.3


def test_13_self_check_linear_batch_8_is_four_decades_over_100_layers():
    """Self-check: 100 · ½ log10 (6/5) = 3.96 decades; and the engine agrees (width 256, 4 seeds, layers 5..95,
    within 10 %)."""
    assert 100 * 0.5 * math.log10(vglab.theory.batchnorm_gradient_growth("linear", batch=8)) == pytest.approx(3.96, abs=0.01)
    net = vglab.BatchNormMLP(depth=100, width=256, batch=8, activation="linear")
    g = vglab.gradient_norms(net, seed=0, n_seeds=4).log10_rms_activation_grad
    assert (g[5] - g[95]) / 90 == pytest.approx(0.5 * math.log10(1.2), rel=0.10)
