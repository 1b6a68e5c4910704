"""The grading run's outputs for the instructor: grades.csv and the score table."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

from .pipeline import NotebookResult

CSV_COLUMNS = ["student", "assignment", "notebook", "points", "max_points", "status", "reason", "flag"]


def write_grades_csv(results: list[NotebookResult], path: Path) -> None:
    """Write one row per student and notebook."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in results:
            writer.writerow([row.student, row.assignment, row.notebook, f"{row.points:g}", f"{row.max_points:g}",
                             row.status, row.reason, row.flag])


def read_grades_csv(path: Path) -> list[dict[str, str]]:
    """Read grades.csv back as a list of rows keyed by column name."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def print_score_table(results: list[NotebookResult], out: TextIO) -> None:
    """Print one line per student with the points of each notebook and the total."""
    notebooks = sorted({(row.assignment, row.notebook) for row in results})
    students = sorted({row.student for row in results})
    cells = {(row.student, row.assignment, row.notebook): row for row in results}
    headers = ["student"] + [notebook for _, notebook in notebooks] + ["total"]

    lines = []
    for student in students:
        line = [student]
        points = maximum = 0.0
        for assignment, notebook in notebooks:
            row = cells.get((student, assignment, notebook))
            if row is None:
                line.append("-")
                continue
            marker = "" if row.status == "graded" else " !"
            if row.flag:
                marker += " ?"
            line.append(f"{row.points:g}/{row.max_points:g}{marker}")
            points += row.points
            maximum += row.max_points
        line.append(f"{points:g}/{maximum:g}")
        lines.append(line)

    widths = [max(len(str(line[i])) for line in [headers] + lines) for i in range(len(headers))]
    for line in [headers] + lines:
        out.write("  ".join(str(value).ljust(width) for value, width in zip(line, widths)).rstrip() + "\n")

    flagged = [row for row in results if row.flag]
    if flagged:
        out.write(f"\n{len(flagged)} notebook(s) flagged for review: the student's kernel and the trusted re-check "
                  "disagree, and the score is the re-check's (marked ?):\n")
        for row in flagged:
            out.write(f"  {row.student} / {row.notebook}: {row.flag}\n")

    failures = [row for row in results if row.status != "graded"]
    notes = [row for row in results if row.status == "graded" and row.reason]
    if failures:
        out.write(f"\n{len(failures)} notebook(s) could not be graded in full (marked !):\n")
        for row in failures:
            out.write(f"  {row.student} / {row.notebook}: {row.reason}\n")
    if notes:
        out.write("\nNotes:\n")
        for row in notes:
            out.write(f"  {row.student} / {row.notebook}: {row.reason}\n")
