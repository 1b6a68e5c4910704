"""Score each autograded notebook by the trusted re-check, and flag where the student's kernel disagrees.

nbgrader runs the hidden tests inside the student's kernel and stores each test cell's result as
its auto_score. autograder.trusted repeats the hidden checks in a separate sandboxed process and
compares in the grader's own process. apply_verdicts() writes the trusted score of every test cell
to the gradebook as its manual_score, which nbgrader's score, export and feedback pages then use:

- a hidden test cell scores its points when the trusted re-check passes it, whatever the kernel's result;
- a visible test cell keeps the kernel's result. Its asserts run student code on hand-worked cases
  that the re-check does not repeat. When any hidden test cell of the notebook disagrees with the
  kernel, the kernel's results are not trusted at all, and a visible cell scores its points only
  when every hidden test cell of its exercise passed the re-check.

A disagreement in either direction flags the notebook for review, with the test and both results.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from .gradebook import open_gradebook

from .trusted import CellVerdict

log = logging.getLogger("autograder")

SCORE_TOLERANCE = 1e-9  # points; a cell passed in the kernel when its auto_score reached its max_score


@dataclass
class Rescore:
    """The trusted score of one notebook and the disagreements that flag it."""

    score: float
    max_score: float
    disagreements: list[str] = field(default_factory=list)  # one sentence per reason, naming its test cells

    @property
    def flag(self) -> str:
        """Return why the notebook needs review, or "" when the kernel and the re-check agree."""
        return "; ".join(self.disagreements)


def apply_verdicts(db_url: str, student: str, assignment: str, notebook: str,
                   verdicts: dict[str, CellVerdict]) -> Rescore:
    """Write the trusted score of each test cell of one notebook to the gradebook and return the total.

    Raises MissingEntry when the gradebook has no autograded notebook of that name for the student,
    and KeyError naming the cell when a test cell of the gradebook has no verdict.
    """
    with open_gradebook(db_url) as gradebook:
        submitted = gradebook.find_submission_notebook(notebook, assignment, student)
        grades = {grade.name: grade for grade in submitted.grades}
        missing = [name for name in grades if name not in verdicts]
        if missing:
            raise KeyError(f"the trusted re-check returned no verdict for the test cell(s) {', '.join(missing)}")

        # Cells that disagree for the same reason share one sentence, such as every cell after a
        # cell that stopped the re-check.
        reasons: dict[str, list[str]] = {}
        for name, grade in grades.items():
            verdict = verdicts[name]
            if not verdict.calls:  # a visible test cell, judged below
                continue
            kernel_passed = _kernel_passed(grade.auto_score, grade.max_score)
            if kernel_passed and not verdict.passed:
                reasons.setdefault(f"passed in the student's kernel but failed the trusted re-check: "
                                   f"{verdict.message}", []).append(name)
            elif not kernel_passed and verdict.passed:
                reasons.setdefault("failed in the student's kernel but passed the trusted re-check", []).append(name)
        disagreements = [f"{', '.join(names)} {reason}" for reason, names in reasons.items()]

        for name, grade in grades.items():
            verdict = verdicts[name]
            if verdict.calls or disagreements:
                trusted_score = grade.max_score if verdict.passed else 0.0
            else:
                trusted_score = grade.auto_score or 0.0
            grade.manual_score = trusted_score
            if trusted_score != (grade.auto_score or 0.0):
                log.info("%s / %s / %s: %s scores %g instead of the kernel's %s", student, assignment, notebook,
                         name, trusted_score, _points(grade.auto_score))
        gradebook.db.commit()
        score = sum(grade.manual_score for grade in grades.values())
        max_score = sum(grade.max_score for grade in grades.values())
    return Rescore(score, max_score, disagreements)


def _kernel_passed(auto_score: float | None, max_score: float) -> bool:
    return auto_score is not None and auto_score >= max_score - SCORE_TOLERANCE


def _points(score: float | None) -> str:
    return "no" if score is None else f"{score:g}"
