"""Benchmarks of the reference layers: against PyTorch on the CPU, and against naive student loops.

Run them with `make bench-layers` or `.venv/bin/python bench/layers.py` from the repository root.
"""

import sys
from pathlib import Path

# The naive student layers live in the test suite's tests/broken_layers.py, which is a module of
# the tests folder, not of a package.
_TESTS_FOLDER = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS_FOLDER not in sys.path:
    sys.path.append(_TESTS_FOLDER)
