"""vglab.train: the three training stories, per-step records against a float64 reference, and the run's
behaviour on divergence, interruption and progress display."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from tests import reference  # noqa: F401  (enables float64 for the references below)
from vglab import training
from vglab.models import jacobians

DEEP = dict(depth=20, width=32)
STEPS = 300


def _mean_ratios(history, skip=10):
    """Per-layer update-to-weight ratio averaged over the run (after the first ``skip`` steps)."""
    return history.update_ratio[skip:].mean(axis=0)


# --------------------------------------------------------------------------------------------- the stories
def test_deep_sigmoid_net_first_layers_barely_move_while_the_last_ones_learn():
    h = vglab.train(vglab.MLP(activation="sigmoid", **DEEP), "digits", steps=STEPS, optimizer="sgd")
    assert not h.diverged and h.steps_completed == STEPS
    ratios = _mean_ratios(h)
    assert ratios[:3].max() <= 1e-2 * ratios[-3:].min()  # ≥ 100× smaller updates in the first layers
    assert ratios[-1] >= 1e-4  # the last layer does move
    grads = h.log10_grad_norms.mean(axis=0)
    assert grads[-1] - grads[0] >= 5  # the gradient reaching the first layer is ≥ 1e5 times smaller
    assert h.loss[-20:].mean() <= h.loss[:5].mean() - 0.1  # the top of the network learns something


def test_deep_relu_he_residual_net_trains_every_layer():
    net = vglab.MLP(activation="relu", init="he", residual=True, residual_scale=0.2, **DEEP)
    h = vglab.train(net, "digits", steps=STEPS, optimizer="sgd")
    assert not h.diverged
    ratios = _mean_ratios(h)
    assert ratios.max() <= 10 * ratios.min()  # every layer moves at a comparable relative rate
    assert h.loss[-20:].mean() <= 0.3 * h.loss[:5].mean()
    assert h.test_accuracy[-1] >= 0.8  # chance is 0.1


def test_exploding_net_diverges_without_clipping_and_trains_with_it():
    net = vglab.MLP(activation="relu", init="he", weight_std=2.0, **DEEP)  # σ_w = 2 > √2: activations explode
    wild = vglab.train(net, "digits", steps=STEPS, optimizer="sgd")
    assert wild.diverged and wild.diverged_at_step is not None and wild.diverged_at_step < 20
    assert wild.steps_completed == wild.diverged_at_step  # the history stops before the bad step
    for name in ("loss", "log10_grad_norms", "update_ratio", "log10_global_grad_norm"):
        assert np.all(np.isfinite(getattr(wild, name)))
    assert all(np.all(np.isfinite(p)) for p in wild.final_parameters)  # the bad update was not applied

    tame = vglab.train(net, "digits", steps=STEPS, optimizer="sgd", clip_norm=1.0)
    assert not tame.diverged and tame.steps_completed == STEPS
    assert tame.clipped[:10].all()  # the huge early gradients were clipped
    assert tame.loss[-20:].mean() <= 0.1 * tame.loss[0]
    # 2× chance.  (≥ 0.3 held only while the readout bias was accidentally float64 under the references'
    # jax_enable_x64, which made the whole run float64; the float32 run vglab really does reaches 0.22.)
    assert tame.test_accuracy[-1] >= 0.2


# --------------------------------------------------------------------------------------------- records
def _tiny_data():
    x_train, y_train, x_test, y_test = vglab.datasets.two_spirals(n=48, noise=0.1, seed=3)
    return x_train, y_train, x_test, y_test


def _reference_first_step(net, data, seed):
    """float64: the full-batch loss gradient at the initial parameters, written out directly."""
    params = training.initial_parameters(net, data[0].shape[1], int(data[1].max()) + 1, seed)
    P, W, b, R, c = (jnp.asarray(np.asarray(a), jnp.float64) for a in params)
    x, y = jnp.asarray(data[0], jnp.float64), jnp.asarray(data[1])
    act = {"tanh": jnp.tanh, "relu": lambda z: jnp.maximum(z, 0.0), "sigmoid": jax.nn.sigmoid}[net.activation]

    assert net.norm is None

    def loss(W):
        h = x @ P
        for l in range(net.depth):
            out = act(h @ W[l].T + b[l])
            h = h + net.residual_scale * out if net.residual else out
        logits = h @ R + c
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])

    return np.asarray(W), np.asarray(jax.grad(loss)(W))


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_first_step_records_match_a_float64_reference(optimizer):
    data = _tiny_data()
    net = vglab.MLP(depth=3, width=8, activation="tanh", bias_std=0.2)
    h = vglab.train(net, data, steps=1, optimizer=optimizer, learning_rate=0.05, batch_size=len(data[1]),
                    seed=4)
    W, grad = _reference_first_step(net, data, seed=4)
    grad_norms = np.linalg.norm(grad.reshape(3, -1), axis=1)
    np.testing.assert_allclose(h.log10_grad_norms[0], np.log10(grad_norms), rtol=1e-5, atol=1e-5)
    weight_norms = np.linalg.norm(W.reshape(3, -1), axis=1)
    if optimizer == "adam":  # first Adam step: Δ = −η g/(|g| + ε) elementwise (bias corrections cancel)
        step = 0.05 * grad / (np.abs(grad) + 1e-8)
    else:  # first sgd and momentum steps: Δ = −η g
        step = 0.05 * grad
    expected_ratio = np.linalg.norm(step.reshape(3, -1), axis=1) / weight_norms
    np.testing.assert_allclose(h.update_ratio[0], expected_ratio, rtol=1e-4)
    np.testing.assert_allclose(h.final_parameters.weights, W - step, rtol=1e-4, atol=1e-6)
    assert h.data == "custom" and h.to_code().startswith(  # the caller's arrays: named ``data`` in the code
        "vglab.train(vglab.MLP(depth=3, width=8, bias_std=0.2), data=data, steps=1, ")


def test_training_starts_from_the_weights_gradient_norms_analyses():
    net = vglab.MLP(depth=4, width=8, activation="relu", init="he", bias_std=0.1)
    params = training.initial_parameters(net, features=2, classes=2, seed=7)
    bank = jacobians.weight_bank((7,), 8, False, 4)
    np.testing.assert_allclose(np.asarray(params.weights), np.asarray(bank.weights[0, :4]) * math.sqrt(2 / 8),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(params.biases), np.asarray(bank.biases[0, :4]) * 0.1, rtol=1e-6)


def test_dead_fraction_at_the_first_step_matches_a_direct_count():
    data = _tiny_data()
    net = vglab.MLP(depth=3, width=8, activation="relu", init="he", bias_std=1.0)
    h = vglab.train(net, data, steps=1, batch_size=len(data[1]), seed=6)
    params = training.initial_parameters(net, 2, 2, seed=6)
    hidden = data[0] @ np.asarray(params.inputs, np.float64)
    expected = []
    for W, b in zip(np.asarray(params.weights), np.asarray(params.biases), strict=True):
        z = hidden @ W.T + b
        expected.append(np.mean(np.all(z <= 0, axis=0)))  # ReLU′ = 0 on every example
        hidden = np.maximum(z, 0)
    np.testing.assert_allclose(h.dead_fraction[0], expected)
    assert max(expected) > 0


def test_clipping_rescales_the_whole_gradient_to_the_clip_norm():
    data = _tiny_data()
    net = vglab.MLP(depth=3, width=8, activation="tanh", bias_std=0.2)
    h = vglab.train(net, data, steps=1, optimizer="sgd", learning_rate=0.05, clip_norm=1e-3,
                    batch_size=len(data[1]), seed=4)
    assert h.clipped[0] and h.log10_global_grad_norm[0] > -3
    start = training.initial_parameters(net, 2, 2, seed=4)
    moved = math.sqrt(sum(float(np.sum((np.asarray(a) - np.asarray(b)) ** 2))
                          for a, b in zip(h.final_parameters, start, strict=True)))
    # ‖Δθ‖ = η · clip_norm, read back from float32 parameters of size ~1: each entry of θ + Δθ is rounded to
    # half an ulp (6e-8), which is ~1e-3 of a 5e-5 step, so the norm of the difference is good to ~2e-4.
    assert moved == pytest.approx(0.05 * 1e-3, rel=5e-4)


def test_dead_units_and_test_evaluation_are_recorded():
    net = vglab.MLP(activation="relu", init="he", bias_std=1.0, **DEEP)
    h = vglab.train(net, "digits", steps=20, eval_every=5, learning_rate=0.01)
    assert h.dead_fraction.shape == (20, 20)
    assert 0.1 <= h.dead_fraction.mean() < 1.0  # random biases switch many ReLUs off for the whole batch
    np.testing.assert_array_equal(h.eval_steps, [4, 9, 14, 19])
    assert h.test_accuracy.shape == h.test_loss.shape == (4,)
    assert np.all((0 <= h.test_accuracy) & (h.test_accuracy <= 1))
    sig = vglab.train(vglab.MLP(activation="sigmoid", **DEEP), "digits", steps=5)
    assert np.all(sig.dead_fraction == 0.0)  # σ′ > 0 everywhere


def test_runs_are_deterministic_and_seeds_differ():
    net = vglab.MLP(activation="sigmoid", **DEEP)
    a = vglab.train(net, "digits", steps=15, seed=1)
    b = vglab.train(net, "digits", steps=15, seed=1)
    c = vglab.train(net, "digits", steps=15, seed=2)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.update_ratio, b.update_ratio)
    assert not np.array_equal(a.loss, c.loss)
    assert a.to_code() == ("vglab.train(vglab.MLP(depth=20, width=32, activation='sigmoid'), data='digits', "
                           "steps=15, optimizer='sgd', learning_rate=0.1, batch_size=64, seed=1)")
    again = eval(a.to_code(), {"vglab": vglab})
    np.testing.assert_array_equal(again.loss, a.loss)


# --------------------------------------------------------------------------------------------- long runs
def test_keyboard_interrupt_in_a_callback_stops_and_keeps_the_history():
    seen = []

    def stop_at_seven(step, metrics):
        seen.append((step, metrics["loss"]))
        if step == 7:
            raise KeyboardInterrupt

    net = vglab.MLP(activation="sigmoid", **DEEP)
    h = vglab.train(net, "digits", steps=STEPS, callback=stop_at_seven)
    assert h.interrupted and not h.diverged
    assert h.steps_completed == 8 and h.loss.shape == (8,) and h.update_ratio.shape == (8, 20)
    assert [s for s, _ in seen] == list(range(8))
    np.testing.assert_allclose(h.loss, [loss for _, loss in seen])
    full = vglab.train(net, "digits", steps=8)
    np.testing.assert_array_equal(h.loss, full.loss)  # nothing lost or changed by the interruption


def test_progress_bar_is_shown_on_request(capsys):
    net = vglab.MLP(activation="sigmoid", **DEEP)
    vglab.train(net, "digits", steps=12, progress=True)
    err = capsys.readouterr().err
    assert "vglab.train" in err and "12/12" in err
    vglab.train(net, "digits", steps=12)
    assert capsys.readouterr().err == ""


def test_one_compiled_step_per_configuration():
    net = vglab.MLP(activation="sigmoid", **DEEP)
    vglab.train(net, "digits", steps=2)
    before = training.compiled_programs()
    vglab.train(net, "digits", steps=3, learning_rate=0.02, seed=5)
    vglab.train(net.replace(weight_std=0.5, bias_std=0.1), "digits", steps=3)
    assert training.compiled_programs() == before  # learning rate, seed and σ are traced numbers


# --------------------------------------------------------------------------------------------- data sets
def test_digits_split_and_standardisation():
    x_train, y_train, x_test, y_test = vglab.datasets.digits()
    assert x_train.shape == (1348, 64) and x_test.shape == (449, 64)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert set(np.unique(y_train)) == set(range(10))
    assert abs(x_train.mean()) < 1e-5 and x_train.std() == pytest.approx(1.0, abs=1e-4)
    again = vglab.datasets.digits()
    np.testing.assert_array_equal(again[0], x_train)
    other = vglab.datasets.digits(seed=1)
    assert not np.array_equal(other[1], y_train)


def test_two_spirals_are_balanced_standardised_and_spiral_shaped():
    x_train, y_train, x_test, y_test = vglab.datasets.two_spirals(n=400, noise=0.0, seed=2)
    assert x_train.shape == (300, 2) and x_test.shape == (100, 2)
    y = np.concatenate([y_train, y_test])
    assert np.sum(y == 0) == np.sum(y == 1) == 200
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0), 1.0, atol=1e-4)
    # Not linearly separable: the best least-squares linear classifier is near chance.
    X = np.c_[x_train, np.ones(len(x_train))]
    w = np.linalg.lstsq(X, 2.0 * y_train - 1.0, rcond=None)[0]
    assert np.mean((X @ w > 0) == (y_train == 1)) < 0.75


# --------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,message", [
    (dict(data="mnist"), r"unknown data 'mnist' \(valid: digits, two_spirals\)"),
    (dict(data="digit"), r"unknown data 'digit'; did you mean 'digits'\?"),
    (dict(data=(np.zeros((4, 2)),)), r"data must be 'digits', 'two_spirals' or a tuple"),
    (dict(data=(np.zeros(4), np.zeros(4, int))), r"data x_train must be a 2-D array .*, got shape \(4,\)"),
    (dict(data=(np.zeros((4, 2)), np.zeros(4))), r"data y_train must be a 1-D array of integer class labels"),
    (dict(data=(np.zeros((4, 2)), np.array([0, 1, 0]))), r"same number of examples, got 4 and 3"),
    (dict(data=(np.full((4, 2), np.nan), np.array([0, 1, 0, 1]))), r"data x_train must hold finite numbers"),
    (dict(data=(np.zeros((4, 2)), np.zeros(4, int))), r"data must hold at least 2 classes"),
    (dict(data=(np.zeros((4, 2)), np.array([0, 1, 0, 1]), np.zeros((2, 3)), np.array([0, 1]))),
     r"data x_test must have the 2 features of x_train, got 3"),
    (dict(steps=0), r"steps must be an integer in 1\.\.1000000, got 0"),
    (dict(optimizer="adamw"), r"unknown optimizer 'adamw'; did you mean 'adam'\? \(valid: sgd, momentum, "),
    (dict(learning_rate=0.0), r"learning_rate must be in \(0\.0, 100\.0\], got 0\.0"),
    (dict(clip_norm=-1.0), r"clip_norm must be in \(0\.0, 1000000\.0\], got -1\.0"),
    (dict(batch_size=5000), r"batch_size must be an integer in 1\.\.1348, got 5000"),
    (dict(eval_every=0), r"eval_every must be an integer in 1\.\.10, got 0"),
    (dict(progress="yes"), r"progress must be True or False, got 'yes'"),
    (dict(callback=3), r"callback must be callable \(step, metrics\), got int"),
    (dict(seed=-1), r"seed must be an integer in 0\.\.2147483647, got -1"),
])
def test_train_rejects_bad_input(kwargs, message):
    args = dict(data="digits", steps=10) | kwargs
    with pytest.raises(ValueError, match=message):
        vglab.train(vglab.MLP(depth=2, width=4), **args)


def test_train_rejects_other_networks_and_huge_ones():
    with pytest.raises(ValueError, match=r"train expects a model with a training_run\(data, \*\*options\) method "
                                         r"\(the vglab.TrainingModel protocol: vglab.MLP or ConvNet\), got RNN"):
        vglab.train(vglab.RNN(), "digits")
    message = r"depth × \(width² \+ width\) = 167813120000 parameters, above the 50000000 bound"
    with pytest.raises(ValueError, match=message):
        vglab.train(vglab.MLP(depth=10000, width=4096), "digits")


@pytest.mark.parametrize("call,message", [
    (lambda: vglab.datasets.two_spirals(n=2), r"n must be an integer in 4\.\.1000000, got 2"),
    (lambda: vglab.datasets.two_spirals(noise=-1.0), r"noise must be in \[0\.0, 10\.0\], got -1\.0"),
    (lambda: vglab.datasets.two_spirals(turns=0.0), r"turns must be in \(0\.0, 20\.0\], got 0\.0"),
    (lambda: vglab.datasets.digits(test_fraction=1.0), r"test_fraction must be in \(0\.0, 0\.9\], got 1\.0"),
    (lambda: vglab.datasets.digits(seed="a"), r"seed must be an integer"),
])
def test_datasets_reject_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_every_parameter_is_float32_whatever_jax_enable_x64_says():
    """The training run is float32 throughout: with jax_enable_x64 on (the float64 references turn it on for
    the whole test session) an untyped zeros() would make the readout bias float64 and change every step."""
    import jax

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        params = training.initial_parameters(vglab.MLP(depth=3, width=8), features=4, classes=3)
        from vglab.models.convolutional import _init_classifier

        conv = _init_classifier(vglab.ConvNet(depth=2, channels=4, length=8), seed=0, classes=3)
    finally:
        jax.config.update("jax_enable_x64", previous)
    for leaf in [*params, *conv.values()]:
        assert leaf.dtype == np.float32, leaf.dtype
