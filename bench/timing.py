"""Interleaved timing of several implementations of the same computation.

Every repetition times each implementation of each case once, alternating which implementation
goes first, so that a change in the machine's load during the run affects all of them alike. The
result of a case is the median over repetitions of the time per call.
"""

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from statistics import median


@dataclass
class Contender:
    """One implementation of a case: the call to time, and an optional untimed setup before each call."""

    call: Callable[[], object]
    setup: Callable[[], object] | None = None


@dataclass
class Case:
    """A computation timed with several implementations, such as the reference layer and PyTorch."""

    contenders: dict[str, Contender]
    samples: dict[str, list[float]] = field(default_factory=dict)  # seconds per call, one per repetition

    def median_seconds(self, name: str) -> float:
        return median(self.samples[name])


@dataclass(frozen=True)
class Settings:
    """How many warm-up calls, repetitions and calls per sample a measurement uses."""

    warmup_calls: int
    repetitions: int
    min_sample_seconds: float  # a sample repeats the call until it lasts at least this long
    max_calls_per_sample: int = 1000


def _calls_per_sample(contender: Contender, settings: Settings) -> int:
    """Warm up a contender, then return how many calls make a sample of at least min_sample_seconds."""
    elapsed = 0.0
    for _ in range(max(1, settings.warmup_calls)):
        elapsed = _time_calls(contender, 1)
    if elapsed <= 0.0:
        return settings.max_calls_per_sample
    return max(1, min(settings.max_calls_per_sample, math.ceil(settings.min_sample_seconds / elapsed)))


def _time_calls(contender: Contender, calls: int) -> float:
    """Return the total seconds of `calls` calls, leaving out the setups and garbage collection."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        if contender.setup is None:
            start = time.perf_counter()
            for _ in range(calls):
                contender.call()
            return time.perf_counter() - start

        total = 0.0
        for _ in range(calls):
            contender.setup()
            start = time.perf_counter()
            contender.call()
            total += time.perf_counter() - start
        return total
    finally:
        if collecting:
            gc.enable()


def measure(cases: Sequence[Case], settings: Settings) -> None:
    """Time every contender of every case, interleaved, and store the per-call seconds in case.samples."""
    calls = []
    for case in cases:
        calls.append({name: _calls_per_sample(contender, settings) for name, contender in case.contenders.items()})
    for case in cases:
        case.samples = {name: [] for name in case.contenders}

    for repetition in range(settings.repetitions):
        for case, case_calls in zip(cases, calls):
            names = list(case.contenders)
            if repetition % 2 == 1:
                names.reverse()
            for name in names:
                seconds = _time_calls(case.contenders[name], case_calls[name])
                case.samples[name].append(seconds / case_calls[name])
