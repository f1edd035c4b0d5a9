"""Every claim of notebooks/11_jacobian_spectra.ipynb about what the engine shows, as a test.

Each test builds the configuration the sentence states, runs vglab, and asserts the sentence at the stated
tolerance; the docstring quotes the sentence, and ``quoted`` checks it is still in the notebook.
"""

import numpy as np

import vglab
from tests.claims_replay import markdown, replay

STEM = "11_jacobian_spectra"
TEXT = markdown(STEM)


def quoted(sentence: str) -> None:
    assert " ".join(sentence.split()) in " ".join(TEXT.split()), f"no longer in {STEM}: {sentence!r}"


def spectrum(depth, **options):
    options = {"width": 64, **options}
    return vglab.jacobian_spectrum(vglab.MLP(depth=depth, **options), seed=0).log10_singular_values


def spread(values):
    return values[0] - values[-1]


def test_linear_orthogonal_is_exactly_isometric():
    """"A linear network with orthogonal weights is exactly isometric" — every σ_i = 1 to 1e-4 decades at
    depths 1, 8 and 64."""
    quoted("A **linear** network with **orthogonal** weights is exactly isometric")
    for depth in (1, 8, 64):
        assert np.abs(spectrum(depth, activation="linear", init="orthogonal")).max() < 1e-4


def test_gaussian_spread_grows_linearly_with_depth_in_log_scale():
    """"a product of L random Gaussian matrices has singular values spread over a range that grows linearly
    with L in log scale, even when the norm is preserved" — linear, Gaussian (σ_w = 1): the spread grows by the
    same amount per layer from depth 16 to 32 as from 32 to 64 (within 15 %), more than 30 decades at depth 32;
    values down to 10^−30 finite (resolved, not underflowed)."""
    quoted("spread over a range that grows linearly with $L$ in log scale")
    spreads = {d: spread(spectrum(d, activation="linear", init="gaussian")) for d in (16, 32, 64)}
    slope_low, slope_high = (spreads[32] - spreads[16]) / 16, (spreads[64] - spreads[32]) / 32
    assert slope_low > 0.5 and abs(slope_high / slope_low - 1) < 0.15, spreads
    deep = spectrum(32, activation="linear", init="gaussian")
    assert spread(deep) > 30 and np.all(np.isfinite(deep)) and deep[-1] < -30


def test_tanh_orthogonal_at_the_edge_of_chaos_is_not_isometric_but_its_spread_barely_grows():
    """"tanh with orthogonal weights at the edge of chaos (σ_w = 1, σ_b = 0) is not isometric here, but its
    spread barely grows with depth: about 2.4 decades at depth 16 and 3 at depth 64, against 23 and 78 for
    Gaussian weights" — each within 0.4 decades (orthogonal) / 3 decades (Gaussian) of the stated value;
    orthogonal's σ_min below 10^−2 (not isometric)."""
    quoted("is not isometric here,\n  but its spread barely grows with depth: about 2.4 decades at depth 16 and 3 "
           "at depth 64, against 23 and 78\n  for Gaussian weights")
    orthogonal = {d: spectrum(d, activation="tanh", init="orthogonal") for d in (16, 64)}
    gaussian = {d: spread(spectrum(d, activation="tanh", init="gaussian")) for d in (16, 64)}
    assert abs(spread(orthogonal[16]) - 2.4) < 0.4 and abs(spread(orthogonal[64]) - 3.0) < 0.4
    assert abs(gaussian[16] - 23) < 3 and abs(gaussian[64] - 78) < 3, gaussian
    assert orthogonal[16][-1] < -2


def test_one_tanh_layer_of_unit_variance_inputs_spreads_the_spectrum_over_more_than_a_decade():
    """"vglab's inputs have unit variance, so some units start out saturated, and one tanh layer alone spreads
    the spectrum over more than a decade" and "isometry … only in the limit q* → 0 (σ_w → 1, σ_b → 0)" — depth
    1, orthogonal, σ_w = 1: spread above 1 decade; q*(σ_w = 1, σ_b = 0) below 1e-2 while the input's q = 1."""
    quoted("one tanh layer alone spreads the spectrum over more than a decade")
    assert spread(spectrum(1, activation="tanh", init="orthogonal")) > 1
    assert vglab.theory.q_star("tanh", 1.0, 0.0) < 1e-2


def test_try_this_2_below_one_narrow_but_sliding_down_above_one_reaching_one_but_spreading():
    """Try this 2: "below 1 the spectrum stays narrow but slides down, above 1 its top reaches 1 while its bottom
    spreads" — tanh, orthogonal, depth 16 (the dashboard's), σ_w = 0.8 … 1.5: the spread and σ_max both grow
    with σ_w; at 0.8 σ_max is below 10^−1 and the spread below 2 decades; at 1.1 σ_max is within 0.2 decades of
    1; at 1.5 the spread is more than 2 decades wider than at 1."""
    quoted("below 1 the\n   spectrum stays narrow but slides down, above 1 its top reaches 1 while its bottom spreads")
    by_sigma = {s: spectrum(16, activation="tanh", init="orthogonal", weight_std=s) for s in (0.8, 0.9, 1.0, 1.1, 1.5)}
    spreads = [spread(v) for v in by_sigma.values()]
    tops = [v[0] for v in by_sigma.values()]
    assert np.all(np.diff(spreads) > 0) and np.all(np.diff(tops) > 0), (spreads, tops)
    assert tops[0] < -1 and spreads[0] < 2 and abs(by_sigma[1.1][0]) < 0.2 and spreads[-1] > spreads[2] + 2


def test_relu_orthogonal_loses_rank_exact_zeros_reported_as_minus_infinity():
    """"ReLU cannot be isometric, because φ′ ∈ {0, 1} zeroes whole rows: the product loses rank" and "exactly
    zero ones are reported as −∞" — ReLU, orthogonal, σ_w = √2, depth 16: more than 16 of 64 values −inf, the
    rest finite."""
    quoted("zeroes whole rows: the product loses rank")
    quoted("exactly zero ones are reported as $-\\infty$")
    values = spectrum(16, activation="relu", init="orthogonal", weight_std=np.sqrt(2.0))
    zeros = np.isneginf(values)
    assert zeros.sum() > 16 and np.all(np.isfinite(values[~zeros]))


def test_end_state_orthogonal_tanh_at_depth_64_beside_the_pinned_gaussian():
    """End state after Run All (the notebook's dashboard, set and pin calls, replayed): "Run All ends on the two
    spectra side by side, 78 decades wide against 3" — the plotted spectrum is tanh/orthogonal at depth 64
    with a spread within 0.4 of 3 decades, and one pinned curve (Gaussian, depth 64) whose spread is within 3
    of 78."""
    quoted("Run All ends on the two\nspectra side by side, 78 decades wide against 3")
    dash = replay(STEM)["dash"]
    net = dash.result.net
    assert (net.activation, net.init, net.depth) == ("tanh", "orthogonal", 64)
    shown = dash.plotted()["spectrum"]["log10_singular_values"]
    assert abs(spread(shown) - 3.0) < 0.4
    pinned = dash.plots["spectrum"].pins  # the pinned curves' lines
    assert len(pinned) == 1, "one pinned curve"
    pinned_values = np.asarray(pinned[0].get_ydata(), float)
    assert abs(spread(pinned_values) - 78) < 3
