"""The committed student release: generated, complete, and free of answers and hidden tests."""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course import COURSE_DIR, RELEASE_DIR, REPO_ROOT, SOURCE_DIR, list_assignments
from autograder.release import generate_release, nbgrader_env

ASSIGNMENTS = list_assignments()
SOURCE_NOTEBOOKS = sorted(SOURCE_DIR.glob("*/*.ipynb"))
RELEASE_NOTEBOOKS = sorted(RELEASE_DIR.glob("*/*.ipynb"))
SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(os.fspath(path), as_version=4)


def region_lines(pattern: re.Pattern, notebook_path: Path) -> set[str]:
    """Return the distinctive stripped lines inside the marked regions of a notebook's cells."""
    lines = set()
    for cell in read(notebook_path).cells:
        for region in pattern.findall(cell.source):
            lines.update(line.strip() for line in region.splitlines() if len(line.strip()) >= 12)
    return lines


def tracked_files(folder: Path) -> list[Path]:
    """Return the files under ``folder`` that git would track (no caches), relative to it."""
    return sorted(path.relative_to(folder) for path in folder.rglob("*")
                  if path.is_file() and not {"__pycache__", ".ipynb_checkpoints"} & set(path.parts))


def test_every_source_notebook_released():
    assert [path.relative_to(SOURCE_DIR) for path in SOURCE_NOTEBOOKS] == \
        [path.relative_to(RELEASE_DIR) for path in RELEASE_NOTEBOOKS]
    assert SOURCE_NOTEBOOKS, "no source notebooks found"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_equals_generated(assignment, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(SOURCE_DIR, course / "source")
    shutil.copy(COURSE_DIR / "nbgrader_config.py", course)
    result = generate_release(course, assignment)
    assert result.returncode == 0, result.stderr

    generated = course / "release" / assignment
    committed = RELEASE_DIR / assignment
    generated_files = tracked_files(generated)
    committed_files = tracked_files(committed)
    assert committed_files == generated_files, "run `make release` and commit course/release/"
    for name in generated_files:
        assert filecmp.cmp(generated / name, committed / name, shallow=False), \
            f"{name} differs from what `make release` generates: run it and commit course/release/"


@pytest.mark.parametrize("path", RELEASE_NOTEBOOKS, ids=lambda p: p.name)
def test_release_has_no_markers(path):
    text = path.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                   "autograder", "solutions"):
        assert marker not in text, f"{path.name} contains {marker!r}"


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.name)
def test_release_has_no_model_answers(path):
    released = (RELEASE_DIR / path.relative_to(SOURCE_DIR)).read_text()
    released_lines = {line.strip() for cell in read(RELEASE_DIR / path.relative_to(SOURCE_DIR)).cells
                      for line in cell.source.splitlines()}
    answers = region_lines(SOLUTION_REGION, path)
    assert answers, f"{path.name} has no model answers to look for"
    leaked = sorted(line for line in answers if line in released_lines)
    assert not leaked, f"model answer lines in the release of {path.name}: {leaked}"
    hidden = region_lines(HIDDEN_REGION, path)
    assert hidden, f"{path.name} has no hidden tests to look for"
    assert not [line for line in hidden if line in released], f"hidden test lines in the release of {path.name}"


def test_release_contains_no_reference_files():
    references = {path.read_bytes() for path in (REPO_ROOT / "solutions").rglob("*.py")}
    reference_names = {path.name for path in (REPO_ROOT / "solutions").rglob("*.py")} - {"__init__.py"}
    for folder in (SOURCE_DIR, RELEASE_DIR):
        for path in folder.rglob("*"):
            if not path.is_file():
                continue
            assert path.read_bytes() not in references, f"{path} is a copy of a solutions/ file"
            assert path.name not in reference_names, f"{path} has the name of a solutions/ module"


@pytest.mark.parametrize("path", sorted(SOURCE_DIR.rglob("*.py")), ids=lambda p: p.name)
def test_released_code_imports_no_hidden_package(path):
    # nbgrader copies every file under source/<assignment>/ into the release, so these reach students.
    text = path.read_text()
    for hidden in ("solutions", "autograder"):
        assert f"import {hidden}" not in text, f"{path} imports {hidden}"
        assert f"from {hidden}" not in text, f"{path} imports from {hidden}"


def test_source_holds_only_notebooks_helpers_and_weights():
    allowed = {".ipynb", ".py", ".npz"}
    for path in SOURCE_DIR.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert path.suffix in allowed, f"unexpected file {path}: everything in source/ is released to students"


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS + RELEASE_NOTEBOOKS,
                         ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_notebook_committed_clean(path):
    notebook = read(path)
    assert "widgets" not in notebook.metadata, f"{path} carries widget state"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path} cell {index} has outputs"
            assert cell.execution_count is None, f"{path} cell {index} has an execution count"


def validate(paths: list[Path]) -> subprocess.CompletedProcess:
    env = nbgrader_env()
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "nbgrader", "validate", *map(str, paths)],
                          cwd=COURSE_DIR, env=env, capture_output=True, text=True, timeout=600)


def test_source_notebooks_validate():
    result = validate(SOURCE_NOTEBOOKS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Success! Your notebook passes all the tests.") == len(SOURCE_NOTEBOOKS), \
        result.stdout


def test_release_notebooks_fail_validation():
    result = validate(RELEASE_NOTEBOOKS)
    assert "Success!" not in result.stdout, result.stdout
    assert result.stdout.count("VALIDATION FAILED ON") == len(RELEASE_NOTEBOOKS), result.stdout
    assert "NotImplementedError" in result.stdout
