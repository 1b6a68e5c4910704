"""Paths of the course repository and what its source notebooks contain."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COURSE_DIR = REPO_ROOT / "course"
SOURCE_DIR = COURSE_DIR / "source"
RELEASE_DIR = COURSE_DIR / "release"


@dataclass(frozen=True)
class GradeCell:
    """One autograded test cell of a source notebook."""

    grade_id: str
    points: float
    hidden: bool


def list_assignments(source_dir: Path = SOURCE_DIR) -> list[str]:
    """Return the names of the assignments under ``source_dir``, sorted."""
    return sorted(path.name for path in source_dir.iterdir() if path.is_dir() and not path.name.startswith("."))


def list_notebooks(assignment: str, source_dir: Path = SOURCE_DIR) -> list[str]:
    """Return the notebook names (without ``.ipynb``) of one assignment, sorted."""
    folder = source_dir / assignment
    return sorted(path.stem for path in folder.glob("*.ipynb"))


def grade_cells(notebook_path: Path) -> list[GradeCell]:
    """Return the autograded test cells of a source notebook in notebook order."""
    # Imported here because nbformat takes about 1 s to import, and the sandboxed kernel's launcher
    # imports this module (through autograder.sandbox) before every kernel starts.
    import nbformat

    notebook = nbformat.read(os.fspath(notebook_path), as_version=4)
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cells.append(GradeCell(meta["grade_id"], float(meta.get("points", 0)), "BEGIN HIDDEN TESTS" in cell.source))
    return cells


def max_points(notebook_path: Path) -> float:
    """Return the total points of a source notebook."""
    return sum(cell.points for cell in grade_cells(notebook_path))
