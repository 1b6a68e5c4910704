"""Re-check every graded cell of a submission outside the student's kernel.

nbgrader runs the hidden test cells inside the student's kernel, where an answer cell can patch
numpy or the checks and fake a pass. recheck() runs the student's code cells in a separate
sandboxed process instead (autograder/trusted_runner.py, started through autograder.sandbox) and
runs the check functions of autograder.checks in the grader's own process. The checks see proxy
objects: calling, reading or setting an attribute of a proxy sends a request to the runner, and
only data come back (numpy arrays of a numeric or bool dtype, numbers, tuples and lists of them,
or a handle to another remote object). So the comparison with the reference package solutions and
every "Likely mistake" message run on the grader's numpy, which student code cannot reach.

Verdicts, one per test cell of the source notebook (nbgrader metadata grade=True, solution=False):

- a hidden test cell (its source contains "### BEGIN HIDDEN TESTS") passes when every call
  check_name(StudentName, "group") in its hidden region passes against the remote object that the
  student's namespace binds to StudentName. The calls run at the cell's position in the submitted
  notebook, after the code cells before it, as nbgrader runs them. Its message is the
  AssertionError text of the first failing call.
- a visible test cell named X_visible has no calls of its own: it passes when every hidden test
  cell named X_hidden_* passes. recheck raises ValueError if a visible cell has no such sibling,
  or if a test cell without hidden tests is not named X_visible.

A request that does not finish within call_timeout seconds, a runner that ends, and a reply that
is not valid all fail the current cell with a message that says so. The grader then kills the
runner and starts a new one for the next cell, which runs the code cells again. Running the cells
has its own budget, startup_timeout seconds per runner. When it runs out, or the runner ends while
it runs a cell, every later test cell fails with that reason, because a new runner would stop at
the same cell.
"""

from __future__ import annotations

import base64
import builtins
import io
import json
import logging
import math
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import numpy as np

from autograder import checks
from autograder.hidden_calls import CheckCall, has_hidden_tests, hidden_check_calls_in_cell
from autograder.sandbox import SANDBOX_UID, Sandbox

log = logging.getLogger(__name__)

RUNNER = Path(__file__).resolve().with_name("trusted_runner.py")
LENGTH = struct.Struct(">Q")  # the length prefix of every message, as in trusted_runner.py
MAX_REPLY_BYTES = 64 * 1024**2  # the checks' arrays take a few kilobytes
MAX_DEPTH = 20  # nesting of tuples and lists in a reply
MAX_ITEMS = 100_000  # items of all tuples and lists in one reply
MAX_DIMENSIONS = 32  # of an array in a reply
STOP_WAIT_SECONDS = 5  # for a runner to exit after its input is closed or it was killed
INTERRUPT_GRACE_SECONDS = 5  # for a cell to stop after the runner interrupts it at cell_timeout


class RunnerStartError(RuntimeError):
    """The runner process did not get ready. No student code has run by then, so the grader is at fault."""


class RemoteFailure(BaseException):
    """The runner timed out, ended or sent an invalid reply, so the current cell fails.

    It derives from BaseException so that the checks' "except Exception" around calls of student
    code does not report it as an error that the student's code raised.
    """


@dataclass
class CellVerdict:
    """The trusted result of one test cell."""

    grade_id: str
    passed: bool
    message: str  # why the cell failed, or "" when it passed
    calls: list[str] = field(default_factory=list)  # the check calls of a hidden test cell, as in its source


# ---------------------------------------------------------------------------------------------------
# Which cells run, and where the checks run


@dataclass
class _HiddenTestCell:
    grade_id: str
    calls: list[CheckCall]
    position: int = -1  # the number of code cells that run before it


@dataclass
class _Plan:
    cells: list[dict[str, str]]  # {"label", "source"} of each code cell to run, in order
    hidden: list[_HiddenTestCell]  # in the order in which their checks run
    visible: dict[str, list[str]]  # each visible test cell's hidden siblings
    test_ids: list[str]  # every test cell of the source notebook, in its order


def _nbgrader(cell: nbformat.NotebookNode) -> dict[str, Any]:
    metadata = cell.get("metadata", {}).get("nbgrader", {})
    return metadata if isinstance(metadata, dict) else {}


def _grade_id(cell: nbformat.NotebookNode) -> str | None:
    grade_id = _nbgrader(cell).get("grade_id")
    return grade_id if isinstance(grade_id, str) else None


def _is_test(cell: nbformat.NotebookNode) -> bool:
    metadata = _nbgrader(cell)
    return bool(metadata.get("grade")) and not metadata.get("solution")


def plan_notebook(submitted: nbformat.NotebookNode, source: nbformat.NotebookNode) -> _Plan:
    """Choose the code to run from the submission and the calls of each test cell from the source.

    Raises ValueError when the source's test cells do not follow the naming rule of the module
    docstring, or when a hidden region contains a line that is not a check call.
    """
    source_cells = {}
    for cell in source.cells:
        grade_id = _grade_id(cell)
        if grade_id is not None:
            source_cells.setdefault(grade_id, cell)

    hidden: dict[str, _HiddenTestCell] = {}
    visible_ids, test_ids = [], []
    for cell in source.cells:
        grade_id = _grade_id(cell)
        if grade_id is None or not _is_test(cell) or grade_id in test_ids:
            continue
        test_ids.append(grade_id)
        if has_hidden_tests(cell.source):
            calls = hidden_check_calls_in_cell(cell.source)
            if not calls:
                raise ValueError(f"the hidden test cell {grade_id} contains no check call")
            for call in calls:
                if call.check not in checks.GROUPS:
                    raise ValueError(f"the hidden test cell {grade_id} calls {call.check}, which autograder.checks "
                                     f"does not define. Checks: {', '.join(checks.GROUPS)}.")
            hidden[grade_id] = _HiddenTestCell(grade_id, calls)
        else:
            visible_ids.append(grade_id)

    visible = {}
    for grade_id in visible_ids:
        if not grade_id.endswith("_visible"):
            raise ValueError(f"the test cell {grade_id} has no hidden tests and its name does not end in _visible, "
                             "so the trusted re-check cannot grade it")
        prefix = grade_id[: -len("_visible")] + "_hidden_"
        siblings = [other for other in hidden if other.startswith(prefix)]
        if not siblings:
            raise ValueError(f"the visible test cell {grade_id} has no hidden test cell named {prefix}*, "
                             "whose result it takes")
        visible[grade_id] = siblings

    cells = []
    for index, cell in enumerate(submitted.cells):
        grade_id = _grade_id(cell)
        source_cell = source_cells.get(grade_id) if grade_id is not None else None
        if source_cell is not None and _is_test(source_cell):
            test = hidden.get(grade_id)
            if test is not None and test.position < 0:
                test.position = len(cells)
            continue
        if _is_test(cell):
            continue
        text, cell_type = cell.source, cell.cell_type
        if source_cell is not None:
            # As nbgrader's OverwriteCells: locked cells take the source's text and type, and
            # solution cells keep the student's text in the source's type.
            if _nbgrader(source_cell).get("solution"):
                cell_type = source_cell.cell_type
            elif _nbgrader(source_cell).get("locked"):
                text, cell_type = source_cell.source, source_cell.cell_type
        if cell_type == "code":
            cells.append({"label": grade_id or str(cell.get("id") or f"cell {index + 1}"), "source": text})

    for test in hidden.values():
        if test.position < 0:
            test.position = len(cells)
    order = sorted(hidden.values(), key=lambda test: test.position)
    return _Plan(cells, order, visible, test_ids)


# ---------------------------------------------------------------------------------------------------
# Public entry point


def recheck(
    submitted: nbformat.NotebookNode,
    source: nbformat.NotebookNode,
    assignment_dir: Path,
    workdir: Path,
    sandbox_mode: str = "auto",
    call_timeout: float = 10,
    startup_timeout: float = 120,
    cell_timeout: float | None = None,
    notebook_timeout: float | None = None,
    hidden: list[Path] | None = None,
    sandbox_uid: int = SANDBOX_UID,
) -> dict[str, CellVerdict]:
    """Re-check every test cell of source against the code of submitted, run in a sandbox.

    submitted is the student's notebook with deleted cells restored, source the course's source
    notebook with the hidden tests. The non-notebook files of assignment_dir (coursekit/, weights/)
    are copied into workdir, the runner's working folder, which should be new and empty. Returns
    one CellVerdict per test cell of source, in the notebook's order.

    Time limits, in seconds: each request on a student object gets call_timeout, and running the
    code cells gets startup_timeout per runner. The runner interrupts a cell after cell_timeout, as
    nbgrader interrupts a kernel, and the next cell runs. Once notebook_timeout has passed since
    the start, every remaining test cell fails. hidden names folders that the sandbox shows empty,
    such as the gradebook's and other students' folders. sandbox_uid is the user that the student's
    code runs as when the grader runs as root.

    Raises ValueError for a source notebook that breaks the rules of the module docstring,
    RuntimeError when the package solutions cannot be imported, RunnerStartError when the runner
    process does not start, and SandboxUnavailable when sandbox_mode is "require" and bwrap
    cannot run.
    """
    plan = plan_notebook(submitted, source)
    checks._import_solutions()  # fail once here, not in every cell, when the reference is missing
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _copy_assignment_files(Path(assignment_dir), workdir)

    verdicts: dict[str, CellVerdict] = {}
    cells_folder = Path(tempfile.mkdtemp(prefix="trusted-cells-", dir=workdir.parent))
    try:
        cells_file = cells_folder / "cells.json"
        cells_file.write_text(json.dumps({"cells": plan.cells, "cell_timeout": cell_timeout}), encoding="utf-8")
        # The sandbox user (uid 65534 or another unprivileged id, when the grader is root) reads this file.
        os.chmod(cells_folder, 0o755)
        os.chmod(cells_file, 0o644)
        sandbox = Sandbox(workdir=workdir, readable=[RUNNER, cells_file], hidden=list(hidden or []),
                          mode=sandbox_mode, uid=sandbox_uid)
        sandbox.prepare()
        session = RemoteSession(sandbox, cells_file, [cell["label"] for cell in plan.cells], call_timeout,
                                startup_timeout, cell_timeout, notebook_timeout)
        try:
            for test in plan.hidden:
                verdicts[test.grade_id] = _check_hidden_cell(session, test)
        finally:
            session.close()
    finally:
        shutil.rmtree(cells_folder, ignore_errors=True)

    for grade_id, siblings in plan.visible.items():
        verdicts[grade_id] = _visible_verdict(grade_id, [verdicts[sibling] for sibling in siblings])
    return {grade_id: verdicts[grade_id] for grade_id in plan.test_ids}


def _copy_assignment_files(assignment_dir: Path, workdir: Path) -> None:
    """Copy every file of the assignment folder except notebooks, such as coursekit/ and weights/."""
    if not assignment_dir.is_dir():
        raise FileNotFoundError(f"assignment folder not found: {assignment_dir}")
    ignored = shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__")
    for path in assignment_dir.iterdir():
        if ignored(str(assignment_dir), [path.name]):
            continue
        if path.is_dir():
            shutil.copytree(path, workdir / path.name, ignore=ignored, dirs_exist_ok=True)
        else:
            shutil.copy2(path, workdir / path.name)


def _check_hidden_cell(session: RemoteSession, test: _HiddenTestCell) -> CellVerdict:
    calls = [str(call) for call in test.calls]
    if time.monotonic() >= session.notebook_deadline:
        return CellVerdict(test.grade_id, False, session.notebook_timeout_message(), calls)
    try:
        session.run_until(test.position)
    except RemoteFailure as failure:
        return CellVerdict(test.grade_id, False, str(failure), calls)

    for call in test.calls:
        message = _run_check(session, call)
        if message is not None:
            return CellVerdict(test.grade_id, False, message, calls)
    return CellVerdict(test.grade_id, True, "", calls)


def _run_check(session: RemoteSession, call: CheckCall) -> str | None:
    """Run one check call against the remote object; return the failure message, or None if it passed."""
    check = getattr(checks, call.check)
    try:
        student_object = session.lookup(call.name)
        check(student_object, call.group)
    except RemoteFailure as failure:
        session.kill()
        return str(failure)
    except AssertionError as err:
        return str(err)
    except Exception as err:  # the check itself raised, as when the student's name is missing
        message = f"{type(err).__name__}: {err}"
        if isinstance(err, NameError) and session.cell_errors:
            label, error = list(session.cell_errors.items())[-1]
            message += f". The last cell of your notebook that raised an error before this test was {label}: {error}"
        return message
    return None


def _visible_verdict(grade_id: str, hidden: list[CellVerdict]) -> CellVerdict:
    failed = [verdict for verdict in hidden if not verdict.passed]
    if not failed:
        return CellVerdict(grade_id, True, "", [])
    names = ", ".join(verdict.grade_id for verdict in failed)
    return CellVerdict(
        grade_id, False,
        f"A visible test passes only when the hidden tests of its exercise pass, and {names} failed: "
        f"{failed[0].message}",
        [],
    )


# ---------------------------------------------------------------------------------------------------
# The runner process and its protocol


class RemoteSession:
    """One runner process at a time, restarted after a failure, and the requests sent to it."""

    def __init__(self, sandbox: Sandbox, cells_file: Path, cell_labels: list[str], call_timeout: float,
                 startup_timeout: float, cell_timeout: float | None = None,
                 notebook_timeout: float | None = None) -> None:
        self.sandbox = sandbox
        self.cells_file = cells_file
        self.cell_labels = cell_labels
        self.call_timeout = call_timeout
        self.startup_timeout = startup_timeout
        self.cell_timeout = cell_timeout
        self.notebook_timeout = notebook_timeout
        self.notebook_deadline = time.monotonic() + notebook_timeout if notebook_timeout else math.inf
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0  # counts runner starts, so that a proxy of an earlier runner is rejected
        self.cells_run = 0
        self.cell_errors: dict[str, str] = {}  # errors of the cells run so far, by cell label, the latest last
        self.stopped = ""  # why no runner can run the cells any more
        self.startup_deadline = 0.0
        self._buffer = bytearray()

    # Process

    def start(self) -> None:
        command = self.sandbox.wrap([sys.executable, str(RUNNER), str(self.cells_file)])
        self.generation += 1
        self.cells_run = 0
        self._buffer = bytearray()
        self.startup_deadline = time.monotonic() + self.startup_timeout
        log.debug("starting runner %d: %s", self.generation, " ".join(command))
        # The runner points its stderr at /dev/null as soon as it starts, so this file gets only
        # what bwrap and Python write before that, such as why the sandbox could not start.
        stderr_path = self.cells_file.with_name(f"runner-{self.generation}.stderr")
        with open(stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                command, env=self.sandbox.env(), cwd=self.sandbox.workdir, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr, start_new_session=True,
            )
        for stream in (self.process.stdin, self.process.stdout):
            os.set_blocking(stream.fileno(), False)
        what = "the start of Python and IPython"
        try:
            ready = self._receive(self.startup_deadline, what, self._startup_timeout_message(what))
            if ready.get("ready") is not True:
                raise RemoteFailure(f"The process for your code could not start: {_text(ready.get('message'))}")
        except RemoteFailure as failure:
            self.kill()
            output = stderr_path.read_bytes()[-2000:].decode("utf-8", "replace").strip()
            log.error("runner %d failed to start. Its stderr ends with: %s", self.generation, output)
            raise RunnerStartError(f"the re-check process did not start ({failure}). Its last error output: "
                                   f"{output[-500:] or 'none'}") from None

    def kill(self) -> None:
        """Kill the runner and everything it started (its process group, and the sandbox through bwrap)."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            process.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            log.error("runner process %d did not exit after SIGKILL", process.pid)
        _close_pipes(process)
        log.debug("stopped runner %d (exit code %s)", self.generation, process.returncode)

    def close(self) -> None:
        """Let the runner exit by closing its input, and kill it if it does not."""
        process = self.process
        if process is None:
            return
        try:
            process.stdin.close()
            process.wait(timeout=STOP_WAIT_SECONDS)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    # Cells

    def run_until(self, position: int) -> None:
        """Run the code cells before position in the runner, starting a runner when none is running."""
        if self.stopped:
            raise RemoteFailure(self.stopped)
        if self.process is not None and self.process.poll() is not None:
            # It ended after the last request, as a thread of the student's code can make it.
            self.kill()
        try:
            if self.process is None:
                self.start()
            while self.cells_run < position:
                label = self.cell_labels[self.cells_run]
                what = f"the cell {label}"
                deadline, timeout_message = self._cell_deadline(what)
                reply = self._request({"op": "run", "until": self.cells_run + 1}, deadline, what, timeout_message)
                self._record_cell_errors(reply, what)
                self.cells_run += 1
        except RemoteFailure as failure:
            self.kill()
            self.stopped = str(failure)
            raise

    def _cell_deadline(self, what: str) -> tuple[float, str]:
        """Return when running the next cell times out, and the message that gives the reason."""
        deadlines = [(self.startup_deadline, self._startup_timeout_message(what))]
        if self.notebook_timeout:
            deadlines.append((self.notebook_deadline, self.notebook_timeout_message()))
        if self.cell_timeout:
            deadlines.append((time.monotonic() + self.cell_timeout + INTERRUPT_GRACE_SECONDS,
                              f"{what[0].upper()}{what[1:]} did not stop within {INTERRUPT_GRACE_SECONDS} s of its "
                              f"interrupt after {self.cell_timeout:g} s, so the grader stopped the process running "
                              "your code."))
        return min(deadlines, key=lambda deadline: deadline[0])

    def notebook_timeout_message(self) -> str:
        return (f"The re-check of your notebook used up its time budget of {self.notebook_timeout:g} s before this "
                "test.")

    def _startup_timeout_message(self, what: str) -> str:
        return (f"Running your notebook's code did not finish within {self.startup_timeout:g} s ({what} was "
                "running), so the grader stopped the process running your code.")

    def _record_cell_errors(self, reply: dict[str, Any], what: str) -> None:
        results = reply.get("cells")
        if not isinstance(results, list):
            raise self._invalid(what, "the reply has no list of cells")
        for result in results:
            if not isinstance(result, dict) or not isinstance(result.get("index"), int):
                raise self._invalid(what, "a cell result is not an object with an index")
            error = result.get("error")
            if error is not None and 0 <= result["index"] < len(self.cell_labels):
                exception = _remote_exception(error, what, self)
                label = self.cell_labels[result["index"]]
                self.cell_errors.pop(label, None)  # so that the last error comes last
                self.cell_errors[label] = f"{type(exception).__name__}: {exception}"

    # Requests on remote objects

    def lookup(self, name: str) -> Any:
        reply = self._call_request({"op": "lookup", "name": name}, f"the lookup of {name}")
        return self._result(reply, name, f"the lookup of {name}")

    def get_attribute(self, proxy: RemoteObject, name: str) -> Any:
        label = f"{_label(proxy)}.{name}"
        reply = self._call_request({"op": "getattr", "handle": self._handle(proxy), "name": name}, f"reading {label}")
        return self._result(reply, label, f"reading {label}")

    def set_attribute(self, proxy: RemoteObject, name: str, value: Any) -> None:
        label = f"{_label(proxy)}.{name}"
        request = {"op": "setattr", "handle": self._handle(proxy), "name": name, "value": self._encode(value)}
        reply = self._call_request(request, f"setting {label}")
        self._result(reply, label, f"setting {label}")

    def call(self, proxy: RemoteObject, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        label = _label(proxy)
        what = f"the call {label}(...)"
        request = {"op": "call", "handle": self._handle(proxy), "args": [self._encode(arg) for arg in args],
                   "kwargs": {name: self._encode(value) for name, value in kwargs.items()}}
        reply = self._call_request(request, what)
        result = self._result(reply, label, what)
        self._write_back(reply, args, what)
        return result

    def _call_request(self, message: dict[str, Any], what: str) -> dict[str, Any]:
        if self.process is None:
            raise RemoteFailure(f"The process running your code was stopped before {what}.")
        timeout_message = (f"{what[0].upper()}{what[1:]} did not finish within {self.call_timeout:g} s, so the "
                           "grader stopped the process running your code.")
        deadline = time.monotonic() + self.call_timeout
        if self.notebook_deadline < deadline:
            deadline, timeout_message = self.notebook_deadline, self.notebook_timeout_message()
        return self._request(message, deadline, what, timeout_message)

    def _handle(self, proxy: RemoteObject) -> int:
        handle, generation = object.__getattribute__(proxy, "_handle"), object.__getattribute__(proxy, "_generation")
        if generation != self.generation or self.process is None:
            raise RemoteFailure("The process running your code was restarted, so an object of the earlier process "
                                "is gone.")
        return handle

    def _result(self, reply: dict[str, Any], label: str, what: str) -> Any:
        """Return the decoded value of a reply, or raise the exception that the student's code raised."""
        if reply.get("ok") is True:
            return self._decode(reply.get("value"), label, what, 0, [MAX_ITEMS])
        if "error" in reply:
            raise _remote_exception(reply["error"], what, self)
        raise self._invalid(what, "the reply has neither a value nor an error")

    def _write_back(self, reply: dict[str, Any], args: tuple[Any, ...], what: str) -> None:
        """Copy the new values of array arguments that the student's code changed in place into the local arrays.

        The checks compare their copies of the inputs with the originals after each call, as in the kernel.
        """
        changed = reply.get("changed", {})
        if not isinstance(changed, dict):
            raise self._invalid(what, "the changed arguments are not an object")
        for key, value in changed.items():
            if not (isinstance(key, str) and key.isdigit() and int(key) < len(args)):
                raise self._invalid(what, f"invalid argument position {key!r}")
            local = args[int(key)]
            new = self._decode(value, "", what, 0, [MAX_ITEMS])
            if not isinstance(local, np.ndarray) or not isinstance(new, np.ndarray):
                raise self._invalid(what, f"argument {key} was not an array")
            if new.shape == local.shape and new.dtype == local.dtype:
                local[...] = new
            elif local.dtype.kind in "fc":
                # NOTE: the kernel's check would name the new shape or dtype. Here the local array
                # keeps its shape, and NaN makes the check report the change as an inf difference.
                local[...] = np.nan
            else:
                np.add(local, 1, out=local, casting="unsafe")

    def _request(self, message: dict[str, Any], deadline: float, what: str, timeout_message: str) -> dict[str, Any]:
        try:
            self._send(message, deadline, what, timeout_message)
            reply = self._receive(deadline, what, timeout_message)
        except RemoteFailure:
            self.kill()
            raise
        if "protocol_error" in reply:
            self.kill()
            raise self._invalid(what, f"the runner rejected the request: {_text(reply['protocol_error'])}")
        return reply

    def _send(self, message: dict[str, Any], deadline: float, what: str, timeout_message: str) -> None:
        body = json.dumps(message).encode("utf-8")
        data = memoryview(LENGTH.pack(len(body)) + body)
        fd = self.process.stdin.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        while data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RemoteFailure(timeout_message)
            if not poller.poll(math.ceil(remaining * 1000)):
                continue
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise self._ended(what) from None
            data = data[written:]

    def _receive(self, deadline: float, what: str, timeout_message: str) -> dict[str, Any]:
        header = self._read_exact(LENGTH.size, deadline, what, timeout_message)
        (length,) = LENGTH.unpack(header)
        if length > MAX_REPLY_BYTES:
            raise self._invalid(what, f"a reply of {length} bytes is larger than the limit of {MAX_REPLY_BYTES}")
        body = self._read_exact(length, deadline, what, timeout_message)
        try:
            reply = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as err:
            raise self._invalid(what, f"the reply is not JSON ({err})") from None
        if not isinstance(reply, dict):
            raise self._invalid(what, "the reply is not a JSON object")
        return reply

    def _read_exact(self, size: int, deadline: float, what: str, timeout_message: str) -> bytes:
        fd = self.process.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RemoteFailure(timeout_message)
            if not poller.poll(math.ceil(remaining * 1000)):
                continue
            try:
                chunk = os.read(fd, max(65536, min(size - len(self._buffer), 1024**2)))
            except BlockingIOError:
                continue
            if not chunk:
                raise self._ended(what)
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _ended(self, what: str) -> RemoteFailure:
        process = self.process
        try:
            code = process.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            return RemoteFailure(f"During {what}, the process running your code closed its output without ending.")
        if code < 0:
            try:
                ending = f"signal {signal.Signals(-code).name}"
            except ValueError:
                ending = f"signal {-code}"
        else:
            ending = f"exit code {code}"
        return RemoteFailure(f"During {what}, the process running your code ended ({ending}).")

    def _invalid(self, what: str, detail: str) -> RemoteFailure:
        log.warning("invalid reply from runner %d during %s: %s", self.generation, what, detail)
        return RemoteFailure(f"During {what}, the process running your code sent an invalid reply: {detail}.")

    # Values

    def _encode(self, value: Any) -> dict[str, Any]:
        """Convert an argument for the runner. The checks pass arrays, numbers, tuples, lists and proxies."""
        if value is None:
            return {"t": "none"}
        if isinstance(value, RemoteObject):
            return {"t": "handle", "id": self._handle(value)}
        if isinstance(value, (bool, np.bool_)):
            return {"t": "bool", "v": bool(value)}
        if isinstance(value, np.ndarray):
            return {"t": "array", "npy": _npy_text(value)}
        if isinstance(value, np.generic):
            return {"t": "scalar", "npy": _npy_text(np.asarray(value))}
        if isinstance(value, int):
            return {"t": "int", "v": str(value)}
        if isinstance(value, float):
            return {"t": "float", "v": value.hex()}
        if isinstance(value, (tuple, list)):
            return {"t": "tuple" if isinstance(value, tuple) else "list", "items": [self._encode(item) for item in value]}
        raise TypeError(f"cannot send a value of type {type(value).__name__} to the student's process")

    def _decode(self, value: Any, label: str, what: str, depth: int, items_left: list[int]) -> Any:
        """Convert a value of a reply, raising RemoteFailure for anything that does not follow the protocol."""
        if not isinstance(value, dict) or not isinstance(value.get("t"), str):
            raise self._invalid(what, "a value is not an object with a kind")
        kind = value["t"]
        try:
            if kind == "none":
                return None
            if kind == "bool" and isinstance(value.get("v"), bool):
                return value["v"]
            if kind == "int" and isinstance(value.get("v"), str) and len(value["v"]) <= 4000:
                return int(value["v"])
            if kind == "float" and isinstance(value.get("v"), str) and len(value["v"]) <= 40:
                return float.fromhex(value["v"])
            if kind in ("array", "scalar"):
                array = _load_npy(value.get("npy"))
                if kind == "array":
                    return array
                if array.ndim != 0:
                    raise ValueError("a scalar is not a 0-d array")
                return array[()]
            if kind == "other_array":
                return _placeholder_array(value.get("shape"), value.get("dtype"))
            if kind in ("tuple", "list") and isinstance(value.get("items"), list) and depth < MAX_DEPTH:
                items_left[0] -= len(value["items"])
                if items_left[0] < 0:
                    raise ValueError(f"more than {MAX_ITEMS} items")
                items = [self._decode(item, f"{label}[{k}]", what, depth + 1, items_left)
                         for k, item in enumerate(value["items"])]
                return tuple(items) if kind == "tuple" else items
            if kind == "handle" and isinstance(value.get("id"), int) and isinstance(value.get("callable"), bool):
                proxy_class = _proxy_class(_text(value.get("type"), 100), value["callable"])
                return proxy_class(self, value["id"], self.generation, label)
        except (ValueError, TypeError, OverflowError, MemoryError, OSError, EOFError) as err:
            raise self._invalid(what, f"a value of kind {kind!r} is not valid ({err})") from None
        raise self._invalid(what, f"a value of kind {kind!r} is not valid")


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        try:
            stream.close()
        except OSError:
            pass


def _npy_text(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _load_npy(text: Any) -> np.ndarray:
    """Read an array of a numeric or bool dtype from base64 .npy text, checking its header first.

    Raises ValueError for anything else, such as an object dtype or a header whose shape does
    not match the data, before numpy allocates the array.
    """
    if not isinstance(text, str):
        raise ValueError("the array data are not text")
    data = base64.b64decode(text, validate=True)
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValueError(f"unsupported .npy version {version}")
    if dtype.kind not in "biufc" or dtype.hasobject or len(shape) > MAX_DIMENSIONS:
        raise ValueError(f"an array of dtype {dtype} and {len(shape)} dimensions is not allowed")
    if len(data) - stream.tell() != dtype.itemsize * math.prod(shape):
        raise ValueError("the array data do not match the shape in the header")
    array = np.load(io.BytesIO(data), allow_pickle=False)
    return np.array(array, copy=True)


def _placeholder_array(shape: Any, dtype_text: Any) -> np.ndarray:
    """Stand in for a remote array of a non-numeric dtype: its shape and dtype, without its data.

    The checks only report the dtype of such an array, so a read-only broadcast of one value is
    enough and takes no memory.
    """
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMENSIONS
            and all(isinstance(size, int) and 0 <= size <= 2**31 for size in shape)):
        raise ValueError("invalid shape")
    try:
        dtype = np.dtype(_text(dtype_text, 100))
    except (TypeError, ValueError):
        dtype = np.dtype(object)
    if dtype.kind in "biufc" or dtype.fields is not None:
        dtype = np.dtype(object)
    fill = np.full((), np.nan, dtype=object) if dtype == object else np.zeros((), dtype=dtype)
    return np.broadcast_to(fill, tuple(shape))


def _text(value: Any, limit: int = 2000) -> str:
    """Return a reply's text cut to limit characters and safe to print, or "" when it is not text."""
    if not isinstance(value, str):
        return ""
    text = value if len(value) <= limit else value[:limit] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------------------------------------------
# Proxies and exceptions


class RemoteObject:
    """An object in the student's process: attribute reads and writes become requests.

    Special names such as __array__ are not forwarded, except __name__, so that Python and numpy
    probing for special methods get AttributeError instead of running student code.
    """

    __slots__ = ("_session", "_handle", "_generation", "_label")

    def __init__(self, session: RemoteSession, handle: int, generation: int, label: str) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_generation", generation)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name != "__name__":
            raise AttributeError(name)
        return object.__getattribute__(self, "_session").get_attribute(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__getattribute__(self, "_session").set_attribute(self, name, value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} in the student's process>"


class RemoteCallable(RemoteObject):
    """A callable object in the student's process, such as a class, a function or a bound method."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return object.__getattribute__(self, "_session").call(self, args, kwargs)


_PROXY_CLASSES: dict[tuple[str, bool], type] = {}


def _proxy_class(type_name: str, is_callable: bool) -> type:
    """Return a proxy class named like the remote object's type, so that messages name that type."""
    name = type_name if type_name.isidentifier() else "object"
    key = (name, is_callable)
    if key not in _PROXY_CLASSES:
        base = RemoteCallable if is_callable else RemoteObject
        _PROXY_CLASSES[key] = type(name, (base,), {"__slots__": (), "__module__": __name__})
    return _PROXY_CLASSES[key]


def _label(proxy: RemoteObject) -> str:
    return object.__getattribute__(proxy, "_label") or type(proxy).__name__


_EXCEPTION_CLASSES: dict[str, type] = {}


def _remote_exception(error: Any, what: str, session: RemoteSession) -> Exception:
    """Re-create an exception that the student's code raised in the runner.

    The type is the builtin exception of that name when there is one that derives from Exception
    (NotImplementedError, ValueError), so isinstance tests hold, and otherwise a new subclass of
    Exception with that name. str() gives the remote message, and the attribute student_frame the
    last frame inside the student's cells, which checks._raising_line reports.
    """
    if not isinstance(error, dict) or not isinstance(error.get("type"), str):
        raise session._invalid(what, "an error is not an object with a type")
    name = _text(error["type"], 100)
    if not name.isidentifier():
        name = "Exception"
    message = _text(error.get("message"))
    base = getattr(builtins, name, None)
    if not (error.get("is_exception") is True and isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    if name not in _EXCEPTION_CLASSES or _EXCEPTION_CLASSES[name].__bases__ != (base,):
        _EXCEPTION_CLASSES[name] = type(name, (base,), {"__str__": _remote_message, "__module__": __name__})
    exception_class = _EXCEPTION_CLASSES[name]

    exception = exception_class.__new__(exception_class)
    exception.args = (message,)
    exception.remote_message = message
    exception.student_frame = _frame_summary(error.get("frame"))
    return exception


def _remote_message(exception: BaseException) -> str:
    return exception.remote_message


def _frame_summary(frame: Any) -> traceback.FrameSummary | None:
    if not (isinstance(frame, dict) and isinstance(frame.get("lineno"), int)):
        return None
    return traceback.FrameSummary("<cell>", frame["lineno"], _text(frame.get("function"), 200),
                                  lookup_line=False, line=_text(frame.get("text")))
