"""The weight-bank machinery and the PRNG stream registry, written once in the core (issue 14 item 2).

- ``vglab.core.banks``: the bounded LRU every model keeps its banks in, the capacity ladder, the memory bound.
- ``vglab.core.streams``: one table of PRNG purposes.  The draws must stay bit for bit what they were before the
  table existed, so every model's bank is compared here with the formula it used to write out by hand,
  fold_in(fold_in(key(seed), <number>), index), with the numbers written as literals.
"""

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vglab
from vglab.core import banks, streams
from vglab.models import convolutional, jacobians, profile, recurrent, transformer

PACKAGE = Path(__file__).resolve().parents[1] / "vglab"


def _key(seed, number, index=None):
    """The literal formula every model wrote out before the registry."""
    key = jax.random.fold_in(jax.random.key(seed), number)
    return key if index is None else jax.random.fold_in(key, index)


def _normal(seed, number, index, shape):
    return np.asarray(jax.random.normal(_key(seed, number, index), shape, jnp.float32))


# --------------------------------------------------------------------------------------------- BankCache
def test_the_bank_cache_keeps_the_most_recently_used_and_drops_the_oldest():
    cache = banks.BankCache(size=2, budget_bytes=100)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert cache.keys() == ["a", "c"] and "b" not in cache and cache.get("b") is None
    cache.put("a", 4)  # replacing moves it to the end
    assert cache.keys() == ["c", "a"] and cache.get("a") == 4
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError, match="size must be at least 1, got 0"):
        banks.BankCache(size=0, budget_bytes=1)


def test_grown_makes_a_bank_only_when_the_cached_one_is_too_small_and_hands_it_the_old_one():
    cache = banks.BankCache(size=2, budget_bytes=100)
    calls = []

    def make(old):
        calls.append(old)
        return (old or 0) + 10

    assert cache.grown("k", lambda b: b >= 5, make) == 10 and calls == [None]
    assert cache.grown("k", lambda b: b >= 5, make) == 10 and calls == [None]  # enough: not made again
    assert cache.grown("k", lambda b: b >= 15, make) == 20 and calls == [None, 10]  # grown from the old one
    assert cache.get("k") == 20


def test_the_memory_bound_names_the_product_the_bytes_the_bound_and_what_to_reduce():
    banks.check_budget(4 * 2**30, 4 * 2**30, "x need", "x")  # at the bound: allowed
    with pytest.raises(ValueError, match=r"^a × b = 3 × 4 float32 weights need 5\.0 GiB of stuff, above the 4 GiB "
                                         r"bound; reduce a or b$"):
        banks.check_budget(5 * 2**30, 4 * 2**30, "a × b = 3 × 4 float32 weights need", "a or b", of="stuff")
    with pytest.raises(ValueError, match=r"^n need 3\.0 GiB, above the 2 GiB bound; reduce n$"):
        banks.BankCache(size=1, budget_bytes=2 * 2**30).check(3 * 2**30, "n need", "n")


def test_every_model_keeps_its_banks_in_the_one_cache_and_its_memory_messages_in_one_form():
    for cache in (jacobians._BANKS, recurrent._BANKS, transformer._BANKS, profile._BANKS, convolutional._STACKS):
        assert isinstance(cache, banks.BankCache)
    with pytest.raises(ValueError, match=r"^depth × width² × n_seeds = 257 × 1024² × 4 float32 weights need 4\.0 GiB, "
                                         r"above the 4 GiB bound; reduce depth, width or n_seeds$"):
        jacobians.weight_bank((0, 1, 2, 3), 1024, False, 257)
    with pytest.raises(ValueError, match=r"^the body's depth × width² × n_seeds = 17 × 1024² × 64 float32 weights "
                                         r"need 4\.2 GiB, above the 4 GiB bound; reduce depth or n_seeds$"):
        vglab.gradient_norms(vglab.MLP(widths=(8,) + (1024,) * 18 + (8,)), seed=0, n_seeds=64)
    with pytest.raises(ValueError, match=r"^steps × hidden × n_seeds = 10000 × 2048 × 64 \(lstm\) needs 58\.6 GiB of "
                                         r"float32 trace, above the 2 GiB bound; reduce steps, hidden or n_seeds$"):
        vglab.gradient_norms(vglab.RNN(cell="lstm", hidden=2048, steps=10_000), n_seeds=64)
    with pytest.raises(ValueError, match=r"^depth × \(4 \+ 2·mlp_ratio\)·width² × n_seeds = 1000 × 12·1024² × 1 "
                                         r"float32 weights need 46\.9 GiB, above the 2 GiB bound; reduce depth, "
                                         r"width, mlp_ratio or n_seeds$"):
        transformer.block_bank(vglab.Transformer(depth=1000, width=1024, heads=1), (0,))


# --------------------------------------------------------------------------------------------- capacity ladder
def test_the_capacity_ladder_buckets_clamps_to_the_budget_and_refines_large_banks():
    buckets = (64, 256, 1024)
    assert banks.capacity(1, buckets) == 64 and banks.capacity(64, buckets) == 64
    assert banks.capacity(65, buckets) == 256 and banks.capacity(2000, buckets) == 2000  # past the last bucket
    assert banks.capacity(10, buckets, bytes_per_row=1, budget_bytes=20) == 20  # the budget holds 20 rows
    assert banks.capacity(30, buckets, bytes_per_row=1, budget_bytes=20) == 30  # never below the need
    row = 2**22  # 4 MiB a row: 64 rows are the 256 MiB threshold, 65..256 rows go on the 1.25× ladder
    assert banks.capacity(60, buckets, row) == 64
    assert banks.capacity(65, buckets, row) == 77  # ⌈16·1.25⁷⌉ = ⌈76.3⌉ (⌈16·1.25⁶⌉ = 62 < 65)
    assert banks.capacity(65, buckets, row, large_bytes=None) == 256  # the coarse ladder only
    for need in range(65, 257):
        rows = banks.capacity(need, buckets, row)
        assert need <= rows <= 1.25 * need + 1, need
    assert banks.fine_capacity(65, 256, row, large_bytes=2**40) == 256  # below the threshold: the bucket


def test_growing_a_bank_keeps_its_rows_and_a_shallower_request_reuses_it():
    seeds = (987_650,)  # a bank no other test uses
    small = jacobians.weight_bank(seeds, 8, False, 10)
    assert small.capacity == 64
    assert jacobians.weight_bank(seeds, 8, False, 3) is small
    deep = jacobians.weight_bank(seeds, 8, False, 70)
    assert deep.capacity == 256
    np.testing.assert_array_equal(np.asarray(deep.weights[:, :64]), np.asarray(small.weights))
    np.testing.assert_array_equal(np.asarray(deep.inputs), np.asarray(small.inputs))
    net = vglab.Transformer(depth=3, width=4, heads=1, seq_len=5)
    bank = transformer.block_bank(net, seeds)
    longer = transformer.block_bank(net.replace(seq_len=9), seeds)  # tokens grow, the blocks are kept
    assert longer.attention is bank.attention and longer.tokens.shape[1] == 32
    np.testing.assert_array_equal(np.asarray(longer.tokens[:, :8]), np.asarray(bank.tokens))


# --------------------------------------------------------------------------------------------- PRNG streams
def test_the_stream_registry_gives_every_purpose_its_own_number():
    numbers = list(streams.STREAMS.values())
    assert len(set(numbers)) == len(numbers)
    with pytest.raises(ValueError, match="streams 'a' and 'b' share the number 3"):
        streams._check_table({"a": 3, "b": 3})
    with pytest.raises(ValueError, match="unknown stream purpose 'rnn_input'; did you mean 'rnn_inputs'?"):
        streams.stream(0, "rnn_input")


def test_the_mlp_draws_are_the_literal_streams_0_to_3():
    bank = jacobians.weight_bank((5, 6), 8, False, 3)
    for s, seed in enumerate((5, 6)):
        for layer in (0, 2):
            np.testing.assert_array_equal(np.asarray(bank.weights[s, layer]), _normal(seed, 0, layer, (8, 8)))
            np.testing.assert_array_equal(np.asarray(bank.biases[s, layer]), _normal(seed, 1, layer, (8,)))
        np.testing.assert_array_equal(np.asarray(bank.inputs[s]), _normal(seed, 2, None, (8,)))
        np.testing.assert_array_equal(np.asarray(bank.directions[s]), _normal(seed, 3, None, (8,)))


def test_the_rnn_draws_are_the_literal_streams_16_to_19():
    net = vglab.RNN(cell="lstm", hidden=4, steps=3)
    bank = recurrent.recurrent_bank(net, (7,))
    for gate in range(4):
        rows = slice(4 * gate, 4 * gate + 4)
        np.testing.assert_array_equal(np.asarray(bank.recurrent[0, rows]), _normal(7, 16, gate, (4, 4)))
        np.testing.assert_array_equal(np.asarray(bank.input_weights[0, rows]), _normal(7, 17, gate, (4, 4)))
    np.testing.assert_array_equal(np.asarray(bank.bias[0]), _normal(7, 18, 0, (16,)))
    np.testing.assert_array_equal(np.asarray(bank.inputs[0, 2]), _normal(7, 19, 2, (4,)))


def test_the_transformer_draws_are_the_literal_streams_32_and_35():
    net = vglab.Transformer(depth=2, width=4, heads=1, seq_len=3, mlp_ratio=2)
    bank = transformer.block_bank(net, (8,))
    flat = _normal(8, 32, 1, (4 * 16 + 2 * 32,))
    np.testing.assert_array_equal(np.asarray(bank.attention[0, 1]), flat[:64].reshape(4, 4, 4))
    np.testing.assert_array_equal(np.asarray(bank.mlp_out[0, 1]), flat[96:].reshape(8, 4))
    both = _normal(8, 35, 2, (2, 4))
    np.testing.assert_array_equal(np.asarray(bank.tokens[0, 2]), both[0])
    np.testing.assert_array_equal(np.asarray(bank.directions[0, 2]), both[1])


def test_the_training_activity_and_convnet_draws_are_the_literal_streams_7_40_41_50_to_53():
    from vglab import training
    from vglab.models import activity

    params = training.initial_parameters(vglab.MLP(depth=2, width=4), 3, 2, seed=9)
    np.testing.assert_allclose(np.asarray(params.inputs), _normal(9, 40, None, (3, 4)) / np.sqrt(3), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(params.readout), _normal(9, 41, None, (4, 2)) / 2, rtol=1e-6)
    bank = jacobians.weight_bank((9,), 4, False, 2)
    np.testing.assert_array_equal(np.asarray(activity.batch_inputs(bank, 9, 3)[1:]), _normal(9, 7, None, (2, 4)))
    net = vglab.ConvNet(depth=2, channels=2, kernel=3, init="he", weight_std=1.0, bias_std=1.0)
    weights, biases = convolutional.body_parameters(net, 9)
    np.testing.assert_allclose(np.asarray(weights[1]), _normal(9, 50, 1, (3, 2, 2)) / np.sqrt(6), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(biases[1]), _normal(9, 51, 1, (2,)))
    classifier = convolutional._init_classifier(net, 9, 10)
    np.testing.assert_allclose(np.asarray(classifier["stem"]), _normal(9, 52, None, (3, 1, 2)) * np.sqrt(2 / 3),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(classifier["readout"]), _normal(9, 53, None, (2, 10)) / np.sqrt(2),
                               rtol=1e-6)


def test_no_model_folds_a_stream_number_of_its_own():
    """Every purpose number lives in the registry: no file under vglab/ but core/streams.py folds an integer
    literal into a key or builds a root key, except training's mini-batch keys (documented in the registry)."""
    literal_fold = re.compile(r"fold_in\([^()]*(\([^()]*\))?[^()]*,\s*\d+\s*\)")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).as_posix() == "core/streams.py":
            continue
        text = path.read_text(encoding="utf-8")
        roots = text.count("jax.random.key(")
        allowed = 1 if path.name == "training.py" else 0  # train's mini-batch root key (see the registry)
        if literal_fold.search(text) or re.search(r"_STREAM\s*=", text) or roots > allowed:
            offenders.append(path.relative_to(PACKAGE).as_posix())
    assert offenders == []
