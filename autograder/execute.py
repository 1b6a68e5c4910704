"""A bounded replacement for nbgrader's Execute preprocessor.

Stock nbgrader 0.9.6 gives a whole submission no score when its kernel dies, and lets an
infinite loop cost the cell timeout in every following cell. This preprocessor keeps what
the working cells earned instead:

- each notebook gets a total time budget (``notebook_timeout``, counted from its first cell) besides
  the per-cell timeout;
- a cell that times out is interrupted; if the kernel does not respond within a few seconds
  (the loop swallowed the interrupt), execution stops;
- a kernel that dies stops execution without raising;
- once execution stops, every test cell that did not run gets an error output, so
  nbgrader's SaveAutoGrades scores it 0 instead of full marks for an empty output.

What happened is written as JSON to ``<log_dir>/<student>/<notebook>.json`` so the grading
pipeline can report it.
"""

from __future__ import annotations

import json
import math
import os
from queue import Empty
from time import monotonic

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

# Seconds an interrupted kernel has to become idle before it counts as stuck.
INTERRUPT_GRACE_SECONDS = 5


class BoundedExecute(Execute):
    """Execute a notebook within a total time budget, surviving kernel death and stuck cells."""

    notebook_timeout = Integer(
        300, help="Maximum seconds of execution for one notebook; cells after it are not run."
    ).tag(config=True)

    log_dir = Unicode(
        "", help="Folder for one JSON execution record per student and notebook; empty for none."
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        """Execute ``nb`` in place and record whether it ran to the end."""
        self.interrupt_on_timeout = False  # timeouts must raise so that they can be handled here
        self.shutdown_kernel = "immediate"
        self._cell_timeout = self.timeout
        self._deadline = None  # set when the first cell starts, so kernel start-up does not count
        self._record = {"status": "completed", "message": "", "cell_index": None, "grade_id": None,
                        "interrupted": []}
        try:
            nb, resources = super().preprocess(nb, resources, km)
        except DeadKernelError:
            # The kernel can also die between cells, while the client talks to it.
            self._stop("kernel_died", "the kernel died", None, None)
        finally:
            self.timeout = self._cell_timeout
        self._write_record(resources)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        """Execute one cell, or mark it as not run once execution has stopped."""
        if cell.cell_type != "code":
            return cell, resources
        if self._record["status"] != "completed":
            _mark_not_run(cell, self._record["message"])
            return cell, resources

        if self._deadline is None:
            self._deadline = monotonic() + self.notebook_timeout
        remaining = self._deadline - monotonic()
        if remaining <= 0:
            self._stop("time_limit", f"the notebook used up its {self.notebook_timeout} s time limit", cell, index)
            _mark_not_run(cell, self._record["message"])
            return cell, resources
        self.timeout = max(1, min(self._cell_timeout or math.inf, math.ceil(remaining)))

        try:
            cell = self.execute_cell(cell, index, store_history=True)
        except CellTimeoutError:
            _add_error(cell, "CellTimeoutError", f"this cell ran longer than {self.timeout} s and was interrupted")
            self._record["interrupted"].append(_describe(cell, index))
            if not run_sync(self._async_interrupt_and_wait)():
                self._stop("timed_out", f"{_describe(cell, index)} ran longer than {self.timeout} s and ignored "
                           "the interrupt", cell, index)
        except DeadKernelError:
            _add_error(cell, "DeadKernelError", "the kernel died while running this cell")
            self._stop("kernel_died", f"the kernel died while running {_describe(cell, index)}", cell, index)
        return cell, resources

    async def _async_interrupt_and_wait(self) -> bool:
        """Interrupt the kernel; return whether it replies to a request within the grace period."""
        await ensure_async(self.km.interrupt_kernel())
        request_id = self.kc.kernel_info()
        deadline = monotonic() + INTERRUPT_GRACE_SECONDS
        while (left := deadline - monotonic()) > 0:
            try:
                message = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                return False
            if message["parent_header"].get("msg_id") == request_id:
                return True
        return False

    def _stop(self, status: str, message: str, cell: NotebookNode | None, index: int | None) -> None:
        self.log.warning("Stopping execution: %s", message)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") if cell is not None else None
        self._record.update(status=status, message=message, cell_index=index, grade_id=grade_id)

    def _write_record(self, resources) -> None:
        if not self.log_dir:
            return
        info = (resources or {}).get("nbgrader", {})
        folder = os.path.join(self.log_dir, info.get("student", "unknown"))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{info.get('notebook', 'unknown')}.json"), "w") as handle:
            json.dump(self._record, handle)


def _describe(cell: NotebookNode, index: int) -> str:
    """Name a cell for the report: its position from 1 and its nbgrader id when it has one."""
    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
    return f"cell {index + 1}" + (f" ({grade_id})" if grade_id else "")


def _add_error(cell: NotebookNode, name: str, message: str) -> None:
    cell.setdefault("outputs", []).append(
        NotebookNode(output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"])
    )


def _mark_not_run(cell: NotebookNode, reason: str) -> None:
    """Give a cell that never ran an error output, so a test cell scores 0 and its output gives the reason."""
    cell["outputs"] = []
    cell["execution_count"] = None
    if cell.metadata.get("nbgrader", {}).get("grade"):
        _add_error(cell, "NotRun", f"this test was not run because {reason}")
