"""Put deleted nbgrader cells back into a submitted notebook before it is graded.

Stock nbgrader 0.9.6 skips a deleted test cell, so the notebook loses nothing for it and a
resubmission without the cell keeps the score of the earlier run. Its own option for this
(``OverwriteCells.add_missing_cells``) raises KeyError when the cell before the deleted one is
not a grade or solution cell.

Here each missing cell is taken from the release notebook and put after the nearest earlier
nbgrader cell that the student kept. nbgrader's OverwriteCells then replaces the source of a
restored test cell with the source version, hidden tests included.
"""

from __future__ import annotations

import copy

from nbformat.notebooknode import NotebookNode

RESTORED_NOTE = "# This cell was missing from the submission and was put back for grading.\n"


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def restore_missing_cells(submitted: NotebookNode, release: NotebookNode) -> list[str]:
    """Insert the release's nbgrader cells that ``submitted`` lacks; return their grade ids."""
    present = {_grade_id(cell) for cell in submitted.cells} - {None}
    restored = []
    previous_id = None
    for cell in release.cells:
        grade_id = _grade_id(cell)
        if grade_id is None:
            continue
        if grade_id not in present:
            new_cell = copy.deepcopy(cell)
            if new_cell.cell_type == "code":
                new_cell.source = RESTORED_NOTE + new_cell.source
            position = 0
            if previous_id is not None:
                position = 1 + next(i for i, c in enumerate(submitted.cells) if _grade_id(c) == previous_id)
            submitted.cells.insert(position, new_cell)
            present.add(grade_id)
            restored.append(grade_id)
        previous_id = grade_id
    return restored


def drop_duplicate_cells(submitted: NotebookNode) -> list[str]:
    """Remove every later copy of an nbgrader cell whose grade id came before; return the removed ids.

    nbgrader 0.9.6 stops the whole notebook on a duplicated grade id, with an error about an old
    metadata format that does not name the cell. The first copy stays, as the student placed it.
    """
    seen: set[str] = set()
    kept, dropped = [], []
    for cell in submitted.cells:
        grade_id = _grade_id(cell)
        if grade_id is not None and grade_id in seen:
            dropped.append(grade_id)
            continue
        if grade_id is not None:
            seen.add(grade_id)
        kept.append(cell)
    submitted.cells = kept
    return dropped
