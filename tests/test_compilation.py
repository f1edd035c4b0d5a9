"""Live sliders: after warm-up, changing depth or a numeric option compiles nothing."""

import numpy as np

import vglab
from vglab import jacobians
from vglab.compilation import CompileCounter

COUNTER = CompileCounter()


def test_depth_and_numeric_options_do_not_recompile():
    base = vglab.MLP(depth=10, width=32, activation="tanh", init="gaussian")
    vglab.gradient_norms(base)
    vglab.gradient_norms(base.replace(depth=250))  # warm-up: the bank holding up to 256 layers
    vglab.jacobian_spectrum(base)
    before, programs = COUNTER.count, jacobians.compiled_programs()
    for depth in [1, 2, 7, 50, 123, 200, 256, 3]:
        vglab.gradient_norms(base.replace(depth=depth))
        vglab.jacobian_spectrum(base.replace(depth=depth))
    for sigma_w in [0.5, 1.0, 2.5]:
        vglab.gradient_norms(base.replace(weight_std=sigma_w, bias_std=sigma_w / 10))
    assert COUNTER.count == before, "a depth or σ change compiled a new program"
    assert jacobians.compiled_programs() == programs


def test_each_static_option_compiles_at_most_once():
    base = vglab.MLP(depth=5, width=24, activation="relu")
    for _ in range(2):
        for option in [dict(), dict(residual=True), dict(norm="pre"), dict(activation="gelu")]:
            vglab.gradient_norms(base.replace(**option))
        if _ == 0:
            first = COUNTER.count
    assert COUNTER.count == first


def test_depth_beyond_the_bucket_extends_the_bank_without_redrawing():
    net = vglab.MLP(depth=30, width=8, activation="tanh")
    a = vglab.gradient_norms(net)
    bank = jacobians.weight_bank((0,), 8, False, 30)
    w30 = np.asarray(bank.weights[0, :30])
    jacobians.weight_bank((0,), 8, False, 900)
    bank = jacobians.weight_bank((0,), 8, False, 30)
    assert bank.capacity >= 900
    np.testing.assert_array_equal(np.asarray(bank.weights[0, :30]), w30)
    np.testing.assert_array_equal(vglab.gradient_norms(net).log10_activation_grad, a.log10_activation_grad)


def test_the_counter_sees_a_compilation():
    # Without this, the no-recompile assertions above could pass with a deaf counter.
    import jax
    import jax.numpy as jnp

    x = jnp.arange(7.0)
    before = COUNTER.count
    jax.jit(lambda x: jnp.sin(x) * 3.0 + 0.125)(x)  # a program no other test compiles
    assert COUNTER.count == before + 1
