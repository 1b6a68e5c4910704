"""A long-lived nbgrader process that runs one command after another for the grading pipeline.

Starting Python and importing nbgrader takes about 2 s (measured on a 2-core x86-64 machine),
which a new `nbgrader autograde` process per student would pay again and again. A worker
imports nbgrader once and then runs
generate_assignment, autograde and generate_feedback through nbgrader's own Python API
(nbgrader.apps.NbGraderAPI), in the workspace course, one request at a time.

Student code never runs in this process: nbgrader runs it in a kernel, a separate sandboxed
process (autograder/kernel_launcher.py). A request may still crash the worker, for example
when nbgrader runs out of memory on a huge notebook. NbgraderWorker then reports the request as
failed and starts a new process for the next one.

Protocol: one JSON request per line on the worker's standard input, one JSON reply per line on
the file descriptor given as its argument. The worker's standard error, with nbgrader's log,
goes to a log file of the pipeline's.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("autograder")

COMMANDS = ("generate_assignment", "autograde", "generate_feedback")
LOG_TAIL_LINES = 20  # lines of a lost worker's log that its failed command reports
REQUEST_MARKER = "--- autograder request: "  # starts the worker's log of each request


@dataclass
class CommandResult:
    """The outcome of one nbgrader command: whether it succeeded and what nbgrader logged."""

    success: bool
    output: str  # nbgrader's log of the command, then the traceback of any error
    timed_out: bool = False  # the command took longer than its timeout and was stopped


class NbgraderWorker:
    """The grader's side of one worker process, started on the first request."""

    def __init__(self, course_root: Path, environment: dict[str, str], log_file: Path):
        self.course_root = course_root
        self.environment = environment
        self.log_file = log_file
        self.process: subprocess.Popen | None = None
        self.replies: int | None = None  # file descriptor of the read end of the reply pipe
        self.lock = threading.Lock()

    def start(self) -> None:
        reply_read, reply_write = os.pipe()
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "autograder.nbgrader_worker", str(reply_write)],
                cwd=self.course_root, env=self.environment, stdin=subprocess.PIPE, stdout=stderr, stderr=stderr,
                pass_fds=(reply_write,))
        os.close(reply_write)
        self.replies = reply_read

    def run(self, command: str, assignment: str, student: str = "", timeout: float = 600,
            environment: dict[str, str] | None = None, runtime_dir: Path | None = None,
            notebook: str = "") -> CommandResult:
        """Run one nbgrader command in the worker and return its result.

        With notebook (a name without .ipynb), the command processes that notebook only, and
        leaves the student's other notebooks of the assignment as they are.

        environment is added to the worker's environment for this command only; the kernels that
        it starts inherit it. Kernel connection files and sockets go to runtime_dir. When the
        command takes longer than timeout seconds, or the worker dies, the worker is stopped and
        the result reports it.
        """
        request = {"command": command, "assignment": assignment, "student": student, "notebook": notebook,
                   "environment": environment or {}, "runtime_dir": str(runtime_dir) if runtime_dir else ""}
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.start()
            assert self.process.stdin is not None
            try:
                self.process.stdin.write((json.dumps(request) + "\n").encode())
                self.process.stdin.flush()
            except BrokenPipeError:
                return self._lost(f"the nbgrader worker exited before {command} started")
            try:
                reply = self._read_reply(timeout)
            except EOFError:
                # The pipe closes as the process ends, a moment before its exit code can be read.
                code = self.process.wait()
                return self._lost(f"the nbgrader worker exited with code {code} during {command}")
            if reply is None:
                log.error("nbgrader %s timed out after %.0f s", command, timeout)
                self.stop()
                return CommandResult(False, f"nbgrader {command} timed out after {timeout:.0f} s", timed_out=True)
        return CommandResult(bool(reply["success"]), reply["output"])

    def _read_reply(self, timeout: float) -> dict | None:
        """Wait up to timeout seconds for the next reply line; None when none came.

        Raises EOFError when the worker closed the pipe, because it exited.
        """
        deadline = time.monotonic() + timeout
        data = b""
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.replies], [], [], remaining)[0]:
                return None
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise EOFError("the nbgrader worker closed its reply pipe")
            data += chunk
        return json.loads(data)

    def _lost(self, reason: str) -> CommandResult:
        """Stop a worker that hangs or died, so that the next request starts a new one."""
        log.error("%s; starting a new nbgrader worker for the next command (its log: %s)", reason, self.log_file)
        self.stop()
        return CommandResult(False, "\n".join([*self._last_request_log(), reason]))

    def _last_request_log(self) -> list[str]:
        """Return the last lines that the worker logged for its latest request, which may name why it died."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return []
        if REQUEST_MARKER in text:
            text = text.rsplit(REQUEST_MARKER, 1)[1].partition("\n")[2]
        return text.splitlines()[-LOG_TAIL_LINES:]

    def kill(self) -> None:
        """Kill the worker process from any thread; a command that waits for it returns as failed."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process = None
        if self.replies is not None:
            os.close(self.replies)
            self.replies = None


# ---------------------------------------------------------------------------------------------------
# The worker process


def handle(api_class, base_config, request: dict) -> dict:
    """Run one request with nbgrader's API and return the reply."""
    command = request["command"]
    if command not in COMMANDS:
        return {"success": False, "output": f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}"}

    saved = dict(os.environ)
    os.environ.update(request["environment"])
    config = copy.deepcopy(base_config)
    if request.get("notebook"):
        config.CourseDirectory.notebook_id = request["notebook"]
    runtime_dir = request["runtime_dir"]
    if runtime_dir:
        # jupyter_client writes connection files with tempfile.mkstemp, and the kernels listen on
        # Unix sockets under this absolute path (see GRADING_CONFIG in autograder/pipeline.py).
        os.environ["JUPYTER_RUNTIME_DIR"] = runtime_dir
        os.environ["TMPDIR"] = runtime_dir
        tempfile.tempdir = runtime_dir
        config.KernelManager.ip = os.path.join(runtime_dir, "kernel")

    try:
        api = api_class(config=config)
        if command == "generate_assignment":
            result = api.generate_assignment(request["assignment"], force=True, create=True)
        elif command == "autograde":
            result = api.autograde(request["assignment"], request["student"], force=True, create=True)
        else:
            result = api.generate_feedback(request["assignment"], request["student"], force=True)
    except Exception as err:  # a failure of one request must not end the worker
        result = {"success": False, "error": f"{type(err).__name__}: {err}"}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        tempfile.tempdir = None

    output = "\n".join(filter(None, [result.get("log", ""), result.get("error", "")]))
    return {"success": bool(result.get("success")), "output": output}


def main() -> int:
    replies = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8", buffering=1)
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    base_config = PyFileConfigLoader("nbgrader_config.py", path=os.getcwd()).load_config()
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        print(f"{REQUEST_MARKER}{request.get('command')} {request.get('assignment')} {request.get('student')}",
              file=sys.stderr, flush=True)
        reply = handle(NbGraderAPI, base_config, request)
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
