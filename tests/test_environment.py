"""environment.yml (conda) pins the same versions as requirements.txt (pip)."""

from __future__ import annotations

import re

import yaml

from autograder.course import REPO_ROOT


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[normalize(name)] = version
    return pins


def conda_pins() -> dict[str, str]:
    spec = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pins = {}
    for entry in spec["dependencies"]:
        if isinstance(entry, str) and "=" in entry:
            name, version = entry.split("=", 1)
            pins[normalize(name)] = version
    return pins


def test_every_requirement_pinned_exactly():
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line.strip()), line


def test_conda_pins_match_pip():
    pip = pip_pins()
    for name, version in conda_pins().items():
        if name == "python":
            continue
        assert name in pip, f"environment.yml pins {name}, which requirements.txt lacks"
        assert pip[name] == version, f"{name}: environment.yml has {version}, requirements.txt has {pip[name]}"


def test_conda_pins_core_packages():
    for name in ("nbgrader", "jupyterlab", "notebook", "ipywidgets", "matplotlib", "numpy", "pytest"):
        assert name in conda_pins(), f"environment.yml does not pin {name}"


def test_conda_installs_pip_lock():
    spec = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_sections = [entry["pip"] for entry in spec["dependencies"] if isinstance(entry, dict)]
    assert pip_sections == [["-r requirements.txt"]]
