"""Live sliders: after warm-up, changing depth or a numeric option compiles nothing."""

import jax
import numpy as np

import vglab
from vglab import jacobians


class CompileCounter:
    """Counts XLA backend compilations (the slow step a slider must never wait for)."""

    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1


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
