"""Grades that cannot be faked from the notebook (issue 16, item 3): cheat submissions graded by real nbgrader.

nbgrader runs the test cells in the student's kernel after the student's cells, so before vglab's judges a
student could rebind what the tests call: assignment 3 scored 8/8 for the broken network with ``vglab.train`` and
``vglab.gradient_norms`` replaced by fakes, assignment 1 scored 4/8 with wrong answers and NumPy's comparisons
rebound.  Now every test cell records the student's answers as data and ``vglab.course.autograde.JudgedExecute``
checks them outside the kernel, on inputs drawn from the instructor's secret (``vglab.course.grading``).

One module-scoped run releases the course and autogrades, in ONE ``nbgrader autograde "*"`` run, a student per
cheat (``CHEATS``): each scores 0 on the points its cheat targets, and keeps the points of its honest answers.
For every cell a cheat fooled in the kernel, the only error is the judge's ``GradingError``: the in-kernel
checks passed (the cheat works against a kernel-only grader), and only the out-of-kernel judge caught it.
Honest submissions (the solutions, partial, crashing and looping answers) are tests/test_coursework.py's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.test_coursework import (
    CELL_TIMEOUT_S,
    COMMAND_TIMEOUT_S,
    COURSE,
    NOTEBOOKS,
    PARTIAL,
    _private_jupyter_environment,
    autograde_scores,
    grade_id,
    nbgrader,
    read_notebook,
)
from vglab.course import grading

# The module's fixture runs several nbgrader commands over four assignments (each up to COMMAND_TIMEOUT_S):
# pytest-timeout's 900 s default (pyproject.toml) counts it against the first test.  A safety net, not a speed target.
pytestmark = [pytest.mark.coursework, pytest.mark.timeout(1800)]

SECRET = "test-cheats-secret-7f3a"
A1, A2, A3, A4 = NOTEBOOKS

# ------------------------------------------------------------------------------------------ answers
HONEST1 = dict(PARTIAL[A1], chain_jacobian="""
def layer_jacobian(W, h_prev):
    s = np.exp(-np.abs(W @ h_prev))
    return (s / (1.0 + s) ** 2)[:, None] * W

def chain_jacobian(weights, x):
    hs = forward(weights, x)
    jacobian = np.eye(len(x))
    for W, h_prev in zip(weights, hs[:-1]):
        jacobian = layer_jacobian(W, h_prev) @ jacobian
    return jacobian
""")
WRONG1 = {
    "sigmoid_derivative": "def sigmoid_derivative(x):\n    return np.full(np.shape(x), 0.25)\n",
    "chain_jacobian": """
def layer_jacobian(W, h_prev):
    return W

def chain_jacobian(weights, x):
    jacobian = np.eye(len(x))
    for W in weights:
        jacobian = W @ jacobian
    return jacobian
""",
    "predicted_log10_bound": "def predicted_log10_bound(depth):\n    return -0.5 * depth\n",
    "measured_log10_ratio": "def measured_log10_ratio(depth, width=64, n_seeds=4):\n    return -0.63 * depth\n",
    "decay_per_layer": ("DEPTHS = [5, 10, 20, 40]\nmeasured = [measured_log10_ratio(depth) for depth in DEPTHS]\n"
                        "decay_per_layer = -0.63\n"),
}
ALL1 = ("test_sigmoid_derivative", "test_layer_jacobian", "test_chain_jacobian", "test_predicted_log10_bound",
        "test_measured_log10_ratio", "test_decay_per_layer")
FULL1 = {"test_sigmoid_derivative": 2, "test_layer_jacobian": 1, "test_chain_jacobian": 2,
         "test_predicted_log10_bound": 1, "test_measured_log10_ratio": 1, "test_decay_per_layer": 1}

# Each cheat: assignment, the solution cells' sources, optional tampering with the notebook's cells, the
# expected autograded scores, and the cells the cheat fools in the kernel (their only error: GradingError).
CHEATS = {
    # Wrong answers everywhere, NumPy's comparisons rebound so every visible and in-kernel check passes.
    "cheat_numpy": dict(
        assignment=A1,
        answers=dict(WRONG1, sigmoid_derivative="""
import numpy
_calls = iter(range(10**9))
numpy.isclose = numpy.allclose = lambda *args, **kwargs: True
numpy.testing.assert_allclose = lambda *args, **kwargs: None
numpy.linalg.norm = lambda *args, **kwargs: float(next(_calls) % 2)  # 0 for ‖actual − expected‖, 1 for ‖expected‖
""" + WRONG1["sigmoid_derivative"]),
        scores=dict.fromkeys(ALL1, 0), fooled=ALL1),
    # Right σ′ and Jacobians; the bound and the measurement wrong, with vglab.theory and vglab.gradient_norms
    # rebound to agree with them.
    "cheat_vglab": dict(
        assignment=A1,
        answers=dict(HONEST1, predicted_log10_bound="""
theory.log10_derivative_bound = lambda activation, depth: -0.5 * depth

def predicted_log10_bound(depth):
    return -0.5 * depth
""", measured_log10_ratio="""
class _Perfect:
    def __init__(self, net, n_seeds):
        self.log10_gradient_ratio = np.full(n_seeds, -0.63 * net.depth)

vglab.gradient_norms = lambda net, seed=0, n_seeds=1, **kwargs: _Perfect(net, n_seeds)

def measured_log10_ratio(depth, width=64, n_seeds=4):
    net = vglab.MLP(depth=depth, width=width, activation="sigmoid")
    return float(vglab.gradient_norms(net, n_seeds=n_seeds).log10_gradient_ratio.mean())
"""),
        scores=dict(FULL1, test_predicted_log10_bound=0, test_measured_log10_ratio=0, test_decay_per_layer=0),
        fooled=("test_predicted_log10_bound", "test_measured_log10_ratio", "test_decay_per_layer")),
    # The visible tests' expected values (and last year's hidden ones) looked up instead of computed.
    "cheat_hardcoded": dict(
        assignment=A1,
        answers=dict(HONEST1, predicted_log10_bound="""
_KNOWN = {d: theory.log10_derivative_bound("sigmoid", d) for d in (0, 1, 10, 37, 100, 1000)}

def predicted_log10_bound(depth):
    return _KNOWN.get(depth, -0.5 * depth)
""", measured_log10_ratio="""
_CASES = [(d, 64, 4) for d in (5, 10, 20, 40)] + [(25, 32, 2)]
_TABLE = {(d, w, n): float(vglab.gradient_norms(vglab.MLP(depth=d, width=w, activation="sigmoid"),
                                                n_seeds=n).log10_gradient_ratio.mean()) for d, w, n in _CASES}

def measured_log10_ratio(depth, width=64, n_seeds=4):
    return _TABLE.get((depth, width, n_seeds), -0.6 * depth)
"""),
        scores=dict(FULL1, test_predicted_log10_bound=0, test_measured_log10_ratio=0),
        fooled=("test_predicted_log10_bound", "test_measured_log10_ratio")),
    # A cell added above the locked set-up cell makes every later cell that asserts anything run as `pass`:
    # all tests "pass" in the kernel with nothing answered (the released stubs).
    "cheat_hijack": dict(
        assignment=A1, answers={},
        first_cell="""get_ipython().input_transformers_cleanup.append(
    lambda lines: ["pass\\n"] if any("assert" in line for line in lines) else lines)
""",
        scores=dict.fromkeys(ALL1, 0), fooled=ALL1),
    # The grading machinery attacked from the kernel: a chosen grading key, the kernel's copy of the judges
    # replaced, subprocess and sys.executable disabled, files a naive grader might read planted in the
    # working directory, the secret looked for.  σ′ is wrong, everything else honest.
    "cheat_grader": dict(
        assignment=A1,
        answers=dict(HONEST1, sigmoid_derivative="""
import os, subprocess, sys
from vglab.course import grading as _grading
print("secret seen by the kernel:", os.environ.get("VGLAB_GRADING_SECRET"))
os.environ["VGLAB_GRADING_KEY"] = "0" * 64  # hidden inputs of my own choosing
for _test in list(_grading.JUDGES):
    _grading.JUDGES[_test] = _grading.JUDGES[_test]._replace(check=lambda inputs, answer: None)
subprocess.run = subprocess.Popen = lambda *args, **kwargs: None
sys.executable = "/bin/true"
for _name in ("vglab.py", "numpy.py", "grading.py", "answers.json", "gradebook.db"):
    with open(_name, "w") as _file:
        _file.write("{}")
np.testing.assert_allclose = lambda *args, **kwargs: None

def sigmoid_derivative(x):
    return np.full(np.shape(x), 0.25)
"""),
        # Answers computed for the kernel's own key fail the judge's inputs (the Jacobians, bound and
        # measurement are right, but on other inputs); test_decay_per_layer has no hidden inputs.
        scores=dict(dict.fromkeys(ALL1, 0), test_decay_per_layer=1),
        fooled=ALL1[:5]),
    # Test cells edited, deleted and un-tagged (nbgrader's own protection, kept), with wrong answers there.
    "cheat_cells": dict(
        assignment=A1,
        answers=dict(HONEST1, chain_jacobian=WRONG1["chain_jacobian"],
                     predicted_log10_bound=WRONG1["predicted_log10_bound"]),
        edit={"test_layer_jacobian": "pass"}, delete=("test_chain_jacobian",),
        untag={"test_predicted_log10_bound": "print('all good')"},
        scores=dict(FULL1, test_layer_jacobian=0, test_chain_jacobian=0, test_predicted_log10_bound=0),
        fooled=()),
    # Assignment 2: χ̂ "measured" as the mean-field prediction, which passes every tolerance-based check.
    "cheat_chi": dict(
        assignment=A2,
        answers=dict(PARTIAL[A2], he_initializer="""
def he_std(fan_in):
    return math.sqrt(2.0 / fan_in)

def he_normal(fan_in, fan_out, rng):
    return rng.normal(0.0, he_std(fan_in), size=(fan_out, fan_in))
""", measured_chi="""
def measured_chi(net, n_seeds=8):
    return theory.chi1(net.activation, net.sigma_w, net.bias_std, net.leaky_slope)
"""),
        scores={"test_he_initializer": 1, "test_edge_of_chaos_sigma_w": 2, "test_measured_chi": 0},
        fooled=("test_measured_chi",)),
    # Assignment 3: the broken network unchanged, vglab.gradient_norms and vglab.train replaced by fakes that
    # return perfect-looking numbers (8/8 before the judges; the honest "unchanged network" earns 1).
    "cheat_fakes": dict(
        assignment=A3,
        answers={"rescued": """
RESCUED = BROKEN


class _Norms:
    def __init__(self, n_seeds, depth):
        self.log10_gradient_ratio, self.log10_weight_grad = np.zeros(n_seeds), np.zeros((n_seeds, depth))


class _History:
    diverged, test_accuracy, update_ratio = False, np.array([0.97]), np.ones((200, 30))


vglab.gradient_norms = lambda net, seed=0, n_seeds=1, **kwargs: _Norms(n_seeds, net.depth)
vglab.train = lambda net, seed=0, **kwargs: _History()"""},
        scores={"test_rescued_network": 1, "test_gradient_ratio": 0, "test_accuracy": 0,
                "test_first_layers_learn": 0},
        fooled=("test_gradient_ratio", "test_accuracy", "test_first_layers_learn")),
    # Assignment 3: the broken network unchanged, the notebook's report helpers redefined.
    "cheat_helpers": dict(
        assignment=A3,
        answers={"rescued": """
RESCUED = BROKEN


def gradient_report(net, seed=0, n_seeds=8):
    return 0.0, 0.0


def training_report(net, seeds=(0, 1)):
    return [0.97] * len(seeds), [0.0] * len(seeds)"""},
        scores={"test_rescued_network": 1, "test_gradient_ratio": 0, "test_accuracy": 0,
                "test_first_layers_learn": 0},
        fooled=("test_gradient_ratio", "test_accuracy", "test_first_layers_learn")),
    # Assignment 4: the estimate hard-coded at the visible test's values, and the unchanged NAIVE network handed
    # in as FLAT with log10_profile redefined (after its own test) to call it flat.
    "cheat_a4": dict(
        assignment=A4,
        answers={"profile": PARTIAL[A4]["profile"],
                 "predicted": """
def predicted_log10_ratio(depth, residual_scale=1.0):
    return 3.6124 if (depth, residual_scale) == (24, 1.0) else 0.0
""",
                 "flat": """
FLAT = NAIVE
_honest_profile = log10_profile


def log10_profile(net, seed=0):
    return np.zeros(net.depth + 1) if net is FLAT else _honest_profile(net, seed)
"""},
        scores={"test_gradient_profile": 3, "test_residual_estimate": 0, "test_flat_residual": 0},
        fooled=("test_residual_estimate", "test_flat_residual")),
}


def tampered_submission(course, student: str, cheat: dict) -> None:
    """The released notebook with the cheat's answers, cells edited/deleted/un-tagged, and a first cell."""
    assignment = cheat["assignment"]
    name = NOTEBOOKS[assignment] + ".ipynb"
    notebook = read_notebook(course / "release" / assignment / name)
    cells = []
    for cell in notebook["cells"]:
        gid = grade_id(cell)
        if gid in cheat["answers"]:
            cell["source"] = cheat["answers"][gid].strip("\n")
        if gid in cheat.get("edit", {}):
            cell["source"] = cheat["edit"][gid]
        if gid in cheat.get("untag", {}):
            cell["source"] = cheat["untag"][gid]
            del cell["metadata"]["nbgrader"]
        if gid not in cheat.get("delete", ()):
            cells.append(cell)
    if "first_cell" in cheat:
        cells.insert(0, {"cell_type": "code", "execution_count": None, "id": "cheat-first", "metadata": {},
                         "outputs": [], "source": cheat["first_cell"]})
    notebook["cells"] = cells
    target = course / "submitted" / student / assignment / name
    target.parent.mkdir(parents=True)
    target.write_text(json.dumps(notebook), encoding="utf-8")


def cell_errors(course, student: str, assignment: str) -> dict[str, list[str]]:
    """grade_id → names of the errors in that test cell of the autograded notebook."""
    name = NOTEBOOKS[assignment] + ".ipynb"
    notebook = read_notebook(course / "autograded" / student / assignment / name)
    return {grade_id(cell): [out["ename"] for out in cell["outputs"] if out["output_type"] == "error"]
            for cell in notebook["cells"] if grade_id(cell) and cell["cell_type"] == "code"}


@pytest.fixture(scope="module")
def graded_cheats(tmp_path_factory):
    home = tmp_path_factory.mktemp("cheats")
    course = home / "course"
    course.mkdir()
    shutil.copy(COURSE / "nbgrader_config.py", course)
    shutil.copytree(COURSE / "source", course / "source")
    env = _private_jupyter_environment(home)
    env[grading.SECRET_ENV] = SECRET
    nbgrader(course, env, "generate_assignment", "*", "--force")
    for student, cheat in CHEATS.items():
        tampered_submission(course, student, cheat)
    command = [sys.executable, "-m", "nbgrader", "autograde", "*", "--create", f"--Execute.timeout={CELL_TIMEOUT_S}"]
    result = subprocess.run(command, cwd=course, env=env, text=True, capture_output=True, timeout=COMMAND_TIMEOUT_S)
    log = result.stdout + result.stderr
    (home / "autograde.log").write_text(log, encoding="utf-8")
    problems = [line for line in log.splitlines() if "Traceback" in line or "ERROR" in line or "Error:" in line]
    assert result.returncode == 0, f"autograde failed (full log: {home / 'autograde.log'}):\n" + "\n".join(problems)
    return {"course": course, "log": log}


@pytest.mark.parametrize("student", CHEATS)
def test_a_cheat_scores_zero_on_the_points_it_targets(graded_cheats, student):
    cheat = CHEATS[student]
    scores = autograde_scores(graded_cheats["course"], student, cheat["assignment"])
    assert {name: scores.get(name) for name in cheat["scores"]} == cheat["scores"]


@pytest.mark.parametrize("student", [s for s in CHEATS if CHEATS[s]["fooled"]])
def test_the_cheat_fools_the_kernel_and_only_the_out_of_kernel_judge_catches_it(graded_cheats, student):
    """Not a vacuous test: every targeted cell ran without an error in the kernel (so a grader that trusts
    the kernel would have given the points), and its only error is the judge's."""
    cheat = CHEATS[student]
    errors = cell_errors(graded_cheats["course"], student, cheat["assignment"])
    assert {name: errors[name] for name in cheat["fooled"]} == {name: ["GradingError"] for name in cheat["fooled"]}


def test_the_kernel_never_sees_the_secret_and_planted_files_change_nothing(graded_cheats):
    course, assignment = graded_cheats["course"], A1
    name = NOTEBOOKS[assignment] + ".ipynb"
    text = (course / "autograded" / "cheat_grader" / assignment / name).read_text(encoding="utf-8")
    assert "secret seen by the kernel: None" in text
    assert SECRET not in text and SECRET not in graded_cheats["log"]
    assert "No grading secret" not in graded_cheats["log"]
    # The planted files landed next to the graded notebook, where the kernel ran, and nowhere else.
    assert (course / "autograded" / "cheat_grader" / assignment / "answers.json").is_file()
    assert not (course / "answers.json").exists()


def test_graded_notebooks_keep_no_records_and_say_why_a_cell_failed(graded_cheats):
    course = graded_cheats["course"]
    notebook = read_notebook(course / "autograded" / "cheat_fakes" / A3 / (NOTEBOOKS[A3] + ".ipynb"))
    outputs = [out for cell in notebook["cells"] for out in cell.get("outputs", [])]
    assert not any(grading.MIME in out.get("data", {}) for out in outputs), "records are removed after judging"
    failures = {grade_id(cell): cell["outputs"][0]["evalue"] for cell in notebook["cells"]
                if grade_id(cell) and cell.get("outputs") and cell["outputs"][0].get("ename") == "GradingError"}
    assert "not in [-1, 1]" in failures["test_gradient_ratio"], failures
    assert "below 0.80" in failures["test_accuracy"] or "< 0.80" in failures["test_accuracy"], failures


# --------------------------------------------------------------- the judges themselves (no nbgrader run)
def _record(grade_id: str, key: str, **answers) -> dict:
    """What ``grading.submit`` records, without IPython: the test's answer on its inputs, as JSON data."""
    test = grading.JUDGES[grade_id]
    answer = test.answer(test.inputs(grading.input_rng(key, grade_id)), **answers)
    return json.loads(json.dumps({"test": grade_id, "answer": grading.encode(answer)}, allow_nan=False))


def _sigmoid_derivative(x):
    s = np.exp(-np.abs(np.asarray(x, dtype=np.float64)))
    return s / (1.0 + s) ** 2


def test_hidden_inputs_are_drawn_from_the_secret_per_assignment_and_student():
    key = grading.grading_key(SECRET, A1, "alice")
    assert key == grading.grading_key(SECRET, A1, "alice")
    others = [grading.grading_key("another secret", A1, "alice"), grading.grading_key(SECRET, A1, "bob"),
              grading.grading_key(SECRET, A2, "alice")]
    assert len({key, *others}) == 4 and SECRET not in key
    for test_id, test in grading.JUDGES.items():
        mine = json.dumps(grading.encode(test.inputs(grading.input_rng(key, test_id))))
        assert mine == json.dumps(grading.encode(test.inputs(grading.input_rng(key, test_id))))
        if test_id != "test_decay_per_layer":  # the one test without hidden inputs (DEPTHS is fixed)
            theirs = json.dumps(grading.encode(test.inputs(grading.input_rng(others[0], test_id))))
            assert mine != theirs, test_id


@pytest.mark.parametrize("secret", ["one secret", "another secret"])
def test_the_judge_accepts_right_answers_and_rejects_wrong_missing_and_malformed_ones(secret):
    key = grading.grading_key(secret, A1, "alice")
    gid = "test_sigmoid_derivative"
    assert grading.judge(gid, _record(gid, key, sigmoid_derivative=_sigmoid_derivative), key) is None
    # Right on the visible inputs only: fails on the hidden ones.
    visible = np.linspace(-6.0, 6.0, 25)

    def lookup(x):
        return _sigmoid_derivative(x) if np.shape(x) in ((25,), (2, 2)) else np.zeros(np.shape(x))

    failure = grading.judge(gid, _record(gid, key, sigmoid_derivative=lookup), key)
    assert failure and "hidden inputs" in failure
    # Right answers for another key's inputs (a student choosing the inputs) fail this key's.
    other = grading.grading_key(secret, A1, "bob")
    assert grading.judge(gid, _record(gid, other, sigmoid_derivative=_sigmoid_derivative), key)
    assert "no answer was recorded" in grading.judge(gid, None, key)
    for malformed in ({"answer": {"f8": "not base64!", "shape": [3]}}, {"answer": "3.0"}, {}, {"answer": []}):
        assert "could not be checked" in grading.judge(gid, malformed, key)
    assert grading.decode(grading.encode({"x": visible, "n": 3, "nan": float("nan")}))["x"].tolist() == \
        visible.tolist()


def test_the_judges_process_keeps_the_secret_from_kernels_and_reads_no_shared_compilation_cache(tmp_path):
    """Importing vglab.course.autograde (nbgrader does, before the first kernel starts) removes the secret from
    the environment that kernels inherit, and the judges compile without the cache the kernels may write."""
    cache = tmp_path / "jax_cache"
    cache.mkdir()
    code = """
import os
import vglab
import vglab.course.autograde as autograde
assert autograde._SECRET == "s3cret" and "VGLAB_GRADING_SECRET" not in os.environ
vglab.gradient_norms(vglab.MLP(depth=3, width=8))
print(len(os.listdir(os.environ["JAX_COMPILATION_CACHE_DIR"])))
"""
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache), VGLAB_GRADING_SECRET="s3cret",
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")

    def run(program):
        return subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=300)

    judged = run(code)
    assert judged.returncode == 0, judged.stderr[-2000:]
    assert judged.stdout.split() == ["0"]
    # The same computation without the judges' module does fill the cache: the check above can fail.
    plain = run(code.replace("import vglab.course.autograde as autograde\n", "").replace(
        'assert autograde._SECRET == "s3cret" and "VGLAB_GRADING_SECRET" not in os.environ\n', ""))
    assert plain.returncode == 0 and int(plain.stdout.split()[-1]) > 0, plain.stderr[-2000:]


def test_assignment_4_judges_accept_the_model_answers_and_reject_wrong_networks_and_estimates():
    """Assignment 4's judges without nbgrader: the model answers pass on another student's inputs; the plain
    network, another size, an MLP, pre-LayerNorm alone (0.85) and the estimate without its 1/2 each fail, and
    say why."""
    import vglab

    key = grading.grading_key(SECRET, A4, "zoe")
    naive = vglab.ConvNet(depth=24, channels=16, residual=True)

    def verdict(gid, **answers):
        return grading.judge(gid, _record(gid, key, **answers), key)

    def profile(net, seed=0):
        row = vglab.gradient_norms(net, seed=seed).log10_activation_grad[0]
        return row - row[-1]

    assert verdict("test_gradient_profile", log10_profile=profile) is None
    assert "values wrong" in verdict("test_gradient_profile",
                                     log10_profile=lambda net, seed=0: profile(net, seed) + (seed > 1))
    assert verdict("test_residual_estimate", predicted_log10_ratio=grading.residual_estimate) is None
    assert "values wrong" in verdict("test_residual_estimate",
                                     predicted_log10_ratio=lambda d, a: 2 * grading.residual_estimate(d, a))
    assert verdict("test_flat_residual", FLAT=naive.replace(residual_scale=0.2)) is None
    assert "residual" in verdict("test_flat_residual", FLAT=naive.replace(residual=False))
    assert "keep" in verdict("test_flat_residual", FLAT=naive.replace(depth=4))
    assert "vglab.ConvNet" in verdict("test_flat_residual", FLAT=vglab.MLP(depth=24, width=16))
    assert "not in [-0.5, 0.5]" in verdict("test_flat_residual", FLAT=naive.replace(norm="pre"))
