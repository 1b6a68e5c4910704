"""The instructor's report of a grading run: plots, one offline HTML page, and a CSV for an LMS.

write_class_report() writes, under OUT:

- ``report/index.html``: the score histogram, the pass rate of every test cell and the most
  frequent named mistakes, with the PNG files beside it. It loads nothing from the network.
- ``report/test_cells.csv``: per test cell, how many graded notebooks passed it and the rate.
- ``report/mistakes.csv``: per likely mistake that the checks named, how many notebooks got it.
- ``lms_grades.csv``: one row per student, a column of points per notebook, the total, its
  maximum and the notebooks that need review, the layout that learning-management systems
  import as a grade sheet.

A test cell passed when its score in the gradebook (the trusted score) reached its points. The
rates count the notebooks that were autograded, not the missing or unreadable ones. Named
mistakes are read from the "Likely mistake:" lines of the hidden tests' failure messages in the
autograded notebooks.
"""

from __future__ import annotations

import csv
import html
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from .gradebook import open_gradebook  # noqa: E402

log = logging.getLogger("autograder")

MISTAKE_PREFIX = "Likely mistake: "
TOP_MISTAKES = 10


@dataclass
class CellRate:
    """How many graded notebooks passed one test cell."""

    notebook: str
    grade_id: str
    passed: int
    graded: int

    @property
    def rate(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


def cell_pass_rates(db_url: str, assignment: str, autograded_dir: Path) -> list[CellRate]:
    """Return the pass count of every test cell of the assignment over its autograded notebooks.

    The gradebook also lists a notebook that a student did not submit, or that could not be read,
    with no scores: such notebooks have no autograded file and are left out.
    """
    rates: dict[tuple[str, str], CellRate] = {}
    with open_gradebook(db_url) as gradebook:
        for submission in gradebook.find_assignment(assignment).submissions:
            for notebook in submission.notebooks:
                if not (autograded_dir / submission.student.id / assignment / f"{notebook.name}.ipynb").exists():
                    continue
                for grade in notebook.grades:
                    key = (notebook.name, grade.name)
                    rate = rates.setdefault(key, CellRate(notebook.name, grade.name, 0, 0))
                    rate.graded += 1
                    rate.passed += (grade.score or 0.0) >= grade.max_score - 1e-9
    return list(rates.values())


def named_mistakes(autograded_dir: Path) -> Counter[str]:
    """Count each named likely mistake once per autograded notebook that reports it."""
    counts: Counter[str] = Counter()
    for path in sorted(autograded_dir.glob("*/*/*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError) as err:
            log.warning("Skipping %s in the class report: %s", path, err)
            continue
        found = set()
        for cell in cells:
            for output in cell.get("outputs", []):
                text = output.get("evalue", "") if output.get("output_type") == "error" else ""
                for line in str(text).splitlines():
                    if line.startswith(MISTAKE_PREFIX):
                        found.add(_first_sentence(line[len(MISTAKE_PREFIX):]))
        counts.update(found)
    return counts


def _first_sentence(text: str) -> str:
    sentence = text.split(". ")[0].strip().rstrip(".")
    return sentence[:1].upper() + sentence[1:]


def write_lms_csv(results: list, path: Path) -> None:
    """Write one row per student: the points of each notebook, the total, its maximum, and what needs review.

    The column needs_review names each notebook that failed or was flagged, so that an LMS import
    does not pass off a notebook that could not be graded as a real 0. It is empty when all is well.
    """
    notebooks = sorted({(row.assignment, row.notebook) for row in results})
    students = sorted({row.student for row in results})
    by_key = {(row.student, row.assignment, row.notebook): row for row in results}
    maximum = {(row.assignment, row.notebook): row.max_points for row in results}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", *[f"{assignment}/{notebook}" for assignment, notebook in notebooks], "total",
                         "max_total", "needs_review"])
        for student in students:
            rows = [by_key.get((student, *key)) for key in notebooks]
            points = [row.points if row is not None else 0.0 for row in rows]
            review = []
            for key, row in zip(notebooks, rows):
                name = f"{key[0]}/{key[1]}"
                if row is None:
                    review.append(f"{name} missing")
                elif row.status != "graded":
                    review.append(f"{name} failed")
                elif row.flag:
                    review.append(f"{name} flagged")
            total_maximum = sum(maximum[key] for key in notebooks)
            writer.writerow([student, *[f"{value:g}" for value in points], f"{sum(points):g}", f"{total_maximum:g}",
                             "; ".join(review)])


def write_class_report(results: list, db_url: str, autograded_dir: Path, report_dir: Path) -> Path:
    """Write the plots, the HTML page, the two CSV tables of the report and lms_grades.csv; return the page."""
    folder = report_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    write_lms_csv(results, report_dir / "lms_grades.csv")

    assignments = sorted({row.assignment for row in results})
    rates = [rate for assignment in assignments for rate in cell_pass_rates(db_url, assignment, autograded_dir)]
    mistakes = named_mistakes(autograded_dir)
    with (folder / "test_cells.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["notebook", "test_cell", "passed", "graded", "pass_rate"])
        for rate in rates:
            writer.writerow([rate.notebook, rate.grade_id, rate.passed, rate.graded, f"{rate.rate:.3f}"])
    with (folder / "mistakes.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["likely_mistake", "notebooks"])
        for mistake, count in mistakes.most_common():
            writer.writerow([mistake, count])

    totals = _student_totals(results)
    _plot_histogram(totals, folder / "score_histogram.png")
    _plot_rates(rates, folder / "test_cells.png")
    _plot_mistakes(mistakes.most_common(TOP_MISTAKES), folder / "mistakes.png")
    page = folder / "index.html"
    page.write_text(_page(results, totals, rates, mistakes), encoding="utf-8")
    return page


def _student_totals(results: list) -> dict[str, tuple[float, float]]:
    totals: dict[str, tuple[float, float]] = {}
    for row in results:
        points, maximum = totals.get(row.student, (0.0, 0.0))
        totals[row.student] = (points + row.points, maximum + row.max_points)
    return totals


def _plot_histogram(totals: dict[str, tuple[float, float]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 3.5))
    maximum = max((total for _, total in totals.values()), default=1.0)
    axes.hist([points for points, _ in totals.values()], bins=min(20, max(5, len(totals))), range=(0, maximum),
              color="#4477aa", edgecolor="white")
    axes.set_xlabel(f"total points (of {maximum:g})")
    axes.set_ylabel("students")
    axes.set_title("Scores")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_rates(rates: list[CellRate], path: Path) -> None:
    height = max(3.0, 0.22 * len(rates) + 1)
    figure, axes = plt.subplots(figsize=(7, height))
    labels = [f"{rate.notebook} / {rate.grade_id}" for rate in rates]
    axes.barh(range(len(rates)), [100 * rate.rate for rate in rates], color="#228833")
    axes.set_yticks(range(len(rates)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("notebooks that passed (%)")
    axes.set_title("Pass rate of each test cell")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_mistakes(top: list[tuple[str, int]], path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, max(2.5, 0.4 * len(top) + 1)))
    labels = [mistake if len(mistake) <= 70 else mistake[:67] + "..." for mistake, _ in top]
    axes.barh(range(len(top)), [count for _, count in top], color="#cc6677")
    axes.set_yticks(range(len(top)), labels, fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("notebooks")
    axes.set_title("Most frequent likely mistakes" if top else "No likely mistake was named")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _page(results: list, totals: dict[str, tuple[float, float]], rates: list[CellRate],
          mistakes: Counter[str]) -> str:
    flagged = [row for row in results if row.flag]
    failed = [row for row in results if row.status != "graded"]
    mean = sum(points for points, _ in totals.values()) / len(totals) if totals else 0.0
    max_total = max((maximum for _, maximum in totals.values()), default=0.0)
    rows = "".join(f"<tr><td>{html.escape(rate.notebook)}</td><td>{html.escape(rate.grade_id)}</td>"
                   f"<td>{rate.passed} / {rate.graded}</td><td>{100 * rate.rate:.0f}%</td></tr>" for rate in rates)
    mistake_rows = "".join(f"<tr><td>{html.escape(mistake)}</td><td>{count}</td></tr>"
                           for mistake, count in mistakes.most_common())
    flagged_items = "".join(f"<li>{html.escape(row.student)} / {html.escape(row.notebook)}: "
                            f"{html.escape(row.flag)}</li>" for row in flagged) or "<li>none</li>"
    failed_items = "".join(f"<li>{html.escape(row.student)} / {html.escape(row.notebook)}: "
                           f"{html.escape(row.reason)}</li>" for row in failed) or "<li>none</li>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Grading report</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}</style>
</head><body>
<h1>Grading report</h1>
<p>{len(totals)} students, {len(results)} notebooks; mean total {mean:.1f} of {max_total:g} points.
{len(flagged)} notebooks flagged for review, {len(failed)} not graded in full.</p>
<h2>Scores</h2><img src="score_histogram.png" alt="Histogram of the students' total points">
<h2>Flagged for review</h2><ul>{flagged_items}</ul>
<h2>Not graded in full</h2><ul>{failed_items}</ul>
<h2>Test cells</h2><img src="test_cells.png" alt="Pass rate of each test cell">
<p>A rate counts the notebooks that were autograded: a notebook that is missing or could not be
read is left out, and one that stopped early (a crash or a time limit) counts as failing the tests
after the stop.</p>
<table><tr><th>notebook</th><th>test cell</th><th>passed</th><th>rate</th></tr>{rows}</table>
<h2>Likely mistakes</h2><img src="mistakes.png" alt="Most frequent likely mistakes">
<table><tr><th>likely mistake</th><th>notebooks</th></tr>{mistake_rows}</table>
</body></html>
"""

