"""The long-lived nbgrader worker of the grading pipeline: commands, failures and restarts."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from autograder.course import REPO_ROOT
from autograder.nbgrader_worker import NbgraderWorker
from probe_class import ASSIGNMENT, PROBE_COURSE


def worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "probe_course"
    shutil.copytree(PROBE_COURSE, root)
    return root


def test_generate_assignment_runs(course, tmp_path):
    worker = NbgraderWorker(course, worker_environment(), tmp_path / "worker.log")
    try:
        result = worker.run("generate_assignment", ASSIGNMENT, timeout=120)
        assert result.success, result.output
        assert (course / "release" / ASSIGNMENT / "probe.ipynb").exists()
        first_process = worker.process.pid
        again = worker.run("generate_assignment", ASSIGNMENT, timeout=120)
        assert again.success, again.output
        assert worker.process.pid == first_process, "the second command started a new process"
    finally:
        worker.stop()


def test_unknown_command_rejected(course, tmp_path):
    worker = NbgraderWorker(course, worker_environment(), tmp_path / "worker.log")
    try:
        result = worker.run("collect", ASSIGNMENT, timeout=120)
        assert not result.success
        assert "unknown command 'collect'" in result.output
    finally:
        worker.stop()


def test_startup_failure_reported(tmp_path):
    empty = tmp_path / "no_course"
    empty.mkdir()
    worker = NbgraderWorker(empty, worker_environment(), tmp_path / "worker.log")
    try:
        result = worker.run("generate_assignment", ASSIGNMENT, timeout=120)
        assert not result.success
        assert "the nbgrader worker exited with code 1 during generate_assignment" in result.output
        assert "nbgrader_config.py" in result.output, "the reason from the worker's log is missing"
    finally:
        worker.stop()


def test_killed_worker_restarts(course, tmp_path):
    worker = NbgraderWorker(course, worker_environment(), tmp_path / "worker.log")
    try:
        results = []
        running = threading.Thread(target=lambda: results.append(worker.run("generate_assignment", ASSIGNMENT,
                                                                            timeout=120)))
        running.start()
        deadline = time.monotonic() + 30
        while worker.process is None and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.kill()
        running.join(timeout=60)
        assert not results[0].success
        assert "exited with code -9" in results[0].output

        retry = worker.run("generate_assignment", ASSIGNMENT, timeout=120)
        assert retry.success, retry.output
    finally:
        worker.stop()
