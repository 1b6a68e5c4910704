"""The grading pipeline on the probe course: the holes of stock nbgrader 0.9.6 stay closed."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.course import REPO_ROOT
from autograder.report import read_grades_csv
from probe_class import ASSIGNMENT, CORRECT, PROBE_COURSE, make_release, write_submission

LOOP_IGNORING_INTERRUPT = (
    "import time\n"
    "def add(a, b):\n    return a + b\n"
    "while True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass\n"
)


def grade(submissions: Path, report: Path, *extra: str, recheck: str = "off") -> subprocess.CompletedProcess:
    """Run the grading command line on the probe course.

    The probe's hidden test is a plain assert, which the trusted re-check cannot run, so it is off
    unless a test turns it on.
    """
    command = [sys.executable, "-m", "autograder", "grade", str(submissions), "--report", str(report),
               "--course", str(PROBE_COURSE), "--cell-timeout", "5", "--notebook-timeout", "30",
               "--trusted-recheck", recheck, *extra]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def rows_by_student(report: Path) -> dict[str, dict[str, str]]:
    return {row["student"]: row for row in read_grades_csv(report / "grades.csv")}


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return make_release(tmp_path_factory.mktemp("release"))


@pytest.fixture(scope="module")
def broken_class(release, tmp_path_factory):
    """Grade a class where one kernel dies, one loop ignores interrupts and one file is not JSON."""
    root = tmp_path_factory.mktemp("broken_class")
    submissions = root / "submitted"
    write_submission(release, submissions, "alice_correct", CORRECT)
    write_submission(release, submissions, "bob_kernel_dies", {**CORRECT, "mul_answer": "import os\nos._exit(0)"})
    write_submission(release, submissions, "carol_stuck_loop", {**CORRECT, "add_answer": LOOP_IGNORING_INTERRUPT})
    bad = submissions / "dave_invalid_json" / ASSIGNMENT
    bad.mkdir(parents=True)
    (bad / "probe.ipynb").write_text('{"cells": [')
    write_submission(release, submissions, "erin_untouched", {})
    before = tree_digest(submissions)
    result = grade(submissions, root / "report")
    return result, root / "report", before, tree_digest(submissions)


def test_broken_class_exit_code_zero(broken_class):
    result, _, _, _ = broken_class
    assert result.returncode == 0, result.stderr


def test_correct_student_unaffected_by_others(broken_class):
    _, report, _, _ = broken_class
    row = rows_by_student(report)["alice_correct"]
    assert (row["points"], row["max_points"], row["status"]) == ("6", "6", "graded")


def test_dead_kernel_keeps_earlier_points(broken_class):
    _, report, _, _ = broken_class
    row = rows_by_student(report)["bob_kernel_dies"]
    # add_visible (1) and add_hidden (2) ran before the kernel died; mul_visible (3) did not.
    assert row["points"] == "3"
    assert row["status"] == "failed"
    assert "kernel died" in row["reason"]
    assert "mul_answer" in row["reason"]


def test_stuck_loop_stops_notebook(broken_class):
    _, report, _, _ = broken_class
    row = rows_by_student(report)["carol_stuck_loop"]
    assert row["points"] == "0"
    assert row["status"] == "failed"
    assert "ignored the interrupt" in row["reason"]


def test_invalid_json_scores_zero_with_reason(broken_class):
    _, report, _, _ = broken_class
    row = rows_by_student(report)["dave_invalid_json"]
    assert (row["points"], row["status"]) == ("0", "failed")
    assert "not valid JSON (line 1, column 12" in row["reason"]


def test_untouched_release_scores_zero(broken_class):
    _, report, _, _ = broken_class
    row = rows_by_student(report)["erin_untouched"]
    assert (row["points"], row["status"]) == ("0", "graded")


def test_summary_lists_each_failure(broken_class):
    result, _, _, _ = broken_class
    assert "3 notebook(s) could not be graded in full" in result.stdout
    for student in ("bob_kernel_dies", "carol_stuck_loop", "dave_invalid_json"):
        assert f"{student} / probe:" in result.stdout


def test_submissions_folder_unchanged(broken_class):
    _, _, before, after = broken_class
    assert before == after


def test_feedback_hides_hidden_tests(broken_class):
    _, report, _, _ = broken_class
    page = (report / "feedback" / "alice_correct" / ASSIGNMENT / "probe.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in page
    assert "add(2, 2)" not in page
    assert "hidden tests of this cell are not shown" in page


def test_feedback_shows_hidden_failure_message(release, tmp_path):
    submissions = tmp_path / "submitted"
    write_submission(release, submissions, "frank", {**CORRECT, "add_answer": "def add(a, b):\n    return 3"})
    result = grade(submissions, tmp_path / "report")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "report" / "feedback" / "frank" / ASSIGNMENT / "probe.html").read_text()
    assert "add(2, 2) should be 4" in page  # the assertion message written for students
    assert "assert add(2, 2) == 4" not in page  # the hidden test's source
    assert "Traceback (most recent call last)" not in page


def test_resubmission_without_test_cell_regraded(release, tmp_path):
    submissions = tmp_path / "submitted"
    report = tmp_path / "report"
    write_submission(release, submissions, "gina", CORRECT)
    assert grade(submissions, report).returncode == 0
    assert rows_by_student(report)["gina"]["points"] == "6"

    # The resubmission breaks add() and deletes both of its tests; stock nbgrader keeps 6 points.
    write_submission(release, submissions, "gina", {**CORRECT, "add_answer": "def add(a, b):\n    return 0"},
                     deleted=("add_visible", "add_hidden"))
    result = grade(submissions, report)
    assert result.returncode == 0, result.stderr
    row = rows_by_student(report)["gina"]
    assert row["points"] == "3"
    assert "put back and graded: add_visible, add_hidden" in row["reason"]


def test_notebook_time_budget_skips_later_tests(release, tmp_path):
    submissions = tmp_path / "submitted"
    # Each answer cell sleeps 4 s: the second one starts after the 6 s budget is nearly spent.
    slow = {grade_id: f"import time\ntime.sleep(4)\n{source}" for grade_id, source in CORRECT.items()}
    write_submission(release, submissions, "hugo", slow)
    result = grade(submissions, tmp_path / "report", "--notebook-timeout", "6")
    assert result.returncode == 0, result.stderr
    row = rows_by_student(tmp_path / "report")["hugo"]
    assert row["status"] == "failed"
    assert row["points"] == "3"  # the add tests passed; mul_visible never ran
    assert "6 s" in row["reason"]


def test_invalid_notebook_gets_failure_page(broken_class):
    _, report, _, _ = broken_class
    page = (report / "feedback" / "dave_invalid_json" / ASSIGNMENT / "probe.html").read_text()
    assert "could not be graded" in page
    assert "not valid JSON" in page


def test_json_without_cells_rejected(release, tmp_path):
    submissions = tmp_path / "submitted"
    write_submission(release, submissions, "ivan", CORRECT)
    (submissions / "ivan" / ASSIGNMENT / "probe.ipynb").write_text("{}")
    result = grade(submissions, tmp_path / "report")
    row = rows_by_student(tmp_path / "report")["ivan"]
    assert result.returncode == 0, result.stderr
    assert row["reason"] == "the file is JSON but not a Jupyter notebook (it has no list of cells)"


def test_report_inside_submissions_rejected(release, tmp_path):
    write_submission(release, tmp_path, "jane", CORRECT)
    result = grade(tmp_path, tmp_path / "report")
    assert result.returncode == 2
    assert "lies inside the submissions folder" in result.stderr
    assert not (tmp_path / "report").exists()


def test_parent_folder_suggests_child(release, tmp_path):
    write_submission(release, tmp_path / "submitted", "kate", CORRECT)
    result = grade(tmp_path, tmp_path.parent / f"{tmp_path.name}-report")
    assert result.returncode == 2
    assert f"pass '{tmp_path / 'submitted'}'" in result.stderr


def test_student_folder_suggests_parent(release, tmp_path):
    write_submission(release, tmp_path, "liam", CORRECT)
    result = grade(tmp_path / "liam", tmp_path.parent / f"{tmp_path.name}-report")
    assert result.returncode == 2
    assert "looks like one student's folder" in result.stderr


def test_input_problems_named_in_grades(release, tmp_path):
    submissions = tmp_path / "submitted"
    write_submission(release, submissions, "mona", CORRECT)
    (submissions / "mona" / ASSIGNMENT / "notes.ipynb").write_text("{}")
    (submissions / "noah" / "Probe").mkdir(parents=True)
    result = grade(submissions, tmp_path / "report")
    rows = rows_by_student(tmp_path / "report")
    assert result.returncode == 2
    assert "notes.ipynb" in result.stderr
    assert rows["mona"]["points"] == "6"
    assert "notebook 'probe/notes.ipynb' is not part of assignment 'probe'" in rows["mona"]["reason"]
    assert rows["noah"]["status"] == "failed"
    assert "folder 'Probe' is not an assignment" in rows["noah"]["reason"]


def test_reused_report_keeps_only_this_run(release, tmp_path):
    first = tmp_path / "first"
    write_submission(release, first, "olga", CORRECT)
    write_submission(release, first, "paul", CORRECT)
    report = tmp_path / "report"
    assert grade(first, report).returncode == 0
    second = tmp_path / "second"
    write_submission(release, second, "olga", CORRECT)
    assert grade(second, report).returncode == 0
    assert sorted(path.name for path in (report / "feedback").iterdir()) == ["olga"]
    assert "paul" not in (report / "nbgrader_export.csv").read_text()
    assert list(rows_by_student(report)) == ["olga"]


def test_foreign_nbgrader_folder_left_alone(release, tmp_path):
    write_submission(release, tmp_path / "submitted", "quinn", CORRECT)
    (tmp_path / "report" / "nbgrader").mkdir(parents=True)
    (tmp_path / "report" / "nbgrader" / "keep.txt").write_text("instructor's file")
    result = grade(tmp_path / "submitted", tmp_path / "report")
    assert result.returncode == 1
    assert "was not made by this grader" in result.stderr
    assert (tmp_path / "report" / "nbgrader" / "keep.txt").exists()


def test_recheck_rejects_plain_assert_hidden_test(release, tmp_path):
    write_submission(release, tmp_path / "submitted", "ann", CORRECT)
    result = grade(tmp_path / "submitted", tmp_path / "report", recheck="on")
    assert result.returncode == 1, result.stderr
    assert "the trusted re-check cannot grade probe.ipynb" in result.stderr
    assert "assert add(2, 2) == 4" in result.stderr
    assert "--trusted-recheck off" in result.stderr


def test_invalid_sandbox_mode_names_choices(release, tmp_path):
    write_submission(release, tmp_path / "submitted", "ann", CORRECT)
    result = grade(tmp_path / "submitted", tmp_path / "report", "--sandbox", "strict")
    assert result.returncode == 2
    assert "invalid choice: 'strict'" in result.stderr
    assert "'auto', 'require', 'off'" in result.stderr


def test_sandbox_off_warns_at_start_and_end(release, tmp_path):
    write_submission(release, tmp_path / "submitted", "ann", CORRECT)
    result = grade(tmp_path / "submitted", tmp_path / "report", "--sandbox", "off")
    assert result.returncode == 0, result.stderr
    warning = "warning: the sandbox is off (--sandbox off)"
    assert warning in result.stderr
    assert warning in result.stdout
    assert "Pass --sandbox auto or require to isolate student code." in result.stdout
    assert rows_by_student(tmp_path / "report")["ann"]["points"] == "6"


# ---------------------------------------------------------------------------------------------------
# The gradebook on PostgreSQL (--db-url)


def gradebook_score(db_url: str, student: str) -> float | None:
    """Return the score of a student's probe notebook in the gradebook, or None when it has no entry."""
    from nbgrader.api import MissingEntry

    from autograder.gradebook import open_gradebook

    with open_gradebook(db_url) as gradebook:
        try:
            return float(gradebook.find_submission_notebook("probe", ASSIGNMENT, student).score)
        except MissingEntry:
            return None


def test_postgres_regrade_drops_earlier_score(release, tmp_path, postgres_server):
    db_url = postgres_server.create_database("regrade")
    write_submission(release, tmp_path / "first", "rosa", CORRECT)
    first = grade(tmp_path / "first", tmp_path / "report", "--db-url", db_url)
    assert first.returncode == 0, first.stderr
    assert gradebook_score(db_url, "rosa") == 6.0

    broken = tmp_path / "second" / "rosa" / ASSIGNMENT
    broken.mkdir(parents=True)
    (broken / "probe.ipynb").write_text('{"cells": [')
    second = grade(tmp_path / "second", tmp_path / "report", "--db-url", db_url)
    assert second.returncode == 0, second.stderr
    assert rows_by_student(tmp_path / "report")["rosa"]["status"] == "failed"
    assert gradebook_score(db_url, "rosa") is None, "the score of the first run survived in the gradebook"


def test_two_graders_share_postgres(release, tmp_path, postgres_server):
    db_url = postgres_server.create_database("two_graders")
    write_submission(release, tmp_path / "first", "sam", CORRECT)
    write_submission(release, tmp_path / "first", "tess", {**CORRECT, "mul_answer": "def mul(a, b):\n    return 0"})
    write_submission(release, tmp_path / "second", "uma", {"add_answer": CORRECT["add_answer"]})
    commands = [[sys.executable, "-m", "autograder", "grade", str(tmp_path / name), "--report",
                 str(tmp_path / f"report_{name}"), "--course", str(PROBE_COURSE), "--trusted-recheck", "off",
                 "--db-url", db_url] for name in ("first", "second")]
    runs = [subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for command in commands]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (_, stderr) in zip(runs, outputs):
        assert run.returncode == 0, stderr
    assert {student: gradebook_score(db_url, student) for student in ("sam", "tess", "uma")} == \
        {"sam": 6.0, "tess": 3.0, "uma": 3.0}
    export = (tmp_path / "report_second" / "nbgrader_export.csv").read_text()
    assert "sam" in export, "the export lists the whole shared gradebook"
    assert "uma" in export
    assert list(rows_by_student(tmp_path / "report_second")) == ["uma"]


@pytest.mark.parametrize("db_url, message", [
    ("mysql://grader@127.0.0.1/week04", "unsupported database 'mysql'"),
    ("postgresql+psycopg2://grader@127.0.0.1/week04", "unsupported PostgreSQL driver 'psycopg2'"),
    ("not a url", "invalid database URL 'not a url'"),
    ("postgresql://grader:secret@127.0.0.1:1/week04", "cannot connect to the gradebook database "
                                                      "postgresql+psycopg://grader:***@127.0.0.1:1/week04"),
])
def test_bad_db_url_rejected(release, tmp_path, db_url, message):
    write_submission(release, tmp_path / "submitted", "ann", CORRECT)
    result = grade(tmp_path / "submitted", tmp_path / "report", "--db-url", db_url)
    assert result.returncode == 2
    assert message in result.stderr
    assert "secret" not in result.stderr
    assert not (tmp_path / "report" / "grades.csv").exists()


def test_failed_notebook_keeps_other_scores(tmp_path):
    """nbgrader rejects one notebook of a student; the student's other notebook keeps its score."""
    import shutil

    import nbformat

    from autograder.course import COURSE_DIR

    student = tmp_path / "submitted" / "zed_bad_metadata"
    shutil.copytree(COURSE_DIR / "sample_class" / "submitted" / "ada_complete", student)
    path = student / "cnn_rnn" / "conv_pool.ipynb"
    notebook = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": "extra_cell", "points": -3, "schema_version": 3,
                                 "solution": False, "locked": False, "task": False}
    notebook.cells.insert(5, cell)
    nbformat.write(notebook, path)

    command = [sys.executable, "-m", "autograder", "grade", str(tmp_path / "submitted"), "--report",
               str(tmp_path / "report")]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    rows = {row["notebook"]: row for row in read_grades_csv(tmp_path / "report" / "grades.csv")}
    assert (rows["rnn_lstm"]["points"], rows["rnn_lstm"]["status"]) == ("33", "graded")
    assert (rows["conv_pool"]["points"], rows["conv_pool"]["status"]) == ("0", "failed")
    assert "ValidationError: -3 is less than the minimum of 0" in rows["conv_pool"]["reason"]
    export = (tmp_path / "report" / "nbgrader_export.csv").read_text()
    assert "zed_bad_metadata" in export
