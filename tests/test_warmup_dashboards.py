"""The background warm-up (vglab.lab.warmup) of the recurrent, transformer and training dashboards: after it,
the first switch of each choice control compiles nothing; the control (a dashboard of another size, which no
test warmed) shows that the same switch compiles without it."""

import gc
import json
import subprocess
import sys
import threading
import time

import pytest

from vglab.core.compilation import CompileCounter
from vglab.lab import RecurrentDashboard, TrainingDashboard, TransformerDashboard, warmup
from vglab.lab.dashboards import Dashboard, make_control

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


# ------------------------------------------------------------------------ yielding inside a variant (issue 15)
class Spinner(Dashboard):
    """A real dashboard shell whose one warm-up variant is pure Python that runs until released: what the
    warm-up thread does while JAX traces and lowers a program (it holds the GIL, in 5 ms turns)."""

    kind = "spinner"

    def __init__(self, ticks_to_finish: int | None = None):
        self.ticks = 0
        self.ticks_to_finish = ticks_to_finish
        self.release = threading.Event()
        super().__init__({"n": make_control("n", 1, low=1, high=9)}, compute=lambda state: state["n"],
                         draw=lambda result: None, warm_up=False)

    def warm_variants(self, state):
        return [{"n": 0}]

    def warm_variant(self, state):
        while not self.release.is_set() and (self.ticks_to_finish is None or self.ticks < self.ticks_to_finish):
            self.tick()

    def tick(self):
        self.ticks += 1


def running_spinner(yield_mid_variant: bool = True, **kwargs):
    dash = Spinner(**kwargs)
    dash.background_warmup = background = warmup.Warmup(dash, start=False)
    background.yield_mid_variant = yield_mid_variant
    background.quiet_seconds = 0.0
    background.plan(dash.state)
    background._thread.start()
    deadline = time.monotonic() + 30
    while dash.ticks == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert dash.ticks > 0, "the variant never started"
    return dash, background


def ticks_while_pending(dash, seconds=0.3) -> int:
    dash._pending = True  # what a control change leaves until its update runs (request_update)
    time.sleep(0.05)  # the variant reaches its next call and pauses
    before = dash.ticks
    time.sleep(seconds)
    return dash.ticks - before


@pytest.mark.parametrize("yield_mid_variant", [True, False], ids=["yielding", "control: not yielding"])
def test_a_running_variant_pauses_while_an_update_is_pending_and_goes_on_after(yield_mid_variant):
    dash, background = running_spinner(yield_mid_variant)
    ticked = ticks_while_pending(dash)
    if yield_mid_variant:
        assert ticked == 0 and background.pauses >= 1, "the variant ran on while an update was pending"
    else:
        assert ticked > 0 and background.pauses == 0  # the control: without the pause it runs on
    dash._pending = False
    before = dash.ticks
    time.sleep(0.2)
    assert dash.ticks > before, "the variant did not go on once the dashboard was quiet"
    dash.release.set()
    assert background.wait(timeout=30) and background.failed == []
    dash.close()


def test_a_variant_paused_by_a_real_update_runs_on_after_it():
    dash, background = running_spinner()
    dash._pending = True
    time.sleep(0.05)
    paused_at = dash.ticks
    dash.set(n=5)  # the real update: update_started / update_finished around compute and draw
    assert dash.computed_state["n"] == 5 and dash.error_message == ""
    assert dash.ticks == paused_at and background.pauses >= 1
    time.sleep(0.2)
    assert dash.ticks > paused_at
    dash.release.set()
    assert background.wait(timeout=30)
    dash.close()


def test_an_update_waiting_for_the_variant_is_not_deadlocked_by_the_pause():
    """An update that needs what the paused variant holds (here: the variant's finishing) waits at most
    ``pause_limit``: then the variant runs on and finishes while the update still runs."""
    dash, background = running_spinner()
    background.update_started()  # an update starts ...
    try:
        time.sleep(0.05)  # (the variant pauses at its next call)
        dash.ticks_to_finish = dash.ticks + 1000  # the variant ends on its own, if it is let run
        assert background.wait(timeout=60), "the update and the paused variant waited for each other"
    finally:
        background.update_finished(None)  # ... and ends only after the variant finished
    assert background.pauses >= 1 and dash.ticks >= dash.ticks_to_finish
    dash.close()


def test_depth_steps_of_a_real_dashboard_pause_its_running_variant():
    dash = recurrent(24)
    background = warmup.start(dash, force=True)
    deadline = time.monotonic() + 120
    while not background._running and time.monotonic() < deadline:
        time.sleep(0.005)
    assert background._running, "no variant started"
    steps = 0
    while background.pauses == 0 and background._running and steps < 400:
        dash.set(steps=31 + steps % 2)
        steps += 1
    assert background.pauses >= 1, f"{steps} steps during a variant never paused it"
    assert dash.computed_state["steps"] == 31 + (steps - 1) % 2 and dash.error_message == ""
    dash.close()  # (the variant in progress finishes; no other starts)
    background._thread.join(timeout=600)
    assert background.failed == []


def test_the_first_live_warm_up_freezes_the_objects_alive_then_and_only_once():
    """(A fresh process: freezing in this test session would keep earlier tests' compiled programs alive.)"""
    code = ("import gc, json; from vglab.lab import warmup; n0 = gc.get_freeze_count(); "
            "first = warmup.freeze_long_lived(); n1 = gc.get_freeze_count(); again = warmup.freeze_long_lived(); "
            "print(json.dumps([n0, first, n1, again, gc.get_freeze_count()]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    n0, first, n1, again, n2 = json.loads(done.stdout.strip().splitlines()[-1])
    assert n0 == 0 and first and n1 > 10_000  # jax, matplotlib, vglab: tens of thousands of objects
    assert not again and n2 == n1


def test_a_warm_up_started_by_a_script_or_test_freezes_nothing():
    dash = recurrent(24)
    frozen = gc.get_freeze_count()
    background = warmup.start(dash, force=True)
    assert background is not None and gc.get_freeze_count() == frozen
    dash.close()
