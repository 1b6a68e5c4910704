"""Write the sample class: submissions built from the release notebooks and the model answers.

Run it after changing a notebook (``make sample-class``). ``expected_scores.csv`` beside it states
what each submission must score. Every submission starts from the committed release, as a
student's would, and replaces answer cells with the source notebook's model answer, or with
a copy of it that contains one deliberate mistake.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
COURSE = HERE.parent
ASSIGNMENT = "cnn_rnn"
MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)

# A mistake: answer cell id -> list of (text in the model answer, replacement).
Mistake = dict[str, list[tuple[str, str]]]

MISTAKES: dict[str, Mistake] = {
    # Padding added on one side only, and the output size formula adjusted to match.
    "conv_padding_one_side": {"conv2d_answer": [
        ("H_out = (H + 2 * p - k) // s + 1", "H_out = (H + p - k) // s + 1"),
        ("W_out = (W + 2 * p - k) // s + 1", "W_out = (W + p - k) // s + 1"),
        ("((0, 0), (0, 0), (p, p), (p, p))", "((0, 0), (0, 0), (p, 0), (p, 0))"),
    ]},
    # The windows move by one pixel whatever the stride, although the output size uses it.
    "conv_stride_ignored": {"conv2d_answer": [("top = i * s", "top = i"), ("left = j * s", "left = j")]},
    # Pooling windows start at i * k instead of i * stride: right only when stride == kernel size.
    "pool_stride_as_kernel": {"maxpool2d_answer": [("top = i * s", "top = i * k"), ("left = j * s", "left = j * k")]},
    # The hidden state is not carried from one time step to the next.
    "rnn_state_not_carried": {"rnn_answer": [("+ h @ self.W_hh", "+ np.zeros((N, H)) @ self.W_hh")]},
    # Forget and input gates read from each other's column blocks.
    "lstm_forget_input_swapped": {"lstm_cell_answer": [
        ("f = self.sigmoid(z[:, 0:H])", "f = self.sigmoid(z[:, H:2 * H])"),
        ("i = self.sigmoid(z[:, H:2 * H])", "i = self.sigmoid(z[:, 0:H])"),
    ]},
    # A misspelt attribute: RNNCell.forward raises AttributeError on every call.
    "rnn_raises": {"rnn_answer": [("inputs[t] @ self.W_xh", "inputs[t] @ self.W_xy")]},
    # Overlapping pooling windows overwrite each other's gradient instead of adding to it.
    "pool_backward_assigns": {"maxpool2d_backward_answer": [
        ("dX[n, c, top + u, left + v] += dout[n, c, i, j]", "dX[n, c, top + u, left + v] = dout[n, c, i, j]"),
    ]},
    # The input gradient keeps the rows and columns of the zero padding.
    "conv_backward_not_cropped": {"conv2d_backward_answer": [
        ("return dX_padded[:, :, p:p + H, p:p + W]", "return dX_padded"),
    ]},
    # BPTT without the gradient that h_t receives from step t + 1.
    "rnn_backward_not_carried": {"rnn_backward_answer": [
        ("dh = d_outputs[t] @ self.W_hy.T + dh_next", "dh = d_outputs[t] @ self.W_hy.T"),
    ]},
    # backward_step overwrites dW and db, so only the last step back-propagated counts.
    "lstm_backward_assigns": {"lstm_cell_backward_answer": [
        ("self.dW += concat.T @ dz", "self.dW = concat.T @ dz"),
        ("self.db += dz.sum(axis=0)", "self.db = dz.sum(axis=0)"),
    ]},
    # A while loop whose counter never moves: every call of RNNCell.backward runs forever.
    "rnn_backward_infinite_loop": {"rnn_backward_answer": [
        ("for t in reversed(range(T)):", "t = T - 1\n        while t >= 0:"),
    ]},
}


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(os.fspath(path), as_version=4)


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def model_answers(notebook: str) -> dict[str, str]:
    """Return each answer cell's source with its model answer in place of the solution markers."""
    source = read(COURSE / "source" / ASSIGNMENT / f"{notebook}.ipynb")
    return {grade_id(cell): MARKER_LINE.sub("", cell.source)
            for cell in source.cells if cell.metadata.get("nbgrader", {}).get("solution")}


def apply_mistake(answers: dict[str, str], mistake: Mistake) -> dict[str, str]:
    """Return a copy of ``answers`` with each replacement applied exactly once."""
    changed = dict(answers)
    for cell_id, replacements in mistake.items():
        if cell_id not in changed:
            continue
        for old, new in replacements:
            if changed[cell_id].count(old) != 1:
                raise ValueError(f"{cell_id}: expected exactly one {old!r} in the model answer; "
                                 "update MISTAKES in make_sample_class.py to match the source notebook")
            changed[cell_id] = changed[cell_id].replace(old, new)
    return changed


def submission(notebook: str, answered: set[str] | None = None, mistake: Mistake | None = None,
               deleted: tuple[str, ...] = (), appended: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Build one submitted notebook from the release.

    answered: answer cells filled with the model answer (None for all of them);
    mistake: replacements applied to those answers; deleted: cells the student removed;
    appended: extra code added at the end of the named answer cells.
    """
    answers = apply_mistake(model_answers(notebook), mistake or {})
    notebook_node = copy.deepcopy(read(COURSE / "release" / ASSIGNMENT / f"{notebook}.ipynb"))
    cells = []
    for cell in notebook_node.cells:
        cell_id = grade_id(cell)
        if cell_id in deleted:
            continue
        if cell_id in answers and (answered is None or cell_id in answered):
            cell.source = answers[cell_id]
        if appended and cell_id in appended:
            cell.source += "\n" + appended[cell_id]
        cells.append(cell)
    notebook_node.cells = cells
    return notebook_node


def sample_class() -> dict[str, dict[str, nbformat.NotebookNode | str]]:
    """Return each student's notebooks (a string stands for a file that is not a valid notebook)."""
    complete = {"conv_pool": submission("conv_pool"), "rnn_lstm": submission("rnn_lstm")}
    truncated = nbformat.writes(complete["conv_pool"])
    return {
        "ada_complete": complete,
        "ben_untouched": {name: submission(name, answered=set()) for name in ("conv_pool", "rnn_lstm")},
        "chen_partial": {"conv_pool": submission("conv_pool", answered={"conv2d_answer", "maxpool2d_answer"}),
                         "rnn_lstm": submission("rnn_lstm", answered={"rnn_answer", "lstm_cell_answer"})},
        "dana_conv_padding": {**complete, "conv_pool": submission("conv_pool", mistake=MISTAKES["conv_padding_one_side"])},
        "eli_pool_stride": {**complete, "conv_pool": submission("conv_pool", mistake=MISTAKES["pool_stride_as_kernel"])},
        "fay_rnn_state": {**complete, "rnn_lstm": submission("rnn_lstm", mistake=MISTAKES["rnn_state_not_carried"])},
        "gil_lstm_gates": {**complete, "rnn_lstm": submission("rnn_lstm", mistake=MISTAKES["lstm_forget_input_swapped"])},
        "hal_raises": {**complete, "rnn_lstm": submission("rnn_lstm", mistake=MISTAKES["rnn_raises"])},
        "ivy_infinite_loop": {**complete, "rnn_lstm": submission(
            "rnn_lstm", mistake=MISTAKES["rnn_backward_infinite_loop"])},
        "jon_kernel_dies": {**complete, "rnn_lstm": submission(
            "rnn_lstm", appended={"lstm_cell_answer": "import os\nos._exit(1)"})},
        "kim_invalid_json": {**complete, "conv_pool": truncated[: len(truncated) // 2]},
        "mo_pool_backward": {**complete, "conv_pool": submission(
            "conv_pool", mistake=MISTAKES["pool_backward_assigns"])},
        "nia_conv_backward": {**complete, "conv_pool": submission(
            "conv_pool", mistake=MISTAKES["conv_backward_not_cropped"])},
        "oli_rnn_backward": {**complete, "rnn_lstm": submission(
            "rnn_lstm", mistake=MISTAKES["rnn_backward_not_carried"])},
        "pia_lstm_backward": {**complete, "rnn_lstm": submission(
            "rnn_lstm", mistake=MISTAKES["lstm_backward_assigns"])},
        "leo_deleted_tests": {**complete, "conv_pool": submission(
            "conv_pool", mistake=MISTAKES["conv_stride_ignored"],
            deleted=("conv2d_visible", "conv2d_hidden_stride"))},
    }


def write_sample_class(target: Path) -> None:
    """Write every sample submission under ``target/<student>/<assignment>/``."""
    if target.exists():
        shutil.rmtree(target)
    for student, notebooks in sample_class().items():
        folder = target / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for name, content in notebooks.items():
            path = folder / f"{name}.ipynb"
            if isinstance(content, str):
                path.write_text(content)
            else:
                nbformat.write(content, os.fspath(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", type=Path, default=HERE / "submitted",
                        help="folder to write the submissions to (default: %(default)s)")
    write_sample_class(parser.parse_args().target)


if __name__ == "__main__":
    main()
