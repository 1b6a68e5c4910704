"""Time the grading of a generated class: stock nbgrader, this pipeline serially and in parallel, and the floor.

The class is made of copies of the sample class's ordinary submissions (complete, partial, one
mistake each), renamed s000, s001, ... so that every student has both notebooks. The infinite
loop, the dying kernel and the invalid notebook are left out: their time limits would dominate.

Four ways to grade it, each timed once, one after another:

  (a) stock nbgrader 0.9.6: `nbgrader autograde cnn_rnn` over all students in one command, in a
      copy of course/ with its own configuration (no sandbox, no re-check), then, timed apart,
      `nbgrader generate_feedback cnn_rnn`, the feedback pages that the pipeline also writes;
  (b) this pipeline with 1 worker: `python -m autograder grade DIR --workers 1`;
  (c) this pipeline with --workers (default: the number of cores);
  (d) the floor: each submitted notebook executed with nbclient in one process, one after another,
      without hidden tests, feedback or gradebook.

It prints each time and the ratios a / c (goal: at least 2 on 2 cores) and c / (d / workers) (goal:
at most 1.5), and the time that (c) would take for 500 students at the same rate. Because the
pipeline writes feedback pages and stock autograde does not, it also prints the like-for-like
ratio (a + stock feedback) / c, which has no goal. It is a benchmark, not a test: it exits with
status 0 whether or not the goals are met.

    .venv/bin/python bench/grading.py --students 50
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from autograder.release import nbgrader_env  # noqa: E402  (the path above must be set first)

COURSE_DIR = REPO_ROOT / "course"
SAMPLE = COURSE_DIR / "sample_class" / "submitted"
ASSIGNMENT = "cnn_rnn"
ORDINARY = ["ada_complete", "ben_untouched", "chen_partial", "dana_conv_padding", "eli_pool_stride", "fay_rnn_state",
            "gil_lstm_gates", "hal_raises", "leo_deleted_tests", "mo_pool_backward", "nia_conv_backward",
            "oli_rnn_backward", "pia_lstm_backward"]
LIMITS = ["--cell-timeout", "60", "--notebook-timeout", "300"]
GOAL_STOCK_RATIO = 2.0
GOAL_FLOOR_RATIO = 1.5
CLASS_ESTIMATE = 500


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: pass a whole number such as 50")
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {value}: it must be at least 1")
    return value


def make_class(folder: Path, students: int) -> list[str]:
    """Copy the ordinary sample submissions, in turn, into folder/s000/cnn_rnn/ and so on; return the names."""
    names = []
    for index in range(students):
        name = f"s{index:03d}"
        shutil.copytree(SAMPLE / ORDINARY[index % len(ORDINARY)], folder / name)
        names.append(name)
    return names


def timed(label: str, command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    print(f"{label} ...", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 2):
        sys.exit(f"{label} failed with exit code {result.returncode}:\n{result.stderr[-3000:]}")
    print(f"{label}: {seconds:.1f} s", flush=True)
    return seconds


def stock_nbgrader(work: Path, submissions: Path) -> tuple[float, float]:
    """Return the seconds of stock nbgrader's autograde and then of its generate_feedback."""
    course = work / "stock_course"
    shutil.copytree(COURSE_DIR, course, ignore=shutil.ignore_patterns("sample_class", "release", "submitted",
                                                                      "autograded", "feedback", "gradebook.db"))
    env = nbgrader_env()
    env["PYTHONPATH"] = str(REPO_ROOT)  # the hidden tests import autograder.checks
    nbgrader = [sys.executable, "-m", "nbgrader"]
    subprocess.run([*nbgrader, "generate_assignment", ASSIGNMENT, "--force"], cwd=course, env=env, check=True,
                   capture_output=True)
    shutil.copytree(submissions, course / "submitted")
    seconds = timed("(a) stock nbgrader autograde", [*nbgrader, "autograde", ASSIGNMENT], course, env)
    autograded = len(list((course / "autograded").glob(f"*/{ASSIGNMENT}/*.ipynb")))
    print(f"(a) autograded {autograded} notebooks")
    feedback = timed("(a) stock nbgrader generate_feedback", [*nbgrader, "generate_feedback", ASSIGNMENT], course, env)
    return seconds, feedback


def pipeline(work: Path, submissions: Path, workers: int, label: str) -> float:
    report = work / f"report_{workers}"
    command = [sys.executable, "-m", "autograder", "grade", str(submissions), "--report", str(report),
               "--workers", str(workers), *LIMITS]
    return timed(label, command, REPO_ROOT)


def floor(submissions: Path) -> float:
    """Execute every submitted notebook with nbclient next to the release's files, one after another."""
    print("(d) nbclient execution ...", flush=True)
    release = COURSE_DIR / "release" / ASSIGNMENT
    # As under nbgrader, so that the notebooks skip their training sections.
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    start = time.perf_counter()
    for path in sorted(submissions.glob(f"*/{ASSIGNMENT}/*.ipynb")):
        notebook = nbformat.read(os.fspath(path), as_version=4)
        client = NotebookClient(notebook, timeout=60, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(release)}})
        client.execute(stderr=subprocess.DEVNULL)  # each kernel warns that it talks over unencrypted TCP
    seconds = time.perf_counter() - start
    print(f"(d) nbclient execution: {seconds:.1f} s", flush=True)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=positive, default=50, help="students in the class (default: 50)")
    parser.add_argument("--workers", type=positive, default=os.cpu_count() or 1,
                        help="workers of run (c) (default: the number of cores, %(default)s)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as folder:
        work = Path(folder)
        submissions = work / "submitted"
        make_class(submissions, args.students)
        notebooks = len(list(submissions.glob(f"*/{ASSIGNMENT}/*.ipynb")))
        print(f"Class: {args.students} students, {notebooks} notebooks; {os.cpu_count()} cores")
        stock, stock_feedback = stock_nbgrader(work, submissions)
        serial = pipeline(work, submissions, 1, "(b) pipeline, 1 worker")
        parallel = pipeline(work, submissions, args.workers, f"(c) pipeline, {args.workers} workers")
        bare = floor(submissions)

    per_worker_floor = bare / args.workers
    print()
    print("| run | seconds | per notebook |")
    print("| --- | ---: | ---: |")
    for label, seconds in [("(a) stock nbgrader, serial", stock),
                           ("stock generate_feedback after (a)", stock_feedback), ("(b) pipeline, 1 worker", serial),
                           (f"(c) pipeline, {args.workers} workers", parallel), ("(d) nbclient floor, serial", bare)]:
        print(f"| {label} | {seconds:.1f} | {seconds / notebooks:.2f} |")
    print()
    stock_ratio = stock / parallel
    floor_ratio = parallel / per_worker_floor
    print(f"a / c = {stock_ratio:.2f} (goal >= {GOAL_STOCK_RATIO}): {'PASS' if stock_ratio >= GOAL_STOCK_RATIO else 'MISS'}")
    print(f"c / (d / {args.workers}) = {floor_ratio:.2f} (goal <= {GOAL_FLOOR_RATIO}): "
          f"{'PASS' if floor_ratio <= GOAL_FLOOR_RATIO else 'MISS'}")
    print(f"(a + stock feedback) / c = {(stock + stock_feedback) / parallel:.2f} (like for like, no goal)")
    print(f"b / c = {serial / parallel:.2f} (speed-up of {args.workers} workers)")
    estimate = parallel / args.students * CLASS_ESTIMATE
    print(f"Estimate for {CLASS_ESTIMATE} students with {args.workers} workers: {estimate / 60:.0f} minutes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
