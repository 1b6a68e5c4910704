"""Read a folder of submissions laid out as nbgrader's ``submitted/`` and decide what can be graded.

Layout: ``DIR/<student>/<assignment>/<notebook>.ipynb``. Nothing under DIR is ever written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .course import SOURCE_DIR, list_assignments, list_notebooks

LAYOUT = "DIR/<student>/<assignment>/<notebook>.ipynb"


class UsageError(Exception):
    """Invalid command-line input that stops the run before anything is graded."""


@dataclass
class NotebookSubmission:
    """One expected notebook of one student, and what stops it from being graded, if anything."""

    student: str
    assignment: str
    notebook: str
    path: Path | None = None
    problem: str = ""  # empty when the notebook can be graded
    content: nbformat.NotebookNode | None = None


@dataclass
class Intake:
    """Everything found under the submissions folder."""

    students: list[str]
    submissions: list[NotebookSubmission]
    input_errors: list[str] = field(default_factory=list)  # full messages for the instructor
    student_notes: dict[str, list[str]] = field(default_factory=dict)  # short notes for grades.csv

    def add_problem(self, student: str, problem: str, advice: str) -> None:
        """Record a file or folder of ``student`` that was not graded, and what to do about it."""
        self.input_errors.append(f"Student '{student}': {problem}. {advice}")
        self.student_notes.setdefault(student, []).append(problem)


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name == "__pycache__"


def read_notebook(path: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """Read a submitted notebook; return it, or None and the reason it cannot be graded."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return None, f"the file cannot be read as UTF-8 text ({err})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"the file is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
    if not isinstance(data, dict) or "cells" not in data:
        return None, "the file is JSON but not a Jupyter notebook (it has no list of cells)"
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as err:  # nbformat raises several types for malformed notebooks
        return None, f"the file is not a valid notebook ({type(err).__name__}: {err})"
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as err:
        return None, f"the notebook does not follow the notebook format ({err.message})"
    return notebook, ""


def _check_layout(submissions_dir: Path, students: list[str], known: list[str]) -> None:
    """Raise UsageError when no student folder contains an assignment folder, naming the likely right folder."""
    if any((submissions_dir / student / name).is_dir() for student in students for name in known):
        return
    hint = "check that you passed the right folder"
    if any((submissions_dir / name).is_dir() for name in known):
        hint = f"'{submissions_dir}' looks like one student's folder: pass its parent, '{submissions_dir.parent}'"
    else:
        for student in students:
            child = submissions_dir / student
            if any((grandchild / name).is_dir() for grandchild in child.iterdir() if grandchild.is_dir()
                   for name in known):
                hint = f"the student folders seem to be one level down: pass '{child}'"
                break
    raise UsageError(
        f"None of the {len(students)} folders in '{submissions_dir}' contains an assignment folder "
        f"({', '.join(known)}). Expected the layout {LAYOUT}; {hint}."
    )


def read_submissions(
    submissions_dir: Path, assignments: list[str] | None = None, source_dir: Path = SOURCE_DIR,
    report_dir: Path | None = None,
) -> Intake:
    """Scan ``submissions_dir``; raise UsageError when nothing there can be graded at all."""
    known = list_assignments(source_dir)
    if assignments:
        unknown = [name for name in assignments if name not in known]
        if unknown:
            raise UsageError(
                f"Unknown assignment {', '.join(map(repr, unknown))}. "
                f"Known assignments: {', '.join(known)}. Pass one of these to --assignment."
            )
    if not submissions_dir.exists():
        raise UsageError(
            f"Submissions folder '{submissions_dir}' does not exist. "
            f"Pass the folder that contains one subfolder per student, laid out as {LAYOUT}."
        )
    if not submissions_dir.is_dir():
        raise UsageError(f"'{submissions_dir}' is a file, not a folder. Pass the folder laid out as {LAYOUT}.")
    if report_dir is not None and report_dir.resolve().is_relative_to(submissions_dir.resolve()):
        raise UsageError(
            f"Report folder '{report_dir}' lies inside the submissions folder '{submissions_dir}', which is never "
            "written. Pass a --report folder outside it."
        )

    students = sorted(path.name for path in submissions_dir.iterdir() if path.is_dir() and not _is_hidden(path))
    if not students:
        raise UsageError(
            f"Submissions folder '{submissions_dir}' contains no student folders. "
            f"Expected the layout {LAYOUT}; check that you passed the right folder."
        )
    _check_layout(submissions_dir, students, known)

    intake = Intake(students, [])
    selected = assignments or known
    for student in students:
        for entry in sorted((submissions_dir / student).iterdir()):
            if _is_hidden(entry):
                continue
            if entry.is_dir() and entry.name not in known:
                intake.add_problem(
                    student, f"folder '{entry.name}' is not an assignment and was not graded",
                    f"Known assignments: {', '.join(known)}. Rename the folder to the assignment it belongs to.")
            elif entry.is_file():
                intake.add_problem(
                    student, f"file '{entry.name}' is not inside an assignment folder and was not graded",
                    f"Move it to {student}/<assignment>/.")

    for assignment in selected:
        expected = list_notebooks(assignment, source_dir)
        for student in students:
            folder = submissions_dir / student / assignment
            if folder.is_dir():
                for extra in sorted(folder.glob("*.ipynb")):
                    if extra.stem not in expected and not _is_hidden(extra):
                        intake.add_problem(
                            student, f"notebook '{assignment}/{extra.name}' is not part of assignment "
                            f"'{assignment}' and was not graded",
                            f"Expected notebooks: {', '.join(name + '.ipynb' for name in expected)}. "
                            "Rename it to the notebook it answers, or remove it.")
                # Grading runs the notebooks beside the release's files only, so that a submitted
                # module cannot stand in for coursekit or the reference.
                others = [entry.name + ("/" if entry.is_dir() else "") for entry in sorted(folder.iterdir())
                          if entry.suffix != ".ipynb" and not _is_hidden(entry)]
                if others:
                    intake.student_notes.setdefault(student, []).append(
                        f"files beside the notebooks were not used for grading: {', '.join(others)}")
            for notebook in expected:
                submission = NotebookSubmission(student, assignment, notebook)
                path = folder / f"{notebook}.ipynb"
                if not path.is_file():
                    submission.problem = f"no {notebook}.ipynb was submitted"
                else:
                    submission.path = path
                    submission.content, submission.problem = read_notebook(path)
                intake.submissions.append(submission)
    return intake
