"""Benchmark how long the feature-map explorer takes to show a new figure after a slider change.

Run from the repository root: `.venv/bin/python bench/widgets.py [--changes N]`, or
`make bench-widgets`. It starts JupyterLab and Chromium as the browser tests do (tests/browser.py),
on a copy of the release with one extra notebook: the model answers of Conv2D and MaxPool2D and a
FeatureMapExplorer at its default image size (a 64 x 64 photograph). It runs all its cells, moves
the stride slider with the arrow keys N times, and prints the median latency with the goal and
PASS or MISS.

A latency is measured inside the page, from the keydown on the slider handle to the change of the
figure's src attribute. It covers the message to the kernel, the explorer's update (the forward
passes of the model-answer Conv2D and MaxPool2D and the Agg render to PNG), the message back and
the update of the <img>. It leaves out decoding and painting the new PNG.

This is a benchmark, not a test: a missed goal is reported, and the exit status is 0 unless the
run itself fails (1) or Chromium or Playwright is missing (2).
"""

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path
from statistics import median

import nbformat

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))

# Importing the bench package puts tests/ on the import path, where the browser harness lives.
from bench import machine  # noqa: E402
import browser  # noqa: E402

GOAL_MS = 150.0
FIGURE_CLASS = "cnnrnn-feature-maps"
BENCH_NOTEBOOK = "bench_feature_maps.ipynb"
STRIDE_RANGE = (1, 3)  # the stride slider of FeatureMapExplorer, from coursekit/widgets.py
WARMUP_CHANGES = 2

# Runs in the page once: it stamps each keydown on the stride handle and records the time to the
# next change of the figure's src, in milliseconds, in window.cnnrnnLatencies.
RECORD_LATENCIES = """(explorer, figureClass) => {
    const handle = explorer.querySelector('.cnnrnn-control-stride .noUi-handle');
    const figure = explorer.querySelector('img.' + figureClass);
    const latencies = [];
    let changedAt = null;
    handle.addEventListener('keydown', () => { changedAt = performance.now(); }, true);
    new MutationObserver(() => {
        if (changedAt !== null) {
            latencies.push(performance.now() - changedAt);
            changedAt = null;
        }
    }).observe(figure, {attributes: true, attributeFilter: ['src']});
    window.cnnrnnLatencies = latencies;
}"""


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--changes",
        type=int,
        default=20,
        help=f"number of timed stride changes, after {WARMUP_CHANGES} untimed ones (default 20)",
    )
    arguments = parser.parse_args(argv)
    if arguments.changes < 1:
        parser.error(f"--changes must be at least 1, got {arguments.changes}")
    return arguments


def write_bench_notebook(root: Path) -> None:
    """Write a notebook with the model-answer Conv2D and MaxPool2D and one FeatureMapExplorer into root."""
    answers = browser.model_answers(browser.SOURCE_ASSIGNMENT / "conv_pool.ipynb")
    cells = [
        "import numpy as np",
        answers["conv2d_answer"],
        answers["maxpool2d_answer"],
        "from coursekit.widgets import FeatureMapExplorer\n\n"
        "explorer = FeatureMapExplorer(Conv2D, MaxPool2D)\n"
        "display(explorer.widget)",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, os.fspath(root / BENCH_NOTEBOOK))


def stride_keys(count: int) -> list[str]:
    """Return arrow keys that move the stride slider back and forth within its range, one change each."""
    keys, stride, step = [], STRIDE_RANGE[0], 1
    for _ in range(count):
        if not STRIDE_RANGE[0] <= stride + step <= STRIDE_RANGE[1]:
            step = -step
        stride += step
        keys.append("ArrowRight" if step > 0 else "ArrowLeft")
    return keys


def measure_latencies(changes: int) -> tuple[list[float], str]:
    """Return the latency of each timed stride change in milliseconds, and Chromium's version."""
    with tempfile.TemporaryDirectory(prefix="cnnrnn-bench-") as scratch:
        root = browser.prepare_release_copy(Path(scratch) / "cnn_rnn")
        if not (root / "coursekit" / "widgets.py").is_file():
            sys.exit("error: the release has no coursekit/widgets.py. Run `make release` to regenerate it.")
        write_bench_notebook(root)

        with browser.lab_server(root) as server, browser.chromium() as context:
            page = context.new_page()
            browser.open_notebook(page, server, BENCH_NOTEBOOK)
            browser.run_all_cells(page)
            errors = browser.stderr_outputs(page) + browser.widget_errors(page)
            if errors:
                sys.exit("error: the benchmark notebook failed:\n" + "\n\n".join(errors))

            explorer = browser.explorer(page, FIGURE_CLASS)
            explorer.wait_for(timeout=browser.WIDGET_UPDATE_TIMEOUT_MS)
            explorer.evaluate(RECORD_LATENCIES, FIGURE_CLASS)
            handle = browser.slider_handle(explorer, "stride")
            handle.focus()
            for count, key in enumerate(stride_keys(WARMUP_CHANGES + changes), start=1):
                handle.press(key)
                page.wait_for_function(
                    "count => window.cnnrnnLatencies.length >= count",
                    arg=count,
                    timeout=browser.WIDGET_UPDATE_TIMEOUT_MS,
                )

            latencies = page.evaluate("window.cnnrnnLatencies")[WARMUP_CHANGES:]
            # The user agent string gives only the major version, so ask the DevTools protocol.
            product = context.new_cdp_session(page).send("Browser.getVersion")["product"]
    return latencies, product.rpartition("/")[2]


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    missing = browser.missing_browser_dependency()
    if missing:
        print(f"error: {missing}. Install them with: {browser.INSTALL_COMMAND}", file=sys.stderr)
        return 2

    started = datetime.datetime.now().astimezone()
    latencies, chromium_version = measure_latencies(arguments.changes)
    median_ms = median(latencies)
    result = "PASS" if median_ms < GOAL_MS else "MISS"
    loads = ", ".join(f"{load:.2f}" for load in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"

    print(f"Widget benchmark, {started:%Y-%m-%d %H:%M %Z}")
    print(f"CPU: {machine.cpu_model()}, {machine.usable_cores()} usable cores; headless Chromium {chromium_version}")
    print(f"Load average (1, 5, 15 min) after the run: {loads}")
    print(
        f"FeatureMapExplorer, 64 x 64 photograph: {len(latencies)} stride changes after {WARMUP_CHANGES} untimed ones"
    )
    print(
        f"slider change to new figure: median {median_ms:.0f} ms (min {min(latencies):.0f}, "
        f"max {max(latencies):.0f}), goal < {GOAL_MS:.0f} ms: {result}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
