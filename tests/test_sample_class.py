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

from autograder.course import COURSE_DIR, REPO_ROOT, grade_cells
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


@pytest.fixture(scope="module")
def graded_serially(tmp_path_factory):
    """The sample class graded by one worker; the fixture graded uses one per core."""
    report = tmp_path_factory.mktemp("sample_class_serial") / "report"
    command = [sys.executable, "-m", "autograder", "grade", str(SAMPLE_CLASS / "submitted"), "--report",
               str(report), *DEMO_LIMITS, "--workers", "1"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    return result, report


def test_parallel_grades_equal_serial(graded, graded_serially):
    (parallel, parallel_report), (serial, serial_report) = graded, graded_serially
    assert serial.returncode == 0, serial.stderr[-3000:]
    assert (parallel_report / "grades.csv").read_text() == (serial_report / "grades.csv").read_text()
    assert parallel.stdout.split("\nGrades:")[0] == serial.stdout.split("\nGrades:")[0]


def test_parallel_export_equals_serial(graded, graded_serially):
    exports = [sorted((report / "nbgrader_export.csv").read_text().splitlines())
               for _, report in (graded, graded_serially)]
    assert exports[0] == exports[1]


def test_no_progress_bar_without_terminal(graded):
    result, _ = graded
    assert "notebook/s" not in result.stderr
    assert "Finished ada_complete / cnn_rnn / conv_pool" in result.stderr


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


# ---------------------------------------------------------------------------------------------------
# The instructor report and the LMS export


def test_lms_csv_totals_match_grades(graded):
    _, report = graded
    points: dict[str, dict[str, float]] = {}
    maximum: dict[str, float] = {}
    review: dict[str, list[str]] = {}
    for row in csv.DictReader(io.StringIO((report / "grades.csv").read_text())):
        name = f"{row['assignment']}/{row['notebook']}"
        points.setdefault(row["student"], {})[name] = float(row["points"])
        maximum[row["student"]] = maximum.get(row["student"], 0.0) + float(row["max_points"])
        if row["status"] != "graded":
            review.setdefault(row["student"], []).append(f"{name} failed")
        elif row["flag"]:
            review.setdefault(row["student"], []).append(f"{name} flagged")
    lms = list(csv.DictReader(io.StringIO((report / "lms_grades.csv").read_text())))
    assert [row["student"] for row in lms] == sorted(points)
    for row in lms:
        notebooks = points[row["student"]]
        assert set(row) == {"student", "total", "max_total", "needs_review", *notebooks}
        for column, value in notebooks.items():
            assert float(row[column]) == value, (row["student"], column)
        assert float(row["total"]) == sum(notebooks.values()), row["student"]
        assert float(row["max_total"]) == maximum[row["student"]], row["student"]
        assert row["needs_review"] == "; ".join(review.get(row["student"], [])), row["student"]


def test_lms_csv_marks_failed_notebook(graded):
    _, report = graded
    lms = {row["student"]: row for row in csv.DictReader(io.StringIO((report / "lms_grades.csv").read_text()))}
    assert lms["kim_invalid_json"]["needs_review"] == "cnn_rnn/conv_pool failed"
    assert lms["ada_complete"]["needs_review"] == ""


def test_pass_rates_follow_expected_table(graded):
    _, report = graded
    passed, graded_count = {}, {}
    for expectation in read_expectations(EXPECTED):
        autograded = (report / "nbgrader" / "autograded" / expectation.student / expectation.assignment
                      / f"{expectation.notebook}.ipynb")
        if not autograded.exists():  # not valid JSON, so not in the gradebook
            continue
        failing = expectation.failing_ids()
        for cell in grade_cells(SAMPLE_CLASS.parent / "source" / expectation.assignment
                                / f"{expectation.notebook}.ipynb"):
            key = (expectation.notebook, cell.grade_id)
            graded_count[key] = graded_count.get(key, 0) + 1
            passed[key] = passed.get(key, 0) + (cell.grade_id not in failing)
    rows = list(csv.DictReader(io.StringIO((report / "report" / "test_cells.csv").read_text())))
    assert {(row["notebook"], row["test_cell"]): (int(row["passed"]), int(row["graded"])) for row in rows} == \
        {key: (passed[key], graded_count[key]) for key in passed}


def test_report_names_frequent_mistakes(graded):
    _, report = graded
    rows = list(csv.DictReader(io.StringIO((report / "report" / "mistakes.csv").read_text())))
    mistakes = {row["likely_mistake"]: int(row["notebooks"]) for row in rows}
    assert len(mistakes) >= 3, mistakes
    assert mistakes["The output size is off by one: H_out = (H + 2*padding - kernel_size) // stride + 1, "
                    "and likewise W_out"] >= 1
    counts = [int(row["notebooks"]) for row in rows]
    assert counts == sorted(counts, reverse=True)


def test_report_page_works_offline(graded):
    _, report = graded
    page = (report / "report" / "index.html").read_text()
    assert "http://" not in page
    assert "https://" not in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == 3
    for name in images:
        assert (report / "report" / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n"), name
    assert "kim_invalid_json / conv_pool" in page
    assert "mean total" in page
    assert " of 67 points" in page
    assert "a notebook that is missing or could not be\nread is left out" in page


# ---------------------------------------------------------------------------------------------------
# A shared PostgreSQL gradebook: the same grades as the SQLite file


@pytest.fixture(scope="module")
def graded_postgres(tmp_path_factory, postgres_server):
    """The sample class graded into a new PostgreSQL database, with one worker per core."""
    db_url = postgres_server.create_database("sample_class")
    report = tmp_path_factory.mktemp("sample_class_postgres") / "report"
    command = [sys.executable, "-m", "autograder", "grade", str(SAMPLE_CLASS / "submitted"), "--report",
               str(report), *DEMO_LIMITS, "--db-url", db_url]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    return result, report, db_url


def test_postgres_grades_equal_sqlite(graded, graded_postgres):
    (_, sqlite_report), (result, postgres_report, _) = graded, graded_postgres
    assert result.returncode == 0, result.stderr[-3000:]
    assert (postgres_report / "grades.csv").read_text() == (sqlite_report / "grades.csv").read_text()
    assert (postgres_report / "lms_grades.csv").read_text() == (sqlite_report / "lms_grades.csv").read_text()


def test_postgres_export_equals_sqlite(graded, graded_postgres):
    (_, sqlite_report), (_, postgres_report, _) = graded, graded_postgres
    exports = [sorted((report / "nbgrader_export.csv").read_text().splitlines())
               for report in (sqlite_report, postgres_report)]
    assert exports[0] == exports[1]


def test_postgres_gradebook_holds_scores(graded_postgres):
    from autograder.gradebook import open_gradebook

    _, report, db_url = graded_postgres
    assert not (report / "nbgrader" / "gradebook.db").exists(), "the run wrote a SQLite gradebook as well"
    rows = list(csv.DictReader(io.StringIO((report / "grades.csv").read_text())))
    checked = 0
    with open_gradebook(db_url) as gradebook:
        for row in rows:
            if row["status"] != "graded":
                continue
            notebook = gradebook.find_submission_notebook(row["notebook"], row["assignment"], row["student"])
            assert float(notebook.score) == float(row["points"]), (row["student"], row["notebook"])
            checked += 1
    assert checked == sum(expectation.status == "graded" for expectation in read_expectations(EXPECTED))
