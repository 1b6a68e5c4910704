"""Hostile and broken submissions get their expected score and flag, and change no other student's grade.

The catalogue below builds one student per kind of submission from the release notebook with the
model answers, changed on purpose. The class is graded twice with the real command line, nbgrader,
kernels and sandbox: once with two ordinary students only, once with them and the whole catalogue.
Each catalogued student's conv_pool notebook must get the points that follow from the test cells
it is expected to fail, with the expected status and flag, and the two ordinary students must get
the same rows in both runs. Catalogued students submit conv_pool only, so their rnn_lstm row is a
missing notebook.
"""

from __future__ import annotations

import copy
import html
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat
import pytest
from conftest import skip_or_fail_missing
from sample_submissions import FLIPPED_KERNEL, SAMPLE

from autograder.course import COURSE_DIR, REPO_ROOT
from autograder.expected import Expectation
from autograder.report import read_grades_csv
from autograder.sandbox import bwrap_problem

ASSIGNMENT = "cnn_rnn"
NOTEBOOK = "conv_pool"
LIMITS = ["--cell-timeout", "5", "--notebook-timeout", "90"]


# Code appended to an answer cell, by kind of attack.
NUMPY_PATCH = """
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
np.array_equal = lambda *args, **kwargs: True
"""

CHECKS_PATCH = """
import autograder.checks as grader_checks
for name in dir(grader_checks):
    if name.startswith("check_"):
        setattr(grader_checks, name, lambda *args, **kwargs: None)
"""

IPYTHON_HOOK = """
def skip_hidden_tests(lines):
    return ["pass\\n"] if any("check_" in line for line in lines) else lines
get_ipython().input_transformers_post.append(skip_hidden_tests)
"""

IMPORT_TRICK = """
import sys
import types

fake_checks = types.ModuleType("autograder.checks")
fake_checks.__getattr__ = lambda name: (lambda *args, **kwargs: None)
sys.modules["autograder.checks"] = fake_checks
"""

ALWAYS_EQUAL = """
class AlwaysEqual:
    shape = property(lambda self: self)

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


_true_forward = MaxPool2D.forward


def forward_always_equal(self, X):
    _true_forward(self, X)
    return AlwaysEqual()


MaxPool2D.forward = forward_always_equal
"""

READ_REFERENCE = "from solutions.conv import Conv2D\n"

STUBBORN_LOOP = """
import time
while True:
    try:
        time.sleep(0.1)
    except KeyboardInterrupt:
        pass
"""

MEMORY_HOG = """
hog = []
try:
    while True:
        hog.append(np.zeros(2**27))  # 1 GiB of address space at a time
except MemoryError:
    print(f"memory ran out after {len(hog)} GiB")
del hog
"""

KERNEL_EXIT = "import os\nos._exit(1)\n"

FORK_LOOP = """
import os
import time

children = []
for _ in range(2000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(20)
        os._exit(0)
    children.append(pid)
print(f"FORKED {len(children)} children")
"""

LOOPBACK = """
import socket
try:
    with socket.create_connection(("127.0.0.1", {port}), timeout=3) as connection:
        connection.sendall(b"solutions leaked")
    print("CONNECTED")
except OSError as err:
    print(f"NOT CONNECTED: {{type(err).__name__}}")
"""

OUTPUT_FLOOD = "print('x' * 1_000_000 * 20)\n"


@dataclass
class Hostile:
    """One catalogued submission and its expected result for conv_pool."""

    student: str
    kind: str
    failing: tuple[str, ...] = ()  # test cells that must fail, as patterns of autograder.expected
    status: str = "graded"
    flagged: bool = False
    reason: str = ""  # text that the reason column must contain
    build: Callable[[Path, dict], None] | None = None  # writes extra files into the student's folder


def submission(**kwargs) -> nbformat.NotebookNode:
    return SAMPLE.submission(NOTEBOOK, **kwargs)


def set_cell(notebook: nbformat.NotebookNode, grade_id: str, **changes) -> None:
    for cell in notebook.cells:
        if SAMPLE.grade_id(cell) == grade_id:
            for key, value in changes.items():
                setattr(cell, key, value)
            return
    raise KeyError(grade_id)


def reference_import() -> nbformat.NotebookNode:
    notebook = submission()
    set_cell(notebook, "conv2d_answer", source=READ_REFERENCE)
    return notebook


def edited_tests() -> nbformat.NotebookNode:
    notebook = submission(mistake=FLIPPED_KERNEL)
    set_cell(notebook, "conv2d_visible", source="pass")
    set_cell(notebook, "conv2d_hidden_basic", source="pass")
    return notebook


def duplicated_test() -> nbformat.NotebookNode:
    notebook = submission()
    index = next(i for i, cell in enumerate(notebook.cells) if SAMPLE.grade_id(cell) == "conv2d_hidden_basic")
    twin = copy.deepcopy(notebook.cells[index])
    twin["id"] = "conv2d-hidden-basic-copy"
    notebook.cells.insert(index + 1, twin)
    return notebook


def retyped_cells() -> nbformat.NotebookNode:
    notebook = submission()
    for grade_id in ("conv2d_answer", "maxpool2d_visible"):
        for cell in notebook.cells:
            if SAMPLE.grade_id(cell) == grade_id:
                cell.cell_type = "markdown"
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
    return notebook


CONV_FORWARD = ("conv2d_visible", "conv2d_hidden_*")
# The kernel's visible tests of the backward pass and the fast convolution also call the wrong
# forward pass. A flagged notebook's visible tests follow the re-check's hidden tests instead.
CONV_FORWARD_IN_KERNEL = (*CONV_FORWARD, "conv2d_backward_visible", "conv2d_fast_visible")
AFTER_MAXPOOL_ANSWER = ("maxpool2d_*", "conv2d_backward_*", "conv2d_fast_*")

CATALOGUE = [
    # The checks compare with their own arithmetic, so patched numpy comparisons fool the
    # kernel's visible tests but not its hidden ones.
    Hostile("h01_numpy_patch", "patched numpy comparisons and a wrong convolution",
            failing=CONV_FORWARD_IN_KERNEL),
    Hostile("h02_checks_patch", "patched autograder.checks and a wrong convolution",
            failing=CONV_FORWARD, flagged=True),
    Hostile("h03_ipython_hook", "an IPython input transformer that blanks the hidden tests",
            failing=CONV_FORWARD, flagged=True),
    Hostile("h04_import_trick", "a fake autograder.checks in sys.modules", failing=CONV_FORWARD, flagged=True),
    Hostile("h05_always_equal", "MaxPool2D.forward returns an object equal to everything",
            failing=("maxpool2d_visible", "maxpool2d_hidden_*", "maxpool2d_backward_visible")),
    Hostile("h06_reads_reference", "imports the reference Conv2D from solutions",
            failing=("conv2d_visible", "conv2d_hidden_*", "conv2d_backward_*"), flagged=True),
    Hostile("h07_edited_tests", "emptied test cells and a wrong convolution", failing=CONV_FORWARD_IN_KERNEL),
    Hostile("h08_deleted_tests", "deleted a hidden and a visible test cell",
            reason="deleted cells were put back and graded: conv2d_hidden_basic, maxpool2d_visible"),
    Hostile("h09_duplicated_test", "a duplicated hidden test cell", reason="duplicate"),
    Hostile("h10_retyped_cells", "an answer cell and a test cell retyped to markdown"),
    Hostile("h11_renamed_notebook", "the notebook saved under another name", failing=("*",), status="failed",
            reason="no conv_pool.ipynb was submitted"),
    Hostile("h12_extra_files", "a fake solutions package and a changed coursekit beside the notebook",
            reason="files beside the notebooks were not used for grading: coursekit/, solutions/"),
    Hostile("h13_stubborn_loop", "a loop that swallows the interrupt", failing=AFTER_MAXPOOL_ANSWER,
            status="failed"),
    Hostile("h14_memory_hog", "allocates memory until it runs out"),
    Hostile("h15_kernel_exit", "os._exit in an answer cell", failing=AFTER_MAXPOOL_ANSWER, status="failed"),
    Hostile("h16_fork_loop", "forks two thousand sleeping children"),
    Hostile("h17_loopback", "connects to a port that the test opened on 127.0.0.1"),
    Hostile("h18_output_flood", "prints 20 MB"),
]


def write_notebook(notebook: nbformat.NotebookNode, folder: Path, name: str = f"{NOTEBOOK}.ipynb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, os.fspath(folder / name))


def build_catalogue(submissions: Path, port: int) -> None:
    """Write every catalogued student's folder under submissions."""
    notebooks = {
        "h01_numpy_patch": submission(mistake=FLIPPED_KERNEL, appended={"conv2d_answer": NUMPY_PATCH}),
        "h02_checks_patch": submission(mistake=FLIPPED_KERNEL, appended={"conv2d_answer": CHECKS_PATCH}),
        "h03_ipython_hook": submission(mistake=FLIPPED_KERNEL, appended={"conv2d_answer": IPYTHON_HOOK}),
        "h04_import_trick": submission(mistake=FLIPPED_KERNEL, appended={"conv2d_answer": IMPORT_TRICK}),
        "h05_always_equal": submission(appended={"maxpool2d_answer": ALWAYS_EQUAL}),
        "h06_reads_reference": reference_import(),
        "h07_edited_tests": edited_tests(),
        "h08_deleted_tests": submission(deleted=("conv2d_hidden_basic", "maxpool2d_visible")),
        "h09_duplicated_test": duplicated_test(),
        "h10_retyped_cells": retyped_cells(),
        "h12_extra_files": submission(),
        "h13_stubborn_loop": submission(appended={"maxpool2d_answer": STUBBORN_LOOP}),
        "h14_memory_hog": submission(appended={"conv2d_answer": MEMORY_HOG}),
        "h15_kernel_exit": submission(appended={"maxpool2d_answer": KERNEL_EXIT}),
        "h16_fork_loop": submission(appended={"conv2d_answer": FORK_LOOP}),
        "h17_loopback": submission(appended={"conv2d_answer": LOOPBACK.format(port=port)}),
        "h18_output_flood": submission(appended={"conv2d_answer": OUTPUT_FLOOD}),
    }
    for student, notebook in notebooks.items():
        write_notebook(notebook, submissions / student / ASSIGNMENT)
    write_notebook(submission(), submissions / "h11_renamed_notebook" / ASSIGNMENT, f"{NOTEBOOK} (1).ipynb")

    extra = submissions / "h12_extra_files" / ASSIGNMENT
    (extra / "solutions").mkdir()
    (extra / "solutions" / "__init__.py").write_text("Conv2D = None\n")
    (extra / "coursekit").mkdir()
    (extra / "coursekit" / "__init__.py").write_text("raise SystemExit('replaced coursekit')\n")


def write_ordinary_students(submissions: Path) -> None:
    for student in ("ada_complete", "dana_conv_padding"):
        source = COURSE_DIR / "sample_class" / "submitted" / student
        for path in source.rglob("*.ipynb"):
            target = submissions / path.relative_to(source.parent)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def grade(submissions: Path, report: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "autograder", "grade", str(submissions), "--report", str(report),
               "--sandbox", "require", *LIMITS]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module", autouse=True)
def _bwrap_available():
    problem = bwrap_problem()
    if problem:
        skip_or_fail_missing("bubblewrap", "apt-get install -y bubblewrap", problem)


@pytest.fixture(scope="module")
def listener():
    """A loopback port that the loopback submission tries to reach; the test checks that nothing arrived."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server


@pytest.fixture(scope="module")
def ordinary_run(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("ordinary") / "submitted"
    write_ordinary_students(submissions)
    report = submissions.parent / "report"
    result = grade(submissions, report)
    assert result.returncode == 0, result.stderr[-3000:]
    return {(row["student"], row["notebook"]): row for row in read_grades_csv(report / "grades.csv")}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, listener):
    submissions = tmp_path_factory.mktemp("hostile") / "submitted"
    write_ordinary_students(submissions)
    build_catalogue(submissions, listener.getsockname()[1])
    report = submissions.parent / "report"
    result = grade(submissions, report)
    rows = {(row["student"], row["notebook"]): row for row in read_grades_csv(report / "grades.csv")}
    return result, rows, report


def test_catalogue_has_fifteen_kinds():
    assert len({case.kind for case in CATALOGUE}) >= 15


def test_hostile_run_finishes_with_input_problems(hostile_run):
    result, _, _ = hostile_run
    # Exit code 2: the renamed notebook is an input problem; the class is graded.
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Student 'h11_renamed_notebook'" in result.stderr


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.student for case in CATALOGUE])
def test_catalogued_submission_scores_as_expected(hostile_run, case):
    _, rows, _ = hostile_run
    row = rows[(case.student, NOTEBOOK)]
    expectation = Expectation(case.student, ASSIGNMENT, NOTEBOOK, case.failing, case.status, case.kind)
    points, total = expectation.points()
    context = f"{case.kind}: {row}"
    assert float(row["points"]) == points, context
    assert float(row["max_points"]) == total, context
    assert row["status"] == case.status, context
    assert bool(row["flag"]) == case.flagged, context
    assert case.reason in row["reason"], context


@pytest.mark.parametrize("student", ["ada_complete", "dana_conv_padding"])
def test_ordinary_students_unchanged_by_hostile_class(ordinary_run, hostile_run, student):
    _, rows, _ = hostile_run
    for notebook in (NOTEBOOK, "rnn_lstm"):
        assert rows[(student, notebook)] == ordinary_run[(student, notebook)]


def test_flagged_notebooks_listed_apart(hostile_run):
    result, _, _ = hostile_run
    flagged_section = result.stdout.split("flagged for review")[1].split("\n\n")[0]
    for case in CATALOGUE:
        assert (f"  {case.student} / {NOTEBOOK}:" in flagged_section) == case.flagged, case.student


def test_flagged_feedback_pages_carry_note(hostile_run):
    _, rows, report = hostile_run
    for case in CATALOGUE:
        page = report / "feedback" / case.student / ASSIGNMENT / f"{NOTEBOOK}.html"
        if not page.exists():  # not autograded, so the page gives the failure instead
            continue
        text = page.read_text(encoding="utf-8")
        assert ("This notebook is flagged for review." in text) == case.flagged, case.student
        if case.flagged:
            assert html.escape(rows[(case.student, NOTEBOOK)]["flag"]) in text, case.student


def test_feedback_command_keeps_notes(hostile_run):
    _, _, report = hostile_run
    flagged = next(case for case in CATALOGUE if case.flagged)
    page = report / "feedback" / flagged.student / ASSIGNMENT / f"{NOTEBOOK}.html"
    result = subprocess.run([sys.executable, "-m", "autograder", "feedback", "--report", str(report)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert page.read_text(encoding="utf-8").count("This notebook is flagged for review.") == 1


def test_loopback_port_received_nothing(hostile_run, listener):
    with pytest.raises(BlockingIOError):
        listener.accept()
    assert "NOT CONNECTED" in autograded_output(hostile_run, "h17_loopback")


def test_fork_loop_bounded(hostile_run):
    output = autograded_output(hostile_run, "h16_fork_loop")
    count = int(output.split("FORKED ")[1].split()[0])
    assert 0 < count <= 256


def test_memory_hog_stopped_by_limit(hostile_run):
    output = autograded_output(hostile_run, "h14_memory_hog")
    gibibytes = int(output.split("memory ran out after ")[1].split()[0])
    assert gibibytes <= 4


def autograded_output(hostile_run, student: str) -> str:
    """Return the text that the conv2d_answer cell printed in the student's autograded notebook."""
    _, _, report = hostile_run
    path = report / "nbgrader" / "autograded" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    notebook = json.loads(path.read_text())
    cell = next(cell for cell in notebook["cells"]
                if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "conv2d_answer")
    return "".join("".join(output.get("text", "")) for output in cell.get("outputs", []))


# ---------------------------------------------------------------------------------------------------
# Nothing lost: an interrupted run, run again, grades the class once


def test_interrupted_run_then_rerun_matches(ordinary_run, tmp_path):
    submissions = tmp_path / "submitted"
    write_ordinary_students(submissions)
    report = tmp_path / "report"
    command = [sys.executable, "-m", "autograder", "grade", str(submissions), "--report", str(report),
               "--sandbox", "require", *LIMITS]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "Finished ada_complete / cnn_rnn / conv_pool" in line:
            process.send_signal(signal.SIGINT)
            break
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "Grading was interrupted" in stderr
    assert not (report / "grades.csv").exists()
    assert processes_left_in(report) == [], "nbgrader workers or kernels outlived the interrupted run"

    for _ in range(2):  # the run after the interrupt, then a regrade of the same submissions
        result = grade(submissions, report)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = read_grades_csv(report / "grades.csv")
        assert len(rows) == len(ordinary_run)
        assert {(row["student"], row["notebook"]): row for row in rows} == ordinary_run
        assert gradebook_rows(report) == sorted((student, notebook) for student, notebook in ordinary_run)


def processes_left_in(folder: Path, wait_seconds: float = 10) -> list[str]:
    """Return the command lines of processes whose working folder is inside folder, after up to wait_seconds."""
    deadline = time.monotonic() + wait_seconds
    while True:
        left = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cwd = Path(os.readlink(entry / "cwd"))
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # the process ended, or belongs to another user
                continue
            if cwd == folder.resolve() or folder.resolve() in cwd.parents:
                left.append(command)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


def gradebook_rows(report: Path) -> list[tuple[str, str]]:
    """Return (student, notebook) of every submitted notebook in the run's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{report / 'nbgrader' / 'gradebook.db'}") as gradebook:
        return sorted((notebook.student.id, notebook.name)
                      for assignment in gradebook.assignments
                      for submission in assignment.submissions
                      for notebook in submission.notebooks)
