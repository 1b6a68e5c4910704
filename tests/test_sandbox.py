"""The bubblewrap sandbox keeps student code away from the network, hidden files and the machine's resources.

Each test runs a short Python program through Sandbox.wrap with the real bwrap, prlimit and
setpriv, and reads what the program printed. Without bwrap these tests skip, and in CI they fail.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import skip_or_fail_missing

from autograder.course import REPO_ROOT
from autograder.sandbox import Limits, Sandbox, bwrap_problem, claim_sandbox_uids


@pytest.fixture(autouse=True)
def _bwrap_available():
    problem = bwrap_problem()
    if problem:
        skip_or_fail_missing("bubblewrap", "apt-get install -y bubblewrap", problem)


def run_in(sandbox: Sandbox, program: str, timeout: float = 60) -> subprocess.CompletedProcess:
    sandbox.prepare()
    command = sandbox.wrap([sys.executable, "-c", textwrap.dedent(program)])
    return subprocess.run(command, env=sandbox.env(), cwd=sandbox.workdir, capture_output=True, text=True,
                          timeout=timeout)


def test_python_runs_and_writes_its_working_folder(tmp_path):
    result = run_in(Sandbox(workdir=tmp_path / "work", mode="require"), """
        import numpy, pathlib
        pathlib.Path("out.txt").write_text(str(numpy.arange(3).sum()))
        print("ok")
    """)
    assert result.stdout.strip() == "ok", result.stderr
    assert (tmp_path / "work" / "out.txt").read_text() == "3"


def test_loopback_port_of_the_grader_is_unreachable(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        result = run_in(Sandbox(workdir=tmp_path / "work", mode="require"), f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5)
                print("connected")
            except OSError as err:
                print("refused", type(err).__name__)
        """)
    assert result.stdout.startswith("refused"), result.stdout + result.stderr


def test_hidden_folders_and_repository_are_empty(tmp_path):
    secret = tmp_path / "gradebook"
    secret.mkdir()
    (secret / "gradebook.db").write_text("scores")
    result = run_in(Sandbox(workdir=tmp_path / "work", hidden=[secret], mode="require"), f"""
        import os
        print(os.path.exists({str(secret / "gradebook.db")!r}))
        print(os.path.exists({str(REPO_ROOT / "solutions" / "conv.py")!r}))
    """)
    assert result.stdout.split("\n")[:2] == ["False", "False"], result.stdout + result.stderr


def test_readable_path_is_read_only(tmp_path):
    shared = tmp_path / "coursekit"
    shared.mkdir()
    (shared / "layers.py").write_text("x = 1\n")
    result = run_in(Sandbox(workdir=tmp_path / "work", readable=[shared], mode="require"), f"""
        from pathlib import Path
        path = Path({str(shared / "layers.py")!r})
        print(path.read_text().strip())
        try:
            path.write_text("x = 2")
            print("written")
        except OSError as err:
            print("denied", type(err).__name__)
    """)
    assert result.stdout.split("\n")[:2] == ["x = 1", "denied PermissionError"] or \
        result.stdout.split("\n")[:2] == ["x = 1", "denied OSError"], result.stdout + result.stderr
    assert (shared / "layers.py").read_text() == "x = 1\n"


def test_memory_limit_stops_a_large_allocation(tmp_path):
    limits = Limits(memory_bytes=1024**3)
    result = run_in(Sandbox(workdir=tmp_path / "work", limits=limits, mode="require"), """
        import numpy as np
        try:
            block = np.ones(4 * 1024**3 // 8)
            print("allocated", block.nbytes)
        except MemoryError:
            print("MemoryError")
    """)
    assert result.stdout.strip() == "MemoryError", result.stdout + result.stderr


def test_process_limit_bounds_a_fork_loop(tmp_path):
    limits = Limits(processes=20)
    result = run_in(Sandbox(workdir=tmp_path / "work", limits=limits, mode="require"), """
        import os, time
        children = []
        for _ in range(200):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children.append(pid)
        print(len(children))
        for pid in children:
            os.kill(pid, 9)
    """)
    started = int(result.stdout.strip())
    assert 0 < started < 20, result.stdout + result.stderr


def test_shared_folder_is_never_handed_over(tmp_path):
    sandbox = Sandbox(workdir=tmp_path / "work", writable=[Path("/tmp")], mode="require")
    with pytest.raises(ValueError, match="shared folder /tmp"):
        sandbox.prepare()
    assert Path("/tmp").stat().st_uid == 0 or Path("/tmp").stat().st_uid == Path.home().stat().st_uid


def test_invalid_mode_names_the_choices(tmp_path):
    with pytest.raises(ValueError, match="'strict'.*auto, require, off"):
        Sandbox(workdir=tmp_path, mode="strict")


def test_claimed_uids_are_not_given_twice():
    first, first_locks = claim_sandbox_uids(2)
    try:
        second, second_locks = claim_sandbox_uids(2)
        try:
            assert len(set(first + second)) == 4
        finally:
            for lock in second_locks:
                lock.close()
    finally:
        for lock in first_locks:
            lock.close()
    again, again_locks = claim_sandbox_uids(1)
    for lock in again_locks:
        lock.close()
    assert again == [first[0]]  # released when its lock file was closed


def test_too_many_workers_named():
    with pytest.raises(ValueError, match="only .* of the 1000 sandbox user ids"):
        claim_sandbox_uids(1000)
