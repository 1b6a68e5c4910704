"""Submissions of the one-notebook probe course, built from its release for pipeline tests.

The probe notebook has two answer cells (``add_answer``, ``mul_answer``) and three test cells:
``add_visible`` (1 point), ``add_hidden`` (2 points, hidden) and ``mul_visible`` (3 points).
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import nbformat

from autograder.release import generate_release

PROBE_COURSE = Path(__file__).parent / "fixtures" / "probe_course"
ASSIGNMENT = "probe"
CORRECT = {"add_answer": "def add(a, b):\n    return a + b", "mul_answer": "def mul(a, b):\n    return a * b"}


def make_release(tmp_dir: Path) -> nbformat.NotebookNode:
    """Generate the probe release in a copy of the probe course and return its notebook."""
    course = tmp_dir / "probe_course"
    shutil.copytree(PROBE_COURSE, course)
    result = generate_release(course, ASSIGNMENT)
    assert result.returncode == 0, result.stderr
    return nbformat.read(os.fspath(course / "release" / ASSIGNMENT / "probe.ipynb"), as_version=4)


def write_submission(release: nbformat.NotebookNode, submissions: Path, student: str,
                     answers: dict[str, str], deleted: tuple[str, ...] = ()) -> Path:
    """Write one student's probe notebook: ``answers`` replace answer cells, ``deleted`` cells are dropped."""
    notebook = copy.deepcopy(release)
    kept = []
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in deleted:
            continue
        if grade_id in answers:
            cell.source = answers[grade_id]
        kept.append(cell)
    notebook.cells = kept
    folder = submissions / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "probe.ipynb"
    nbformat.write(notebook, os.fspath(path))
    return path
