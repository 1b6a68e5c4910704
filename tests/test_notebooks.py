"""Facts the source notebooks state that must match the code: tolerances and points."""

from __future__ import annotations

import os
import re

import nbformat
import pytest

from autograder.course import REPO_ROOT, SOURCE_DIR, grade_cells
from autograder.tolerances import TOLERANCES

NOTEBOOKS = sorted(SOURCE_DIR.glob("*/*.ipynb"))


def markdown(path) -> str:
    notebook = nbformat.read(os.fspath(path), as_version=4)
    return "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")


def short_exponent(value: float) -> str:
    """Format 1e-08 as the notebooks write it, 1e-8."""
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{value:.0e}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
@pytest.mark.parametrize("key", sorted(TOLERANCES), ids=lambda key: "-".join(key))
def test_tolerance_table_matches_checks(path, key):
    dtype, direction = key
    entry = TOLERANCES[key]
    row = f"| {dtype} | {direction} | {short_exponent(entry.value)} | {entry.reason} |"
    assert row in markdown(path), f"{path.name} lacks the tolerance row {row!r}; copy the table from autograder/tolerances.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_readme_points_match_notebook(path):
    total = sum(cell.points for cell in grade_cells(path))
    readme = (REPO_ROOT / "README.md").read_text()
    assert re.search(rf"^\| `{path.name}` \|.*\| {total:g} \|$", readme, re.M), \
        f"README's student table must give {path.name} {total:g} points"
