"""Every claim notebook 01 makes about what the engine and its dashboard show, as a test (sentences quoted)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from tests.notebook_replay import build, markdown
from vglab.core import init
from vglab.core.activations import ACTIVATIONS

STEM = "01_chain_rule"


@pytest.fixture(scope="module")
def text():
    return markdown(STEM)


@pytest.fixture(scope="module")
def chain():
    """The notebook's 6-layer, width-8 tanh net with vglab's own weights, its h_l, J_l and ‖∂L/∂h_l‖."""
    net = vglab.MLP(depth=6, width=8, activation="tanh")
    phi = ACTIVATIONS["tanh"].phi
    scale = net.sigma_w / np.sqrt(net.width)
    Ws = [scale * init.unit_weight(0, l, net.width, False) for l in range(net.depth)]
    x, g = init.network_input(0, net.width), init.output_direction(0, net.width)
    hs = [x]
    for W in Ws:
        hs.append(phi(W @ hs[-1]))
    Js = [jax.jacfwd(lambda h, W=W: phi(W @ h))(h) for W, h in zip(Ws, hs[:-1], strict=True)]
    delta, norms = g, [float(jnp.linalg.norm(g))]
    for J in reversed(Js):
        delta = J.T @ delta
        norms.append(float(jnp.linalg.norm(delta)))
    return dict(net=net, Ws=Ws, hs=hs, Js=Js, norms=np.array(norms[::-1]))


def test_each_layer_jacobian_is_diag_phi_prime_times_w(chain, text):
    """"Each $J_l$ is exactly $\\operatorname{diag}(\\varphi'(z_l))\\, W_l$" — every layer, to 1e-6."""
    assert "Each $J_l$ is exactly" in text
    dphi = ACTIVATIONS["tanh"].dphi
    for W, h, J in zip(chain["Ws"], chain["hs"][:-1], chain["Js"], strict=True):
        np.testing.assert_allclose(J, dphi(W @ h)[:, None] * W, atol=1e-6)


def test_vglab_agrees_with_the_product(chain, text):
    """"`vglab.gradient_norms` computes the same per-layer norms" (to 1e-4 decades, as the notebook prints)."""
    assert "computes the same per-layer norms" in text
    engine = vglab.gradient_norms(chain["net"], seed=0).log10_activation_grad[0]
    np.testing.assert_allclose(engine, np.log10(chain["norms"]), atol=1e-4)


def test_the_product_shrinks_layer_by_layer(chain, text):
    """"## The product shrinks, layer by layer": ‖∂L/∂h_l‖ falls at every step from l = 6 to l = 0."""
    assert "The product shrinks, layer by layer" in text
    assert np.all(np.diff(chain["norms"]) > 0)


def test_with_tanh_each_jacobian_can_only_shrink_the_rows_of_w(chain, text):
    """"With tanh, $\\varphi' \\le 1$, and each $J_l$ can only shrink $W_l$'s rows." (row norms, to 1e-7)"""
    assert "each $J_l$ can only shrink $W_l$'s rows" in text
    for W, J in zip(chain["Ws"], chain["Js"], strict=True):
        assert np.all(np.linalg.norm(J, axis=1) <= np.linalg.norm(W, axis=1) + 1e-7)


def test_the_sigmoid_bound_holds_when_the_weights_do_not_amplify(text):
    """"the dotted red line draws the bound $0.25^{L-l}\\,\\|g\\|$ that holds when $\\|W_l\\|_2 \\le 1$":
    orthogonal weights with σ_w = 1 (‖W_l‖₂ = 1), sigmoid, depth 40: every seed, every layer, at or below it."""
    assert "that holds when $\\|W_l\\|_2 \\le 1$" in text
    net = vglab.MLP(depth=40, width=64, activation="sigmoid", init="orthogonal")
    grads = vglab.gradient_norms(net, seed=0, n_seeds=4).log10_activation_grad
    bound = grads[:, -1:] + (40 - np.arange(41))[None, :] * np.log10(0.25)
    assert np.all(grads <= bound + 1e-5)


def test_about_one_millionth_and_ten_to_the_minus_8(text):
    """"About one millionth: a step that moves the last layer's weights by 1% moves the first layer's by at
    most about $10^{-8}$." (0.25^10 within 5 % of 1e-6; 1 % of it within 5 % of 1e-8)"""
    assert "by at most about $10^{-8}$" in text
    assert 0.25**10 == pytest.approx(1e-6, rel=0.05)
    assert 0.01 * 0.25**10 == pytest.approx(1e-8, rel=0.05)


def test_end_state_shows_the_product_shrinking_towards_the_input():
    """After Run All the dashboard (tanh, depth 6, 4 seeds) shows the typical gradient falling at every layer
    towards the input, 0.3–0.8 decades in all; the theory curve lies on the root mean square (0.1 decade)."""
    dash = build(STEM, warm_up=False)
    try:
        shown = dash.plotted()["gradient"]
        assert np.all(np.diff(shown["mean"]) > 0)
        assert -0.8 <= shown["mean"][0] - shown["mean"][-1] <= -0.3
        assert np.max(np.abs(shown["theory"] - shown["rms"])) <= 0.1
    finally:
        dash.close()
