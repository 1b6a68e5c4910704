"""Benchmark the reference layers against PyTorch on the CPU and against naive student loops.

Run from the repository root: `.venv/bin/python bench/layers.py [--quick] [--json PATH]`, or
`make bench-layers`. It prints three tables:

1. reference / PyTorch time on course-sized shapes, in float64 and float32, with PASS or MISS
   beside each ratio that has a goal;
2. naive loop / reference time on a small shape;
3. the time of every hidden test of each notebook, graded on a correct naive-loop solution.

This is a benchmark, not a test: a missed goal is reported, and the exit status is 0 unless the
run itself fails (PyTorch missing, or two implementations that compute different results).
"""

import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from statistics import median
from typing import Any

# numpy's OpenBLAS and PyTorch's OpenMP each keep a thread pool whose idle threads spin before they
# sleep: OpenBLAS for 2**28 cycles, about 0.1 s (THREAD_TIMEOUT 28 in its blas_server.c), and libgomp
# for 300000 loops when OMP_WAIT_POLICY is unset (its manual, GOMP_SPINCOUNT). When calls of the
# two libraries alternate, the spinning threads of one take the cores that the other needs. On a
# 2-core Intel Xeon virtual machine, a PyTorch LSTM right after a numpy one then took up to 87 ms
# instead of 7 ms. Sleeping at once (OMP_WAIT_POLICY=PASSIVE) removes that but makes every small
# matrix product of a recurrent layer wake a thread: PyTorch's LSTM took 18 ms. A spin of about
# 0.5 ms (2**20 cycles, 10000 loops) keeps the threads awake within a layer's sequence of calls and
# lets them sleep between cases: interleaved times then matched the times of each call run alone,
# within about 1 ms. The libraries read these variables when they load, so they are set before the
# imports below. A value already in the environment wins.
WAIT_POLICY = {"OPENBLAS_THREAD_TIMEOUT": "20", "GOMP_SPINCOUNT": "10000"}
for variable, value in WAIT_POLICY.items():
    os.environ.setdefault(variable, value)

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

from bench import hidden_tests, machine, naive_cases, torch_cases  # noqa: E402
from bench.timing import Settings, measure  # noqa: E402

FULL = {
    "torch": Settings(warmup_calls=3, repetitions=9, min_sample_seconds=0.1),
    "naive": Settings(warmup_calls=1, repetitions=5, min_sample_seconds=0.1),
    "hidden_test_repetitions": 3,
}
QUICK = {
    "torch": Settings(warmup_calls=1, repetitions=3, min_sample_seconds=0.0),
    "naive": Settings(warmup_calls=1, repetitions=3, min_sample_seconds=0.0),
    "hidden_test_repetitions": 1,
}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run with 1 warm-up call and 3 repetitions of one call each, instead of 3 warm-up calls "
        "and 9 repetitions of at least 0.1 s each, so the numbers are rougher",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results to this JSON file")
    arguments = parser.parse_args(argv)
    if arguments.json is not None:
        # Checked before the run, which takes minutes, rather than when the results are written.
        if arguments.json.is_dir():
            parser.error(f"--json {arguments.json} is a folder, but it must be a file path such as out/bench.json")
        if not arguments.json.resolve().parent.is_dir():
            parser.error(f"the folder of --json {arguments.json} does not exist, so create it first")
    return arguments


def import_torch() -> Any:
    try:
        import torch
    except ImportError as err:
        sys.exit(
            f"error: PyTorch is not installed ({err}). "
            "Install it with: .venv/bin/python -m pip install torch==2.13.0"
        )
    return torch


def match_torch_threads(torch: Any) -> dict[str, Any]:
    """Give PyTorch as many threads as numpy's BLAS library uses, and return the count and its source."""
    count, source = machine.blas_thread_count()
    if count is None:
        count = machine.usable_cores()
        source = f"{source}, so one thread per usable core is assumed"
    torch.set_num_threads(count)
    return {"threads": count, "source": source, "torch_threads": torch.get_num_threads()}


# ---------------------------------------------------------------------------------------------------
# Tables


def format_table(header: list[str], rows: list[list[str]], text_columns: int = 3) -> str:
    """Format rows as a Markdown table whose first text_columns columns are left-aligned, the others right-aligned."""
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = []
        for column, (cell, width) in enumerate(zip(cells, widths)):
            padded.append(cell.ljust(width) if column < text_columns else cell.rjust(width))
        return "| " + " | ".join(padded) + " |"

    rules = []
    for column, width in enumerate(widths):
        rules.append("-" * (width + 1) + ("-" if column < text_columns else ":"))
    return "\n".join([line(header), "|" + "|".join(rules) + "|", *(line(row) for row in rows)])


def goal_result(ratio: float, goal: float | None) -> str:
    if goal is None:
        return "info"
    if ratio <= goal:
        return "PASS"
    return "MISS"


def torch_table(cases: list[torch_cases.LayerCase]) -> str:
    header = ["layer", "direction", "dtype", "reference ms", "PyTorch ms", "ratio", "goal", "result"]
    rows = []
    for case in cases:
        ratio = case.ratio()
        rows.append(
            [
                case.layer,
                f"{case.direction} ({case.computes})",
                case.dtype,
                f"{case.median_seconds(torch_cases.REFERENCE) * 1e3:.2f}",
                f"{case.median_seconds(torch_cases.TORCH) * 1e3:.2f}",
                f"{ratio:.2f}",
                "" if case.goal is None else f"<= {case.goal:.1f}",
                goal_result(ratio, case.goal),
            ]
        )
    return format_table(header, rows)


def naive_table(cases: list[naive_cases.NaiveCase]) -> str:
    header = ["layer", "direction", "shape", "naive ms", "reference ms", "naive / reference"]
    rows = []
    for case in cases:
        rows.append(
            [
                case.layer,
                case.direction,
                case.shape,
                f"{case.median_seconds(naive_cases.NAIVE) * 1e3:.2f}",
                f"{case.median_seconds(naive_cases.REFERENCE) * 1e3:.3f}",
                f"{case.ratio():.1f}" if case.ratio() < 10 else f"{case.ratio():.0f}",
            ]
        )
    return format_table(header, rows)


def hidden_tests_table(timings: list[hidden_tests.NotebookTiming]) -> str:
    header = ["notebook", "check calls", "slowest check call", "seconds", "goal", "result"]
    rows = []
    for timing in timings:
        seconds = timing.median_seconds()
        slowest = max(timing.calls, key=lambda call: median(call.seconds))
        rows.append(
            [
                timing.notebook,
                str(len(timing.calls)),
                f'{slowest.check}("{slowest.group}") {median(slowest.seconds):.3f} s',
                f"{seconds:.2f}",
                f"< {hidden_tests.GOAL_SECONDS:.0f}",
                "PASS" if seconds < hidden_tests.GOAL_SECONDS else "MISS",
            ]
        )
    return format_table(header, rows)


def shapes() -> dict[str, list[str]]:
    return {
        "Conv2D": [str(torch_cases.CONV_SHAPE)],
        "MaxPool2D": [str(shape) for shape in torch_cases.POOL_SHAPES],
        "LSTM": [str(torch_cases.LSTM_SHAPE)],
        "RNNCell": [str(torch_cases.RNN_SHAPE)],
    }


def print_header(started: datetime.datetime, quick: bool, description: dict[str, Any], threads: dict[str, Any]) -> None:
    loads = ", ".join(f"{load:.2f}" for load in description["load_average_1_5_15_min"] or [])
    wait_policy = ", ".join(f"{name}={os.environ[name]}" for name in WAIT_POLICY)

    print(f"Layer benchmark, {started:%Y-%m-%d %H:%M %Z}{' (--quick)' if quick else ''}")
    print(f"CPU: {description['cpu']}, {description['usable_cores']} usable cores, {description['platform']}")
    print(f"numpy {description['numpy']} with {description['blas']}, torch {description['torch']}")
    print(f"Threads: {threads['threads']} for numpy's BLAS ({threads['source']}), and as many for PyTorch")
    print(f"Spin before idle threads sleep: {wait_policy}")
    print(f"Load average (1, 5, 15 min): {loads}")
    print()
    print("Shapes:")
    for layer, layer_shapes in shapes().items():
        for shape in layer_shapes:
            print(f"{layer}: {shape}")
    print()


# ---------------------------------------------------------------------------------------------------
# JSON results


def case_record(case: Any, names: tuple[str, str]) -> dict[str, Any]:
    """Return a case's labels, median and sample times in milliseconds, and ratio, for the JSON results."""
    record = {key: value for key, value in vars(case).items() if key not in ("contenders", "samples")}
    record["median_ms"] = {name: case.median_seconds(name) * 1e3 for name in names}
    record["samples_ms"] = {name: [seconds * 1e3 for seconds in case.samples[name]] for name in names}
    record["ratio"] = case.ratio()
    return record


def notebook_record(timing: hidden_tests.NotebookTiming) -> dict[str, Any]:
    return {
        "notebook": timing.notebook,
        "seconds": timing.median_seconds(),
        "runs_seconds": timing.total_seconds,
        "goal_seconds": hidden_tests.GOAL_SECONDS,
        "calls": [vars(call) for call in timing.calls],
    }


# ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    settings = QUICK if arguments.quick else FULL
    torch = import_torch()
    threads = match_torch_threads(torch)
    started = datetime.datetime.now().astimezone()
    description = machine.describe(torch)
    print_header(started, arguments.quick, description, threads)

    layer_cases = torch_cases.all_cases(torch)
    measure(layer_cases, settings["torch"])
    print("Reference layers against PyTorch (CPU), median time per call, ratio = reference / PyTorch:")
    print(torch_table(layer_cases))
    print("Goals apply to the float64 rows and to float32 Conv2D forward. The other rows are for information.")
    print()

    student_cases = naive_cases.all_cases()
    measure(student_cases, settings["naive"])
    print("Naive student loops against the reference layers, float64, median time per call:")
    print(naive_table(student_cases))
    print()

    source_folder = REPOSITORY_ROOT / "course" / "source"
    notebook_timings = hidden_tests.time_notebooks(source_folder, settings["hidden_test_repetitions"])
    print(f"Hidden tests on correct naive-loop layers, all check calls of a notebook, {machine.usable_cores()} cores:")
    print(hidden_tests_table(notebook_timings))

    if arguments.json is not None:
        results = {
            "started": started.isoformat(timespec="seconds"),
            "quick": arguments.quick,
            "machine": description,
            "load_average_after": machine.describe(torch)["load_average_1_5_15_min"],
            "threads": threads,
            "wait_policy": {name: os.environ[name] for name in WAIT_POLICY},
            "shapes": shapes(),
            "versus_torch": [case_record(case, (torch_cases.REFERENCE, torch_cases.TORCH)) for case in layer_cases],
            "naive_versus_reference": [
                case_record(case, (naive_cases.NAIVE, naive_cases.REFERENCE)) for case in student_cases
            ],
            "hidden_tests": [notebook_record(timing) for timing in notebook_timings],
        }
        arguments.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        print(f"\nWrote {arguments.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
