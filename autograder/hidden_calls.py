"""Find the check calls inside the hidden test regions of the source notebooks.

A hidden test cell of a source notebook looks like this::

    # Hidden tests: random inputs and filters at stride 1 without padding (2 points).
    ### BEGIN HIDDEN TESTS
    from autograder.checks import check_conv2d_forward
    check_conv2d_forward(Conv2D, "basic")
    ### END HIDDEN TESTS

The trusted re-check (autograder.trusted) and the hidden-test benchmark (bench/hidden_tests.py)
read the calls from this text instead of running it, so a hidden region may contain only imports
from autograder.checks, calls of the form check_name(StudentName, "group"), comments and blank
lines. hidden_check_calls_in_cell raises ValueError on any other line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

HIDDEN_TESTS_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_TESTS_END = "### END HIDDEN TESTS"

_HIDDEN_BLOCK = re.compile(re.escape(HIDDEN_TESTS_BEGIN) + r"(.*?)" + re.escape(HIDDEN_TESTS_END), re.DOTALL)
_CHECK_CALL = re.compile(r"\b(check_\w+)\(\s*(\w+)\s*,\s*[\"'](\w+)[\"']\s*\)")
_CHECK_CALL_LINE = re.compile(r"^\s*(check_\w+)\(\s*(\w+)\s*,\s*[\"'](\w+)[\"']\s*\)\s*(#.*)?$")
_CHECKS_IMPORT_LINE = re.compile(r"^\s*from\s+autograder\.checks\s+import\s+[\w\s,()]+(#.*)?$")


class CheckCall(NamedTuple):
    """One call check(name, "group") in a hidden test region."""

    check: str  # the check function, such as "check_conv2d_forward"
    name: str  # the student's class or function that it grades, such as "Conv2D"
    group: str  # the group of configurations, such as "basic"

    def __str__(self) -> str:
        return f'{self.check}({self.name}, "{self.group}")'


def has_hidden_tests(source: str) -> bool:
    """Return whether a cell's source contains a hidden test region."""
    return HIDDEN_TESTS_BEGIN in source


def hidden_check_calls_in_cell(source: str) -> list[CheckCall]:
    """Return the check calls of every hidden test region in one cell's source, in order.

    Raises ValueError naming the line when a hidden region contains anything other than imports
    from autograder.checks, check calls, comments and blank lines, because the trusted re-check
    would silently skip such a line.
    """
    calls = []
    for block in _HIDDEN_BLOCK.findall(source):
        for line in block.splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or _CHECKS_IMPORT_LINE.match(line):
                continue
            match = _CHECK_CALL_LINE.match(line)
            if match is None:
                raise ValueError(
                    f"hidden test line {stripped!r} is not a call check_name(StudentName, \"group\"), an import "
                    "from autograder.checks or a comment, so the trusted re-check cannot run it"
                )
            calls.append(CheckCall(*match.group(1, 2, 3)))
    return calls


def hidden_check_calls(notebook: Path) -> list[tuple[str, str]]:
    """Return the (check function, group) of every check call inside the notebook's hidden test blocks."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    calls = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        for block in _HIDDEN_BLOCK.findall(source):
            calls += [(check, group) for check, _name, group in _CHECK_CALL.findall(block)]
    return calls
