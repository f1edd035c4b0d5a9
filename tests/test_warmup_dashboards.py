"""The background warm-up (vglab.lab.warmup) of the recurrent, transformer and training dashboards: after it,
the first switch of each choice control compiles nothing; the control (a dashboard of another size, which no
test warmed) shows that the same switch compiles without it."""

import pytest

from vglab.core.compilation import CompileCounter
from vglab.lab import RecurrentDashboard, TrainingDashboard, TransformerDashboard, warmup

COUNTER = CompileCounter()


def warmed(dash, expected_variants: int):
    background = warmup.start(dash, force=True)
    assert background is dash.background_warmup and background.pending == expected_variants
    assert background.wait(timeout=900)
    assert background.failed == []
    return background


def recurrent(hidden):
    return RecurrentDashboard(steps=30, hidden=hidden, n_seeds=2, max_steps=60, hiddens=(hidden,),
                              activations=("tanh", "relu"), controls=("cell", "steps", "activation"))


def transformer(width):
    return TransformerDashboard(depth=3, width=width, heads=2, seq_len=4, n_seeds=2, max_depth=6,
                                widths=(width,), activations=("gelu", "relu"),
                                controls=("depth", "residual", "norm", "activation"))


def training(width):
    return TrainingDashboard(depth=3, width=width, steps=10, max_depth=6, data="two_spirals", batch_size=32,
                             controls=("activation", "init", "residual", "norm", "optimizer", "clip_norm"),
                             activations=("sigmoid", "relu"), inits=("xavier", "he"))


def switch_compiles(dash, changes) -> int:
    before = COUNTER.count
    for change in changes:
        dash.set(**change)
        assert dash.error_message == "", (change, dash.error_message)
    return COUNTER.count - before


RECURRENT_SWITCHES = [dict(activation="relu"), dict(activation="tanh"), dict(cell="lstm"), dict(cell="gru"),
                      dict(cell="vanilla")]
TRANSFORMER_SWITCHES = [dict(activation="relu"), dict(activation="gelu"), dict(norm="post"), dict(norm="none"),
                        dict(norm="pre"), dict(residual=False), dict(residual=True)]
TRAINING_SWITCHES = [dict(activation="relu"), dict(activation="sigmoid"), dict(init="he"), dict(init="xavier"),
                     dict(residual=True), dict(residual=False), dict(norm="pre"), dict(norm="none"),
                     dict(optimizer="adam"), dict(optimizer="sgd"), dict(clip_norm=1.0)]


@pytest.mark.parametrize("make, variants, switches", [
    (recurrent, 1 + 2, RECURRENT_SWITCHES),  # relu; lstm, gru
    (transformer, 1 + 2 + 1, TRANSFORMER_SWITCHES),  # no residual; post-LN, none; relu
    (training, 1 + 1 + 1 + 2 + 2 + 1, TRAINING_SWITCHES),  # relu; he; residual; pre, post; 2 optimizers; clip on
], ids=["recurrent", "transformer", "training"])
def test_after_the_warm_up_the_first_switch_of_each_control_compiles_nothing(make, variants, switches):
    dash = make(24)
    warmed(dash, variants)
    assert switch_compiles(dash, switches) == 0, "a switch after the warm-up compiled a program"
    dash.close()


@pytest.mark.parametrize("make, change", [(recurrent, dict(activation="relu")),
                                          (transformer, dict(norm="post")),
                                          (training, dict(optimizer="adam"))],
                         ids=["recurrent", "transformer", "training"])
def test_without_the_warm_up_the_same_switch_compiles(make, change):
    dash = make(40)  # a size no test warmed
    assert switch_compiles(dash, [change]) > 0
    dash.close()


def test_the_training_warm_up_waits_while_a_run_is_in_progress():
    dash = training(24)
    dash.running = True  # what a background run sets while it trains
    background = warmup.start(dash, force=True)
    assert not background.wait(timeout=1.0)
    assert not background._running and background.warmed == [], "a variant started during the run"
    dash.running = False
    assert background.wait(timeout=900) and background.warmed
    dash.close()
