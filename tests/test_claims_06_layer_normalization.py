"""Every claim of notebooks/06_layer_normalization.ipynb about what the engine shows, as a test.

Each test builds the configuration the sentence states, runs vglab, and asserts the sentence at the stated
tolerance; the docstring quotes the sentence (tests/claims_replay.markdown checks it is still in the notebook).
"""

import numpy as np
import pytest

import vglab
from tests.claims_replay import markdown, replay

STEM = "06_layer_normalization"
TEXT = markdown(STEM)
RESIDUAL = vglab.MLP(depth=200, width=64, activation="relu", init="he", residual=True)


def quoted(sentence: str) -> None:
    assert " ".join(sentence.split()) in " ".join(TEXT.split()), f"no longer in {STEM}: {sentence!r}"


def ratio(net, n_seeds=2):
    return vglab.gradient_norms(net, seed=0, n_seeds=n_seeds).log10_gradient_ratio


def layernorm(x, eps=1e-5):
    c = x - x.mean()
    return c / np.sqrt((c * c).mean() + eps)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_layernorm_keeps_every_layer_at_rms_one_whatever_the_weight_scale(activation):
    """"show that it keeps every layer at RMS ≈ 1 whatever the weight scale" — post-LN, σ_w from 0.25 to 4,
    200 layers: every layer's RMS within 0.1 % of 1 (|log10 RMS| < 5e-4)."""
    quoted("show that it keeps every layer at RMS ≈ 1 whatever the weight scale")
    for sigma_w in (0.25, 1.0, 2.0, 4.0):
        net = vglab.MLP(depth=200, width=64, activation=activation, weight_std=sigma_w, norm="post")
        rms = vglab.gradient_norms(net, seed=0, n_seeds=2).log10_activation_rms
        assert np.abs(rms).max() < 5e-4, (sigma_w, np.abs(rms).max())


def test_layernorm_output_has_mean_zero_and_rms_one_above_ten_root_eps():
    """"The output always has mean 0 and RMS ≈ 1 (within 1 % once the input's RMS is above 10√ε ≈ 0.03)" —
    LN of vectors of RMS 0.03 … 1e6: mean 0 to 1e-12, RMS within 1 % of 1; and at RMS 0.003 it is not."""
    quoted("The output always has mean 0 and RMS $\\approx 1$ (within 1 % once the input's RMS is above "
           "$10\\sqrt\\epsilon \\approx 0.03$)")
    x = np.random.default_rng(0).normal(size=64)
    x /= np.sqrt(np.mean((x - x.mean()) ** 2))
    for scale in (0.03, 1.0, 1e3, 1e6):
        y = layernorm(scale * x)
        assert abs(y.mean()) < 1e-12 and abs(np.sqrt(np.mean(y * y)) - 1) < 0.01, scale
    assert np.sqrt(np.mean(layernorm(0.003 * x) ** 2)) < 0.99  # below 10√ε the claim is not made


def test_layernorm_jacobian_is_the_stated_projection_divided_by_sigma():
    """"J_LN = (1/σ)(I − 11ᵀ/n − yyᵀ/n)" and "The Jacobian projects out two directions and divides by σ" —
    against a float64 central difference (relative error < 1e-6), and its two
    (near-)zero singular values (ε/σ² ≈ 6e-7 for the y direction)."""
    quoted("The Jacobian projects out two directions and divides by $\\sigma$")
    n = 16
    x = 7.0 * np.random.default_rng(1).normal(size=n) + 3.0
    sigma = np.sqrt(np.var(x) + 1e-5)
    y = layernorm(x)
    formula = (np.eye(n) - np.ones((n, n)) / n - np.outer(y, y) / n) / sigma
    step = 1e-6
    numeric = np.stack([(layernorm(x + step * e) - layernorm(x - step * e)) / (2 * step) for e in np.eye(n)], 1)
    assert np.linalg.norm(numeric - formula) / np.linalg.norm(formula) < 1e-6
    singular = np.linalg.svd(formula, compute_uv=False)
    # the y direction keeps ε/σ² of its size (LN's ε): projected out to 1e-5 here
    assert np.sum(singular < 1e-5 / sigma) == 2 and np.allclose(singular[:-2], 1 / sigma, rtol=1e-9)


def test_layernorm_scales_the_gradient_down_by_the_factor_the_activations_grew():
    """"if the activations have grown (large σ), the gradient passing back is scaled *down* by the same
    factor" (and the self-check: RMS 10³ → a factor 10⁻³) — one linear layer with post-LN,
    σ_w = 1, 10, 100 (the largest σ_w vglab takes)
    (same draws): ‖∂L/∂W_1‖_F falls by exactly that factor, to 1e-4 decades."""
    quoted("the gradient passing back is scaled *down* by the same factor")
    net = vglab.MLP(depth=1, width=64, activation="linear", norm="post")
    base = vglab.gradient_norms(net.replace(weight_std=1.0), seed=0, n_seeds=2).log10_weight_grad
    for sigma_w in (10.0, 100.0):
        grown = vglab.gradient_norms(net.replace(weight_std=sigma_w), seed=0, n_seeds=2).log10_weight_grad
        np.testing.assert_allclose(grown - base, -np.log10(sigma_w), atol=1e-4)


def test_plain_relu_sigma_w_2_doubles_the_variance_every_layer_and_post_ln_keeps_rms_1():
    """"A plain ReLU net with σ_w = 2 (χ₁ = 2) doubles its activations' variance every layer; with post-LN every
    layer's RMS is 1" — χ₁ = 2 exactly; the measured per-layer variance factor (slope of log10 RMS over 200
    layers, 2 seeds, width 64) is 2 within 10 %; post-LN RMS within 0.1 % of 1."""
    quoted("A plain ReLU net with $\\sigma_w = 2$ ($\\chi_1 = 2$) doubles its activations' variance")
    assert vglab.theory.chi1("relu", 2.0) == pytest.approx(2.0, rel=1e-12)
    net = vglab.MLP(depth=200, width=64, activation="relu", weight_std=2.0)
    rms = vglab.gradient_norms(net, seed=0, n_seeds=2).log10_activation_rms
    factor = 10 ** (2 * np.polyfit(np.arange(1, 201), rms.mean(axis=0), 1)[0])
    assert 1.8 <= factor <= 2.2, factor
    post = vglab.gradient_norms(net.replace(norm="post"), seed=0, n_seeds=2).log10_activation_rms
    assert np.abs(post).max() < 5e-4


def test_pre_ln_within_3_decades_and_post_ln_more_than_4_decades_larger():
    """"pre-LN: within 3 decades of the output gradient" / "post-LN: more than 4 decades larger" (cell 6:
    residual ReLU, He, 200 layers, seeds 0-1)."""
    pre, post = ratio(RESIDUAL.replace(norm="pre")), ratio(RESIDUAL.replace(norm="post"))
    assert np.all(np.abs(pre) < 3) and np.all(post > 4), (pre, post)


def test_pre_ln_gradient_changes_slowly_with_depth_as_the_stream_grows():
    """"With pre-LN the gradient changes slowly with depth: the input gradient is about 10^1.1 times the
    output's at depth 50 and 10^1.5 at depth 200 (the residual stream grows, …)" — mean over 2 seeds within
    0.15 decades of 1.1 and 1.5; the stream's last-layer RMS grows by more than 0.4 decades from 50 to 200."""
    quoted("the input gradient is about $10^{1.1}$ times the output's at depth 50 and $10^{1.5}$ at depth 200")
    shallow = vglab.gradient_norms(RESIDUAL.replace(depth=50, norm="pre"), seed=0, n_seeds=2)
    deep = vglab.gradient_norms(RESIDUAL.replace(norm="pre"), seed=0, n_seeds=2)
    assert abs(shallow.log10_gradient_ratio.mean() - 1.1) < 0.15
    assert abs(deep.log10_gradient_ratio.mean() - 1.5) < 0.15
    assert deep.log10_activation_rms[:, -1].mean() - shallow.log10_activation_rms[:, -1].mean() > 0.4


def test_post_ln_gradient_grows_exponentially_toward_the_input():
    """"With post-LN the gradient *grows* toward the input, exponentially: … each layer adds about 0.03–0.04
    decades — 10^2 at depth 50, 10^6–10^8 at depth 200" — per-layer growth (log ratio / depth, mean of 2
    seeds) in [0.025, 0.05] at depths 50, 100, 200; log ratio in [1.5, 2.5] at 50 and [6, 8.5] per seed at
    200; and linear in depth (ratio at 200 over ratio at 100 in [1.5, 3])."""
    quoted("With post-LN the gradient *grows* toward the input, exponentially")
    quoted("$10^{2}$ at depth 50, $10^{6}$–$10^{8}$ at depth 200")
    by_depth = {d: ratio(RESIDUAL.replace(depth=d, norm="post")) for d in (50, 100, 200)}
    for depth, r in by_depth.items():
        assert 0.025 <= r.mean() / depth <= 0.05, (depth, r)
    assert 1.5 <= by_depth[50].mean() <= 2.5 and np.all((6 <= by_depth[200]) & (by_depth[200] <= 8.5))
    assert 1.5 <= by_depth[200].mean() / by_depth[100].mean() <= 3


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_layernorm_in_a_plain_network_fixes_the_forward_scale_not_the_gradient(activation):
    """"LayerNorm in a *plain* network (no skip connection) does not rescue the gradient: it fixes the forward
    scale, not the product of Jacobians" (and try-this 3: residual off, post-LN, σ_w = 2) — 50 layers: every
    RMS within 0.1 % of 1, while the gradient ratio is more than 2 decades away from 1."""
    quoted("LayerNorm in a *plain* network (no skip connection) does not rescue the gradient")
    net = vglab.MLP(depth=50, width=64, activation=activation, weight_std=2.0, norm="post")
    result = vglab.gradient_norms(net, seed=0, n_seeds=2)
    assert np.abs(result.log10_activation_rms).max() < 5e-4
    assert np.all(np.abs(result.log10_gradient_ratio) > 2), result.log10_gradient_ratio


def test_try_this_1_without_ln_activations_and_gradient_grow_and_only_post_ln_holds_rms_1():
    """Try this 1: "Set norm = none with residual on: watch the activations (right) and the gradient (left)
    grow with depth. … Which one keeps the activations at exactly RMS 1?" — residual ReLU He, no LN: both
    grow by more than 5 decades over 50 layers and more at 100; post-LN holds RMS 1 (0.1 %), pre-LN does
    not (its stream grows by more than 1 decade)."""
    quoted("watch the activations (right) and the gradient (left) grow with depth")
    none50 = vglab.gradient_norms(RESIDUAL.replace(depth=50), seed=0, n_seeds=2)
    none100 = vglab.gradient_norms(RESIDUAL.replace(depth=100), seed=0, n_seeds=2)
    assert np.all(none50.log10_gradient_ratio > 5) and np.all(none50.log10_activation_rms[:, -1] > 5)
    assert np.all(none100.log10_gradient_ratio > none50.log10_gradient_ratio + 5)
    post = vglab.gradient_norms(RESIDUAL.replace(depth=50, norm="post"), seed=0, n_seeds=2)
    pre = vglab.gradient_norms(RESIDUAL.replace(depth=50, norm="pre"), seed=0, n_seeds=2)
    assert np.abs(post.log10_activation_rms).max() < 5e-4 and np.all(pre.log10_activation_rms[:, -1] > 1)


def test_end_state_pre_ln_dashboard_keeps_the_gradient_highway_clean():
    """End state after Run All (the dashboard cell, replayed from the notebook): "explain which one keeps the
    gradient highway of notebook 05 clean" — pre-LN residual ReLU at depth 50: the plotted mean gradient
    stays within 1.5 decades of the output's at every layer, never below it by more than 0.05 decades, and
    "no mean-field curve is drawn for LayerNorm nets"."""
    quoted("no mean-field curve is drawn for LayerNorm nets")
    dash = replay(STEM)["dash"]
    shown = dash.plotted()["gradient"]
    relative = shown["mean"] - shown["mean"][-1]
    assert dash.result.net.norm == "pre" and dash.result.net.residual
    assert np.all(relative < 1.5) and np.all(relative > -0.05), relative
    assert shown["theory"] is None
