"""Generate the student release (``course/release/``) from the source notebooks."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .course import COURSE_DIR, RELEASE_DIR, list_assignments

log = logging.getLogger("autograder")


def nbgrader_env() -> dict[str, str]:
    """Return the environment nbgrader commands need: the venv's bin folder on PATH, for `alembic`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def generate_release(course_dir: Path, assignment: str) -> subprocess.CompletedProcess:
    """Run ``nbgrader generate_assignment`` without a gradebook in ``course_dir``."""
    shutil.rmtree(course_dir / "release" / assignment, ignore_errors=True)
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--no-db"],
        cwd=course_dir, env=nbgrader_env(), capture_output=True, text=True,
    )


def release_assignments(course_dir: Path = COURSE_DIR) -> int:
    """Regenerate ``release/<assignment>/`` for every assignment; return a process exit code."""
    for assignment in list_assignments(course_dir / "source"):
        result = generate_release(course_dir, assignment)
        if result.returncode != 0:
            print(result.stderr, file=sys.stderr)
            print(f"error: nbgrader generate_assignment {assignment} failed (output above). Fix the source "
                  f"notebook it names and run `make release` again.", file=sys.stderr)
            return 1
        log.info("Released %s to %s", assignment, RELEASE_DIR / assignment)
    return 0
