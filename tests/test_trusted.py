"""The trusted re-check grades student code in a sandboxed process, where it cannot fake a pass.

Each module-scoped fixture re-checks one submission of one notebook with a real bubblewrap
sandbox and a real runner process. The submissions are built like the sample class: the release
notebooks with the source notebooks' model answers, some changed on purpose.
"""

from __future__ import annotations

import base64
import copy
import io
import linecache
import os
import time

import nbformat
import numpy as np
import pytest
from conftest import skip_or_fail_missing
from sample_submissions import FLIPPED_KERNEL, SAMPLE

from autograder import checks, trusted
from autograder.course import RELEASE_DIR, SOURCE_DIR
from autograder.sandbox import bwrap_problem

ASSIGNMENT = "cnn_rnn"
NOTEBOOKS = ("conv_pool", "rnn_lstm")
RELEASE = RELEASE_DIR / ASSIGNMENT
CALL_TIMEOUT = 2  # seconds per request; the infinite loop below costs this much
STARTUP_TIMEOUT = 60
RECHECK_SECONDS: dict[str, float] = {}  # wall time of each re-check, printed with pytest -s


WRONG_LAYERS = {
    "conv_pool": {**FLIPPED_KERNEL, **SAMPLE.MISTAKES["pool_stride_as_kernel"],
                  **SAMPLE.MISTAKES["conv_backward_not_cropped"]},
    "rnn_lstm": {**SAMPLE.MISTAKES["lstm_forget_input_swapped"], **SAMPLE.MISTAKES["rnn_raises"]},
}

# Appended to the flipped-kernel answer: patches that fool in-kernel comparisons.
NUMPY_PATCH = """
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
try:
    import autograder.checks as grader_checks
    grader_checks._compare = lambda *args, **kwargs: None
except ImportError:
    pass
"""

# Appended to the MaxPool2D answer: forward returns an object equal to everything. On the first
# configuration of "odd_sizes" only (no backward check uses that input shape), it first writes a
# garbled message to every pipe that it can write to.
ALWAYS_EQUAL = """
import fcntl
import os
import stat
import struct


class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def garble_protocol():
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            writable = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY
            is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except OSError:
            continue
        if writable and is_pipe:
            os.write(fd, struct.pack(">Q", 5) + b"hello")


def always_equal_forward(self, X):
    if X.shape == (2, 2, 5, 7):
        garble_protocol()
    return AlwaysEqual()


MaxPool2D.forward = always_equal_forward
"""

# Changes to the model answers of conv_pool that attack the grader rather than make a mistake.
ATTACKS = {
    # Conv2D.backward loops forever on the last configuration of "stride" only.
    "conv2d_backward_answer": [("        X = self.X\n", "        X = self.X\n"
                                "        while self.stride == 3 and self.padding == 2:\n"
                                "            pass\n")],
    # MaxPool2D.backward prints a megabyte to stdout and stderr, and ends the process on the
    # second configuration of "overlapping" (kernel_size 3, stride 1) only.
    "maxpool2d_backward_answer": [("        X = self.X\n", "        X = self.X\n"
                                   "        import os\n"
                                   "        import sys\n"
                                   "        print('y' * 2**20)\n"
                                   "        sys.stderr.write('z' * 2**20)\n"
                                   "        if self.kernel_size == 3 and self.stride == 1:\n"
                                   "            os._exit(3)\n")],
}
FAST_FROM_SOLUTIONS = """from solutions import Conv2D as ReferenceConv2D


def conv2d_forward_fast(X, filters, bias, stride, padding):
    F, C, k, _ = filters.shape
    layer = ReferenceConv2D(C, F, k, stride=stride, padding=padding)
    layer.filters, layer.bias = filters, bias
    return layer.forward(X)
"""


@pytest.fixture(scope="module", autouse=True)
def sandbox_available():
    problem = bwrap_problem()
    if problem:
        skip_or_fail_missing("bubblewrap", "apt-get install bubblewrap", reason=problem)


def read_source(notebook: str) -> nbformat.NotebookNode:
    return nbformat.read(os.fspath(SOURCE_DIR / ASSIGNMENT / f"{notebook}.ipynb"), as_version=4)


def graded_cell_ids(notebook: str) -> list[str]:
    return [cell.metadata.nbgrader.grade_id for cell in read_source(notebook).cells
            if cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata.nbgrader.get("solution")]


def replace_cell(notebook: nbformat.NotebookNode, grade_id: str, source: str) -> nbformat.NotebookNode:
    changed = copy.deepcopy(notebook)
    for cell in changed.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
            return changed
    raise KeyError(grade_id)


def run_recheck(tmp_path_factory, name: str, notebook: str, submitted: nbformat.NotebookNode):
    workdir = tmp_path_factory.mktemp(name) / "work"
    start = time.perf_counter()
    verdicts = trusted.recheck(submitted, read_source(notebook), RELEASE, workdir, sandbox_mode="require",
                               call_timeout=CALL_TIMEOUT, startup_timeout=STARTUP_TIMEOUT)
    RECHECK_SECONDS[name] = time.perf_counter() - start
    print(f"recheck {name}: {RECHECK_SECONDS[name]:.1f} s")
    return verdicts


def in_kernel_messages(submitted: nbformat.NotebookNode, source: nbformat.NotebookNode) -> dict[str, str | None]:
    """Run the hidden checks in this process on the submission's code, as nbgrader runs them in the kernel.

    Returns each hidden test cell's AssertionError message, or None when it passes.
    """
    plan = trusted.plan_notebook(submitted, source)
    namespace = {"__name__": "__main__"}
    messages = {}
    next_cell = 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NBGRADER_EXECUTION", "autograde")
        patch.syspath_prepend(str(RELEASE))
        for test in plan.hidden:
            while next_cell < test.position:
                cell = plan.cells[next_cell]
                next_cell += 1
                filename = f"<in-kernel cell {cell['label']}>"
                linecache.cache[filename] = (len(cell["source"]), None, cell["source"].splitlines(True), filename)
                try:
                    exec(compile(cell["source"], filename, "exec"), namespace)
                except Exception:
                    pass
            messages[test.grade_id] = None
            for call in test.calls:
                try:
                    getattr(checks, call.check)(namespace[call.name], call.group)
                except AssertionError as err:
                    messages[test.grade_id] = str(err)
                    break
    return messages


# ---------------------------------------------------------------------------------------------------
# Fixtures: one re-check per submission and notebook


@pytest.fixture(scope="module")
def complete_verdicts(tmp_path_factory):
    return {notebook: run_recheck(tmp_path_factory, f"complete_{notebook}", notebook, SAMPLE.submission(notebook))
            for notebook in NOTEBOOKS}


@pytest.fixture(scope="module")
def release_verdicts(tmp_path_factory):
    return {notebook: run_recheck(tmp_path_factory, f"release_{notebook}", notebook,
                                  SAMPLE.submission(notebook, answered=set()))
            for notebook in NOTEBOOKS}


@pytest.fixture(scope="module")
def wrong_submissions():
    return {notebook: SAMPLE.submission(notebook, mistake=WRONG_LAYERS[notebook]) for notebook in NOTEBOOKS}


@pytest.fixture(scope="module")
def wrong_verdicts(tmp_path_factory, wrong_submissions):
    return {notebook: run_recheck(tmp_path_factory, f"wrong_{notebook}", notebook, wrong_submissions[notebook])
            for notebook in NOTEBOOKS}


@pytest.fixture(scope="module")
def attack_verdicts(tmp_path_factory):
    submitted = SAMPLE.submission("conv_pool", mistake={**FLIPPED_KERNEL, **ATTACKS},
                                  appended={"conv2d_answer": NUMPY_PATCH, "maxpool2d_answer": ALWAYS_EQUAL})
    submitted = replace_cell(submitted, "conv2d_fast_answer", FAST_FROM_SOLUTIONS)
    return run_recheck(tmp_path_factory, "attacks_conv_pool", "conv_pool", submitted)


# ---------------------------------------------------------------------------------------------------
# Grading


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_model_answers_pass_every_cell(complete_verdicts, notebook):
    verdicts = complete_verdicts[notebook]
    assert list(verdicts) == graded_cell_ids(notebook)
    failures = {grade_id: verdict.message for grade_id, verdict in verdicts.items() if not verdict.passed}
    assert failures == {}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_hidden_cells_list_their_calls(complete_verdicts, notebook):
    for grade_id, verdict in complete_verdicts[notebook].items():
        if "_hidden_" in grade_id:
            assert verdict.calls and all(call.startswith("check_") for call in verdict.calls), grade_id
        else:
            assert verdict.calls == [], grade_id


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_release_fails_every_cell(release_verdicts, notebook):
    verdicts = release_verdicts[notebook]
    assert list(verdicts) == graded_cell_ids(notebook)
    for grade_id, verdict in verdicts.items():
        assert not verdict.passed, grade_id
        assert "raised NotImplementedError" in verdict.message, (grade_id, verdict.message)
        assert "implement the method body" in verdict.message, (grade_id, verdict.message)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_wrong_layers_fail_as_in_kernel(wrong_verdicts, wrong_submissions, notebook):
    expected = in_kernel_messages(wrong_submissions[notebook], read_source(notebook))
    verdicts = wrong_verdicts[notebook]
    actual = {grade_id: verdicts[grade_id].message or None for grade_id in expected}
    assert actual == expected
    assert any(message is not None for message in expected.values())


def test_flipped_kernel_named_as_likely_mistake(wrong_verdicts):
    verdict = wrong_verdicts["conv_pool"]["conv2d_hidden_basic"]
    assert not verdict.passed
    assert "Likely mistake: the kernel is flipped" in verdict.message


def test_swapped_gates_fail(wrong_verdicts):
    for grade_id in ("lstm_cell_hidden_basic", "lstm_cell_hidden_nonzero_state"):
        assert not wrong_verdicts["rnn_lstm"][grade_id].passed, grade_id


def test_raising_line_comes_from_student_cell(wrong_verdicts):
    message = wrong_verdicts["rnn_lstm"]["rnn_hidden_basic"].message
    assert "raised AttributeError" in message
    assert "It was raised in forward, line" in message
    assert "self.W_xy" in message


def test_visible_cell_fails_with_its_hidden_cells(wrong_verdicts):
    verdict = wrong_verdicts["conv_pool"]["conv2d_visible"]
    assert not verdict.passed
    assert "conv2d_hidden_basic" in verdict.message
    assert wrong_verdicts["conv_pool"]["conv2d_fast_visible"].passed


# ---------------------------------------------------------------------------------------------------
# Attacks on the grader


def test_numpy_patch_does_not_pass_wrong_layer(attack_verdicts):
    for grade_id in ("conv2d_hidden_basic", "conv2d_hidden_padding", "conv2d_hidden_stride", "conv2d_visible"):
        assert not attack_verdicts[grade_id].passed, grade_id
    assert "Likely mistake: the kernel is flipped" in attack_verdicts["conv2d_hidden_basic"].message


def test_always_equal_result_fails(attack_verdicts):
    for grade_id in ("maxpool2d_hidden_basic", "maxpool2d_hidden_overlapping"):
        assert not attack_verdicts[grade_id].passed, grade_id
        assert "got an AlwaysEqual, expected a numpy array" in attack_verdicts[grade_id].message


def test_garbled_reply_fails_cell(attack_verdicts):
    verdict = attack_verdicts["maxpool2d_hidden_odd_sizes"]
    assert not verdict.passed
    assert "sent an invalid reply" in verdict.message


def test_infinite_loop_times_out(attack_verdicts):
    assert attack_verdicts["conv2d_backward_hidden_basic"].passed
    assert attack_verdicts["conv2d_backward_hidden_padding"].passed
    verdict = attack_verdicts["conv2d_backward_hidden_stride"]
    assert not verdict.passed
    assert f"did not finish within {CALL_TIMEOUT} s" in verdict.message


def test_grading_continues_after_timeout(attack_verdicts):
    assert attack_verdicts["maxpool2d_backward_hidden_basic"].passed


def test_process_exit_fails_cell(attack_verdicts):
    verdict = attack_verdicts["maxpool2d_backward_hidden_overlapping"]
    assert not verdict.passed
    assert "the process running your code ended (exit code 3)" in verdict.message


def test_megabyte_output_keeps_protocol(attack_verdicts):
    # MaxPool2D.backward prints 1 MiB to stdout and stderr on every call.
    assert attack_verdicts["maxpool2d_backward_hidden_basic"].passed
    assert attack_verdicts["maxpool2d_backward_hidden_ties"].passed


def test_solutions_not_importable(attack_verdicts):
    for grade_id in ("conv2d_fast_hidden_basic", "conv2d_fast_hidden_padding", "conv2d_fast_hidden_stride"):
        verdict = attack_verdicts[grade_id]
        assert not verdict.passed, grade_id
        assert "NameError" in verdict.message, verdict.message
        assert "No module named 'solutions'" in verdict.message, verdict.message


# ---------------------------------------------------------------------------------------------------
# Without a runner


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_visible_cells_have_hidden_siblings(notebook):
    source = read_source(notebook)
    plan = trusted.plan_notebook(source, source)
    visible = [grade_id for grade_id in graded_cell_ids(notebook) if grade_id.endswith("_visible")]
    assert visible
    assert sorted(plan.visible) == sorted(visible)
    for grade_id, siblings in plan.visible.items():
        assert siblings, grade_id


def test_visible_cell_without_sibling_rejected():
    source = read_source("conv_pool")
    for cell in source.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.startswith("maxpool2d_hidden_"):
            cell.metadata.nbgrader.grade_id = grade_id.replace("maxpool2d_hidden_", "pool_hidden_")
    with pytest.raises(ValueError, match="maxpool2d_visible has no hidden test cell"):
        trusted.plan_notebook(source, source)


def test_hidden_line_other_than_check_rejected():
    source = read_source("conv_pool")
    for cell in source.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "conv2d_hidden_basic":
            cell.source = cell.source.replace("### END HIDDEN TESTS", "assert True\n### END HIDDEN TESTS")
    with pytest.raises(ValueError, match="assert True"):
        trusted.plan_notebook(source, source)


def test_locked_cell_runs_source_text():
    source = read_source("conv_pool")
    submitted = SAMPLE.submission("conv_pool")
    for cell in submitted.cells:
        if cell.get("id") == "setup":
            cell.source = "import numpy as np\nnp.allclose = None"
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": "setup", "locked": True, "solution": False}
    for cell in source.cells:
        if cell.get("id") == "setup":
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": "setup", "locked": True, "solution": False}
    plan = trusted.plan_notebook(submitted, source)
    assert plan.cells[0] == {"label": "setup", "source": "import numpy as np"}


def test_answer_retyped_to_markdown_runs_as_code():
    source = read_source("conv_pool")
    submitted = SAMPLE.submission("conv_pool")
    for cell in submitted.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "conv2d_answer":
            cell.cell_type = "markdown"
    labels = [cell["label"] for cell in trusted.plan_notebook(submitted, source).cells]
    assert "conv2d_answer" in labels


def test_object_array_reply_rejected():
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not allowed"):
        trusted._load_npy(base64.b64encode(buffer.getvalue()).decode("ascii"))


def test_truncated_array_reply_rejected():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((4, 4)), allow_pickle=False)
    with pytest.raises(ValueError, match="do not match"):
        trusted._load_npy(base64.b64encode(buffer.getvalue()[:-8]).decode("ascii"))


# ---------------------------------------------------------------------------------------------------
# Time limits of the code cells


SLOW_CELL = "import time\ntime.sleep(120)\n"
STUBBORN_CELL = "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except KeyboardInterrupt:\n        pass\n"


def test_slow_cell_interrupted_then_next_cells_run(tmp_path):
    submitted = SAMPLE.submission("conv_pool", appended={"conv2d_answer": SLOW_CELL})
    start = time.monotonic()
    verdicts = trusted.recheck(submitted, read_source("conv_pool"), RELEASE, tmp_path / "work", sandbox_mode="require",
                               call_timeout=CALL_TIMEOUT, startup_timeout=STARTUP_TIMEOUT, cell_timeout=1)
    assert time.monotonic() - start < 60
    assert all(verdict.passed for verdict in verdicts.values()), \
        {name: verdict.message for name, verdict in verdicts.items() if not verdict.passed}


def test_cell_ignoring_interrupt_stops_later_tests(tmp_path):
    submitted = SAMPLE.submission("conv_pool", appended={"maxpool2d_answer": STUBBORN_CELL})
    verdicts = trusted.recheck(submitted, read_source("conv_pool"), RELEASE, tmp_path / "work", sandbox_mode="require",
                               call_timeout=CALL_TIMEOUT, startup_timeout=STARTUP_TIMEOUT, cell_timeout=1)
    assert verdicts["conv2d_hidden_stride"].passed
    later = verdicts["maxpool2d_hidden_basic"]
    assert not later.passed
    assert "The cell maxpool2d_answer did not stop within" in later.message
    assert "of its interrupt after 1 s" in later.message
    assert not verdicts["conv2d_fast_hidden_stride"].passed


def test_notebook_budget_fails_remaining_tests(tmp_path):
    submitted = SAMPLE.submission("conv_pool", appended={"conv2d_backward_answer": SLOW_CELL})
    verdicts = trusted.recheck(submitted, read_source("conv_pool"), RELEASE, tmp_path / "work", sandbox_mode="require",
                               call_timeout=CALL_TIMEOUT, startup_timeout=STARTUP_TIMEOUT, cell_timeout=30,
                               notebook_timeout=8)
    assert verdicts["maxpool2d_hidden_odd_sizes"].passed
    last = verdicts["conv2d_fast_hidden_stride"]
    assert not last.passed
    assert "time budget of 8 s" in last.message


def test_runner_that_cannot_start_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(trusted, "RUNNER", tmp_path / "missing_runner.py")
    with pytest.raises(trusted.RunnerStartError, match="the re-check process did not start"):
        trusted.recheck(SAMPLE.submission("conv_pool"), read_source("conv_pool"), RELEASE, tmp_path / "work",
                        sandbox_mode="require", call_timeout=CALL_TIMEOUT, startup_timeout=STARTUP_TIMEOUT)
