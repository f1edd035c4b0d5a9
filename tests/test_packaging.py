"""How vglab is installed: pip (pyproject.toml and its extras), conda (environment.yml), Binder (binder/).

The package itself needs only what its modules import; JupyterLab, nbgrader and the test tools are extras.
environment.yml names everything (the package, the lab, the coursework, the tests) and must survive the way
conda really uses it: conda writes its pip section to a requirements file and runs ``pip install -U -r`` on it.
"""

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.parse
from importlib import metadata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# repo2docker/buildpacks/conda/__init__.py (jupyterhub/repo2docker): CondaBuildPack.python_version takes the
# first dependency string this pattern .match()es, keeps major.minor, and builds its default Python otherwise.
REPO2DOCKER_PYTHON_REGEX = re.compile(r"python\s*=+\s*([\d\.]*)")

LAB_COURSE_AND_TEST_TOOLS = {"jupyterlab", "notebook", "jupyter-server", "nbgrader", "nbval", "pytest",
                             "playwright", "hypothesis"}


def _normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _normalise(requirement: str) -> tuple[str, str]:
    """'scikit-learn>=1.4' → ('scikit-learn', '>=1.4'); names compared case- and separator-insensitively."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*?)\s*", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return _normalise_name(match.group(1)), match.group(3).replace(" ", "")


def extra_requirements(extra: str, seen: frozenset = frozenset()) -> set[tuple[str, str]]:
    """An extra's requirements, with the package's own extras it names (``vglab[lab,course]``) expanded."""
    found = set()
    for requirement in PYPROJECT["optional-dependencies"][extra]:
        self_reference = re.fullmatch(r"\s*vglab\[([^\]]+)\]\s*", requirement)
        if self_reference:
            for inner in self_reference.group(1).split(","):
                inner = inner.strip()
                assert inner in PYPROJECT["optional-dependencies"], f"[{extra}] names a missing extra [{inner}]"
                if inner not in seen:
                    found |= extra_requirements(inner, seen | {extra})
        else:
            found.add(_normalise(requirement))
    return found


def runtime_requirements() -> set[tuple[str, str]]:
    return {_normalise(r) for r in PYPROJECT["dependencies"]}


def pyproject_requirements():
    """What ``pip install -e ".[dev]"`` (``make test``) asks for: the dependencies and all [dev] reaches."""
    return runtime_requirements() | extra_requirements("dev")


def _environment(path="environment.yml"):
    return yaml.safe_load((ROOT / path).read_text())


def conda_requirements(path="environment.yml"):
    names = {_normalise(d) for d in _environment(path)["dependencies"] if isinstance(d, str)}
    # PyPI-only packages sit in the pip section (conda installs them with pip); they count too.
    names |= {_normalise(line) for line in pip_packages(path)}
    return {(name, spec) for name, spec in names if name not in {"python", "pip"}}


def pip_packages(path="environment.yml") -> list[str]:
    """The pip section's requirement lines other than options and the local install (``-e .``)."""
    return [line for line in pip_section(path) if not line.startswith("-") and line.strip() != "."]


def pip_section(path="environment.yml") -> list[str]:
    sections = [d["pip"] for d in _environment(path)["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) <= 1
    return sections[0] if sections else []


def run_pip_like_conda(lines: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    """What conda does with an environment file's pip section (conda/env/installers/pip.py): the lines joined
    into a requirements file, ``pip install -U -r <file> --exists-action=b`` run from the environment file's
    directory.  Here with ``--dry-run``, in the test's own interpreter (every dependency already installed)."""
    requirements = tmp_path / "condaenv.test.requirements.txt"
    requirements.write_text("\n".join(lines))
    return subprocess.run([sys.executable, "-m", "pip", "install", "-U", "-r", str(requirements),
                           "--exists-action=b", "--dry-run", "--disable-pip-version-check"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


# ----------------------------------------------------------------------------------------- the same names
def test_environment_yml_and_pyproject_name_the_same_dependencies():
    assert conda_requirements() == pyproject_requirements()


def test_the_dev_extra_reaches_the_lab_the_coursework_and_the_test_tools():
    names = {name for name, _ in pyproject_requirements()}
    assert {"jax", "jaxlib", "ipywidgets", "matplotlib", "ipympl", "jupyterlab", "nbval", "nbgrader",
            "pytest"} <= names
    assert {name for name, _ in extra_requirements("lab")} >= {"jupyterlab"}
    assert {name for name, _ in extra_requirements("course")} >= {"nbgrader"}


def test_the_expansion_of_the_packages_own_extras_is_what_the_comparison_sees():
    """The comparison above is only as good as the expansion of ``vglab[lab,course]`` inside [dev]."""
    dev_lines = PYPROJECT["optional-dependencies"]["dev"]
    assert any(line.replace(" ", "").startswith("vglab[") for line in dev_lines)
    assert not any(name == "vglab" for name, _ in extra_requirements("dev"))
    assert ("jupyterlab", ">=4.2") in extra_requirements("dev")


# ----------------------------------------------------------------------------------------- runtime = imports
def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module → the vglab files importing it (every import statement, also inside functions)."""
    stdlib = set(sys.stdlib_module_names)
    found: dict[str, set[str]] = {}
    for path in (ROOT / "vglab").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in stdlib and top not in {"vglab", "__future__"}:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


# Imported only inside a function, guarded, for an optional feature: equinox and flax (vglab.Stack with the
# user's own modules), google.colab (only there on Colab).
OPTIONAL_IMPORTS = {"equinox", "flax", "google"}
# Subpackages for one use, importing what that extra brings (vglab.course: nbgrader's autograding hooks).
EXTRA_SUBPACKAGES = {"vglab/course/": "course"}
# Runtime dependencies vglab does not import by name: jaxlib is jax's compiled half; ipympl is the
# `%matplotlib widget` backend matplotlib loads for the dashboards.
NOT_IMPORTED_BY_NAME = {"jaxlib", "ipympl"}


def test_the_runtime_dependencies_are_what_vglab_imports():
    distributions = metadata.packages_distributions()
    imported = {}
    for module, files in _third_party_imports().items():
        if module in OPTIONAL_IMPORTS:
            continue
        names = {_normalise_name(d) for d in distributions.get(module, [module])}
        imported[module] = (names, files)
    runtime = {name for name, _ in runtime_requirements()}

    def provided_by(declared):
        """Declared, or a hard requirement of a declared package, at any depth (installed metadata):
        matplotlib requires contourpy, nbgrader brings nbformat."""
        provided, todo = set(), list(declared)
        while todo:
            name = todo.pop()
            if name in provided:
                continue
            provided.add(name)
            try:
                requirements = metadata.requires(name) or []
            except metadata.PackageNotFoundError:
                continue
            todo += [_normalise(re.split(r"[;(\[]", r)[0])[0] for r in requirements if "extra ==" not in r]
        return provided

    provided = provided_by(runtime)
    undeclared = {}
    for module, (names, files) in imported.items():
        for file in files:
            extra = next((e for prefix, e in EXTRA_SUBPACKAGES.items() if file.startswith(prefix)), None)
            allowed = provided if extra is None else provided | provided_by(
                {name for name, _ in extra_requirements(extra)})
            if not names & allowed:
                undeclared.setdefault(module, []).append(file)
    assert not undeclared, f"imported by vglab but not a dependency: {undeclared}"
    imported = {module: (names, files) for module, (names, files) in imported.items()
                if any(not f.startswith(tuple(EXTRA_SUBPACKAGES)) for f in files)}
    unused = runtime - NOT_IMPORTED_BY_NAME - {name for names, _ in imported.values() for name in names}
    assert not unused, f"runtime dependencies vglab never imports (move them to an extra): {sorted(unused)}"
    assert not runtime & LAB_COURSE_AND_TEST_TOOLS


def test_the_optional_imports_are_really_optional():
    """The optional imports (equinox, flax, google.colab) sit inside functions, never at module level."""
    for path in (ROOT / "vglab").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for module in modules:
                assert module.split(".")[0] not in OPTIONAL_IMPORTS, f"{path}: top-level import of {module}"


@pytest.mark.slow
def test_pip_install_of_the_package_pulls_no_lab_course_or_test_tools(tmp_path):
    """A real resolution, as on a machine with nothing installed (Colab: nbgrader's IPython ≥ 8.10 pin would
    clash with its 7.34): ``pip install --dry-run --ignore-installed --report`` of the package (non-editable)."""
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--disable-pip-version-check", "--report", str(report), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    installed = {_normalise_name(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert {"vglab", "jax", "jaxlib", "ipywidgets", "matplotlib", "ipympl"} <= installed
    assert not installed & LAB_COURSE_AND_TEST_TOOLS, sorted(installed & LAB_COURSE_AND_TEST_TOOLS)


# ----------------------------------------------------------------------------------------- conda's pip step
def test_environment_installs_vglab_itself():
    assert pip_section()[0] == "-e ."
    assert "-e ." not in pip_packages()


def test_the_environment_pip_section_passes_pip_the_way_conda_hands_it_over(tmp_path):
    done = run_pip_like_conda(pip_section(), tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"Would install .*\bvglab-", done.stdout), done.stdout[-2000:]


def test_the_conda_check_rejects_a_pip_section_with_a_bare_option(tmp_path):
    """The check above can fail: the section environment.yml had before (``--no-deps`` on its own line)."""
    done = run_pip_like_conda(["--no-deps", "-e ."], tmp_path)
    assert done.returncode != 0
    assert "--no-deps" in done.stderr


# ----------------------------------------------------------------------------------------- Python pin
def repo2docker_python(path: str) -> str:
    """The Python version repo2docker builds for an environment file ('' = its own default)."""
    for dependency in _environment(path)["dependencies"]:
        if isinstance(dependency, str) and (match := REPO2DOCKER_PYTHON_REGEX.match(dependency)):
            version = match.group(1)
            return ".".join(version.split(".")[:2])
    return ""


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_repo2docker_reads_the_python_pin(path):
    version = repo2docker_python(path)
    assert version == "3.11", f"{path}: repo2docker would build Python {version or 'its default'}"
    lowest = re.fullmatch(r">=\s*(\d+\.\d+)", PYPROJECT["requires-python"]).group(1)
    assert tuple(map(int, version.split("."))) >= tuple(map(int, lowest.split(".")))


def test_repo2docker_reads_a_lower_bound_as_no_pin():
    """Why the pin is `python=3.11`: the rule the test applies sees no version in `python>=3.11`."""
    assert REPO2DOCKER_PYTHON_REGEX.match("python>=3.11") is None
    assert REPO2DOCKER_PYTHON_REGEX.match("python=3.11").group(1) == "3.11"


# ----------------------------------------------------------------------------------------- Binder
def test_binder_environment_is_environment_yml_without_its_local_install():
    top, binder = _environment(), _environment("binder/environment.yml")
    assert binder["channels"] == top["channels"]
    top_list = [d for d in top["dependencies"] if isinstance(d, str)]
    assert [d for d in binder["dependencies"] if isinstance(d, str)] == top_list
    assert pip_section("binder/environment.yml") == pip_packages()  # the PyPI-only ones, not `-e .`
    assert conda_requirements("binder/environment.yml") == conda_requirements()


def test_binder_post_build_is_executable_and_installs_the_package():
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK), "repo2docker runs binder/postBuild only if it is executable"
    text = post_build.read_text()
    assert text.startswith("#!/bin/bash\n")
    assert "set -euo pipefail" in text  # a failed install fails the build
    commands = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert commands[-1] == "python -m pip install --no-deps ."
    done = subprocess.run(["bash", "-n", str(post_build)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def binder_badges() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return re.findall(r"\[!\[Launch Binder\]\((https://mybinder\.org/badge_logo\.svg)\)\]\(([^)\s]+)\)", readme)


def test_readme_has_a_launch_binder_badge_that_opens_lab_on_the_first_notebook():
    badges = binder_badges()
    assert len(badges) == 1, "README.md needs one [![Launch Binder](https://mybinder.org/badge_logo.svg)](…)"
    url = urllib.parse.urlsplit(badges[0][1])
    assert (url.scheme, url.netloc) == ("https", "mybinder.org")
    provider, owner, repo, ref = re.fullmatch(r"/v2/(gh)/([\w.-]+)/([\w.-]+)/([\w./-]+)", url.path).groups()
    query = urllib.parse.parse_qs(url.query, strict_parsing=True)
    assert list(query) == ["urlpath"]
    urlpath = query["urlpath"][0]
    assert urlpath == "lab/tree/notebooks/00_start_here.ipynb"
    assert (ROOT / urlpath.removeprefix("lab/tree/")).is_file()
    # the same repository as the notebooks' "Open in Colab" badges, where they exist
    colab = set()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        colab |= set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+)/([\w.-]+)/blob/([\w.-]+)/",
                                notebook.read_text()))
    assert colab <= {(owner, repo, ref)}, f"Colab badges point at {colab}, Binder at {(owner, repo, ref)}"


# ----------------------------------------------------------------------------------------- make
def _dry_make(target: str, tmp_path: Path) -> str:
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-n", "-C", str(ROOT), target, f"VENV={venv}"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_lab_installs_the_lab_extra_and_make_test_the_dev_extra(tmp_path):
    assert re.search(r"pip install .*-e \"\.\[lab\]\"", _dry_make("lab", tmp_path))
    assert re.search(r"pip install .*-e \"\.\[dev\]\"", _dry_make("test", tmp_path))


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
