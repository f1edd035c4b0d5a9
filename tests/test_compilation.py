"""Live sliders: after warm-up, changing depth or a numeric option compiles nothing."""

import numpy as np

import vglab
from vglab.core.compilation import CompileCounter
from vglab.models import jacobians

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


def compiled_programs(run, dump_dir) -> dict[str, list[str]]:
    """{dumped module file name: its ``stablehlo.dot_general`` lines} for every program XLA compiles while
    ``run()`` runs (caches cleared first, so vglab's kernels are traced and compiled again)."""
    import jax

    jax.clear_caches()
    previous = jax.config.values["jax_dump_ir_to"]
    jax.config.update("jax_dump_ir_to", str(dump_dir))
    try:
        run()
    finally:
        jax.config.update("jax_dump_ir_to", previous)
    return {path.name: [line.strip() for line in path.read_text().splitlines() if "stablehlo.dot_general" in line]
            for path in sorted(dump_dir.glob("*.mlir"))}


def test_every_matrix_product_vglab_compiles_is_full_float32(tmp_path):
    # JAX's default precision lets XLA compute float32 products in TF32 on NVIDIA GPUs (relative error ~1e-3):
    # vglab's kernels must ask for HIGHEST, which a CPU run can see in the compiled programs.
    def every_kernel():
        vglab.gradient_norms(vglab.MLP(depth=4, width=6, norm="pre", residual=True), n_seeds=2)
        vglab.jacobian_spectrum(vglab.MLP(depth=3, width=5))
        vglab.gradient_norms(vglab.RNN(cell="lstm", hidden=5, steps=4))
        vglab.gradient_norms(vglab.RNN(cell="vanilla", hidden=5, steps=4))
        vglab.gradient_norms(vglab.Transformer(depth=2, width=8, heads=2))
        vglab.train(vglab.MLP(depth=2, width=8), "digits", steps=2, batch_size=16, eval_every=2)

    programs = compiled_programs(every_kernel, tmp_path)
    for kernel in ("_gradient_norms_program", "_spectrum_program", "_recurrent_program", "_transformer_program",
                   "_train_step", "_evaluate"):  # each was compiled, so the check below covers it
        assert any(f"jit_{kernel}_" in name for name in programs), f"{kernel} was not compiled: {sorted(programs)}"
    products = [line for lines in programs.values() for line in lines]
    assert len(products) > 20
    not_exact = [line for line in products if "precision = [HIGHEST, HIGHEST]" not in line]
    assert not not_exact, f"{len(not_exact)} of {len(products)} products at default precision: {not_exact[:2]}"


def test_exact_jit_overrides_a_callers_lower_default_precision(tmp_path):
    import jax
    import jax.numpy as jnp

    from vglab.core.compilation import exact_jit

    def product(a, b):
        return jnp.einsum("ij,jk->ik", a, b) @ b

    x = jnp.eye(3) * 1.5
    with jax.default_matmul_precision("bfloat16"):
        plain = jax.jit(product).lower(x, x).as_text()
        exact = exact_jit(product).lower(x, x).as_text()
        exact_static = exact_jit(static_argnames=("power",))(lambda a, power: a @ a**power).lower(x, power=2)
    assert plain.count("precision = [DEFAULT, DEFAULT]") == 2  # the caller's bfloat16 lowers to DEFAULT
    assert exact.count("precision = [HIGHEST, HIGHEST]") == 2
    assert exact_static.as_text().count("precision = [HIGHEST, HIGHEST]") == 1


def test_a_models_program_key_says_when_a_new_program_is_compiled():
    """``experiments.program_key`` (each model's ``program_key``, what the dashboards' "compiling…" notice
    reads): after one call, a net with the same key compiles nothing; each net with a new key compiles."""
    from vglab import experiments

    mlp = vglab.MLP(depth=12, width=20, activation="tanh", init="gaussian")
    rnn = vglab.RNN(cell="vanilla", hidden=20, steps=12)
    stack = vglab.Transformer(depth=3, width=16, heads=2, seq_len=8)
    cases = [(mlp, [mlp.replace(depth=5, weight_std=2.0, bias_std=0.3)],
              [mlp.replace(activation="relu"), mlp.replace(residual=True), mlp.replace(width=24),
               mlp.replace(init="orthogonal")]),
             (rnn, [rnn.replace(steps=7, weight_std=0.5)],
              [rnn.replace(cell="lstm"), rnn.replace(hidden=24), rnn.replace(spectral_radius=0.9)]),
             (stack, [stack.replace(depth=2, weight_std=0.5)], [stack.replace(norm="post"), stack.replace(heads=4)])]
    for base, same, new in cases:
        vglab.gradient_norms(base, n_seeds=2)
        for net in same:
            assert experiments.program_key(net, 2) == experiments.program_key(base, 2)
            before = COUNTER.count
            vglab.gradient_norms(net, n_seeds=2)
            assert COUNTER.count == before, f"{net} has {base}'s key but compiled"
        for net in new:
            assert experiments.program_key(net, 2) != experiments.program_key(base, 2)
            before = COUNTER.count
            vglab.gradient_norms(net, n_seeds=2)
            assert COUNTER.count > before, f"{net} has a new key but compiled nothing"
        assert experiments.program_key(base, 3) != experiments.program_key(base, 2)
