"""Time the hidden tests of each notebook, graded on a correct naive-loop student solution.

The hidden test cells of every source notebook are read to find which check_* function and group
each one calls, so the timing follows the notebooks as they are. Each call grades the correct
naive implementation of tests/broken_layers.py (CORRECT_LAYERS). This times the checks alone:
starting the kernel and running the notebook's other cells are not included.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from broken_layers import CORRECT_LAYERS

from autograder import checks
from autograder.hidden_calls import hidden_check_calls

GOAL_SECONDS = 5.0  # per notebook, on 2 cores


@dataclass
class CheckCall:
    check: str
    group: str
    seconds: list[float] = field(default_factory=list)


@dataclass
class NotebookTiming:
    notebook: str
    calls: list[CheckCall]
    total_seconds: list[float] = field(default_factory=list)  # one per repetition

    def median_seconds(self) -> float:
        return median(self.total_seconds)


def naive_implementation(check: str) -> object:
    """Return the correct naive implementation that a check grades, or raise KeyError naming the check."""
    if check not in CORRECT_LAYERS:
        raise KeyError(f"tests/broken_layers.py CORRECT_LAYERS has no naive implementation for {check}")
    return CORRECT_LAYERS[check]


def time_notebooks(source_folder: Path, repetitions: int) -> list[NotebookTiming]:
    """Run every hidden check of every notebook under source_folder `repetitions` times and time each call.

    Raises RuntimeError if a notebook has no hidden check call, and AssertionError if a check fails,
    because a naive solution that fails measures the wrong code path.
    """
    notebooks = sorted(source_folder.glob("*/*.ipynb"))
    if not notebooks:
        raise RuntimeError(f"no source notebooks found under {source_folder}")

    timings = []
    for notebook in notebooks:
        calls = [CheckCall(check, group) for check, group in hidden_check_calls(notebook)]
        if not calls:
            raise RuntimeError(f"{notebook} has no hidden test cell that calls an autograder check")
        timings.append(NotebookTiming(str(notebook.relative_to(source_folder.parent.parent)), calls))

    for _ in range(repetitions):
        for timing in timings:
            total = 0.0
            for call in timing.calls:
                check_function = getattr(checks, call.check)
                implementation = naive_implementation(call.check)
                start = time.perf_counter()
                check_function(implementation, call.group)
                elapsed = time.perf_counter() - start
                call.seconds.append(elapsed)
                total += elapsed
            timing.total_seconds.append(total)
    return timings
