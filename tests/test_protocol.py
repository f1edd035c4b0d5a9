"""The parts every model shares, written once (issue 14 item 2): descriptions are ``vglab.core.config.Config``
subclasses (validation, ``replace``, ``to_code``, hashing), every ``gradient_norms`` result is a
``vglab.GradientProfile``, and the lab layer reaches the models only through public names."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

import vglab
from vglab.core.config import Config
from vglab.core.results import GradientModel, GradientProfile, SpectrumModel, TrainingModel
from vglab.models import recurrent, transformer

LAB = Path(vglab.__file__).parent / "lab"

# (description, a variant with every option away from its default); small enough to compute in a second.
NETWORKS = {
    "MLP": (vglab.MLP(depth=3, width=4),
            vglab.MLP(depth=3, width=4, activation="relu", init="he", weight_std=1.5, bias_std=0.1, residual=True,
                      norm="post", residual_scale=0.5, leaky_slope=0.2)),
    "MLP profile": (vglab.MLP(widths=(3, 5, 5, 2)), vglab.MLP(widths=(3, 5, 5, 2), activation="gelu", bias_std=0.2)),
    "RNN": (vglab.RNN(hidden=4, steps=5),
            vglab.RNN(cell="vanilla", hidden=4, steps=5, activation="relu", weight_std=0.7, input_std=0.5,
                      bias_std=0.1, leaky_slope=0.1)),
    "LSTM": (vglab.RNN(cell="lstm", hidden=4, steps=5), vglab.RNN(cell="lstm", hidden=4, steps=5, forget_bias=3.0,
                                                                  spectral_radius=0.9)),
    "GRU": (vglab.RNN(cell="gru", hidden=4, steps=5), vglab.RNN(cell="gru", hidden=4, steps=5, update_bias=-1.0)),
    "Transformer": (vglab.Transformer(depth=2, width=8, heads=2, seq_len=3),
                    vglab.Transformer(depth=2, width=8, heads=2, seq_len=3, residual=False, norm=None,
                                      activation="tanh", weight_std=0.5, mlp_ratio=2, leaky_slope=0.3)),
    "BatchNormMLP": (vglab.BatchNormMLP(depth=3, width=4, batch=8),
                     vglab.BatchNormMLP(depth=3, width=4, batch=8, activation="tanh", init="xavier", weight_std=1.5,
                                        residual=True, residual_scale=0.5, leaky_slope=0.2)),
    "ConvNet": (vglab.ConvNet(depth=2, channels=4, length=8),
                vglab.ConvNet(depth=2, channels=4, kernel=3, length=8, activation="tanh", init="xavier",
                              weight_std=1.1, bias_std=0.1, residual=True, residual_scale=0.3, norm="pre")),
}
PAIRS = list(NETWORKS.values())
IDS = list(NETWORKS)


@pytest.mark.parametrize(("plain", "varied"), PAIRS, ids=IDS)
def test_every_description_is_a_config_whose_code_rebuilds_it(plain, varied):
    for net in (plain, varied):
        assert isinstance(net, Config) and dataclasses.is_dataclass(net)
        code = net.to_code()
        assert code.startswith(f"vglab.{type(net).__name__}(")
        rebuilt = eval(code, {"vglab": vglab})  # noqa: S307 - the code vglab wrote
        assert rebuilt == net and hash(rebuilt) == hash(net)
    assert plain != varied and plain.replace(**_fields(varied)) == varied
    # Every option away from its default is written; the plain one writes no option it does not need.
    assert all(f"{name}=" in varied.to_code() for name in _changed(plain, varied))
    assert len(plain.to_code()) < len(varied.to_code())


def _fields(net) -> dict:
    return {f.name: getattr(net, f.name) for f in dataclasses.fields(net) if f.init}


def _changed(a, b) -> list[str]:
    return [name for name, value in _fields(b).items() if _fields(a)[name] != value]


@pytest.mark.parametrize(("plain", "varied"), PAIRS, ids=IDS)
def test_declared_defaults_are_the_canonical_values(plain, varied):
    """to_code compares with each field's declared default: a default that validation rewrote (1 → 1.0,
    'layernorm' → 'pre') would make every to_code write it."""
    cls = type(plain)
    required = {f.name: getattr(plain, f.name) for f in dataclasses.fields(cls)
                if f.init and f.default is dataclasses.MISSING}
    default = cls(**required) if required or cls is not vglab.MLP else cls(depth=1, width=1)
    for f in dataclasses.fields(cls):
        if f.init and f.default is not dataclasses.MISSING and f.name not in ("depth", "width"):
            assert getattr(default, f.name) == f.default, f.name
            assert type(getattr(default, f.name)) is type(f.default), f.name


def test_to_code_is_what_it_was_before_the_common_base():
    """The exact strings the per-class to_code methods wrote (notebooks' code views show them)."""
    assert vglab.MLP(depth=5, width=8, norm="layernorm", weight_std=2).to_code() == \
        "vglab.MLP(depth=5, width=8, weight_std=2.0, norm='pre')"
    assert vglab.MLP(widths=(4, 8, 8, 2), depth=6).to_code() == "vglab.MLP(widths=(4, 8, 8, 8, 8, 8, 2))"
    assert vglab.MLP(widths=(5, 5, 5)).to_code() == "vglab.MLP(depth=2, width=5)"
    assert vglab.RNN().to_code() == "vglab.RNN(cell='vanilla', hidden=32, steps=50)"
    assert vglab.RNN(cell="lstm", hidden=64, forget_bias=3).to_code() == \
        "vglab.RNN(cell='lstm', hidden=64, steps=50, forget_bias=3.0)"
    assert vglab.Transformer(depth=96, width=64, heads=4, norm="post").to_code() == \
        "vglab.Transformer(depth=96, width=64, heads=4, norm='post')"
    assert vglab.BatchNormMLP(depth=3, width=4, batch=8).to_code() == "vglab.BatchNormMLP(depth=3, width=4, batch=8)"
    assert vglab.ConvNet(depth=3, residual=True, norm="pre").to_code() == \
        "vglab.ConvNet(depth=3, residual=True, norm='pre')"


@pytest.mark.parametrize(("make", "message"), [
    (lambda: vglab.RNN(hidden=0), "hidden must be an integer in 1..2048, got 0"),
    (lambda: vglab.RNN(hidden=4).replace(steps=0), "steps must be an integer in 1..10000, got 0"),
    (lambda: vglab.Transformer(depth=2, width=8, heads=2).replace(residual=1), "residual must be True or False, got 1"),
    (lambda: vglab.Transformer(depth=2, width=8, heads=2).replace(heads=3),
     "width must be divisible by heads, got width=8, heads=3"),
    (lambda: vglab.BatchNormMLP(depth=2, width=2).replace(weight_std=0), r"weight_std must be in \(0.0, 100.0\]"),
    (lambda: vglab.ConvNet(depth=2).replace(kernel=4), "kernel must be odd"),
    (lambda: vglab.ConvNet(depth=2).replace(norm="post"), "norm must be None or 'pre', got 'post'"),
    (lambda: vglab.ConvNet(depth=2, activaton="relu"), "vglab.ConvNet\\(\\) got an unknown keyword 'activaton'; "
                                                        "did you mean 'activation'"),
    (lambda: vglab.RNN().replace(hiden=3), "vglab.RNN\\(\\) got an unknown keyword 'hiden'; did you mean 'hidden'"),
    (lambda: vglab.MLP(depth=2, width=2).replace(activation="sigmod"), "did you mean 'sigmoid'"),
])
def test_replace_validates_like_the_constructor(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------------------------- results
@pytest.mark.parametrize(("plain", "varied"), PAIRS, ids=IDS)
def test_every_gradient_result_is_a_gradient_profile(plain, varied):
    result = vglab.gradient_norms(varied, seed=3, n_seeds=2)
    assert isinstance(result, GradientProfile)
    # Its class, or the class it refines (a width profile's ProfileGradientNorms is a GradientNorms), is public.
    assert [c for c in type(result).__mro__ if c is not GradientProfile and getattr(vglab, c.__name__, None) is c
            and c.__name__ in vglab.__all__]
    assert result.net == varied and (result.seed, result.n_seeds) == (3, 2)
    grad = result.log10_activation_grad
    assert grad.shape == (2, result.positions + 1) and not np.any(np.isnan(grad))  # −inf: exactly 0 (ReLU)
    np.testing.assert_array_equal(result.log10_gradient_ratio, grad[:, 0] - grad[:, -1])
    for name in result.extras:
        assert np.shape(getattr(result, name))[0] == 2, name
    again = eval(result.to_code(), {"vglab": vglab})  # noqa: S307 - the code vglab wrote
    assert type(again) is type(result)
    np.testing.assert_array_equal(again.log10_activation_grad, grad)


@pytest.mark.parametrize(("plain", "varied"), PAIRS, ids=IDS)
def test_gradient_norms_dispatches_on_the_gradient_model_protocol(plain, varied):
    assert isinstance(plain, GradientModel)
    direct, dispatched = plain.gradient_profile(seed=1, n_seeds=2), vglab.gradient_norms(plain, seed=1, n_seeds=2)
    assert type(direct) is type(dispatched)
    np.testing.assert_array_equal(direct.log10_activation_grad, dispatched.log10_activation_grad)


def test_a_model_of_ones_own_plugs_in_through_the_protocol():
    class Halving:
        """Each of 3 layers halves the gradient: log10 ‖∂L/∂h_l‖ = (3 − l)·log10 ½."""

        def gradient_profile(self, seed=0, n_seeds=1):
            return GradientProfile(self, seed, n_seeds, np.tile((3 - np.arange(4)) * np.log10(0.5), (n_seeds, 1)))

        def to_code(self):
            return "Halving()"

    result = vglab.gradient_norms(Halving(), seed=2, n_seeds=3)
    np.testing.assert_allclose(result.log10_gradient_ratio, [3 * np.log10(0.5)] * 3)
    assert result.to_code() == "vglab.gradient_norms(Halving(), seed=2, n_seeds=3)"
    with pytest.raises(ValueError, match="gradient_norms expects a vglab.MLP, RNN, Transformer or Stack, got str"):
        vglab.gradient_norms("mlp")


# --------------------------------------------------------------------------------------------- spectra and training
def _user_stack():
    import jax.numpy as jnp

    return vglab.Stack([jnp.tanh, lambda h: 0.5 * h, jnp.sin], jnp.linspace(-1.0, 1.0, 5))


SPECTRUM_MODELS = {"MLP": lambda: vglab.MLP(depth=3, width=4),
                   "MLP residual pre-LN": lambda: vglab.MLP(depth=3, width=4, residual=True, norm="pre"),
                   "Stack": _user_stack,
                   "ConvNet": lambda: vglab.ConvNet(depth=2, channels=3, length=5, activation="tanh")}


@pytest.mark.parametrize("make", list(SPECTRUM_MODELS.values()), ids=list(SPECTRUM_MODELS))
def test_jacobian_spectrum_dispatches_on_the_spectrum_model_protocol(make):
    net = make()
    assert isinstance(net, SpectrumModel) and isinstance(net, GradientModel)
    direct, dispatched = net.jacobian_spectrum(seed=2), vglab.jacobian_spectrum(net, seed=2)
    assert type(direct) is type(dispatched) is vglab.JacobianSpectrum
    assert dispatched.net is net and dispatched.seed == 2
    np.testing.assert_array_equal(direct.log10_singular_values, dispatched.log10_singular_values)
    np.testing.assert_array_equal(direct.log10_partial_norms, dispatched.log10_partial_norms)
    n = 5 if isinstance(net, vglab.Stack) else 15 if isinstance(net, vglab.ConvNet) else 4
    assert dispatched.log10_singular_values.shape == (n,) and dispatched.log10_partial_norms.shape == (3 - (
        isinstance(net, vglab.ConvNet)),)
    singular_values = dispatched.log10_singular_values
    assert np.all(np.diff(singular_values[np.isfinite(singular_values)]) <= 0)  # descending; −inf: exactly 0


def test_the_stack_spectrum_is_the_product_of_its_blocks_jacobians():
    """The public Stack.jacobian_spectrum against the singular values of J_3 J_2 J_1 formed in float64."""
    stack = _user_stack()
    x = np.linspace(-1.0, 1.0, 5)
    h1 = np.tanh(x)
    jacobian = np.diag(np.cos(0.5 * h1)) @ (0.5 * np.eye(5)) @ np.diag(1.0 - np.tanh(x) ** 2)
    np.testing.assert_allclose(vglab.jacobian_spectrum(stack).log10_singular_values,
                               np.log10(np.linalg.svd(jacobian, compute_uv=False)), rtol=0, atol=1e-5)


def test_a_model_of_ones_own_plugs_into_jacobian_spectrum():
    class Diagonal:
        """∂h_L/∂h_0 = diag(1, ½, ¼) over 2 layers: σ = 1, ½, ¼."""

        def jacobian_spectrum(self, seed=0):
            return vglab.JacobianSpectrum(self, seed, np.log10([1.0, 0.5, 0.25]), np.array([0.5, 0.1]))

        def to_code(self):
            return "Diagonal()"

    net = Diagonal()
    assert isinstance(net, SpectrumModel) and not isinstance(net, GradientModel)
    result = vglab.jacobian_spectrum(net, seed=4)
    np.testing.assert_array_equal(result.log10_singular_values, np.log10([1.0, 0.5, 0.25]))
    assert result.to_code() == "vglab.jacobian_spectrum(Diagonal(), seed=4)"


@pytest.mark.parametrize("net", [vglab.RNN(hidden=4, steps=3), vglab.Transformer(depth=1, width=8, heads=2, seq_len=2),
                                 vglab.BatchNormMLP(depth=2, width=4, batch=8), "mlp", None],
                         ids=["RNN", "Transformer", "BatchNormMLP", "str", "None"])
def test_a_model_without_a_spectrum_engine_gets_a_clear_error(net):
    assert not isinstance(net, SpectrumModel)
    message = (r"jacobian_spectrum expects a model with a jacobian_spectrum\(seed\) method \(the vglab.SpectrumModel "
               rf"protocol: vglab.MLP, Stack or ConvNet\), got {type(net).__name__}$")
    with pytest.raises(ValueError, match=message):
        vglab.jacobian_spectrum(net)


# --------------------------------------------------------------------------------------------- training
TINY_MLP = vglab.MLP(depth=3, width=8, activation="relu", init="he")
TINY_CONVNET = vglab.ConvNet(depth=2, channels=3, kernel=3, length=12)


def _tiny_sequences(n: int = 48, length: int = 12):
    """(x_train, y_train, x_test, y_test): sign of the first half's sum, 2 classes (as in test_convolutional)."""
    x = np.random.default_rng(0).standard_normal((n, length)).astype(np.float32)
    y = (x[:, :length // 2].sum(axis=1) > 0).astype(np.int32)
    return x, y, x[:16], y[:16]


def _mlp_replay(net, data, steps, optimizer, learning_rate, clip_norm, batch_size, seed):
    """The MLP's training loop written out from its compiled pieces (vglab.training's init and step): what
    ``vglab.train`` recorded before it dispatched on the protocol."""
    import jax
    import jax.numpy as jnp

    from vglab import training
    from vglab.core import optimizers

    data = training.as_data(data)
    structure = training.Structure(net.activation, net.residual, net.norm, optimizer, clip_norm is not None)
    params = training.initial_parameters(net, data.x_train.shape[1], data.classes, seed)
    state = optimizers.initial_state(structure.optimizer, params)
    records = []
    for step in range(steps):
        params, state, metrics = training._train_step(
            structure, params, state, jnp.int32(step), jax.random.key(seed), jnp.asarray(data.x_train),
            jnp.asarray(data.y_train), batch_size, jnp.float32(learning_rate), jnp.float32(clip_norm or 0.0),
            jnp.float32(net.residual_scale), jnp.float32(net.leaky_slope))
        records.append({k: np.asarray(v, np.float64) for k, v in metrics.items()})
    return {k: np.stack([r[k] for r in records]) for k in records[0]}


def _convnet_replay(net, data, steps, learning_rate, batch_size, seed):
    """The ConvNet's training loop written out from its compiled pieces (what ``train_convnet`` ran)."""
    import jax
    import jax.numpy as jnp

    from vglab.core.streams import stream
    from vglab.models import convolutional

    x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in data)
    params = convolutional._init_classifier(net, seed, int(max(y_train.max(), y_test.max())) + 1)
    state = (jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params))
    records = []
    for step in range(steps):
        params, state, metrics = convolutional._train_step(net, params, state, jnp.int32(step),
                                                           stream(seed, "conv_batch"), x_train, y_train,
                                                           batch_size, np.float32(learning_rate))
        records.append([np.asarray(m, np.float64) for m in metrics])
    loss, accuracy, log10_grad = (np.stack(column) for column in zip(*records, strict=True))
    finals = [float(v) for split in ((x_train, y_train), (x_test, y_test))
              for v in convolutional._evaluate(net, params, *split)]
    return loss, accuracy, log10_grad, finals


def test_the_models_that_train_are_training_models():
    for net in (TINY_MLP, TINY_CONVNET):
        assert isinstance(net, TrainingModel)
    for net in (vglab.RNN(hidden=4, steps=3), vglab.Transformer(depth=1, width=8, heads=2, seq_len=2),
                vglab.BatchNormMLP(depth=2, width=4, batch=8), _user_stack(), 3):
        assert not isinstance(net, TrainingModel)
    assert "TrainingModel" in vglab.__all__ and vglab.TrainingModel is TrainingModel


def test_train_runs_an_mlp_exactly_as_its_own_training_loop():
    """vglab.train(mlp, ...) = mlp.training_run(...) = the loop replayed from its compiled step, bit for bit,
    with every option reaching the run (momentum, a learning rate and a clip norm away from their defaults)."""
    options = dict(steps=3, optimizer="momentum", learning_rate=0.02, clip_norm=0.5, batch_size=32, seed=1)
    history = vglab.train(TINY_MLP, "digits", **options)
    replay = _mlp_replay(TINY_MLP, "digits", **options)
    assert type(history) is vglab.TrainingHistory and history.steps_completed == 3
    for name in ("loss", "accuracy", "log10_grad_norms", "log10_global_grad_norm", "update_ratio",
                 "dead_fraction"):
        np.testing.assert_array_equal(getattr(history, name), replay[name], err_msg=name)
    np.testing.assert_array_equal(history.clipped, replay["clipped"].astype(bool))
    assert history.clipped.any()  # clip_norm reached the step
    direct = TINY_MLP.training_run("digits", **options)
    np.testing.assert_array_equal(direct.log10_grad_norms, history.log10_grad_norms)
    np.testing.assert_array_equal(direct.test_accuracy, history.test_accuracy)
    # data=None is the MLP's own default data set, "digits": vglab.train(mlp) behaves as it did.
    default = vglab.train(TINY_MLP, steps=2, seed=1)
    assert default.data == "digits"
    np.testing.assert_array_equal(default.loss, vglab.train(TINY_MLP, data="digits", steps=2, seed=1).loss)
    again = eval(history.to_code(), {"vglab": vglab})  # noqa: S307 - the code vglab wrote
    np.testing.assert_array_equal(again.loss, history.loss)


def test_train_runs_a_convnet_exactly_as_train_convnet():
    """vglab.train(convnet, ...) = train_convnet(...) = convnet.training_run(...) = the loop replayed from its
    compiled step, bit for bit; its history's code (a vglab.train call) reproduces it."""
    data = _tiny_sequences()
    options = dict(steps=4, learning_rate=1e-2, batch_size=16, seed=3)
    dispatched = vglab.train(TINY_CONVNET, data, **options)
    loss, accuracy, log10_grad, finals = _convnet_replay(TINY_CONVNET, data, **options)
    assert type(dispatched) is vglab.ConvTrainingHistory and dispatched.data == "custom"
    for history in (dispatched, vglab.train_convnet(TINY_CONVNET, data, **options),
                    TINY_CONVNET.training_run(data, **options)):
        np.testing.assert_array_equal(history.loss, loss)
        np.testing.assert_array_equal(history.accuracy, accuracy)
        np.testing.assert_array_equal(history.log10_grad_norms, log10_grad)
        assert [history.train_loss, history.train_accuracy, history.test_loss, history.test_accuracy] == finals
    code = dispatched.to_code()
    assert code == ("vglab.train(vglab.ConvNet(depth=2, channels=3, kernel=3, length=12), data=data, steps=4, "
                    "learning_rate=0.01, batch_size=16, seed=3)")
    again = eval(code, {"vglab": vglab, "data": data})  # noqa: S307 - the code vglab wrote
    np.testing.assert_array_equal(again.log10_grad_norms, dispatched.log10_grad_norms)


def test_a_model_of_ones_own_plugs_into_train():
    """train hands the data and every option to the model's training_run and returns what it returns."""
    calls = []

    class Recorder:
        def training_run(self, data=None, **options):
            calls.append((data, options))
            return self.history

        def to_code(self):
            return "Recorder()"

    net = Recorder()
    net.history = object()
    assert isinstance(net, TrainingModel) and not isinstance(net, GradientModel)
    assert vglab.train(net, "my data", steps=7, anything="goes") is net.history
    assert vglab.train(net) is net.history
    assert calls == [("my data", {"steps": 7, "anything": "goes"}), (None, {})]


@pytest.mark.parametrize("net", [vglab.RNN(hidden=4, steps=3), vglab.Transformer(depth=1, width=8, heads=2, seq_len=2),
                                 vglab.BatchNormMLP(depth=2, width=4, batch=8), _user_stack(), 3, vglab.MLP],
                         ids=["RNN", "Transformer", "BatchNormMLP", "Stack", "int", "the MLP class"])
def test_a_model_without_a_training_loop_gets_a_clear_error(net):
    got = "the class MLP \\(pass an instance\\)" if net is vglab.MLP else type(net).__name__
    ours = isinstance(net, (vglab.RNN, vglab.Transformer, vglab.BatchNormMLP, vglab.Stack))
    message = (r"^train expects a model with a training_run\(data, \*\*options\) method \(the vglab.TrainingModel "
               rf"protocol: vglab.MLP or ConvNet\), got {got}"
               + ("; vglab has no training loop for the RNN, Transformer, BatchNormMLP or Stack$" if ours else "$"))
    with pytest.raises(ValueError, match=message):
        vglab.train(net, data="digits", steps=10)


@pytest.mark.parametrize(("net", "typo", "message"), [
    (TINY_MLP, "step", "vglab.MLP.training_run() got an unknown keyword 'step'; did you mean 'steps'? (valid: data, "
                       "steps, optimizer, learning_rate, clip_norm, batch_size, seed, eval_every, progress, callback)"),
    (TINY_CONVNET, "lerning_rate", "vglab.ConvNet.training_run() got an unknown keyword 'lerning_rate'; did you mean "
                                   "'learning_rate'? (valid: data, steps, learning_rate, batch_size, seed)"),
    (TINY_CONVNET, "optimizer", "vglab.ConvNet.training_run() got an unknown keyword 'optimizer' (valid: data, steps, "
                                "learning_rate, batch_size, seed)"),
])
def test_an_unknown_keyword_names_the_models_own_trainer(net, typo, message):
    from vglab.core.validation import KeywordError

    with pytest.raises(KeywordError) as info:
        vglab.train(net, steps=1, **{typo: 1})
    assert str(info.value) == message


def test_train_convnet_is_train_for_a_convnet_only():
    with pytest.raises(ValueError, match=r"^train_convnet expects a vglab.ConvNet, got MLP \(vglab.train trains any "
                                         r"vglab.TrainingModel\)$"):
        vglab.train_convnet(TINY_MLP, "digits")
    with pytest.raises(ValueError, match=r"unknown data 'mnist'; did you mean 'mnist1d'\? \(valid: mnist1d\)"):
        vglab.train(TINY_CONVNET, "mnist")
    with pytest.raises(ValueError, match=r"data must be 'mnist1d' \(or None\) or a tuple \(x_train, y_train, x_test, "
                                         r"y_test\), got tuple of 2"):
        vglab.train(TINY_CONVNET, _tiny_sequences()[:2])


def test_train_dispatches_on_the_protocol_not_on_the_mlp_class():
    """The source of vglab.train: no isinstance check against MLP (or ConvNet), one call of net.training_run."""
    import inspect

    from vglab import training

    tree = ast.parse(inspect.getsource(training.train))
    checks = [ast.unparse(node) for node in ast.walk(tree)
              if isinstance(node, ast.Call) and ast.unparse(node.func) == "isinstance"]
    assert checks and all("MLP" not in c and "ConvNet" not in c for c in checks), checks
    assert "isinstance(net, TrainingModel)" in checks
    calls = [ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert calls.count("net.training_run") == 1
    assert "isinstance(net, MLP)" not in inspect.getsource(training)


def test_no_module_uses_the_old_private_check_seeds():
    from vglab.models import jacobians

    assert not hasattr(jacobians, "_check_seeds")
    root = Path(vglab.__file__).parent.parent
    sources = [*root.joinpath("vglab").rglob("*.py"), *root.joinpath("notebooks").rglob("*.ipynb"),
               *root.joinpath("benchmarks").rglob("*.py")]
    assert len(sources) > 40
    assert [str(p) for p in sources if "_check_seeds" in p.read_text(encoding="utf-8")] == []


def test_extras_name_what_applies_to_the_network():
    lstm = vglab.gradient_norms(vglab.RNN(cell="lstm", hidden=4, steps=3))
    gru = vglab.gradient_norms(vglab.RNN(cell="gru", hidden=4, steps=3))
    assert "log10_cell_grad" in lstm.extras and "forget_gate_mean" in lstm.extras
    assert "log10_cell_grad" not in gru.extras and gru.extras == ("log10_hidden_rms", "update_gate_mean")
    assert set(vglab.gradient_norms(vglab.MLP(depth=2, width=3)).extras) >= {"dead_fraction", "log10_weight_grad"}


def test_a_result_with_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"log10_activation_grad must have shape \(n_seeds, positions\+1\) = \(2"):
        GradientProfile(vglab.MLP(depth=2, width=2), 0, 2, np.zeros((1, 3)))


def test_transformer_input_rms_is_that_of_the_drawn_tokens():
    net = vglab.Transformer(depth=2, width=8, heads=2, seq_len=5)
    result = vglab.gradient_norms(net, seed=4, n_seeds=2)
    expected = [0.5 * np.log10(np.mean(transformer.parameters(net, seed).tokens.astype(np.float64) ** 2))
                for seed in (4, 5)]
    np.testing.assert_allclose(result.log10_input_rms, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("engine", "net", "size"), [
    (recurrent, vglab.RNN(hidden=6, steps=300), "steps"),
    (transformer, vglab.Transformer(depth=100, width=8, heads=2, seq_len=3), "depth"),
])
def test_reserve_makes_every_smaller_size_run_one_program(engine, net, size):
    engine.reserve(net, seed=11, n_seeds=2)
    vglab.gradient_norms(net.replace(**{size: 1}), seed=11, n_seeds=2)
    compiled = engine.compiled_programs()
    for value in (2, 70, getattr(net, size)):  # across the engines' capacity buckets (64, 256 / 16, 128)
        vglab.gradient_norms(net.replace(**{size: value}), seed=11, n_seeds=2)
    assert engine.compiled_programs() == compiled
    with pytest.raises(ValueError, match="seed must be an integer in 0"):
        engine.reserve(net, seed=-1)


# --------------------------------------------------------------------------------------------- the lab layer
def private_uses(source: str) -> list[str]:
    """Underscore names the code takes from vglab.core or vglab.models: imported (``from vglab.models.x import
    _y``) or reached as an attribute of an imported core/model module (``recurrent._BANKS``, or
    ``vglab.models.recurrent._BANKS``)."""
    tree = ast.parse(source)
    engine_modules, found = set(), []

    def engine(name: str) -> bool:
        return name.startswith(("vglab.core", "vglab.models"))

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if engine(node.module) and alias.name.startswith("_"):
                    found.append(full)
                elif engine(full) or node.module in ("vglab.core", "vglab.models"):
                    engine_modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if engine(alias.name) and alias.asname:
                    engine_modules.add(alias.asname)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = ast.unparse(node.value)
            if owner in engine_modules or engine(owner):
                found.append(f"{owner}.{node.attr}")
    return found


def test_the_private_name_check_finds_what_it_should():
    source = ("from vglab.models.jacobians import _forward, gradient_norms\n"
              "from vglab.models import recurrent\n"
              "import vglab.models.transformer as tf\n"
              "import vglab\n"
              "recurrent._BANKS.clear(); tf.block_bank(); vglab.models.jacobians._per_seed\n"
              "self._x; recurrent.reserve(net); recurrent.__name__\n")
    assert sorted(private_uses(source)) == ["recurrent._BANKS", "vglab.models.jacobians._forward",
                                            "vglab.models.jacobians._per_seed"]


@pytest.mark.parametrize("path", sorted(LAB.glob("*.py")), ids=lambda p: p.name)
def test_the_lab_uses_no_private_name_of_the_core_or_the_models(path):
    assert private_uses(path.read_text()) == []
