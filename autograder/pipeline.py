"""Grade a class of submissions with nbgrader: autograde, feedback, export and a per-notebook report.

Each run works in ``OUT/nbgrader/``, an nbgrader course of its own made from ``course/``,
so the repository's course folder and the submissions folder are never written. Each worker
slot runs nbgrader in a long-lived process of its own (autograder/nbgrader_worker.py), and every
notebook in a new sandboxed kernel: one student's broken submission cannot stop the others.
A notebook's score is read from the gradebook only when this run autograded it, so no score
from an earlier run survives a failed or missing notebook.
"""

from __future__ import annotations

import html
import json
import logging
import os
import shutil
import subprocess
import sys
import queue
import re
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import MissingEntry
from tqdm import tqdm

from .class_report import write_class_report
from .course import COURSE_DIR, REPO_ROOT, max_points
from .gradebook import exclusive_setup, open_gradebook
from .intake import Intake, NotebookSubmission
from .nbgrader_worker import CommandResult, NbgraderWorker
from .kernel_launcher import KERNEL_SANDBOX_VARIABLE, RUNTIME_DIR_PREFIX, install_kernel_spec, policy_json
from .rescore import apply_verdicts
from .restore import drop_duplicate_cells, restore_missing_cells
from .sandbox import SANDBOX_UID, Limits, Sandbox, SandboxUnavailable, claim_sandbox_uids
from .trusted import plan_notebook, recheck

log = logging.getLogger("autograder")

# Settings added to the course's own nbgrader configuration for grading runs only.
GRADING_CONFIG = """

# --- Added by the grading pipeline (autograder/pipeline.py) ---
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, GetGrades, IgnorePattern, LimitOutput, SaveAutoGrades)
from autograder.execute import BoundedExecute
from autograder.feedback import HideHiddenTests

c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db_url!r}
c.Autograde.autograde_preprocessors = [
    BoundedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata]
c.BoundedExecute.timeout = {cell_timeout}
c.BoundedExecute.notebook_timeout = {notebook_timeout}
c.BoundedExecute.log_dir = {log_dir!r}
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
# Kernels run in a sandbox without network (autograder/kernel_launcher.py), so they talk to
# nbgrader over Unix sockets, in the folder that the pipeline makes for each student. The path
# must be absolute: nbgrader and the kernel run in different folders.
import os
c.KernelManager.transport = "ipc"
c.KernelManager.ip = os.path.join(os.environ.get("JUPYTER_RUNTIME_DIR", {root!r}), "kernel")
"""

SQLITE_LOCK_SECONDS = 120

# File that marks a folder as a workspace of this grader, so that a new run may delete it.
WORKSPACE_MARKER = ".autograder-workspace"

# The last line of a Python traceback, such as "jsonschema.exceptions.ValidationError: -3 is less than ...".
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Z]\w*(?:Error|Exception)): (.+)$")

# Seconds an nbgrader command may take beyond the notebooks' own time budget.
COMMAND_OVERHEAD_SECONDS = 120


FAILURE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{notebook}: not graded</title></head>
<body><h1>{notebook}.ipynb: 0 of {max_points} points</h1>
<p>This notebook could not be graded: {reason}.</p>
<p>Open it in JupyterLab, check that it runs from top to bottom, save it and submit it again.</p>
</body></html>
"""


REVIEW_NOTE_ID = "autograder-review-note"
REVIEW_NOTE = f"""
<div id="{REVIEW_NOTE_ID}" role="note" style="border: 2px solid #b8860b; background: #fff8dc; padding: 1em">
<strong>This notebook is flagged for review.</strong> Your score comes from a trusted re-check
that ran your code again outside your notebook's kernel. Some test results on this page, which
come from your kernel, disagree with it: {{reason}}. An instructor will look at this notebook.
</div>
"""


@dataclass
class NotebookResult:
    """One row of grades.csv."""

    student: str
    assignment: str
    notebook: str
    points: float
    max_points: float
    status: str  # "graded" or "failed"
    reason: str = ""
    flag: str = ""  # why the submission needs review: the student's kernel and the trusted re-check disagree


@dataclass
class GradingOptions:
    """Time limits of a grading run, in seconds, and how student code is isolated and re-checked."""

    cell_timeout: int = 60
    notebook_timeout: int = 300
    sandbox: str = "auto"  # one of autograder.sandbox.MODES
    trusted_recheck: bool = True  # score hidden tests by autograder.trusted, not by the student's kernel
    hidden: list[Path] = field(default_factory=list)  # more folders that student code must not read
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # students graded at once
    db_url: str = ""  # gradebook database (autograder.gradebook); "" for a new SQLite file in the workspace
    progress: bool = False  # show a progress bar on standard error
    limits: Limits = field(default_factory=Limits)


class GradingError(Exception):
    """A failure of the grading run itself, not of one student's submission."""


class GradingInterrupted(Exception):
    """A worker stopped grading because the run was interrupted."""


class Workspace:
    """The nbgrader course under ``OUT/nbgrader`` that one grading run works in."""

    def __init__(self, report_dir: Path, options: GradingOptions, course_dir: Path = COURSE_DIR):
        self.course_dir = course_dir
        self.root = report_dir.resolve() / "nbgrader"
        self.log_dir = self.root / "execution"
        self.db_path = self.root / "gradebook.db"
        # Parallel workers write to one SQLite file: a writer waits up to 120 s for the lock.
        self.db_url = options.db_url or f"sqlite:///{self.db_path}?timeout={SQLITE_LOCK_SECONDS}"
        self.jupyter_dir = self.root / "jupyter"
        self.options = options
        self.stop = threading.Event()  # set when the run is interrupted, so that workers stop early

    def prepare(self, assignments: list[str]) -> None:
        """Start a new workspace: copy the source notebooks and write the grading configuration.

        With the default SQLite file, every run starts from an empty gradebook. A shared database
        keeps its other entries, and grade_student() removes each student's earlier submission
        before grading it, so no score of an earlier run survives for the students of this run.
        """
        if self.root.exists():
            if not (self.root / WORKSPACE_MARKER).exists():
                raise GradingError(f"'{self.root}' exists but was not made by this grader, so it is left alone. "
                                   "Pass a new --report folder.")
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True)
        (self.root / WORKSPACE_MARKER).write_text("Working nbgrader course of `python -m autograder grade`; "
                                                  "each run deletes and rebuilds this folder.\n")
        for assignment in assignments:
            target = self.root / "source" / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(self.course_dir / "source" / assignment, target, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        config = (self.course_dir / "nbgrader_config.py").read_text()
        config += GRADING_CONFIG.format(
            root=str(self.root),
            db_url=self.db_url,
            cell_timeout=self.options.cell_timeout,
            notebook_timeout=self.options.notebook_timeout,
            log_dir=str(self.log_dir),
        )
        (self.root / "nbgrader_config.py").write_text(config)
        install_kernel_spec(self.jupyter_dir)

    def kernel_policy(self, uid: int = SANDBOX_UID) -> str:
        """Return the sandbox policy of the students' kernels, for KERNEL_SANDBOX_VARIABLE.

        The kernel may read the packages autograder and solutions, because the hidden tests that
        nbgrader runs in it import them. Its results only flag a notebook: the score comes from
        the trusted re-check, whose sandbox cannot read solutions.
        """
        return policy_json(
            mode=self.options.sandbox,
            readable=[REPO_ROOT / "autograder", REPO_ROOT / "solutions"],
            hidden=[self.root.parent, self.course_dir, *self.options.hidden],
            environment={"PYTHONPATH": str(REPO_ROOT)},
            limits=self.options.limits,
            uid=uid,
        )

    def nbgrader_environment(self) -> dict[str, str]:
        """Return the environment of nbgrader processes: this one's, with the kernel spec and packages."""
        env = dict(os.environ)
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(self.jupyter_dir), env.get("JUPYTER_PATH")]))
        # nbgrader calls `alembic` by name, so the environment's bin folder must be on PATH.
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    def start_worker(self, slot: int) -> NbgraderWorker:
        """Return an nbgrader worker for one slot; its process starts with its first command."""
        return NbgraderWorker(self.root, self.nbgrader_environment(), self.log_dir / f"nbgrader-worker-{slot}.log")

    def run(self, *args: str, timeout: float) -> subprocess.CompletedProcess:
        """Run one nbgrader command that starts no kernel (export, generate_feedback) in a new process.

        Commands that run student code go through the workers (start_worker) instead.
        """
        env = self.nbgrader_environment()
        command = [sys.executable, "-m", "nbgrader", *args]
        log.debug("Running %s", " ".join(command))
        try:
            return subprocess.run(command, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as err:
            output = err.stderr.decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
            return subprocess.CompletedProcess(command, returncode=-1, stdout="", stderr=output
                                               + f"\nnbgrader {args[0]} timed out after {timeout:.0f} s")

    def submitted_folder(self, student: str, assignment: str) -> Path:
        return self.root / "submitted" / student / assignment

    def autograded_notebook(self, submission: NotebookSubmission) -> Path:
        return self.root / "autograded" / submission.student / submission.assignment / f"{submission.notebook}.ipynb"

    def execution_record(self, submission: NotebookSubmission) -> dict:
        path = self.log_dir / submission.student / f"{submission.notebook}.json"
        return json.loads(path.read_text()) if path.exists() else {}


def _error_summary(result: subprocess.CompletedProcess | CommandResult) -> str:
    """Return the last error line that nbgrader logged, for the report."""
    if isinstance(result, CommandResult):
        output, fallback = result.output, "no output"
    else:
        output, fallback = result.stderr or "", f"exit code {result.returncode}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    # The first exception of a traceback names the cause; nbgrader's later lines only summarize it.
    for line in lines:
        match = EXCEPTION_LINE.match(line)
        if match:
            return f"{match.group(1)}: {match.group(2)}"[:300]
    errors = [line for line in lines if "[ERROR]" in line or "Error" in line or "timed out" in line]
    last = (errors or lines or [fallback])[-1]
    return last[:300]


def release_notebook(assignment: str, notebook: str, workspace: Workspace) -> nbformat.NotebookNode:
    path = workspace.root / "release" / assignment / f"{notebook}.ipynb"
    return nbformat.read(os.fspath(path), as_version=4)


def stage_student(workspace: Workspace, student: str, assignment: str,
                  submissions: list[NotebookSubmission]) -> dict[str, list[str]]:
    """Copy a student's gradable notebooks into the workspace; return notes on the changes per notebook.

    Later copies of a duplicated nbgrader cell are removed, and deleted nbgrader cells are put back
    from the release.
    """
    folder = workspace.submitted_folder(student, assignment)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    restored = {}
    for submission in submissions:
        if submission.problem:
            continue
        notebook = submission.content
        notes = []
        duplicates = drop_duplicate_cells(notebook)
        if duplicates:
            notes.append(f"duplicate copies of cells were removed: {', '.join(duplicates)}")
        put_back = restore_missing_cells(notebook, release_notebook(assignment, submission.notebook, workspace))
        if put_back:
            notes.append(f"deleted cells were put back and graded: {', '.join(put_back)}")
        restored[submission.notebook] = notes
        nbformat.write(notebook, os.fspath(folder / f"{submission.notebook}.ipynb"))
    return restored


def read_score(workspace: Workspace, submission: NotebookSubmission) -> tuple[float, float]:
    """Return (score, max score) of one autograded notebook from the gradebook."""
    with open_gradebook(workspace.db_url) as gradebook:
        try:
            notebook = gradebook.find_submission_notebook(submission.notebook, submission.assignment,
                                                          submission.student)
        except MissingEntry:
            return 0.0, 0.0
        return float(notebook.score), float(notebook.max_score)


def remove_submission(workspace: Workspace, student: str, assignment: str) -> None:
    """Delete a student's submission of an assignment from the gradebook, if an earlier run stored one.

    nbgrader's autograde --force keeps the stored scores of a notebook that it fails to grade,
    so a shared database would otherwise report the score of an earlier run for it.
    """
    with open_gradebook(workspace.db_url) as gradebook:
        try:
            gradebook.remove_submission(assignment, student)
        except MissingEntry:
            return
    log.info("Removed the earlier gradebook entry of %s / %s", student, assignment)


def grade_student(workspace: Workspace, worker: NbgraderWorker, student: str, assignment: str,
                  submissions: list[NotebookSubmission], max_points: dict[str, float],
                  uid: int = SANDBOX_UID, recheck_uid: int = SANDBOX_UID) -> list[NotebookResult]:
    """Autograde one student's notebooks of one assignment, write the feedback pages, return a result per notebook.

    nbgrader runs in worker. When the grader is root, the student's code runs as the user uid in
    nbgrader's kernels and as recheck_uid in the trusted re-check, which runs at the same time.
    """
    log.info("Grading %s / %s", student, assignment)
    restored = stage_student(workspace, student, assignment, submissions)
    autograded = workspace.root / "autograded" / student / assignment
    if autograded.exists():
        shutil.rmtree(autograded)
    records = workspace.log_dir / student
    if records.exists():
        shutil.rmtree(records)

    remove_submission(workspace, student, assignment)
    rechecks = None
    if workspace.options.trusted_recheck:
        rechecks = BackgroundRechecks(workspace, [s for s in submissions if s.notebook in restored], recheck_uid)
    command_errors: dict[str, str] = {}
    if restored:  # at least one notebook can be graded
        result = autograde(workspace, worker, student, assignment, uid, len(restored))
        if workspace.stop.is_set():  # the worker was killed because the run was interrupted
            raise GradingInterrupted()
        if result.timed_out:
            command_errors = dict.fromkeys(restored, _error_summary(result))
        elif not result.success:
            # nbgrader deletes all of the student's autograded notebooks when one fails, so
            # each notebook is graded again on its own: the others keep their scores, and a
            # kernel that failed to start once gets a second chance.
            log.warning("Grading each notebook of %s / %s alone", student, assignment)
            for notebook in restored:
                retry = autograde(workspace, worker, student, assignment, uid, 1, notebook)
                if workspace.stop.is_set():
                    raise GradingInterrupted()
                if not retry.success:
                    command_errors[notebook] = _error_summary(retry)

    results = []
    for submission in submissions:
        total = max_points[submission.notebook]
        if submission.problem:
            results.append(NotebookResult(student, assignment, submission.notebook, 0.0, total, "failed",
                                          submission.problem))
            continue
        if not workspace.autograded_notebook(submission).exists():
            error = command_errors.get(submission.notebook, "no autograded notebook was written")
            reason = f"nbgrader autograde failed: {error}"
            results.append(NotebookResult(student, assignment, submission.notebook, 0.0, total, "failed", reason))
            continue

        if workspace.stop.is_set():
            raise GradingInterrupted()
        flag = trusted_rescore(workspace, submission, rechecks) if rechecks is not None else ""
        score, _ = read_score(workspace, submission)
        record = workspace.execution_record(submission)
        notes = []
        status = "graded"
        if record.get("status", "completed") != "completed":
            status = "failed"
            notes.append(f"{record['message']}; the tests after it scored 0")
        elif record.get("interrupted"):
            notes.append(f"interrupted after the cell time limit: {', '.join(record['interrupted'])}")
        notes += restored.get(submission.notebook, [])
        results.append(NotebookResult(student, assignment, submission.notebook, score, total, status,
                                      "; ".join(notes), flag))
    if rechecks is not None:
        rechecks.thread.join()  # the slot's re-check user must be free for its next student
    if autograded.is_dir() and not write_student_feedback(workspace, worker, student, assignment):
        for row in results:
            row.reason = "; ".join(filter(None, [row.reason, "feedback page could not be generated"]))
    for row in results:
        log.info("Finished %s / %s / %s: %s of %s points, %s%s", row.student, row.assignment, row.notebook,
                 f"{row.points:g}", f"{row.max_points:g}", row.status, f" ({row.reason})" if row.reason else "")
        if row.flag:
            log.warning("Flagged for review: %s / %s / %s: %s", row.student, row.assignment, row.notebook, row.flag)
    return results


def autograde(workspace: Workspace, worker: NbgraderWorker, student: str, assignment: str, uid: int,
              notebooks: int, notebook: str = "") -> CommandResult:
    """Run nbgrader autograde for a student's notebooks, or only the named one, and return its result.

    On failure, nbgrader's output is saved beside the execution records and the error is logged.
    """
    budget = workspace.options.notebook_timeout * notebooks + COMMAND_OVERHEAD_SECONDS
    # A short path of its own: Unix socket paths may not exceed 107 bytes.
    runtime_dir = Path(tempfile.mkdtemp(prefix=RUNTIME_DIR_PREFIX))
    try:
        result = worker.run("autograde", assignment, student, timeout=budget, runtime_dir=runtime_dir,
                            environment={KERNEL_SANDBOX_VARIABLE: workspace.kernel_policy(uid)}, notebook=notebook)
    finally:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    if result.success:
        return result
    error = _error_summary(result)
    output_file = workspace.log_dir / student / f"autograde-{assignment}{'-' + notebook if notebook else ''}.log"
    output_file.parent.mkdir(parents=True, exist_ok=True)
    output_file.write_text(result.output)
    log.error("nbgrader autograde failed for %s / %s%s: %s (its output: %s)", student, assignment,
              f" / {notebook}" if notebook else "", error, output_file)
    return result


def write_student_feedback(workspace: Workspace, worker: NbgraderWorker, student: str, assignment: str) -> bool:
    """Generate one student's feedback pages and copy them to ``OUT/feedback``; return whether it worked."""
    result = worker.run("generate_feedback", assignment, student, timeout=COMMAND_OVERHEAD_SECONDS)
    if not result.success:
        log.error("Feedback failed for %s / %s: %s", student, assignment, _error_summary(result))
        return False
    source = workspace.root / "feedback" / student / assignment
    if source.exists():
        shutil.copytree(source, workspace.root.parent / "feedback" / student / assignment, dirs_exist_ok=True)
    return True


class BackgroundRechecks:
    """The trusted re-checks of one student's notebooks, run in a thread while nbgrader autogrades them.

    A re-check needs only the staged submission and the source notebook, not nbgrader's results,
    so the two run side by side, each notebook's re-check after the other. The thread is a daemon:
    an interrupted run does not wait for it, and its sandboxes end with the grader's process.
    """

    def __init__(self, workspace: Workspace, submissions: list[NotebookSubmission], uid: int):
        self.outcomes: dict[str, dict | Exception] = {}  # verdicts, or the error that stopped the re-check
        self.thread = threading.Thread(target=self._run, args=(workspace, submissions, uid), daemon=True,
                                       name=f"recheck-{submissions[0].student}" if submissions else "recheck")
        self.thread.start()

    def _run(self, workspace: Workspace, submissions: list[NotebookSubmission], uid: int) -> None:
        for submission in submissions:
            if workspace.stop.is_set():
                return
            try:
                self.outcomes[submission.notebook] = recheck_notebook(workspace, submission, uid)
            except Exception as err:  # reported by trusted_rescore(), with the notebook's name
                self.outcomes[submission.notebook] = err

    def result(self, notebook: str) -> dict:
        """Wait for the re-checks and return the verdicts of one notebook, or raise the error that stopped it."""
        self.thread.join()
        outcome = self.outcomes.get(notebook)
        if outcome is None:
            raise RuntimeError("the re-check did not run because grading was interrupted")
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def recheck_notebook(workspace: Workspace, submission: NotebookSubmission, uid: int) -> dict:
    """Re-run one staged notebook's code in a new sandbox as the user uid; return the verdict of each test cell."""
    name = f"{submission.notebook}.ipynb"
    options = workspace.options
    scratch = Path(tempfile.mkdtemp(prefix="autograder-recheck-"))
    try:
        submitted = nbformat.read(os.fspath(workspace.submitted_folder(submission.student, submission.assignment)
                                            / name), as_version=4)
        source = nbformat.read(os.fspath(workspace.root / "source" / submission.assignment / name), as_version=4)
        return recheck(
            submitted, source, workspace.root / "release" / submission.assignment, scratch / "work",
            sandbox_mode=options.sandbox, call_timeout=options.cell_timeout, startup_timeout=options.notebook_timeout,
            cell_timeout=options.cell_timeout, notebook_timeout=options.notebook_timeout,
            hidden=[workspace.root.parent, workspace.course_dir, *options.hidden], sandbox_uid=uid,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def trusted_rescore(workspace: Workspace, submission: NotebookSubmission, rechecks: BackgroundRechecks) -> str:
    """Write the trusted scores of one autograded notebook from its re-check.

    Returns why the notebook needs review, or "" when the kernel's results and the re-check agree.
    When the re-check itself fails, the gradebook keeps the kernel's scores and the notebook is
    flagged with the error.
    """
    try:
        verdicts = rechecks.result(submission.notebook)
        return apply_verdicts(workspace.db_url, submission.student, submission.assignment, submission.notebook,
                              verdicts).flag
    except Exception as err:  # one student's re-check must not stop the class
        log.error("The trusted re-check of %s / %s / %s failed: %s: %s", submission.student, submission.assignment,
                  submission.notebook, type(err).__name__, err, exc_info=err)
        return f"the trusted re-check failed ({type(err).__name__}: {err}), so the score is the kernel's"


def check_recheck_rules(workspace: Workspace, assignment: str) -> None:
    """Raise GradingError when the trusted re-check cannot grade a source notebook of the assignment.

    The re-check needs each hidden test region to hold only check calls, and each visible test
    cell X_visible to have hidden siblings X_hidden_*. It also needs the sandbox when the run
    requires one.
    """
    try:
        Sandbox(workdir=workspace.root, mode=workspace.options.sandbox).isolated
    except SandboxUnavailable as err:
        raise GradingError(str(err)) from None
    for path in sorted((workspace.root / "source" / assignment).glob("*.ipynb")):
        source = nbformat.read(os.fspath(path), as_version=4)
        try:
            plan_notebook(source, source)
        except ValueError as err:
            raise GradingError(f"the trusted re-check cannot grade {path.name}: {err}. Fix the source notebook, or "
                               "grade without the re-check (--trusted-recheck off), where the scores come from "
                               "the student's kernel alone.") from None


def write_feedback(workspace: Workspace, report_dir: Path, assignment: str, students: list[str]) -> list[str]:
    """Generate feedback pages and copy them to ``OUT/feedback``; return the students it failed for."""
    students = [student for student in students if (workspace.root / "autograded" / student / assignment).is_dir()]
    if not students:
        return []
    result = workspace.run("generate_feedback", assignment, "--force", timeout=COMMAND_OVERHEAD_SECONDS * 5)
    failed = []
    if result.returncode != 0:
        # Find out who broke the batch by generating each student's feedback alone.
        log.warning("nbgrader generate_feedback failed for the class; retrying one student at a time")
        for student in students:
            single = workspace.run("generate_feedback", assignment, "--student", student, "--force",
                                   timeout=COMMAND_OVERHEAD_SECONDS)
            if single.returncode != 0:
                log.error("Feedback failed for %s / %s: %s", student, assignment, _error_summary(single))
                failed.append(student)

    for student in students:
        source = workspace.root / "feedback" / student / assignment
        if source.exists():
            shutil.copytree(source, report_dir / "feedback" / student / assignment, dirs_exist_ok=True)
    return failed


def write_failure_pages(report_dir: Path, results: list["NotebookResult"]) -> None:
    """Write a short feedback page for each notebook that was not autograded, with the reason."""
    for row in results:
        page = report_dir / "feedback" / row.student / row.assignment / f"{row.notebook}.html"
        if page.exists():
            continue
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(FAILURE_PAGE.format(notebook=html.escape(row.notebook), reason=html.escape(row.reason),
                                            max_points=f"{row.max_points:g}"))


def add_review_notes(report_dir: Path, results: list["NotebookResult"]) -> None:
    """Add a note at the top of the feedback page of each flagged notebook.

    Such a page shows the outputs of the student's kernel, which disagree with the trusted
    re-check that set the score, so the note states which result counts and why.
    """
    for row in results:
        page = report_dir / "feedback" / row.student / row.assignment / f"{row.notebook}.html"
        if not row.flag or not page.exists():
            continue
        text = page.read_text(encoding="utf-8")
        if REVIEW_NOTE_ID in text:  # added by an earlier call
            continue
        body = re.search(r"<body[^>]*>", text)
        if body is None:
            log.warning("The feedback page %s has no <body> tag, so it gets no review note", page)
            continue
        note = REVIEW_NOTE.format(reason=html.escape(row.flag))
        page.write_text(text[:body.end()] + note + text[body.end():], encoding="utf-8")


def export_gradebook(workspace: Workspace, report_dir: Path) -> None:
    """Write nbgrader's own per-assignment export next to grades.csv."""
    target = report_dir.resolve() / "nbgrader_export.csv"
    result = workspace.run("export", "--to", str(target), timeout=COMMAND_OVERHEAD_SECONDS)
    if result.returncode != 0:
        raise GradingError(f"nbgrader export failed: {_error_summary(result)}")


@dataclass
class WorkerSlot:
    """One student graded at a time: two sandbox users of its own and an nbgrader worker process."""

    uid: int  # of the student's code in nbgrader's kernels
    recheck_uid: int  # of the student's code in the trusted re-check
    worker: NbgraderWorker


def grade_students(workspace: Workspace, intake: Intake, assignment: str, points: dict[str, float],
                   slots: list[WorkerSlot]) -> list[NotebookResult]:
    """Grade every student's notebooks of one assignment, one student per slot at a time.

    The results come back in the order of intake.students, whatever order the slots finish in.
    On KeyboardInterrupt, no new student starts, the running nbgrader commands are stopped, and
    the interrupt is raised.
    """
    free_slots: queue.Queue[WorkerSlot] = queue.Queue()
    for slot in slots:
        free_slots.put(slot)

    def grade_one(student: str) -> list[NotebookResult]:
        mine = [s for s in intake.submissions if s.student == student and s.assignment == assignment]
        if workspace.stop.is_set():
            raise GradingInterrupted()
        slot = free_slots.get()
        try:
            return grade_student(workspace, slot.worker, student, assignment, mine, points, slot.uid,
                                 slot.recheck_uid)
        finally:
            free_slots.put(slot)

    notebooks = sum(1 for s in intake.submissions if s.assignment == assignment)
    progress = tqdm(total=notebooks, desc=f"Grading {assignment}", unit="notebook", file=sys.stderr,
                    disable=not workspace.options.progress)
    failed = 0
    pool = ThreadPoolExecutor(max_workers=len(slots), thread_name_prefix="grader")
    try:
        futures = {student: pool.submit(grade_one, student) for student in intake.students}
        for future in as_completed(futures.values()):
            rows = future.result()
            failed += sum(row.status != "graded" for row in rows)
            progress.set_postfix_str(f"{failed} failed" if failed else "", refresh=False)
            progress.update(len(rows))
    except BaseException:
        workspace.stop.set()
        for slot in slots:
            slot.worker.kill()  # the running commands return at once, as failed
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        progress.close()
    pool.shutdown()
    return [row for student in intake.students for row in futures[student].result()]


def grade_class(intake: Intake, report_dir: Path, options: GradingOptions,
                course_dir: Path = COURSE_DIR) -> list[NotebookResult]:
    """Grade every student in ``intake``; write feedback and exports under ``report_dir``."""
    assignments = sorted({submission.assignment for submission in intake.submissions})
    workspace = Workspace(report_dir, options, course_dir)
    workspace.prepare(assignments)
    for output in ("feedback", "grades.csv", "nbgrader_export.csv", "report", "lms_grades.csv"):
        path = report_dir / output
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

    # Each slot has two sandbox users of its own, one for the kernels and one for the re-check,
    # which no other grading run on the machine uses at the same time.
    slot_count = max(1, min(options.workers, len(intake.students)))
    try:
        uids, uid_locks = claim_sandbox_uids(2 * slot_count)
    except ValueError as err:
        raise GradingError(str(err)) from None
    slots = [WorkerSlot(uids[2 * index], uids[2 * index + 1], workspace.start_worker(index))
             for index in range(slot_count)]
    try:
        results = grade_assignments(workspace, intake, assignments, slots)
    finally:
        for slot in slots:
            slot.worker.stop()
        for lock in uid_locks:
            lock.close()

    for row in results:
        notes = intake.student_notes.get(row.student, [])
        row.reason = "; ".join(filter(None, [row.reason, *notes]))
    write_failure_pages(report_dir, [row for row in results if row.status == "failed"])
    add_review_notes(report_dir, results)
    export_gradebook(workspace, report_dir)
    try:
        write_class_report(results, workspace.db_url, workspace.root / "autograded", report_dir)
    except Exception:  # the grades are written; a broken plot must not lose them
        log.exception("The instructor report under %s could not be written", report_dir / "report")
    return results


def grade_assignments(workspace: Workspace, intake: Intake, assignments: list[str],
                      slots: list[WorkerSlot]) -> list[NotebookResult]:
    """Generate each assignment in the workspace and grade its students; return every result."""
    results: list[NotebookResult] = []
    for assignment in assignments:
        log.info("Generating assignment %s in %s", assignment, workspace.root)
        with exclusive_setup(workspace.db_url):
            generated = slots[0].worker.run("generate_assignment", assignment, timeout=COMMAND_OVERHEAD_SECONDS)
        if not generated.success:
            raise GradingError(f"nbgrader generate_assignment {assignment} failed: {_error_summary(generated)}. "
                               "Check the source notebooks with `make release` and `nbgrader validate`.")
        source = workspace.course_dir / "source" / assignment
        points = {path.stem: max_points(path) for path in source.glob("*.ipynb")}
        if workspace.options.trusted_recheck:
            check_recheck_rules(workspace, assignment)
        results.extend(grade_students(workspace, intake, assignment, points, slots))
    return results
