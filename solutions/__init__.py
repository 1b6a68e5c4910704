"""Hidden reference implementations of the week's layers, used by the autograder checks.

This package is never released to students. The grading pipeline puts it on the import path
only while it autogrades submissions.
"""

from solutions.conv import Conv2D, MaxPool2D, conv2d_forward_fast
from solutions.recurrent import LSTM, LSTMCell, RNNCell

__all__ = ["Conv2D", "LSTM", "LSTMCell", "MaxPool2D", "RNNCell", "conv2d_forward_fast"]
