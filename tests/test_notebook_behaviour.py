"""Well-behaved in a notebook: a cell run again replaces the dashboard it made (its figure closed), keyword typos
get a did-you-mean, and the background warm-up compiles what the controls reach without getting in the way.

Cells are run by a real IPython shell (``InteractiveShell.run_cell``, what ipykernel calls for each execute
request, with the cell id the frontend sends)."""

import inspect
import time
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from matplotlib._pylab_helpers import Gcf  # noqa: E402

import vglab  # noqa: E402
from vglab.core.compilation import CompileCounter  # noqa: E402
from vglab.core.validation import KeywordError  # noqa: E402
from vglab.lab import GradientDashboard, SpectrumDashboard, cells, warmup  # noqa: E402

COUNTER = CompileCounter()
SMALL = "depth=4, width=8, max_depth=8, n_seeds=1, controls=('depth', 'activation')"


@pytest.fixture
def shell():
    """A real IPython shell (get_ipython() returns it while the test runs), removed afterwards."""
    plt.close("all")
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    ip.run_cell("from vglab.lab import GradientDashboard, SpectrumDashboard", store_history=True)
    yield ip
    plt.close("all")
    InteractiveShell.clear_instance()
    cells._RUNS.clear()


def is_open(dashboard) -> bool:
    """Whether pyplot still holds this dashboard's figure (figure numbers are reused, so not by number)."""
    return any(manager.canvas.figure is dashboard.figure for manager in Gcf.get_all_fig_managers())


def run(ip, source, cell_id=None):
    result = ip.run_cell(source, store_history=True, cell_id=cell_id)
    result.raise_error()
    return result


# ----------------------------------------------------------------------------------------- re-running cells
def test_running_a_dashboard_cell_30_times_keeps_one_figure_and_no_warning(shell):
    cell = f"dash = GradientDashboard({SMALL})\ndash"
    run(shell, cell, cell_id="cell-1")
    first = shell.user_ns["dash"]
    open_after_one = len(plt.get_fignums())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(30):
            run(shell, cell, cell_id="cell-1")
    assert len(plt.get_fignums()) == open_after_one
    assert not [w for w in caught if "figures" in str(w.message)], [str(w.message) for w in caught]
    assert not is_open(first)  # the first run's figure is the one closed
    assert is_open(shell.user_ns["dash"])


def test_only_the_cell_run_again_loses_its_dashboard(shell):
    run(shell, f"a = GradientDashboard({SMALL})", cell_id="cell-a")
    run(shell, "b = SpectrumDashboard(depth=4, width=8, max_depth=8)", cell_id="cell-b")
    b = shell.user_ns["b"]
    for _ in range(5):
        run(shell, f"a = GradientDashboard({SMALL})", cell_id="cell-a")
    assert is_open(b)
    assert len(plt.get_fignums()) == 2
    run(shell, "b.set(depth=5)", cell_id="cell-c")  # the other dashboard still works
    assert b.computed_state["depth"] == 5 and b.error_message == ""


def test_two_dashboards_made_by_one_cell_both_stay_until_it_runs_again(shell):
    cell = f"x = GradientDashboard({SMALL})\ny = GradientDashboard({SMALL})"
    run(shell, cell, cell_id="two")
    x, y = shell.user_ns["x"], shell.user_ns["y"]
    assert is_open(x) and is_open(y)
    run(shell, cell, cell_id="two")
    assert not is_open(x) and not is_open(y)
    assert len(plt.get_fignums()) == 2


def test_without_a_cell_id_the_cells_source_tells_the_cells_apart(shell):
    run(shell, f"p = GradientDashboard({SMALL})")
    p = shell.user_ns["p"]
    run(shell, f"q = GradientDashboard({SMALL})  # another cell")
    assert is_open(p)
    run(shell, f"p = GradientDashboard({SMALL})")  # the first cell again
    assert not is_open(p)
    assert is_open(shell.user_ns["q"])


def test_outside_ipython_dashboards_are_left_alone():
    plt.close("all")
    InteractiveShell.clear_instance()
    made = [GradientDashboard(depth=4, width=8, max_depth=8, n_seeds=1) for _ in range(3)]
    assert all(is_open(d) for d in made)
    plt.close("all")


# ----------------------------------------------------------------------------------------- keyword typos
@pytest.mark.parametrize(("make", "typo", "meant"), [
    (lambda: vglab.MLP(depth=3, width=4, activaton="tanh"), "activaton", "activation"),
    (lambda: vglab.MLP(depth=3, width=4).replace(resdual=True), "resdual", "residual"),
    (lambda: vglab.RNN(cell="lstm", forget_bais=1.0), "forget_bais", "forget_bias"),
    (lambda: vglab.Transformer(depth=4, width=16, haeds=2), "haeds", "heads"),
    (lambda: vglab.train(vglab.MLP(depth=2, width=4), step=3), "step", "steps"),
])
def test_a_mistyped_keyword_names_the_one_meant(make, typo, meant):
    with pytest.raises(KeywordError, match=rf"unknown keyword '{typo}'; did you mean '{meant}'\? \(valid: ") as info:
        make()
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_the_message_names_the_callable_and_every_valid_keyword():
    with pytest.raises(TypeError) as info:
        vglab.MLP(depth=3, width=4, activaton="tanh")
    assert str(info.value) == (
        "vglab.MLP() got an unknown keyword 'activaton'; did you mean 'activation'? (valid: depth, width, "
        "activation, init, weight_std, bias_std, residual, norm, residual_scale, leaky_slope, widths)")
    with pytest.raises(TypeError, match=r"unknown keyword 'colour' \(valid: depth, "):  # nothing close
        vglab.MLP(depth=3, width=4, colour="red")


def test_dashboard_constructors_name_the_one_meant():
    with pytest.raises(KeywordError, match=r"GradientDashboard\(\) got an unknown keyword 'max_dept'; "
                                           r"did you mean 'max_depth'\?"):
        GradientDashboard(depth=4, max_dept=8)
    with pytest.raises(KeywordError, match=r"SpectrumDashboard\(\) got an unknown keyword 'activaton'; "
                                           r"did you mean 'activation'\?"):
        SpectrumDashboard(depth=4, activaton="relu")
    from vglab.lab import RecurrentDashboard, TrainingDashboard, TransformerDashboard

    with pytest.raises(KeywordError, match=r"RecurrentDashboard\(\) .* 'hiden'; did you mean 'hidden'\?"):
        RecurrentDashboard(hiden=8)
    with pytest.raises(KeywordError, match=r"TransformerDashboard\(\) .* 'nrom'; did you mean 'norm'\?"):
        TransformerDashboard(nrom="pre")
    with pytest.raises(KeywordError, match=r"TrainingDashboard\(\) .* 'optimiser'; did you mean 'optimizer'\?"):
        TrainingDashboard(optimiser="adam")


def test_set_names_the_control_meant_and_right_keywords_still_work():
    dash = GradientDashboard(depth=4, width=8, max_depth=8, n_seeds=1)
    with pytest.raises(ValueError, match=r"unknown control 'activaton'; did you mean 'activation'\?"):
        dash.set(activaton="relu")
    dash.set(activation="relu")
    assert dash.computed_state["activation"] == "relu"
    assert "activation" in inspect.signature(vglab.MLP).parameters  # the signature still reads as before
    assert "max_depth" in inspect.signature(GradientDashboard).parameters
    dash.close()


# ----------------------------------------------------------------------------------------- warm-up
def warm_dashboard(**kwargs):
    return GradientDashboard(depth=6, max_depth=12, n_seeds=1,
                             controls=("depth", "activation", "init", "residual", "norm"),
                             activations=("tanh", "relu", "sigmoid"), inits=("xavier", "orthogonal", "he"),
                             **kwargs)


def test_after_the_warm_up_every_switch_the_controls_offer_compiles_nothing():
    dash = warm_dashboard(width=24)
    background = warmup.start(dash, force=True)
    assert background is dash.background_warmup and background.pending == 7  # 2 + 2 + 1 + 2 options
    assert background.wait(timeout=600)
    assert background.failed == []
    before = COUNTER.count
    for change in [dict(activation="relu"), dict(activation="sigmoid"), dict(activation="tanh"),
                   dict(init="orthogonal"), dict(init="he"), dict(init="xavier"),
                   dict(residual=True), dict(residual=False), dict(norm="pre"), dict(norm="post"),
                   dict(norm="none")]:
        dash.set(**change)
        assert dash.error_message == ""
    assert COUNTER.count == before, "a switch after the warm-up compiled a program"
    dash.close()


def test_without_the_warm_up_the_same_switch_compiles():
    """The control for the test above (another width: programs no test compiled)."""
    dash = warm_dashboard(width=40)
    before = COUNTER.count
    dash.set(activation="relu")
    assert COUNTER.count > before
    dash.close()


def test_the_warm_up_replans_from_each_new_state_and_stops_with_the_dashboard():
    dash = warm_dashboard(width=24)
    background = warmup.start(dash, force=True)
    background.wait(timeout=600)
    dash.set(activation="relu")  # relu's own neighbours (relu + orthogonal, + residual, ...) are new
    assert background.pending > 0
    dash.close()
    background._thread.join(timeout=300)  # a variant already compiling finishes first
    assert not background._thread.is_alive() and background.pending == 0


def test_the_warm_up_waits_while_updates_run():
    dash = warm_dashboard(width=32)
    background = warmup.start(dash, force=True)
    assert background.pending > 0
    start = time.monotonic()
    depth = 1
    while time.monotonic() - start < 2.0:  # back-to-back updates: never quiet for quiet_seconds
        depth = depth % 12 + 1
        dash.set(depth=depth)
    busy_until = time.monotonic()
    assert background.warmed == [], "a variant started while updates were running"
    assert background.wait(timeout=600) and background.warmed  # and it goes on once they stop
    assert min(begin for _, begin, _ in background.log) >= busy_until
    dash.close()


def test_the_environment_variable_turns_the_warm_up_off(monkeypatch):
    dash = warm_dashboard(width=24, warm_up=False)
    monkeypatch.setenv("VGLAB_WARMUP", "off")
    assert warmup.start(dash, force=True) is None
    monkeypatch.delenv("VGLAB_WARMUP")
    assert warmup.start(dash) is None  # no running event loop here: only a kernel starts one by itself
    dash.close()
