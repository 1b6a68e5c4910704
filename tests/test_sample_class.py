"""The sample class, graded as `make demo` grades it, gets exactly its expected scores."""

from __future__ import annotations

import csv
import re
import filecmp
import io
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.course import COURSE_DIR, REPO_ROOT
from autograder.expected import compare_with_expected, read_expectations

SAMPLE_CLASS = COURSE_DIR / "sample_class"
EXPECTED = SAMPLE_CLASS / "expected_scores.csv"
# The same limits as `make demo` (DEMO_LIMITS in the Makefile).
DEMO_LIMITS = ["--cell-timeout", "10", "--notebook-timeout", "120"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    report = tmp_path_factory.mktemp("sample_class") / "report"
    command = [sys.executable, "-m", "autograder", "grade", str(SAMPLE_CLASS / "submitted"), "--report",
               str(report), *DEMO_LIMITS]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    return result, report


def failing_cells(autograded: Path) -> set[str]:
    """Return the grade ids of the test cells with an error output in an autograded notebook."""
    notebook = nbformat.read(os.fspath(autograded), as_version=4)
    failing = set()
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and any(output.output_type == "error" for output in cell.get("outputs", [])):
            failing.add(meta["grade_id"])
    return failing


def test_makefile_demo_limits_match():
    assert f"DEMO_LIMITS := {' '.join(DEMO_LIMITS)}" in (REPO_ROOT / "Makefile").read_text()


def test_sample_class_is_generated(tmp_path):
    result = subprocess.run([sys.executable, str(SAMPLE_CLASS / "make_sample_class.py"), "--target",
                             str(tmp_path / "submitted")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    comparison = filecmp.dircmp(tmp_path / "submitted", SAMPLE_CLASS / "submitted")
    pending = [comparison]
    while pending:
        current = pending.pop()
        assert not current.left_only, f"missing from the committed sample class: {current.left_only}"
        assert not current.right_only, f"not generated any more: {current.right_only}"
        _, mismatch, errors = filecmp.cmpfiles(current.left, current.right, current.common_files, shallow=False)
        assert not mismatch, f"{mismatch} differ: run `make sample-class` and commit the result"
        assert not errors, f"{errors} could not be compared"
        pending.extend(current.subdirs.values())


def test_sample_class_has_enough_students():
    students = {expectation.student for expectation in read_expectations(EXPECTED)}
    assert len(students) >= 6
    assert students == {path.name for path in (SAMPLE_CLASS / "submitted").iterdir()}


def test_grading_exits_zero(graded):
    result, _ = graded
    assert result.returncode == 0, result.stderr[-3000:]


def test_scores_match_expected(graded):
    _, report = graded
    out = io.StringIO()
    assert compare_with_expected(report / "grades.csv", EXPECTED, out), out.getvalue()


@pytest.mark.parametrize("expectation", read_expectations(EXPECTED), ids=lambda e: f"{e.student}-{e.notebook}")
def test_failing_cells_match_expected(graded, expectation):
    _, report = graded
    autograded = (report / "nbgrader" / "autograded" / expectation.student / expectation.assignment
                  / f"{expectation.notebook}.ipynb")
    if expectation.failing_cells == ("*",) and expectation.status == "failed":
        assert not autograded.exists(), "a notebook that cannot be read must not be autograded"
        return
    assert failing_cells(autograded) == expectation.failing_ids()


def test_score_table_printed(graded):
    result, _ = graded
    assert result.stdout.splitlines()[0].split() == ["student", "conv_pool", "rnn_lstm", "total"]
    assert re.search(r"^ada_complete +34/34 +33/33 +67/67$", result.stdout, re.M), result.stdout


def test_feedback_pages_hide_hidden_tests(graded):
    _, report = graded
    pages = sorted((report / "feedback").rglob("*.html"))
    assert len(pages) >= 2 * len({e.student for e in read_expectations(EXPECTED)}) - 1
    for page in pages:
        text = page.read_text()
        for secret in ("BEGIN HIDDEN TESTS", "from autograder", "check_conv2d_forward", "check_lstm_step"):
            assert secret not in text, f"{page} shows {secret!r}"


def test_failing_hidden_test_message_in_feedback(graded):
    _, report = graded
    page = (report / "feedback" / "leo_deleted_tests" / "cnn_rnn" / "conv_pool.html").read_text()
    assert "Conv2D.forward failed for configuration" in page
    assert "stride=2" in page


def test_nbgrader_export_written(graded):
    _, report = graded
    with (report / "nbgrader_export.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["student_id"] for row in rows} >= {"ada_complete", "ben_untouched"}
