"""vglab.Transformer: per-block gradients against float64 jax.jacfwd, and the residual / LayerNorm stories."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from tests import reference  # noqa: F401  (enables float64 for the references below)
from vglab.core.compilation import CompileCounter
from vglab.models import transformer

RTOL_LOG = 1e-5  # on log10 values: the norms agree to ~2e-5 relative


COUNTER = CompileCounter()


# --------------------------------------------------------------------------------------------- reference
def _phi(name, x, slope):
    return {
        "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": lambda v: jnp.maximum(v, 0.0),
        "leaky_relu": lambda v: jnp.where(v > 0, v, slope * v),
        "gelu": lambda v: jax.nn.gelu(v, approximate=False), "linear": lambda v: v,
    }[name](x)


def _layernorm(x):
    c = x - x.mean(-1, keepdims=True)
    return c / jnp.sqrt((c * c).mean(-1, keepdims=True) + 1e-5)


def reference_block(net, h, q, k, v, o, a1, a2, dtype=None):
    """One block written out head by head: the attention sublayer, then the MLP sublayer, each with the net's
    residual and LayerNorm placement (``dtype``: each sublayer's output cast to it, for a float32 twin)."""
    H, dk = net.heads, net.width // net.heads
    cast = (lambda x: x) if dtype is None else (lambda x: x.astype(dtype))  # numpy scalars would promote

    def attention(a):
        heads = []
        for j in range(H):
            cols = slice(j * dk, (j + 1) * dk)
            A = jax.nn.softmax((a @ q[:, cols]) @ (a @ k[:, cols]).T / np.sqrt(dk), axis=-1)
            heads.append(A @ (a @ v[:, cols]))
        return jnp.concatenate(heads, axis=1) @ o

    def sublayer(F, h):
        if net.norm == "pre":
            out = F(_layernorm(h))
            return h + out if net.residual else out
        out = F(h)
        out = h + out if net.residual else out
        return _layernorm(out) if net.norm == "post" else out

    h = cast(sublayer(attention, h))
    return cast(sublayer(lambda a: _phi(net.activation, a @ a1, net.leaky_slope) @ a2, h))


def reference_gradients(net, seed):
    """float64 log10 ‖∂L/∂h_l‖_F, l = 0..depth: the stack written out head by head, differentiated by jacfwd
    with respect to perturbations ε_l added to every block's output (the graph adjoints at ε = 0)."""
    p = transformer.parameters(net, seed)
    wq, wk, wv, wo, w1, w2, X, G = (jnp.asarray(a, jnp.float64) for a in p)

    def loss(eps):
        h = X + eps[0]
        for l in range(net.depth):
            h = reference_block(net, h, wq[l], wk[l], wv[l], wo[l], w1[l], w2[l]) + eps[l + 1]
        return jnp.sum(G * h)

    d = jax.jacfwd(loss)(jnp.zeros((net.depth + 1, net.seq_len, net.width)))
    return np.log10(np.linalg.norm(np.asarray(d).reshape(net.depth + 1, -1), axis=1))


CONFIGS = [
    dict(heads=2, residual=True, norm="pre", activation="gelu"),
    dict(heads=2, residual=True, norm="post", activation="gelu", weight_std=1.5),
    dict(heads=2, residual=True, norm=None, activation="relu", weight_std=0.7),
    dict(heads=2, residual=False, norm="pre", activation="tanh"),
    dict(heads=2, residual=False, norm=None, activation="gelu"),
    dict(heads=1, residual=True, norm="post", activation="gelu"),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(str(v) for v in c.values()))
def test_tiny_transformer_matches_float64_jacfwd(config):
    # Two seeds in one vmapped call (each row its own stack); 3 tokens, padded to 8 inside the engine.
    net = vglab.Transformer(depth=2, width=8, seq_len=3, **config)
    result = vglab.gradient_norms(net, seed=0, n_seeds=2)
    assert result.log10_activation_grad.shape == (2, 3) and result.log10_activation_rms.shape == (2, 2)
    for i in range(2):
        np.testing.assert_allclose(result.log10_activation_grad[i], reference_gradients(net, i),
                                   rtol=RTOL_LOG, atol=1e-5)
    assert not np.allclose(result.log10_activation_grad[0], result.log10_activation_grad[1])


def test_a_full_token_bucket_matches_float64_jacfwd():
    net = vglab.Transformer(depth=3, width=8, seq_len=8, **CONFIGS[-1])  # 8 tokens: no padding
    result = vglab.gradient_norms(net, seed=2, n_seeds=2)
    np.testing.assert_allclose(result.log10_activation_grad[0], reference_gradients(net, 2),
                               rtol=RTOL_LOG, atol=1e-5)


def test_exploding_stream_uses_hard_attention_and_still_matches_float64():
    # ReLU, σ_w = 3, residual, no LayerNorm: the stream grows ~e^4 per block, so by block 3 the attention
    # logits (∝ e^{2s}) are beyond float32 resolution and the engine's hard-attention rule applies, while the
    # float64 reference still resolves them exactly.
    net = vglab.Transformer(depth=5, width=8, heads=2, seq_len=4, norm=None, activation="relu",
                            weight_std=3.0)
    result = vglab.gradient_norms(net, seed=0, n_seeds=2)
    assert np.all(result.log10_activation_rms[:, -1] > 6)  # the stream reached ~1e8
    for i in range(2):
        np.testing.assert_allclose(result.log10_activation_grad[i], reference_gradients(net, i),
                                   rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------- the stories
WIDE = dict(width=32, heads=4)
SEEDS = 8


@pytest.fixture(scope="module")
def deep_pre_and_post():
    """96 blocks, residual + LayerNorm + GELU, 8 seeds (drawn first: 12-block stacks then reuse the bank)."""
    pre = vglab.gradient_norms(vglab.Transformer(depth=96, norm="pre", **WIDE), n_seeds=SEEDS)
    post = vglab.gradient_norms(vglab.Transformer(depth=96, norm="post", **WIDE), n_seeds=SEEDS)
    return pre.log10_activation_grad, post.log10_activation_grad


def test_residual_layernorm_gelu_stack_of_96_blocks_keeps_gradients_within_a_few_orders(deep_pre_and_post):
    pre, post = deep_pre_and_post
    assert pre.shape == post.shape == (SEEDS, 97)
    assert np.all(np.isfinite(pre)) and np.all(np.isfinite(post))
    assert np.all(pre.max(axis=1) - pre.min(axis=1) <= 1.5)
    assert np.all(post.max(axis=1) - post.min(axis=1) <= 3.0)


def test_post_ln_gradient_grows_toward_the_output_and_pre_ln_does_not(deep_pre_and_post):
    # Xiong et al. 2020 (Fig. 3): with post-LN the blocks near the output get the largest gradients and the
    # lower blocks much less; with pre-LN the gradient does not shrink away from the output.
    pre, post = deep_pre_and_post
    lower_half = slice(0, 48)
    post_deficit = post[:, -1] - post[:, lower_half].mean(axis=1)
    pre_deficit = pre[:, -1] - pre[:, lower_half].mean(axis=1)
    assert post_deficit.mean() >= 0.5  # post-LN: the lower half gets ≥ 3× less gradient than the output
    assert np.all(post[:, -1] - post.min(axis=1) >= 0.25)  # in every seed some block gets ≥ 1.8× less
    assert np.all(pre_deficit <= -0.1)  # pre-LN: the lower half gets more than the output
    assert np.all(pre.min(axis=1) >= pre[:, -1] - 0.05)  # and no block clearly less


def test_without_residuals_or_layernorm_gradients_vanish_within_a_few_blocks(deep_pre_and_post):
    plain_net = vglab.Transformer(depth=12, residual=False, norm=None, **WIDE)
    g = vglab.gradient_norms(plain_net, n_seeds=SEEDS).log10_activation_grad
    assert np.all(g[:, -1] - g[:, -9] >= 1.5)  # 8 blocks: at least 30× smaller
    assert np.all(g[:, -1] - g[:, 0] >= 3.0)  # 12 blocks: at least 1000× smaller
    modern = vglab.gradient_norms(plain_net.replace(residual=True, norm="pre"), n_seeds=SEEDS)
    assert np.all(modern.log10_gradient_ratio >= 0.0)  # the same depth with residual + LN loses nothing


def test_depth_1000_without_residuals_is_finite_beyond_float32():
    r = vglab.gradient_norms(vglab.Transformer(depth=1000, width=8, heads=2, residual=False, norm=None))
    g = r.log10_activation_grad[0]
    assert np.all(np.isfinite(g)) and np.all(np.isfinite(r.log10_activation_rms))
    assert g[0] < -100  # would be 0 in float32
    # Depth only appends blocks: the first 12 blocks' forward signal equals that of a 12-block stack.
    short = vglab.gradient_norms(vglab.Transformer(depth=12, width=8, heads=2, residual=False, norm=None))
    np.testing.assert_allclose(r.log10_activation_rms[0, :12], short.log10_activation_rms[0], rtol=1e-5,
                               atol=1e-5)


def test_depth_seq_len_and_weight_std_do_not_recompile():
    base = vglab.Transformer(depth=2, width=8, heads=2, seq_len=3)
    vglab.gradient_norms(base.replace(depth=16, seq_len=8), n_seeds=2)  # warm-up: 16 blocks, 8 tokens
    before, programs = COUNTER.count, transformer.compiled_programs()
    for change in [dict(depth=1), dict(depth=9, seq_len=1), dict(depth=16, seq_len=5), dict(weight_std=0.3),
                   dict(depth=4, weight_std=2.0, seq_len=7)]:
        vglab.gradient_norms(base.replace(**change), n_seeds=2)
    assert COUNTER.count == before, "a depth, seq_len or weight_std change compiled a new program"
    assert transformer.compiled_programs() == programs


# --------------------------------------------------------------------------------------------- API
def test_to_code_round_trips():
    net = vglab.Transformer(depth=6, width=16, heads=4, norm="post", activation="relu", seq_len=5)
    assert net.to_code() == ("vglab.Transformer(depth=6, width=16, heads=4, seq_len=5, norm='post', "
                             "activation='relu')")
    assert eval(net.to_code(), {"vglab": vglab}) == net
    assert vglab.Transformer(depth=2, width=8, heads=2, norm="layernorm").norm == "pre"
    assert vglab.Transformer(depth=2, width=8, heads=2, norm="none").norm is None
    small = vglab.Transformer(depth=3, width=8, heads=2, seq_len=3)
    r = vglab.gradient_norms(small, seed=4, n_seeds=2)
    assert r.to_code() == f"vglab.gradient_norms({small.to_code()}, seed=4, n_seeds=2)"
    assert small.to_code() == "vglab.Transformer(depth=3, width=8, heads=2, seq_len=3)"
    g = r.log10_activation_grad
    np.testing.assert_allclose(r.log10_gradient_ratio, g[:, 0] - g[:, -1])


@pytest.mark.parametrize("kwargs,message", [
    (dict(depth=0), r"depth must be an integer in 1\.\.1000, got 0"),
    (dict(depth=1001), r"depth must be an integer in 1\.\.1000, got 1001"),
    (dict(width=0), r"width must be an integer in 1\.\.1024, got 0"),
    (dict(heads=0), r"heads must be an integer in 1\.\.64, got 0"),
    (dict(width=10, heads=4), r"width must be divisible by heads, got width=10, heads=4"),
    (dict(seq_len=0), r"seq_len must be an integer in 1\.\.256, got 0"),
    (dict(seq_len=2.0), r"seq_len must be an integer in 1\.\.256, got 2\.0"),
    (dict(norm="batch"), r"unknown norm 'batch'.* \(valid: none, pre, post, layernorm\)"),
    (dict(norm="pst"), r"unknown norm 'pst'; did you mean 'post'\?"),
    (dict(activation="gelu2"), r"unknown activation 'gelu2'; did you mean 'gelu'\?"),
    (dict(residual=1), r"residual must be True or False, got 1"),
    (dict(weight_std=-1.0), r"weight_std must be in \[0\.0, 100\.0\], got -1\.0"),
    (dict(mlp_ratio=0), r"mlp_ratio must be an integer in 1\.\.8, got 0"),
])
def test_transformer_rejects_bad_input(kwargs, message):
    args = dict(depth=2, width=8, heads=2) | kwargs
    with pytest.raises(ValueError, match=message):
        vglab.Transformer(**args)


def test_gradient_norms_rejects_bad_seeds_and_sizes():
    net = vglab.Transformer(depth=2, width=8, heads=2)
    with pytest.raises(ValueError, match=r"n_seeds must be an integer in 1\.\.64, got 65"):
        vglab.gradient_norms(net, n_seeds=65)
    huge = vglab.Transformer(depth=1000, width=1024, heads=8)
    message = (r"depth × \(4 \+ 2·mlp_ratio\)·width² × n_seeds = 1000 × 12·1024² × 1 float32 weights need "
               r"46\.9 GiB, above the 2 GiB bound")
    with pytest.raises(ValueError, match=message):
        vglab.gradient_norms(huge)
    with pytest.raises(ValueError, match=r"expects a vglab.Transformer, got RNN"):
        transformer.transformer_gradient_norms(vglab.RNN())
