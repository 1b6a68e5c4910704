"""Command line of the grading pipeline: ``python -m autograder {grade,feedback,release,compare}``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from .course import COURSE_DIR
from .expected import compare_with_expected
from .gradebook import DatabaseError, EXAMPLE_URL, check_database
from .intake import UsageError, read_submissions
from .pipeline import (GradingError, GradingOptions, NotebookResult, Workspace, add_review_notes, grade_class,
                       write_feedback)
from .release import release_assignments
from .sandbox import INSTALL_HINT, MODES, bwrap_problem
from .report import print_score_table, read_grades_csv, write_grades_csv

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def positive_count(text: str) -> int:
    """Parse a positive number of workers for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of workers: {text!r}; pass a whole number such as 2")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid number of workers: {value}; it must be at least 1")
    return value


def positive_seconds(text: str) -> int:
    """Parse a positive whole number of seconds for argparse."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {text!r}; pass a whole number such as 60")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {value}; it must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log nbgrader commands as they run")
    commands = parser.add_subparsers(dest="command", required=True)

    grade = commands.add_parser("grade", help="autograde a folder of submissions and write grades and feedback")
    grade.add_argument("submissions", type=Path,
                       help="folder laid out as nbgrader's submitted/: DIR/<student>/<assignment>/<notebook>.ipynb")
    grade.add_argument("--report", type=Path, required=True,
                       help="output folder for grades.csv, feedback/ and the nbgrader working course")
    grade.add_argument("--assignment", action="append",
                       help="grade only this assignment (repeat for several); default: every assignment")
    grade.add_argument("--course", type=Path, default=COURSE_DIR,
                       help="nbgrader course folder with nbgrader_config.py and source/ (default: %(default)s)")
    grade.add_argument("--cell-timeout", type=positive_seconds, default=GradingOptions.cell_timeout,
                       help="seconds one cell may run before it is interrupted (default: %(default)s)")
    grade.add_argument("--sandbox", choices=MODES, default="auto",
                       help="isolate student code with bubblewrap: 'auto' uses it when it works and warns when "
                            "it does not, 'require' stops the run without it, 'off' applies resource limits only "
                            "(default: %(default)s)")
    grade.add_argument("--workers", type=positive_count, default=GradingOptions().workers,
                       help="students graded at once, each worker with its own nbgrader process and sandbox users "
                            "(default: the number of cores, %(default)s)")
    grade.add_argument("--trusted-recheck", choices=("on", "off"), default="on",
                       help="score the hidden tests by re-running them outside the student's kernel, and flag "
                            "notebooks where the two disagree (default: %(default)s)")
    grade.add_argument("--db-url", default="",
                       help="gradebook database as an SQLAlchemy URL, for a PostgreSQL database that several "
                            f"graders share, such as {EXAMPLE_URL} (default: a new SQLite file in "
                            "REPORT/nbgrader/)")
    grade.add_argument("--notebook-timeout", type=positive_seconds, default=GradingOptions.notebook_timeout,
                       help="seconds one notebook may run in total; later cells score 0 (default: %(default)s)")

    feedback = commands.add_parser("feedback", help="regenerate the feedback pages of an earlier grading run")
    feedback.add_argument("--report", type=Path, required=True, help="the --report folder of that run")

    commands.add_parser("release", help="generate the student notebooks into course/release/")

    compare = commands.add_parser("compare", help="check a grades.csv against a table of expected results")
    compare.add_argument("grades", type=Path, help="grades.csv written by the grade command")
    compare.add_argument("expected", type=Path, help="expected table, as course/sample_class/expected_scores.csv")
    return parser


def run_grade(args: argparse.Namespace) -> int:
    try:
        if not (args.course / "nbgrader_config.py").is_file():
            raise UsageError(f"Course folder '{args.course}' has no nbgrader_config.py. Pass the folder that "
                             "contains nbgrader_config.py and source/ to --course.")
        intake = read_submissions(args.submissions, args.assignment, args.course / "source", args.report)
        db_url = check_database(args.db_url) if args.db_url else ""
    except (UsageError, DatabaseError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE

    args.report.mkdir(parents=True, exist_ok=True)
    options = GradingOptions(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                             sandbox=args.sandbox, trusted_recheck=args.trusted_recheck == "on",
                             hidden=[args.submissions.resolve()], workers=args.workers, db_url=db_url,
                             progress=sys.stderr.isatty())
    sandbox_warning = ""
    if args.sandbox == "off":
        sandbox_warning = "the sandbox is off (--sandbox off)"
        advice = "Pass --sandbox auto or require to isolate student code."
    elif args.sandbox == "auto" and bwrap_problem():
        sandbox_warning = f"the sandbox is unavailable: {bwrap_problem()}"
        advice = INSTALL_HINT
    if sandbox_warning:
        sandbox_warning = (f"warning: {sandbox_warning}. Student code runs with resource limits only (memory, CPU "
                           "time, file size), and can use the network and read the reference solutions and other "
                           f"students' files. {advice}")
        print(sandbox_warning, file=sys.stderr)
    try:
        # While the progress bar is shown, log lines are printed above it.
        with logging_redirect_tqdm() if options.progress else contextlib.nullcontext():
            results = grade_class(intake, args.report, options, args.course)
    except GradingError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"\nerror: Grading was interrupted, so {args.report / 'grades.csv'} was not written. Run the same "
              "command again: each run grades the whole class from the start, so no notebook is graded twice.",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    write_grades_csv(results, args.report / "grades.csv")

    print_score_table(results, sys.stdout)
    print(f"\nGrades: {args.report / 'grades.csv'}\nFeedback: {args.report / 'feedback'}")
    print(f"Report: {args.report / 'report' / 'index.html'}\nFor an LMS: {args.report / 'lms_grades.csv'}")
    if sandbox_warning:
        print(f"\n{sandbox_warning}")
    if intake.input_errors:
        print(f"\n{len(intake.input_errors)} input problem(s); the rest of the class was graded:", file=sys.stderr)
        for problem in intake.input_errors:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def run_feedback(args: argparse.Namespace) -> int:
    workspace = Workspace(args.report, GradingOptions())
    if not (workspace.root / "nbgrader_config.py").exists():
        print(f"error: '{args.report}' holds no grading run; run `python -m autograder grade DIR --report "
              f"{args.report}` first.", file=sys.stderr)
        return EXIT_USAGE
    autograded = workspace.root / "autograded"
    if not autograded.is_dir():
        print(f"error: '{args.report}' has no autograded notebooks; run the grade command first.", file=sys.stderr)
        return EXIT_USAGE
    failed = 0
    assignments = sorted({path.name for path in (workspace.root / "autograded").glob("*/*") if path.is_dir()})
    students = sorted(path.name for path in (workspace.root / "autograded").iterdir() if path.is_dir())
    for assignment in assignments:
        failed += len(write_feedback(workspace, args.report, assignment, students))
    grades = args.report / "grades.csv"
    if grades.exists():  # flagged notebooks get their review note again
        add_review_notes(args.report, [NotebookResult(row["student"], row["assignment"], row["notebook"],
                                                      float(row["points"]), float(row["max_points"]), row["status"],
                                                      row["reason"], row.get("flag", ""))
                                       for row in read_grades_csv(grades)])
    print(f"Feedback: {args.report / 'feedback'}")
    return EXIT_FAILED if failed else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if args.command == "grade":
        return run_grade(args)
    if args.command == "feedback":
        return run_feedback(args)
    if args.command == "compare":
        for path in (args.grades, args.expected):
            if not path.is_file():
                print(f"error: '{path}' does not exist. Pass a grades.csv written by the grade command and an "
                      "expected table such as course/sample_class/expected_scores.csv.", file=sys.stderr)
                return EXIT_USAGE
        return EXIT_OK if compare_with_expected(args.grades, args.expected, sys.stdout) else EXIT_FAILED
    return release_assignments()
