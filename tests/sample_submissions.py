"""The sample class's submission builder, and a wrong convolution that tests apply to it."""

from __future__ import annotations

import importlib.util

from autograder.course import COURSE_DIR


def _load_sample_class_module():
    path = COURSE_DIR / "sample_class" / "make_sample_class.py"
    spec = importlib.util.spec_from_file_location("make_sample_class", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLE = _load_sample_class_module()

# Conv2D.forward with the kernel flipped: a true convolution instead of cross-correlation.
FLIPPED_KERNEL = {"conv2d_answer": [
    ("receptive_field * self.filters[f])", "receptive_field * self.filters[f, :, ::-1, ::-1])"),
]}
