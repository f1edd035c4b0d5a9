"""The two ways to install vglab (pip with pyproject.toml, conda with environment.yml) name the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _normalise(requirement: str) -> tuple[str, str]:
    """'scikit-learn>=1.4' → ('scikit-learn', '>=1.4'); names compared case- and separator-insensitively."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*?)\s*", requirement)
    assert match, f"cannot parse requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower(), match.group(3).replace(" ", "")


def pyproject_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {_normalise(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}


def conda_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = {_normalise(d) for d in env["dependencies"] if isinstance(d, str)}
    return {(name, spec) for name, spec in names if name not in {"python", "pip"}}


def test_environment_yml_and_pyproject_name_the_same_dependencies():
    assert conda_requirements() == pyproject_requirements()


def test_environment_installs_vglab_itself_and_the_core_dependencies_are_there():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section
    names = {name for name, _ in pyproject_requirements()}
    assert {"jax", "jaxlib", "ipywidgets", "matplotlib", "jupyterlab", "nbval", "ipympl", "nbgrader"} <= names


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make lab" in readme
    commands = [line for line in ci.splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]
