"""vglab.layer_distributions: per-layer histograms against float64 references (tests/reference.py).

Every net here has width 32 and depth in the 64..256 bucket with batch 8, so the programs compile once per
activation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from tests import reference
from vglab.models import jacobians
from vglab.models.activity import batch_inputs

WIDTH, BATCH = 32, 8


def float64_batch(net, seed=0):
    """Ws, bs, the batch's inputs (B, n) and g, all float64 copies of the engine's draws."""
    Ws, bs, _, g = reference.parameters(net, seed)
    bank = jacobians.weight_bank((seed,), net.width, net.orthogonal, net.depth)
    return Ws, bs, np.asarray(batch_inputs(bank, seed, BATCH), np.float64), g


def reference_log10_deltas(net, seed=0):
    """(L+1, B, n) log10|∂L/∂h_l| for every input of the batch, by float64 jax.vjp through each layer."""
    Ws, bs, X, g = (jnp.asarray(a) for a in float64_batch(net, seed))
    step = jax.jit(lambda W, b, h, d: jax.vjp(lambda u: reference.layer(net, W, b, u), h)[1](d)[0])
    out = np.empty((net.depth + 1, BATCH, net.width))
    for b_, x in enumerate(X):
        hs = reference.activations(net, Ws, bs, x)
        delta = g
        out[net.depth, b_] = np.log10(np.abs(np.asarray(delta)))
        for l in range(net.depth - 1, -1, -1):
            delta = step(Ws[l], bs[l], hs[l], delta)
            with np.errstate(divide="ignore"):
                out[l, b_] = np.log10(np.abs(np.asarray(delta)))
    return out


def assert_within_one_bin(counts, values, edges):
    """Each row of ``counts`` is the histogram of that row of ``values`` with every entry moved by at most one
    bin: cumulative counts C(k) lie between the reference's C(k−1) and C(k+1)."""
    bins = len(edges) - 1
    for row, (got, vals) in enumerate(zip(counts, values, strict=True)):
        idx = np.clip(np.floor((vals - edges[0]) / (edges[-1] - edges[0]) * bins), 0, bins - 1).astype(int)
        want = np.bincount(idx.ravel(), minlength=bins)
        c_got, c_want = np.cumsum(got), np.cumsum(want)
        below = np.concatenate([[0], c_want[:-1]])
        above = np.concatenate([c_want[1:], [c_want[-1]]])
        assert np.all((below <= c_got) & (c_got <= above)), (row, got, want)
        assert np.sum(np.abs(got - want)) <= 0.02 * vals.size + 2, (row, got, want)  # nearly all identical


@pytest.fixture(scope="module")
def deep_sigmoid():
    net = vglab.MLP(depth=100, width=WIDTH, activation="sigmoid")
    return net, vglab.layer_distributions(net, batch=BATCH)


def test_every_histogram_row_counts_each_entry_once(deep_sigmoid):
    net, d = deep_sigmoid
    entries = BATCH * WIDTH
    assert d.entries == entries
    assert d.activation_counts.shape == (net.depth, 40) and d.gradient_counts.shape == (net.depth + 1, 40)
    np.testing.assert_array_equal(d.activation_counts.sum(axis=1), entries)
    np.testing.assert_array_equal(d.saturation_counts.sum(axis=1) + d.saturation_zero, entries)
    np.testing.assert_array_equal(d.gradient_counts.sum(axis=1) + d.gradient_zero, entries)


def test_deep_sigmoid_gradients_sit_near_1e_minus_63_and_every_entry_has_a_bin(deep_sigmoid):
    """Sigmoid, Xavier, depth 100: measured mean log10|∂L/∂h_0,i| = −62.96 over 8 × 32 entries; no entry is 0."""
    net, d = deep_sigmoid
    assert np.all(d.gradient_zero == 0) and np.all(np.isfinite(d.gradient_mean_log10))
    assert -66.0 < d.gradient_mean_log10[0] < -60.0, d.gradient_mean_log10[0]
    assert d.gradient_edges[0] <= -63.0 and d.gradient_edges[-1] >= 0.0
    centre_bin = np.argmax(d.gradient_counts[0])
    assert -70.0 < d.gradient_edges[centre_bin] < -58.0
    # the profile falls with depth: input-side layers sit ~60 decades below the output's
    assert d.gradient_mean_log10[0] < d.gradient_mean_log10[50] - 25 < d.gradient_mean_log10[-1] - 50


def test_gradient_histogram_agrees_with_float64_vjp_per_entry_within_one_bin(deep_sigmoid):
    net, d = deep_sigmoid
    ref = reference_log10_deltas(net)
    assert np.all(np.isfinite(ref))
    assert_within_one_bin(d.gradient_counts, ref.reshape(net.depth + 1, -1), d.gradient_edges)
    np.testing.assert_allclose(d.gradient_mean_log10, ref.mean(axis=(1, 2)), atol=2e-4)


def test_activation_and_saturation_histograms_agree_with_float64_forward(deep_sigmoid):
    net, d = deep_sigmoid
    Ws, bs, X, _ = float64_batch(net)
    h = np.stack([np.stack([np.asarray(v) for v in reference.activations(net, Ws, bs, x)[1:]]) for x in X], 1)
    assert_within_one_bin(d.activation_counts, h.reshape(net.depth, -1), d.activation_edges)
    z = np.log(h / (1 - h))  # sigmoid⁻¹: z_l from h_l
    log10_sat = np.log10(h * (1 - h) / 0.25).reshape(net.depth, -1)
    assert_within_one_bin(d.saturation_counts, log10_sat, d.saturation_edges)
    np.testing.assert_allclose(d.saturated_fraction, np.mean(log10_sat <= -1, axis=1), atol=1.5 / z[0].size)


def test_relu_dead_units_over_a_batch_match_a_direct_numpy_count():
    net = vglab.MLP(depth=100, width=WIDTH, activation="relu", init="xavier", bias_std=0.3)
    d = vglab.layer_distributions(net, batch=BATCH)
    Ws, bs, X, _ = float64_batch(net)
    inactive = np.zeros((net.depth, BATCH, WIDTH), bool)
    for b_, x in enumerate(X):
        h = x
        for l in range(net.depth):
            z = Ws[l] @ h + bs[l]
            inactive[l, b_] = z <= 0
            h = np.maximum(z, 0.0)
    dead = inactive.all(axis=1).mean(axis=1)
    assert dead.max() > 0.1  # the test can fail: this net has dead units
    np.testing.assert_allclose(d.dead_fraction, dead, atol=1.01 / WIDTH)
    assert np.mean(np.abs(d.dead_fraction - dead) > 1e-9) < 0.05
    # φ′ = 0 exactly is what the saturation histogram counts apart, entry by entry
    np.testing.assert_allclose(d.saturation_zero / d.entries, inactive.mean(axis=(1, 2)), atol=1.01 / d.entries)


@pytest.mark.parametrize("activation, sigma_w", [("tanh", 40.0), ("sigmoid", 8.0), ("gelu", 4.0)])
def test_smooth_activations_never_report_dead_units_even_saturated(activation, sigma_w):
    net = vglab.MLP(depth=100, width=WIDTH, activation=activation, weight_std=sigma_w)
    d = vglab.layer_distributions(net, batch=BATCH)
    assert np.all(d.dead_fraction == 0) and np.all(d.inactive_fraction == 0)
    assert np.all(d.saturation_zero == 0) and np.all(d.gradient_zero == 0)
    if activation == "tanh":  # the units are deeply saturated, yet each still has a (tiny) φ′ and a bin
        assert d.saturated_fraction.mean() > 0.9 and d.saturation_counts[:, 0].sum() > 0


def test_the_share_beyond_the_activation_range_matches_a_float64_count(deep_sigmoid):
    """A range [0.4, 0.6] that the sigmoid's h_l leave: the share beyond it, over all h_{l,i}, l = 1..L, is the
    float64 forward's share (within one entry per layer: an entry on an edge may fall either way)."""
    net, _ = deep_sigmoid
    d = vglab.layer_distributions(net, batch=BATCH, activation_range=(0.4, 0.6))
    Ws, bs, X, _ = float64_batch(net)
    h = np.stack([np.stack([np.asarray(v) for v in reference.activations(net, Ws, bs, x)[1:]]) for x in X], 1)
    want = np.mean((h < 0.4) | (h > 0.6))
    assert 0.05 < want < 0.95, want  # the range really cuts the distribution
    assert d.activation_outside_share == pytest.approx(want, abs=net.depth / h.size)
    inside = vglab.layer_distributions(net, batch=BATCH, activation_range=(-1.0, 2.0))
    assert inside.activation_outside_share == 0.0


def test_fixed_ranges_are_used_and_bad_arguments_are_named():
    net = vglab.MLP(depth=100, width=WIDTH, activation="sigmoid")
    d = vglab.layer_distributions(net, batch=BATCH, gradient_range=(-80.0, 0.0), bins=40)
    np.testing.assert_allclose(d.gradient_edges[[0, -1]], [-80.0, 0.0])
    np.testing.assert_array_equal(d.gradient_counts.sum(axis=1) + d.gradient_zero, d.entries)
    with pytest.raises(ValueError, match=r"batch must be an integer in 1\.\.1024, got 0"):
        vglab.layer_distributions(net, batch=0)
    with pytest.raises(ValueError, match="bins must be an integer in 2..200"):
        vglab.layer_distributions(net, bins=1)
    with pytest.raises(ValueError, match=r"gradient_range must have low < high"):
        vglab.layer_distributions(net, gradient_range=(0.0, -1.0))
    with pytest.raises(ValueError, match=r"activation_range must be a pair \(low, high\)"):
        vglab.layer_distributions(net, activation_range=3)
    with pytest.raises(ValueError, match="layer_distributions expects a vglab.MLP, got str"):
        vglab.layer_distributions("net")
    with pytest.raises(ValueError, match="layer_distributions needs square layers drawn at random: init=constant"):
        vglab.layer_distributions(vglab.MLP(depth=3, width=4, init="constant"))
    with pytest.raises(ValueError, match="a width profile is not supported"):
        vglab.layer_distributions(vglab.MLP(widths=(8, 4, 4)))


HISTOGRAM_PANELS = ("histograms", "activation_histograms", "saturation_histograms")


def test_histogram_panels_after_the_warm_up_switches_and_drags_compile_nothing():
    """The dashboard's warm-up computes the panels' distributions too: a later activation switch or depth drag
    reuses compiled programs, and each heat map is the same artist, redrawn in place."""
    from vglab.core.compilation import CompileCounter
    from vglab.lab import GradientDashboard, warmup

    counter = CompileCounter()
    dash = GradientDashboard(depth=70, width=WIDTH, n_seeds=1, controls=("depth", "activation"),
                             activations=("sigmoid", "tanh"), panels=HISTOGRAM_PANELS, max_depth=100,
                             show_theory=False)
    try:
        background = warmup.start(dash, force=True)
        assert background.wait(timeout=600) and background.failed == []
        images, before = [dash.plots[p].image for p in HISTOGRAM_PANELS], counter.count
        for change in [dict(activation="tanh"), dict(depth=100), dict(activation="sigmoid"), dict(depth=65)]:
            dash.set(**change)
            assert dash.error_message == ""
        assert counter.count == before, "a switch after the warm-up compiled a program"
        assert [dash.plots[p].image for p in HISTOGRAM_PANELS] == images
        assert [image.get_array().shape[1] for image in images] == [66, 65, 65]  # h_0..h_65; h_1..h_65
        d = vglab.layer_distributions(dash.network(), batch=16, bins=60)
        np.testing.assert_array_equal(dash.result.distributions.gradient_counts, d.gradient_counts)
    finally:
        dash.close()


def shown_counts(dash, panel):
    """The counts a heat map shows, back from its shares (share × the layer's entries)."""
    d = dash.result.distributions
    return np.rint(dash.plotted()[panel]["shares"] * d.entries).astype(np.int64)


@pytest.mark.parametrize("change", [{}, dict(sigma_w=4.0), dict(activation="tanh", sigma_w=4.0),
                                    dict(activation="relu", sigma_w=1.5), dict(depth=3)])
def test_activation_and_saturation_panels_show_layer_distributions_counts(change):
    """Both panels at the defaults and across controls: every layer's column is layer_distributions' row
    (16 inputs, 60 bins), over its edges; ReLU's φ′ = 0 entries are left out of the saturation map and their
    share noted; the notes say what lies outside the map."""
    from vglab.lab import GradientDashboard

    dash = GradientDashboard(depth=12, width=WIDTH, activation="sigmoid", n_seeds=1,
                             controls=("depth", "activation", "sigma_w"), activations=("sigmoid", "tanh", "relu"),
                             panels=("activation_histograms", "saturation_histograms"), max_depth=12,
                             warm_up=False)
    try:
        figure, images = dash.figure, [p.image for p in dash.plots.values()]
        dash.set(**change)
        assert dash.error_message == ""
        assert dash.figure is figure and [p.image for p in dash.plots.values()] == images
        net = dash.network()
        d = vglab.layer_distributions(net, batch=16, bins=60)
        assert dash.result.distributions.net == net
        shown = dash.plotted()
        act, sat = shown["activation_histograms"], shown["saturation_histograms"]
        np.testing.assert_array_equal(act["layers"], np.arange(1, net.depth + 1))
        np.testing.assert_array_equal(act["edges"], d.activation_edges)
        np.testing.assert_array_equal(sat["edges"], d.saturation_edges)
        np.testing.assert_array_equal(shown_counts(dash, "activation_histograms"), d.activation_counts)
        np.testing.assert_array_equal(shown_counts(dash, "saturation_histograms"), d.saturation_counts)
        np.testing.assert_allclose(sat["shares"].sum(axis=1), 1.0 - d.saturation_zero / d.entries, atol=1e-12)
        zero_share = d.saturation_zero.sum() / (d.entries * net.depth)
        if net.activation == "relu":
            assert zero_share > 0.3 and f"φ′ = 0 exactly: {100 * zero_share:.1f}% of entries" in sat["note"]
        else:
            assert zero_share == 0 and "φ′ = 0" not in sat["note"]
        saturated = d.saturated_fraction.mean()  # φ′ = 0 included: the engine's rule
        assert f"saturated (dashed line and below): {100 * saturated:.1f}%" in sat["note"]
        below = sat["shares"][:, d.saturation_edges[1:] <= -1.0 + 1e-9].sum() + d.saturation_zero.sum() / d.entries
        assert below / net.depth == pytest.approx(saturated, abs=0.02)  # the map's mass on and below the line
        outside = d.activation_outside.sum() / (d.entries * net.depth)
        assert (f"beyond the range: {100 * outside:.1f}%" in act["note"]) == (outside > 0)
        # the saturation threshold: a dashed line at log10 0.1 = −1, i.e. 10^{-1}
        assert dash.plots["saturation_histograms"].reference.get_ydata()[0] == -1.0
    finally:
        dash.close()


def test_histogram_panels_are_legible_across_their_controls():
    """tests/test_plot_legibility.py's checks (no overlapping or clipped text, mathtext, whole-decade ticks on
    the saturation axis, contrast) on the two new panels beside the gradient-entries one, at the defaults and
    at each control's ends."""
    from tests.test_plot_legibility import check_figure, sweep
    from vglab.lab import GradientDashboard

    dash = GradientDashboard(depth=12, width=WIDTH, activation="tanh", n_seeds=1, controls=("activation", "sigma_w"),
                             activations=("sigmoid", "tanh", "relu"),
                             panels=("activation_histograms", "saturation_histograms"), max_depth=12, warm_up=False)
    try:
        check_figure(dash.figure, "defaults")
        for state in sweep(dash):
            assert dash.error_message == ""
            check_figure(dash.figure, state)
    finally:
        dash.close()
