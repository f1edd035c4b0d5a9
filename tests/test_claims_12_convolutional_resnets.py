"""Every claim notebook 12 (convolutional networks and the degradation problem) makes, built and asserted.

The training runs are the notebook's own (``degradation_experiment(deep=24, steps=300, seed)``, the sizes in
``vglab.models.convolutional.DEGRADATION``), for seed 0 (the notebook's) and seed 1 (try-this 3 says both hold)."""

import numpy as np
import pytest

import vglab
from vglab.models.convolutional import degradation_experiment

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def runs(request):
    return list(degradation_experiment(deep=24, steps=300, seed=request.param).values())


def test_12_the_deeper_plain_network_trains_worse(runs):
    """"a deeper **plain** network trains *worse* than a shallower one, on the training set itself" — the
    24-layer plain net's final loss on the whole training split is above the 4-layer net's (by ≥ 0.2)."""
    (shallow, _), (plain, _), _ = runs
    assert plain.train_loss > shallow.train_loss + 0.2


def test_12_the_deep_residual_network_trains_best(runs):
    """"24-layer residual trains best" — below both plain nets' training loss, by a factor ≥ 2."""
    (shallow, _), (plain, _), (residual, _) = runs
    assert residual.train_loss < 0.5 * min(shallow.train_loss, plain.train_loss)


def test_12_the_deep_plain_gradient_does_not_vanish_at_initialisation(runs):
    """"with He initialisation, the deep plain network's gradient does **not** vanish at initialisation" /
    "stays within a decade from the output to the input"."""
    _, (_, log10_grad), _ = runs
    assert log10_grad.shape == (25,)
    assert abs(log10_grad[0] - log10_grad[-1]) < 1.0
    assert np.ptp(log10_grad) < 1.0


def test_12_without_normalisation_the_residual_gradient_grows_four_decades():
    """"Without normalisation the 24-layer residual network's input gradient is about four decades larger than
    its output gradient" — 3.5 to 4.5 decades on each of the notebook's three seeds."""
    lost = vglab.gradient_norms(vglab.ConvNet(depth=24, channels=16, residual=True), seed=0, n_seeds=3)
    assert np.all((lost.log10_gradient_ratio > 3.5) & (lost.log10_gradient_ratio < 4.5))


def test_12_with_pre_layernorm_the_growth_stays_below_one_decade():
    """"With pre-LayerNorm the growth stays below one decade" — it still grows (> 0), by less than 1."""
    net = vglab.ConvNet(depth=24, channels=16, residual=True, norm="pre")
    ratio = vglab.gradient_norms(net, seed=0, n_seeds=3).log10_gradient_ratio
    assert np.all((ratio > 0.0) & (ratio < 1.0))
