"""A vglab class on a real JupyterHub: real Unix users, nbgrader's exchange, the formgrader service (issue 16).

One module-scoped run (root only) creates an instructor and five students (``vgtest-*``), sets the class up
with ``notebooks/coursework/hub/setup_class.py`` and starts JupyterHub from
``notebooks/coursework/hub/jupyterhub_config.py`` (the files the guide tells instructors to use; the test adds
only ports and an admin token), with the hub's venv and configurable-http-proxy from ``make hub-deps``.  Then,
as the people would:

* the instructor runs ``nbgrader generate_assignment`` and ``release_assignment`` in their course directory;
* each student's server is started through the hub's REST API; the student fetches the assignment through
  nbgrader's server extension (the Assignment List panel's ``/assignments/fetch``), writes their answers
  through the server's contents API, and submits (``/assignments/submit``): the solution, partly correct
  answers, the release untouched, an answer that raises, an answer that never returns;
* one student also forges a submission in another's name, straight into the exchange;
* the instructor runs ``collect`` (which must refuse the forgery), ``autograde`` (with a short cell timeout,
  so the loop costs little), ``generate_feedback`` and ``release_feedback``; every student fetches feedback.

The tests then read the gradebook and each home, and try, as each user with ``runuser``, what they must not do.
Everything the run creates (users and homes, the exchange, processes of those users) is removed at the end.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")
from nbgrader.api import Gradebook  # noqa: E402
from test_coursework import NOTEBOOKS, PARTIAL, PARTIAL_SCORES  # noqa: E402  (the same answers, one place)

pytestmark = pytest.mark.hub

ROOT = Path(__file__).resolve().parents[1]
HUB_FILES = ROOT / "notebooks" / "coursework" / "hub"
PREFIX = Path(os.environ.get("VGLAB_HUB_PREFIX", "/opt/vglab-hub"))
BIN = PREFIX / "venv" / "bin"
COURSE_ID = "vglab"
ASSIGNMENT = "01_chain_rule_and_saturation"
NOTEBOOK = NOTEBOOKS[ASSIGNMENT] + ".ipynb"
INSTRUCTOR = "vgtest-instructor"
# Each student hands in one kind of work.
STUDENTS = {"vgtest-correct": "solution", "vgtest-partial": "partial", "vgtest-blank": "untouched",
            "vgtest-raises": "raises", "vgtest-loops": "loops"}
FORGER, VICTIM = "vgtest-raises", "vgtest-blank"  # forges a full-marks submission in the victim's name
CELL_TIMEOUT_S = 20  # the looping answer costs this; about 4x the slowest reference cell of assignment 1
COMMAND_TIMEOUT_S = 600


def _why_not() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "the hub test runs as root (it creates Unix users and the hub setuids their servers); CI does"
    if not shutil.which("useradd") or not shutil.which("userdel") or not shutil.which("runuser"):
        return "useradd, userdel and runuser are needed to create the class's Unix users"
    missing = [p for p in (BIN / "jupyterhub", PREFIX / "proxy/node_modules/.bin/configurable-http-proxy")
               if not p.exists()]
    if missing:
        return f"the hub is not installed ({', '.join(map(str, missing))} missing): run `make hub-deps`"
    return None


if _why_not():
    pytest.skip(_why_not(), allow_module_level=True)


# --------------------------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_user(user: str, *command: str, cwd: str | Path | None = None, check: bool = True,
            env: dict | None = None, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run ``command`` as ``user`` (runuser, the user's own rights), with the class venv first on PATH."""
    account = pwd.getpwnam(user)
    environment = {"HOME": account.pw_dir, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
                   "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "JAX_PLATFORMS": "cpu",
                   "XLA_FLAGS": "--xla_force_host_platform_device_count=1", **(env or {})}
    result = subprocess.run(["runuser", "-u", user, "--", "env", "-i",
                             *(f"{k}={v}" for k, v in environment.items()), *command],
                            cwd=cwd or account.pw_dir, text=True, capture_output=True, timeout=timeout)
    if check:
        error = result.stderr
        if len(error) > 8000:  # the first traceback and the end
            first = max(0, error.find("Traceback") - 200)
            error = error[first:first + 5000] + "\n…\n" + error[-3000:]
        assert result.returncode == 0, f"{user}: {' '.join(command)} failed:\n{result.stdout[-2000:]}\n{error}"
    return result


def refused(user: str, *command: str) -> str:
    """Run ``command`` as ``user``; it must fail for lack of permission.  Returns the error message."""
    result = as_user(user, *command, check=False)
    message = result.stderr.strip()
    assert result.returncode != 0 and re.search("Permission denied|Operation not permitted", message), \
        f"{user} could: {' '.join(command)} (exit {result.returncode}) {result.stdout[:300]} {message[:300]}"
    return message


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect (to the login page) is an answer, not something to follow


_NO_REDIRECTS = urllib.request.build_opener(_KeepRedirects)


def api(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, object]:
    """One HTTP request with ``Authorization: token``; returns (status, decoded JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    try:
        with _NO_REDIRECTS.open(request, timeout=120) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode(errors="replace")
    try:
        return status, json.loads(text) if text else None
    except json.JSONDecodeError:
        return status, text


def solution_answers(source: dict) -> dict[str, str]:
    """grade_id → the instructor's solution of every code solution cell (markers removed)."""
    answers = {}
    for cell in source["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if cell["cell_type"] == "code" and meta.get("solution"):
            lines = "".join(cell["source"]).splitlines()
            answers[meta["grade_id"]] = "\n".join(line for line in lines if "### BEGIN SOLUTION" not in line
                                                  and "### END SOLUTION" not in line)
    return answers


def student_answers(kind: str, solution: dict[str, str]) -> dict[str, str]:
    if kind == "solution":
        return solution
    if kind == "partial":
        return PARTIAL[ASSIGNMENT]
    if kind == "untouched":
        return {}
    if kind == "raises":  # one exercise raises; the rest is right
        return {**solution, "predicted_log10_bound":
                'def predicted_log10_bound(depth):\n    raise ValueError("I will work this out later")'}
    if kind == "loops":  # one exercise never returns; the rest is right
        return {**solution, "chain_jacobian": solution["chain_jacobian"]
                + "\n\ndef chain_jacobian(weights, x):\n    while True:\n        pass"}
    raise ValueError(kind)


def fill(notebook: dict, answers: dict[str, str]) -> dict:
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return notebook


def remove_user(name: str) -> None:
    """Stop every process of a test user (by PID), then delete the user and their home."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return
    for _ in range(3):
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _uid(p) == uid]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not pids:
            break
        time.sleep(0.5)
    subprocess.run(["userdel", "-r", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


def _uid(proc: Path) -> int | None:
    try:
        return proc.stat().st_uid
    except OSError:
        return None


# --------------------------------------------------------------------------------------------- the class
@pytest.fixture(scope="module")
def hub_class():
    started = time.perf_counter()
    users = [INSTRUCTOR, *STUDENTS]
    work = Path(tempfile.mkdtemp(prefix="vgtest-hub-"))  # root only: the hub's database, cookie secret, log
    shared = Path(tempfile.mkdtemp(prefix="vgtest-exchange-", dir="/var/tmp"))
    os.chmod(shared, 0o755)
    exchange = shared / "exchange"
    config_dir = PREFIX / "venv" / "etc" / "jupyter"  # on every user's Jupyter config path (sys.prefix)
    hub = None
    try:
        for name in users:
            remove_user(name)  # left over from a run that was killed
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True, capture_output=True)
        subprocess.run([sys.executable, HUB_FILES / "setup_class.py", "--instructor", INSTRUCTOR,
                        "--students", *STUDENTS, "--course-id", COURSE_ID, "--exchange", exchange,
                        "--config-dir", config_dir], check=True, capture_output=True, text=True)
        course = Path(pwd.getpwnam(INSTRUCTOR).pw_dir) / f"{COURSE_ID}-course"

        # The hub, from the committed config; the test adds 127.0.0.1 ports and an admin service token.
        admin_token, hub_port = os.urandom(32).hex(), free_port()
        (work / "test_config.py").write_text(f"""
c = get_config()
load_subconfig({str(HUB_FILES / 'jupyterhub_config.py')!r})
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {hub_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.JupyterHub.services.append({{"name": "vgtest-admin", "api_token": {admin_token!r}}})
c.JupyterHub.load_roles.append({{"name": "admin", "services": ["vgtest-admin"]}})
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # POST .../server answers at once; the test polls
""")
        env = {"PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "VGLAB_COURSE_ID": COURSE_ID,
               "VGLAB_INSTRUCTOR": INSTRUCTOR, "VGLAB_STUDENTS": " ".join(STUDENTS),
               "VGLAB_HUB_PREFIX": str(PREFIX), "VGLAB_FORMGRADER_PORT": str(free_port())}
        log = open(work / "hub.log", "w")  # noqa: SIM115  (closed with the hub)
        hub = subprocess.Popen([BIN / "jupyterhub", "-f", work / "test_config.py"], cwd=work, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{hub_port}"
        for _ in range(240):
            assert hub.poll() is None, (work / "hub.log").read_text()[-4000:]
            try:
                if api("GET", f"{url}/hub/api/", admin_token)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        hub_started = time.perf_counter()

        # The instructor releases the assignment (one JAX compilation cache for all their grading kernels).
        cache = {"JAX_COMPILATION_CACHE_DIR": f"{pwd.getpwnam(INSTRUCTOR).pw_dir}/.cache/vglab-jax",
                 "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}

        def instructor(*args: str) -> subprocess.CompletedProcess:
            return as_user(INSTRUCTOR, "nbgrader", *args, cwd=course, env=cache)

        instructor("generate_assignment", ASSIGNMENT, "--force")
        instructor("release_assignment", ASSIGNMENT)

        # Each student's server, started through the hub, and a token of each user's own (the instructor
        # works in the course directory and the formgrader service, and needs no server of their own here).
        tokens = {}
        for name in users:
            if name in STUDENTS:
                status, _ = api("POST", f"{url}/hub/api/users/{name}/server", admin_token)
                assert status in (201, 202), (name, status)
            status, reply = api("POST", f"{url}/hub/api/users/{name}/tokens", admin_token,
                                {"note": "vgtest", "expires_in": 3600})
            assert status == 201, (name, status, reply)
            tokens[name] = reply["token"]
        for name in STUDENTS:
            for _ in range(480):
                status, model = api("GET", f"{url}/hub/api/users/{name}", admin_token)
                if model["servers"].get("", {}).get("ready"):
                    break
                time.sleep(0.25)
            else:
                raise AssertionError(f"{name}'s server did not start:\n{(work / 'hub.log').read_text()[-4000:]}")
        servers_started = time.perf_counter()

        # Students fetch, answer and submit through their own servers, as the Assignment List panel does.
        source = json.loads((ROOT / "notebooks/coursework/source" / ASSIGNMENT / NOTEBOOK).read_text())
        solution = solution_answers(source)
        listings = {}
        for name, kind in STUDENTS.items():
            server, token, body = f"{url}/user/{name}", tokens[name], {"course_id": COURSE_ID,
                                                                         "assignment_id": ASSIGNMENT}
            listings[name] = {"before": api("GET", f"{server}/assignments?course_id={COURSE_ID}", token)}
            listings[name]["fetch"] = api("POST", f"{server}/assignments/fetch", token, body)
            path = f"{server}/api/contents/{ASSIGNMENT}/{NOTEBOOK}"
            status, model = api("GET", path, token)
            assert status == 200, (name, status, model)
            notebook = fill(model["content"], student_answers(kind, solution))
            status, _ = api("PUT", path, token, {"type": "notebook", "format": "json", "content": notebook})
            assert status == 200, (name, status)
            listings[name]["submit"] = api("POST", f"{server}/assignments/submit", token, body)

        # The forger hands in the solution in the victim's name, straight into the exchange (a later time
        # than the victim's own submission, so nbgrader's collect would pick it).
        inbound = exchange / COURSE_ID / "inbound"
        forged = inbound / f"{VICTIM}+{ASSIGNMENT}+2099-01-01 00:00:00.000000 UTC+forged"
        released = exchange / COURSE_ID / "outbound" / ASSIGNMENT / NOTEBOOK
        forgery = fill(json.loads(released.read_text()), solution)
        as_user(FORGER, "mkdir", forged)
        as_user(FORGER, "python3", "-c", f"import json, sys; open({str(forged / NOTEBOOK)!r}, 'w').write(sys.argv[1]);"
                f"open({str(forged / 'timestamp.txt')!r}, 'w').write('2099-01-01 00:00:00.000000 UTC')",
                json.dumps(forgery))

        # The instructor collects, grades and returns feedback.
        collected = instructor("collect", ASSIGNMENT)
        autograded = instructor("autograde", ASSIGNMENT, "--create", f"--Execute.timeout={CELL_TIMEOUT_S}")
        instructor("generate_feedback", ASSIGNMENT)
        instructor("release_feedback", ASSIGNMENT)
        instructor("export")
        for name in STUDENTS:
            listings[name]["feedback"] = api("POST", f"{url}/user/{name}/assignments/fetch_feedback",
                                             tokens[name], {"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
        finished = time.perf_counter()
        print(f"hub test: users + setup + hub {hub_started - started:.1f} s, release + {len(STUDENTS)} servers "
              f"{servers_started - hub_started:.1f} s, fetch/submit/collect/autograde/feedback "
              f"{finished - servers_started:.1f} s, total {finished - started:.1f} s")
        yield {"url": url, "admin": admin_token, "tokens": tokens, "course": course, "exchange": exchange,
               "inbound": inbound, "forged": forged, "listings": listings, "collect": collected,
               "autograde": autograded, "solution": solution, "log": work / "hub.log"}
    finally:
        if hub is not None:
            os.killpg(hub.pid, signal.SIGTERM)  # the hub's own process group: the hub and its proxy
            try:
                hub.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(hub.pid, signal.SIGKILL)
                hub.wait()
        for name in users:
            remove_user(name)  # their servers and kernels, then the account and home
        shutil.rmtree(shared, ignore_errors=True)
        for name in ("nbgrader_config.py", "vglab_exchange.py"):
            (config_dir / name).unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def gradebook_scores(course: Path) -> dict[str, dict[str, float]]:
    """student → grade_id → autograded score, and the max score of every test cell."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gradebook:
        notebook = gradebook.find_notebook(NOTEBOOKS[ASSIGNMENT], ASSIGNMENT)
        maximum = {cell.name: cell.max_score for cell in notebook.grade_cells if cell.cell_type == "code"}
        scores = {"max": maximum}
        for name in STUDENTS:
            submission = gradebook.find_submission_notebook(NOTEBOOKS[ASSIGNMENT], ASSIGNMENT, name)
            scores[name] = {grade.name: grade.auto_score for grade in submission.grades if grade.name in maximum}
    return scores


# --------------------------------------------------------------------------------------------- the workflow
def test_students_fetch_and_submit_through_the_assignment_list_endpoints(hub_class):
    for name, steps in hub_class["listings"].items():
        statuses = {step: (status, {a["status"] for a in reply["value"] if a["assignment_id"] == ASSIGNMENT})
                    for step, (status, reply) in steps.items() if step != "feedback"}
        # After submitting, the panel lists the fetched copy and the submission.
        assert statuses == {"before": (200, {"released"}), "fetch": (200, {"fetched"}),
                            "submit": (200, {"fetched", "submitted"})}, (name, statuses)


def test_each_student_gets_their_own_score(hub_class):
    scores = gradebook_scores(hub_class["course"])
    maximum = scores["max"]
    assert sum(maximum.values()) == 8
    expected = {
        "vgtest-correct": maximum,
        "vgtest-partial": {**maximum, **PARTIAL_SCORES[ASSIGNMENT]},
        "vgtest-blank": dict.fromkeys(maximum, 0),  # its own untouched notebook, not the forged solution
        "vgtest-raises": {**maximum, "test_predicted_log10_bound": 0},
        "vgtest-loops": {**maximum, "test_chain_jacobian": 0},  # interrupted after CELL_TIMEOUT_S
    }
    assert {name: scores[name] for name in STUDENTS} == expected
    with open(hub_class["course"] / "grades.csv", newline="") as table:  # nbgrader export: the same totals
        exported = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(table)}
    assert exported == {name: sum(expected[name].values()) for name in STUDENTS}
    assert "SAWarning" not in hub_class["autograde"].stderr  # silenced in nbgrader_config.py (README.md)
    assert "CellTimeoutError" in (hub_class["course"] / "autograded" / "vgtest-loops" / ASSIGNMENT
                                  / NOTEBOOK).read_text()


def test_feedback_reaches_its_own_student_only(hub_class):
    totals = {name: sum(s.values()) for name, s in gradebook_scores(hub_class["course"]).items() if name != "max"}
    for name in STUDENTS:
        status, reply = hub_class["listings"][name]["feedback"]
        # The panel's submitted entry lists each submission; the returned one now has local feedback.
        submissions = [sub for a in reply["value"] if a["assignment_id"] == ASSIGNMENT
                       for sub in a.get("submissions", [])]
        assert status == 200 and [sub["has_local_feedback"] for sub in submissions] == [True], (name, reply)
        home = Path(pwd.getpwnam(name).pw_dir)
        returned = sorted(home.glob(f"{ASSIGNMENT}/feedback/*/*.html"))
        assert [p.name for p in returned] == [NOTEBOOK.replace(".ipynb", ".html")], (name, returned)
        html = returned[0].read_text(encoding="utf-8")
        total = re.search(r"\(Score: ([\d.]+) / ([\d.]+)\)", html)
        # The five totals differ (8, 5, 0, 7, 6), so the score names whose notebook this is.
        assert total and float(total.group(1)) == totals[name], (name, total and total.group(0))
        owner = pwd.getpwuid(returned[0].stat().st_uid).pw_name
        assert owner == name
        other = next(n for n in STUDENTS if n != name)
        refused(other, "cat", str(returned[0]))
    refused("vgtest-correct", "ls", str(hub_class["exchange"] / COURSE_ID / "feedback"))


# --------------------------------------------------------------------------------------------- who sees what
def test_homes_and_the_course_are_private(hub_class):
    course = hub_class["course"]
    source = course / "source" / ASSIGNMENT / NOTEBOOK
    as_user(INSTRUCTOR, "cat", str(source))  # the instructor reads their course…
    as_user(INSTRUCTOR, "python3", "-c", f"open({str(course / 'gradebook.db')!r}, 'rb').read(16)")
    for student in STUDENTS:  # …nobody else does
        refused(student, "cat", str(source))
        refused(student, "python3", "-c", f"open({str(course / 'gradebook.db')!r}, 'rb')")
        refused(student, "ls", str(course))
    work = Path(pwd.getpwnam("vgtest-partial").pw_dir) / ASSIGNMENT / NOTEBOOK
    as_user("vgtest-partial", "cat", str(work))
    refused("vgtest-correct", "cat", str(work))  # another student's working notebook
    for name in (INSTRUCTOR, *STUDENTS):
        assert Path(pwd.getpwnam(name).pw_dir).stat().st_mode & 0o777 == 0o700


def test_a_student_cannot_list_move_or_delete_others_submissions(hub_class):
    inbound = hub_class["inbound"]
    refused("vgtest-correct", "ls", str(inbound))
    genuine = [p for p in inbound.iterdir() if p.name.startswith(VICTIM + "+") and p != hub_class["forged"]]
    assert len(genuine) == 1
    # Even knowing the name: the inbound folder is sticky, so only its owner (and the instructor) may move it.
    refused(FORGER, "mv", str(genuine[0]), str(inbound / "hidden"))
    # Nor change what is inside: submit leaves the folder 0755 (nbgrader leaves it 0777).
    refused(FORGER, "rm", "-rf", str(genuine[0]))
    refused(FORGER, "touch", str(genuine[0] / "extra.txt"))
    assert (genuine[0] / NOTEBOOK).is_file() and genuine[0].stat().st_mode & 0o777 == 0o755


def test_collect_refuses_a_submission_forged_in_another_students_name(hub_class):
    log = hub_class["collect"].stdout + hub_class["collect"].stderr
    assert re.search(rf"Refused submission {VICTIM}\+{ASSIGNMENT}\+2099.*owned by {FORGER}, not by {VICTIM}", log), log
    collected = hub_class["course"] / "submitted" / VICTIM / ASSIGNMENT
    assert "2099" not in (collected / "timestamp.txt").read_text()
    assert sorted(p.name for p in (hub_class["course"] / "submitted").iterdir()) == sorted(STUDENTS)


def test_formgrader_service_serves_the_instructor_only(hub_class):
    url, tokens = hub_class["url"], hub_class["tokens"]
    status, assignments = api("GET", f"{url}/services/{COURSE_ID}/formgrader/api/assignments", tokens[INSTRUCTOR])
    assert status == 200, (status, assignments)
    mine = {a["name"]: a for a in assignments}
    assert mine[ASSIGNMENT]["num_submissions"] == len(STUDENTS), mine  # CourseDirectory.root is the course
    for student in STUDENTS:
        status, _ = api("GET", f"{url}/services/{COURSE_ID}/formgrader/api/assignments", tokens[student])
        assert status in (403, 404), (student, status)
    # And a student's token opens no other student's server.
    assert api("GET", f"{url}/user/vgtest-partial/api/contents", tokens["vgtest-correct"])[0] == 403
