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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ungraded_heavy_cells_skip_at_grading(path):
    # nbgrader sets NBGRADER_EXECUTION during validate and autograde; widgets and training must not run then.
    notebook = nbformat.read(os.fspath(path), as_version=4)
    heavy = [cell for cell in notebook.cells if cell.cell_type == "code"
             and ("coursekit.widgets" in cell.source or "display(" in cell.source or "train(" in cell.source)]
    assert heavy, f"{path.name} has no widget or training cells"
    for cell in heavy:
        assert "nbgrader" not in cell.metadata, f"{path.name}: widget and training cells must not be graded"
        assert 'os.environ.get("NBGRADER_EXECUTION")' in cell.source or "SKIP_TRAINING" in cell.source, \
            f"{path.name}: this cell runs at grading time:\n{cell.source[:200]}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_widget_sections_present(path):
    notebook = nbformat.read(os.fspath(path), as_version=4)
    sources = "\n".join(cell.source for cell in notebook.cells)
    expected = {"conv_pool.ipynb": ["FeatureMapExplorer(Conv2D, MaxPool2D)", "ReceptiveFieldExplorer(Conv2D)"],
                "rnn_lstm.ipynb": ["GateExplorer(LSTM, RNNCell)"]}[path.name]
    for call in expected:
        assert call in sources, f"{path.name} does not display {call}"
