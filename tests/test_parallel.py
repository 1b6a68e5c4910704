"""The worker count is checked, and a grading run on a terminal shows a progress bar.

tests/test_sample_class.py compares the sample class graded by parallel workers with a serial run.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from conftest import skip_or_fail_missing

from autograder.course import COURSE_DIR, REPO_ROOT
from autograder.sandbox import bwrap_problem

SAMPLE_SUBMISSIONS = COURSE_DIR / "sample_class" / "submitted"
LIMITS = ["--cell-timeout", "10", "--notebook-timeout", "120"]


@pytest.fixture(scope="module", autouse=True)
def _bwrap_available():
    problem = bwrap_problem()
    if problem:
        skip_or_fail_missing("bubblewrap", "apt-get install -y bubblewrap", problem)


def grade_command(report, *extra: str) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", str(SAMPLE_SUBMISSIONS), "--report", str(report),
            *LIMITS, *extra]


@pytest.mark.parametrize("value, message", [
    ("0", "invalid number of workers: 0; it must be at least 1"),
    ("two", "invalid number of workers: 'two'; pass a whole number such as 2"),
])
def test_invalid_worker_count_named(tmp_path, value, message):
    result = subprocess.run(grade_command(tmp_path / "report", "--workers", value), cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr


def test_progress_bar_on_terminal(tmp_path):
    submissions = tmp_path / "submitted"
    (submissions / "ada_complete").mkdir(parents=True)
    for path in (SAMPLE_SUBMISSIONS / "ada_complete").rglob("*.ipynb"):
        target = submissions / path.relative_to(SAMPLE_SUBMISSIONS)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    command = [sys.executable, "-m", "autograder", "grade", str(submissions), "--report", str(tmp_path / "report"),
               *LIMITS]
    output = run_in_terminal(command, timeout=600)
    assert "Grading cnn_rnn" in output
    assert "2/2" in output
    assert "ada_complete  34/34" in output


def run_in_terminal(command: list[str], timeout: float) -> str:
    """Run command with a pseudo-terminal as its standard output and error; return what it printed."""
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide until its size is set, as a terminal window sets it.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL)
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace")
