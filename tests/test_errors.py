"""Every error a user can meet names what was expected and what came."""

import pytest

import vglab
from vglab import theory


@pytest.mark.parametrize("kwargs,message", [
    (dict(activation="sigmod"),
     r"unknown activation 'sigmod'; did you mean 'sigmoid'\? \(valid: sigmoid, tanh, relu, leaky_relu, gelu, linear, elu, silu\)"),
    (dict(activation="swish"), r"unknown activation 'swish' \(valid: "),
    (dict(init="hee"), r"unknown init 'hee'; did you mean 'he'\? \(valid: xavier, he, lecun, orthogonal, gaussian, he_fan_in, he_fan_out, "
                         r"constant\)"),
    (dict(norm="batchnorm"),
     r"unknown norm 'batchnorm'; did you mean 'layernorm'\? \(valid: none, pre, post, layernorm\)"),
    (dict(depth=0), r"depth must be an integer in 1\.\.10000, got 0"),
    (dict(depth=10001), r"depth must be an integer in 1\.\.10000, got 10001"),
    (dict(depth=2.5), r"depth must be an integer in 1\.\.10000, got 2\.5"),
    (dict(depth=True), r"depth must be an integer"),
    (dict(width=-3), r"width must be an integer in 1\.\.4096, got -3"),
    (dict(width=10**6), r"width must be an integer in 1\.\.4096, got 1000000"),
    (dict(weight_std=-1.0), r"weight_std must be in \[0\.0, 100\.0\], got -1\.0"),
    (dict(bias_std=-0.1), r"bias_std must be in \[0\.0, 100\.0\], got -0\.1"),
    (dict(bias_std=float("nan")), r"bias_std must be finite, got nan"),
    (dict(residual_scale=0.0), r"residual_scale must be in \(0\.0, 100\.0\], got 0\.0"),
    (dict(residual="yes"), r"residual must be True or False, got 'yes'"),
    (dict(weight_std="big"), r"weight_std must be a real number, got 'big'"),
])
def test_mlp_rejects_bad_input(kwargs, message):
    args = dict(depth=3, width=4) | kwargs
    with pytest.raises(ValueError, match=message):
        vglab.MLP(**args)


def test_gradient_norms_rejects_bad_seeds_and_sizes():
    net = vglab.MLP(depth=3, width=4)
    with pytest.raises(ValueError, match=r"n_seeds must be an integer in 1\.\.64, got 0"):
        vglab.gradient_norms(net, n_seeds=0)
    with pytest.raises(ValueError, match=r"seed must be an integer in 0\.\."):
        vglab.gradient_norms(net, seed=-1)
    with pytest.raises(ValueError, match=r"expects a vglab.MLP, RNN, Transformer or Stack, got dict"):
        vglab.gradient_norms({"depth": 3})
    huge = vglab.MLP(depth=10000, width=4096)
    with pytest.raises(ValueError, match=r"depth × width² × n_seeds = 10000 × 4096² × 1 .* above the 4 GiB bound"):
        vglab.gradient_norms(huge)
    with pytest.raises(ValueError, match=r"above the 4 GiB bound"):
        vglab.jacobian_spectrum(huge)


def test_theory_rejects_bad_input():
    with pytest.raises(ValueError, match=r"unknown activation 'tanhh'; did you mean 'tanh'\?"):
        theory.chi1("tanhh", 1.0)
    with pytest.raises(ValueError, match=r"sigma_w must be in \[0\.0, 100\.0\], got -2\.0"):
        theory.q_star("tanh", -2.0)
