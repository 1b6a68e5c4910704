"""Compare a grading run with a table of expected results, as the sample class's is.

The expected table names, per student and notebook, the test cells that must fail and the
status. The expected points are computed from the source notebooks' points, so the table
never carries a score of its own that could drift from the notebooks.
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .course import SOURCE_DIR, grade_cells
from .report import read_grades_csv


@dataclass(frozen=True)
class Expectation:
    """The expected result of one student's notebook."""

    student: str
    assignment: str
    notebook: str
    failing_cells: tuple[str, ...]
    status: str
    description: str
    flagged: bool = False  # whether the notebook must be flagged for review

    def points(self, source_dir: Path = SOURCE_DIR) -> tuple[float, float]:
        """Return (expected points, max points) from the source notebook's test cells."""
        cells = grade_cells(source_dir / self.assignment / f"{self.notebook}.ipynb")
        failing = self.failing_ids(source_dir)
        total = sum(cell.points for cell in cells)
        lost = sum(cell.points for cell in cells if cell.grade_id in failing)
        return total - lost, total

    def failing_ids(self, source_dir: Path = SOURCE_DIR) -> set[str]:
        """Return the grade ids that the failing_cells patterns (shell-style, as ``lstm_*``) select."""
        known = [cell.grade_id for cell in grade_cells(source_dir / self.assignment / f"{self.notebook}.ipynb")]
        failing = set()
        for pattern in self.failing_cells:
            matches = fnmatch.filter(known, pattern)
            if not matches:
                raise ValueError(f"{self.student}/{self.notebook}: pattern {pattern!r} in the expected table "
                                 f"matches no test cell; the notebook's test cells are {', '.join(known)}")
            failing.update(matches)
        return failing


def read_expectations(path: Path) -> list[Expectation]:
    """Read the expected table: student, assignment, notebook, failing_cells ("*" for all), status, description.

    An optional column flagged ("yes" or "no", default "no") tells whether the notebook must be
    flagged for review.
    """
    with path.open(newline="") as handle:
        return [
            Expectation(row["student"], row["assignment"], row["notebook"],
                        tuple(row["failing_cells"].split()), row["status"], row["description"],
                        _yes_or_no(row.get("flagged") or "no", path))
            for row in csv.DictReader(handle)
        ]


def compare_with_expected(grades_csv: Path, expected_csv: Path, out: TextIO) -> bool:
    """Print how each graded notebook compares with its expectation; return whether all match."""
    graded = {(row["student"], row["notebook"]): row for row in read_grades_csv(grades_csv)}
    mismatches = []
    expectations = read_expectations(expected_csv)
    for expectation in expectations:
        points, total = expectation.points()
        row = graded.get((expectation.student, expectation.notebook))
        if row is None:
            mismatches.append(f"{expectation.student} / {expectation.notebook}: missing from {grades_csv}")
            continue
        if float(row["points"]) != points or float(row["max_points"]) != total or row["status"] != expectation.status:
            mismatches.append(
                f"{expectation.student} / {expectation.notebook}: expected {points:g}/{total:g} {expectation.status}, "
                f"got {row['points']}/{row['max_points']} {row['status']} ({row['reason'] or 'no reason given'})")
        flag = row.get("flag", "")
        if bool(flag) != expectation.flagged:
            mismatches.append(
                f"{expectation.student} / {expectation.notebook}: expected "
                f"{'a flag for review' if expectation.flagged else 'no flag'}, got {flag or 'no flag'}")
    if mismatches:
        out.write(f"\n{len(mismatches)} of {len(expectations)} notebooks differ from {expected_csv}:\n")
        for line in mismatches:
            out.write(f"  {line}\n")
        return False
    out.write(f"\nAll {len(expectations)} notebooks match the expected scores in {expected_csv}.\n")
    return True


def _yes_or_no(value: str, path: Path) -> bool:
    if value not in ("yes", "no"):
        raise ValueError(f"{path}: invalid value {value!r} in the column flagged; use yes or no")
    return value == "yes"
