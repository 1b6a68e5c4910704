"""Feedback preprocessor that keeps hidden tests out of the students' feedback pages.

Stock nbgrader 0.9.6 renders the autograded notebook as it ran, so the feedback HTML shows
the source of every hidden test and, through tracebacks, the lines of the checks it called.
"""

from __future__ import annotations

from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbformat.notebooknode import NotebookNode

HIDDEN_NOTE = "# (The hidden tests of this cell are not shown.)"


class HideHiddenTests(NbGraderPreprocessor):
    """Remove hidden test regions and reduce their cells' outputs to the error message."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or "BEGIN HIDDEN TESTS" not in cell.source:
            return cell, resources

        remover = ClearHiddenTests(enforce_metadata=False)
        remover._remove_hidden_test_region(cell)
        cell.source = f"{cell.source.rstrip()}\n{HIDDEN_NOTE}".lstrip()

        # Tracebacks of a hidden test show the hidden source and the checks' code: keep the message.
        cell.outputs = [_short_error(output) for output in cell.get("outputs", []) if output.output_type == "error"]
        return cell, resources


def _short_error(output: NotebookNode) -> NotebookNode:
    message = f"{output.ename}: {output.evalue}"
    return NotebookNode(output_type="error", ename=output.ename, evalue=output.evalue, traceback=[message])
