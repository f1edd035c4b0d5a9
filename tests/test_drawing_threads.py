"""Dashboards drawn from two threads at once (vglab.lab.drawing): in JupyterLab a widget's messages are handled
in a kernel subshell's thread while cells run in the main thread.

- matplotlib's one mathtext parser, used by two threads at once, fails on valid labels ("ParseException:
  Expected end of text"): the control shows the race with matplotlib's own parser, and the same race through
  vglab's serialised parser raises nothing; the same again in a real ipykernel, its main shell and a subshell
  running at once.
- every draw of a dashboard (its update, a frame, a save, its PNG copy, a pin, the canvas's own draws) holds
  ``DRAW_LOCK``; the control is a plain figure's draw, which does not.
"""

import json
import sys
import threading
import time

import matplotlib.pyplot as plt
import pytest
from matplotlib import _mathtext
from matplotlib.mathtext import MathTextParser

from vglab.lab import GradientDashboard, drawing

PARSE_RACE = """
import sys, threading
from matplotlib.mathtext import MathTextParser

def parse_race(first: int, count: int) -> list:
    '''Parse ``count`` labels '$10^{k}$' (all new to the parse cache) while another thread may parse too;
    the errors, as text.'''
    parser, errors = MathTextParser("agg"), []
    for k in range(first, first + count):
        try:
            parser.parse(f"$10^{{{k}}}$", dpi=100)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}"[:300])
    return errors
"""
namespace: dict = {}
exec(PARSE_RACE, namespace)  # noqa: S102 - the same function runs in the kernels below
parse_race = namespace["parse_race"]


def two_threads_parse(count: int, first: int) -> list:
    """The errors of two threads parsing ``count`` new labels each, at once, switching every 0.1 ms."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    errors: list = []
    try:
        threads = [threading.Thread(target=lambda k=k: errors.extend(parse_race(first + k * count, count)))
                   for k in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    return errors


def test_matplotlib_s_own_parser_fails_on_valid_labels_when_two_threads_parse_at_once(monkeypatch):
    """The control: the race is real (matplotlib's unserialised ``Parser.parse``)."""
    monkeypatch.setattr(_mathtext.Parser, "parse", _mathtext.Parser.parse.unserialised)
    errors, first = [], 10_000
    while not errors and first < 10_000 + 20 * 200:  # (measured: about half of the parses fail)
        errors = two_threads_parse(100, first)
        first += 200
    assert errors, "two threads parsed 4,000 labels at once without one error: the control shows nothing"
    assert any("ParseException" in error or "Expected" in error for error in errors), errors[:3]


def test_vglab_s_serialised_parser_parses_from_two_threads_without_an_error():
    assert _mathtext.Parser.parse.vglab_serialised
    assert two_threads_parse(300, 200_000) == []
    assert MathTextParser("agg").parse("$10^{1}$", dpi=100).width > 0


def test_every_draw_of_a_dashboard_holds_the_draw_lock(tmp_path):
    held = []
    d = GradientDashboard(depth=6, width=16, n_seeds=2, controls=("depth",), max_depth=8)
    d.figure.canvas.mpl_connect("draw_event", lambda event: held.append(drawing.DRAW_LOCK._is_owned()))
    d.set(depth=5)  # an update: artists rewritten and the figure drawn
    d.figure.canvas.draw()  # what the canvas's own handlers (ipympl's draw, refresh, resize) call
    d.save(tmp_path / "d.png")
    d._repr_mimebundle_()
    d.pin()
    assert len(held) >= 5 and all(held), held
    plain = plt.figure()
    plain.canvas.mpl_connect("draw_event", lambda event: held.append(drawing.DRAW_LOCK._is_owned()))
    plain.canvas.draw()
    assert held[-1] is False  # the control: a draw that is not a dashboard's holds nothing
    plt.close(plain)
    d.close()


def test_a_dashboard_update_waits_while_another_thread_draws():
    d = GradientDashboard(depth=6, width=16, n_seeds=2, controls=("depth",), max_depth=8)
    drawn = threading.Event()
    with drawing.DRAW_LOCK:  # another thread's draw of this figure (taken here; the update runs in a thread)
        worker = threading.Thread(target=lambda: (d.set(depth=4), drawn.set()))
        worker.start()
        assert not drawn.wait(0.5), "the update drew while the lock was held"
    worker.join(timeout=60)
    assert drawn.is_set() and d.computed_state["depth"] == 4 and d.error_message == ""
    d.close()


# ------------------------------------------------------------------ a real kernel: main shell and a subshell
KERNEL_RACE = PARSE_RACE + """
sys.setswitchinterval(1e-4)
"""


def run_cell(client, code: str, subshell_id=None, timeout: float = 300):
    """Send ``code`` to the main shell (or a subshell) without waiting; returns the message id."""
    msg = client.session.msg("execute_request", {"code": code, "silent": False, "store_history": False,
                                                 "user_expressions": {}, "allow_stdin": False,
                                                 "stop_on_error": True})
    if subshell_id is not None:
        msg["header"]["subshell_id"] = subshell_id
    client.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def outputs(client, msg_ids: list, timeout: float = 300) -> dict:
    """msg_id → printed text, once every cell is idle; a cell's error fails the test."""
    texts = {msg_id: [] for msg_id in msg_ids}
    idle: set = set()
    deadline = time.monotonic() + timeout
    while idle != set(msg_ids):
        msg = client.get_iopub_msg(timeout=max(1.0, deadline - time.monotonic()))
        parent = msg["parent_header"].get("msg_id")
        if parent not in texts:
            continue
        if msg["msg_type"] == "stream":
            texts[parent].append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            pytest.fail("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            idle.add(parent)
    return {msg_id: "".join(text) for msg_id, text in texts.items()}


def kernel_race(import_vglab: bool, rounds: int = 3, count: int = 200) -> tuple[list, set]:
    """Errors of the main shell and one subshell of a real ipykernel parsing new labels at the same time, and
    the names of the threads they ran in."""
    jupyter_client = pytest.importorskip("jupyter_client")
    manager = jupyter_client.KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        setup = KERNEL_RACE + ("import vglab.lab\n" if import_vglab else "")
        outputs(client, [run_cell(client, setup)])
        request = client.session.msg("create_subshell_request", {})
        client.control_channel.send(request)
        reply = client.get_control_msg(timeout=60)
        subshell = reply["content"].get("subshell_id")
        if subshell is None:
            pytest.skip(f"this ipykernel has no subshells: {reply['content']}")
        errors, threads = [], set()
        for r in range(rounds):
            cells = [run_cell(client, f"import json, threading\nprint(json.dumps([threading.current_thread().name,"
                                      f" parse_race({(2 * r + k) * count + 10}, {count})]))", shell)
                     for k, shell in enumerate((None, subshell))]
            for text in outputs(client, cells).values():
                name, found = json.loads(text.strip().splitlines()[-1])
                threads.add(name)
                errors += found
            if errors and not import_vglab:
                break
        return errors, threads
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def test_a_kernel_s_main_shell_and_subshell_parse_at_once_without_errors_once_vglab_lab_is_imported():
    errors, threads = kernel_race(import_vglab=True)
    assert len(threads) == 2, threads  # the main thread and the subshell's own thread
    assert errors == []


def test_control_without_vglab_lab_the_same_kernel_race_fails_on_valid_labels():
    errors, threads = kernel_race(import_vglab=False)
    assert len(threads) == 2, threads
    assert errors, "the control shows no race"
