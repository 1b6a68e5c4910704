"""The accepted errors of every comparison between a student's result and the reference result.

An error is measured entry by entry as |actual - expected| / max(1, |expected|): an absolute error
for entries up to 1 in size, and a relative error above that, so that large values are not judged
more strictly than small ones. A result passes when its largest error is at most the tolerance of
its dtype and direction. The checks in autograder.checks compute in float64; the float32 entries
are for results that a notebook computes in float32 and compares with a float64 reference.

The notebooks print format_table() in their introduction, so students know the limits in advance.
"""

from typing import NamedTuple

import numpy as np
from numpy.typing import DTypeLike


class Tolerance(NamedTuple):
    """A largest accepted error, with the reason for its size."""

    value: float
    reason: str


# Machine epsilon is 2.2e-16 for float64 and 1.2e-7 for float32. Rounding errors grow with the number
# of terms in a sum and, through an RNN, with every time step. The float32 numbers were measured by
# running the float32 and float64 reference layers side by side on 200 random configurations
# (standard normal parameters, T up to 20), on a 2-core Intel Xeon with numpy 2.4.6.
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("float64", "forward"): Tolerance(
        1e-8,
        "float64 rounding: sums in another order (loops against tensordot) differ by about 4e-15, while "
        "wrong layers are off by 0.3 or more.",
    ),
    ("float64", "backward"): Tolerance(
        1e-7,
        "gradients sum over the batch, every output position and every time step, so rounding builds up "
        "about ten times more than in forward, as measured in float32.",
    ),
    ("float32", "forward"): Tolerance(
        1e-4,
        "float32 keeps about 7 digits, and the largest float32 forward error measured was 4.6e-5, for an "
        "RNN over 20 steps.",
    ),
    ("float32", "backward"): Tolerance(
        1e-3,
        "float32 rounding builds up through backpropagation through time, and the largest float32 backward "
        "error measured was 5.3e-4, for an RNN over 20 steps.",
    ),
}
"""The tolerance of each (dtype, direction), where direction is "forward" or "backward"."""

DIRECTIONS = ("forward", "backward")


def tolerance(dtype: DTypeLike, direction: str) -> float:
    """Return the largest accepted error for results of a dtype ("float64", np.float32, ...) and direction.

    Raises ValueError for a dtype or direction that the table does not contain.
    """
    try:
        dtype_name = np.dtype(dtype).name
    except TypeError as err:
        raise ValueError(f"invalid dtype {dtype!r}: use 'float64' or 'float32'") from err

    key = (dtype_name, direction)
    if key not in TOLERANCES:
        valid = ", ".join(f"({name!r}, {way!r})" for name, way in TOLERANCES)
        raise ValueError(f"no tolerance for dtype {dtype_name!r} and direction {direction!r}. Valid pairs: {valid}.")
    return TOLERANCES[key].value


def format_table() -> str:
    """Format the tolerances as a plain-text table with one row per dtype and direction."""
    header = ("dtype", "direction", "tolerance", "reason")
    rows = [(dtype, direction, f"{entry.value:.0e}", entry.reason) for (dtype, direction), entry in TOLERANCES.items()]

    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(3)]
    lines = [
        "Largest accepted error per entry: |actual - expected| / max(1, |expected|).",
        "  ".join(text.ljust(width) for text, width in zip(header[:3], widths)) + "  " + header[3],
    ]
    for row in rows:
        lines.append("  ".join(text.ljust(width) for text, width in zip(row[:3], widths)) + "  " + row[3])
    return "\n".join(lines)
