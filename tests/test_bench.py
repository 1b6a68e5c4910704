"""Smoke tests of the benchmarks: `bench/layers.py --quick` writes its JSON results, and `bench/grading.py` runs.

It checks that the benchmark runs and reports every case, not how fast the layers are: timings on
a shared machine are too noisy for a pass or fail. The benchmark needs PyTorch, so this test skips
without it, except in CI.
"""

import json
import subprocess
import sys

from conftest import REPOSITORY_ROOT, require_torch

EXPECTED_LAYERS = {"Conv2D", "MaxPool2D k=2 s=2", "MaxPool2D k=3 s=2", "LSTM", "RNNCell"}


def test_quick_benchmark_runs(tmp_path) -> None:
    require_torch()
    results_path = tmp_path / "results.json"

    completed = subprocess.run(
        [sys.executable, "bench/layers.py", "--quick", "--json", str(results_path)],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    assert "PASS" in completed.stdout or "MISS" in completed.stdout
    results = json.loads(results_path.read_text(encoding="utf-8"))
    assert results["quick"] is True
    assert {case["layer"] for case in results["versus_torch"]} == EXPECTED_LAYERS
    assert {case["dtype"] for case in results["versus_torch"]} == {"float64", "float32"}
    assert all(case["ratio"] > 0 for case in results["versus_torch"])
    assert len(results["naive_versus_reference"]) == 7
    assert {timing["notebook"] for timing in results["hidden_tests"]} == {
        "course/source/cnn_rnn/conv_pool.ipynb",
        "course/source/cnn_rnn/rnn_lstm.ipynb",
    }


def test_json_folder_missing_rejected(tmp_path) -> None:
    completed = subprocess.run(
        [sys.executable, "bench/layers.py", "--quick", "--json", str(tmp_path / "missing" / "results.json")],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 2
    assert "does not exist" in completed.stderr


def test_grading_benchmark_runs() -> None:
    """`bench/grading.py` grades a class of two students four ways and prints every ratio."""
    completed = subprocess.run(
        [sys.executable, "bench/grading.py", "--students", "2", "--workers", "2"],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Class: 2 students, 4 notebooks" in completed.stdout
    assert "(a) autograded 4 notebooks" in completed.stdout
    for line in ("a / c = ", "c / (d / 2) = ", "(a + stock feedback) / c = ", "b / c = "):
        assert line in completed.stdout, completed.stdout
    assert completed.stdout.count("| ") >= 5, "the table of times is missing rows"


def test_grading_benchmark_rejects_zero_students() -> None:
    completed = subprocess.run(
        [sys.executable, "bench/grading.py", "--students", "0"],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 2
    assert "invalid count 0: it must be at least 1" in completed.stderr
