"""Checks that the hidden test cells call to compare a student's layer with the reference layer.

Each check_* function runs one group of configurations. For every configuration it constructs the
student's layer, overwrites its parameters with random float64 values (so the initialisation does
not matter), runs the student's method and the reference method from the package solutions on the
same random inputs, and compares the results. A check returns None when every configuration
passes. Otherwise it raises AssertionError with a message for the student: the method, the
configuration, the expected and actual shape or the largest error and where it is, and the likely
mistake when the check recognises one.

A backward check runs the student's forward first, then backward with a random upstream gradient,
and compares the returned gradient and every parameter gradient that backward stores on the layer,
in float64, within BACKWARD_TOLERANCE. The RNN and LSTM checks also compare the forward results,
because their backward passes use the hidden states that forward computed, while Conv2D and
MaxPool2D backward depend only on the stored input. check_conv2d_fast grades a function instead of a layer.

The checks are deterministic: each group draws its inputs from its own seeded generator. They
print nothing and leave numpy's global random state as they found it.

A hidden test cell looks like this::

    from autograder.checks import check_conv2d_forward
    check_conv2d_forward(Conv2D, "padding")
"""

import contextlib
import itertools
import os
import traceback
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from autograder.tolerances import tolerance

# Frames from these folders are the checks' and numpy's own, not the student's.
_AUTOGRADER_DIR = os.path.dirname(os.path.abspath(__file__))
_NUMPY_DIR = os.path.dirname(np.__file__)

FORWARD_TOLERANCE = tolerance("float64", "forward")
"""Largest accepted error of a forward result, |actual - expected| / max(1, |expected|) per entry.

The student's layer and the reference both compute in float64, but they sum in different orders,
such as loops against tensordot. autograder.tolerances gives the reason for the value.
"""

BACKWARD_TOLERANCE = tolerance("float64", "backward")
"""Largest accepted error of a gradient, measured like FORWARD_TOLERANCE."""

TOLERANCE = FORWARD_TOLERANCE
"""The forward tolerance under its older name."""

Config = Mapping[str, int]

# Configurations of each group, in the order in which they run. The keys are the names that the
# messages show: N batch, C channels, H and W height and width, F filters, T time steps,
# D input size, H hidden size (in sequences), O output size.

_CONV2D_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"N": 2, "C": 3, "H": 5, "W": 5, "F": 4, "kernel_size": 3, "stride": 1, "padding": 0},
        {"N": 3, "C": 2, "H": 6, "W": 8, "F": 3, "kernel_size": 3, "stride": 1, "padding": 0},
        {"N": 2, "C": 4, "H": 7, "W": 4, "F": 2, "kernel_size": 2, "stride": 1, "padding": 0},
        {"N": 2, "C": 3, "H": 4, "W": 6, "F": 5, "kernel_size": 1, "stride": 1, "padding": 0},
    ],
    "padding": [
        {"N": 2, "C": 3, "H": 5, "W": 7, "F": 4, "kernel_size": 3, "stride": 1, "padding": 1},
        {"N": 2, "C": 2, "H": 6, "W": 4, "F": 3, "kernel_size": 3, "stride": 1, "padding": 2},
        {"N": 3, "C": 3, "H": 4, "W": 5, "F": 2, "kernel_size": 2, "stride": 1, "padding": 1},
        {"N": 2, "C": 2, "H": 6, "W": 7, "F": 2, "kernel_size": 5, "stride": 1, "padding": 2},
    ],
    # Sizes chosen so that the last rows or columns do not fill a whole window.
    "stride": [
        {"N": 2, "C": 3, "H": 8, "W": 7, "F": 4, "kernel_size": 3, "stride": 2, "padding": 0},
        {"N": 2, "C": 3, "H": 8, "W": 7, "F": 4, "kernel_size": 3, "stride": 2, "padding": 1},
        {"N": 2, "C": 2, "H": 9, "W": 11, "F": 3, "kernel_size": 2, "stride": 3, "padding": 0},
        {"N": 3, "C": 2, "H": 10, "W": 7, "F": 2, "kernel_size": 3, "stride": 3, "padding": 2},
    ],
}

_MAXPOOL2D_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"N": 2, "C": 3, "H": 4, "W": 4, "kernel_size": 2, "stride": 2},
        {"N": 3, "C": 2, "H": 6, "W": 8, "kernel_size": 2, "stride": 2},
    ],
    "overlapping": [
        {"N": 2, "C": 2, "H": 7, "W": 7, "kernel_size": 3, "stride": 2},
        {"N": 2, "C": 3, "H": 6, "W": 9, "kernel_size": 3, "stride": 1},
        {"N": 3, "C": 1, "H": 8, "W": 5, "kernel_size": 3, "stride": 2},
    ],
    "odd_sizes": [
        {"N": 2, "C": 2, "H": 5, "W": 7, "kernel_size": 2, "stride": 2},
        {"N": 2, "C": 3, "H": 7, "W": 4, "kernel_size": 2, "stride": 2},
        {"N": 3, "C": 2, "H": 8, "W": 11, "kernel_size": 3, "stride": 3},
    ],
}

_RNN_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"T": 4, "N": 3, "D": 5, "H": 6, "O": 2},
        {"T": 3, "N": 2, "D": 2, "H": 4, "O": 3},
    ],
    "single_step": [
        {"T": 1, "N": 3, "D": 4, "H": 5, "O": 2},
        {"T": 1, "N": 2, "D": 3, "H": 2, "O": 4},
    ],
    "long": [
        {"T": 20, "N": 2, "D": 3, "H": 8, "O": 4},
    ],
}

# Standard deviation of the random RNN parameters. The larger weights of "long" drive the hidden
# state into the saturated range of tanh, and errors in the recurrence build up over 20 steps.
_RNN_WEIGHT_SCALE = {"basic": 0.5, "single_step": 0.5, "long": 1.0}

_LSTM_STEP_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"N": 3, "D": 4, "H": 5},
        {"N": 2, "D": 3, "H": 3},
    ],
    "nonzero_state": [
        {"N": 3, "D": 4, "H": 6},
        {"N": 2, "D": 5, "H": 3},
    ],
}

_LSTM_FORWARD_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"T": 5, "N": 3, "D": 4, "H": 6},
        {"T": 3, "N": 2, "D": 3, "H": 2},
    ],
    "single_step": [
        {"T": 1, "N": 3, "D": 4, "H": 5},
    ],
}

# The backward checks and check_conv2d_fast run Conv2D on the configurations of the forward check.
_CONV2D_BACKWARD_GROUPS = _CONV2D_GROUPS

_MAXPOOL2D_BACKWARD_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"N": 2, "C": 3, "H": 4, "W": 4, "kernel_size": 2, "stride": 2},
        {"N": 3, "C": 2, "H": 6, "W": 8, "kernel_size": 2, "stride": 2},
        {"N": 2, "C": 2, "H": 7, "W": 5, "kernel_size": 2, "stride": 2},
    ],
    "overlapping": _MAXPOOL2D_GROUPS["overlapping"],
    # The inputs of this group take only the values 0, 1 and 2, so most windows have several
    # entries equal to their maximum. The windows do not overlap, so that a gradient assigned
    # instead of accumulated fails "overlapping" only.
    "ties": [
        {"N": 2, "C": 2, "H": 6, "W": 6, "kernel_size": 2, "stride": 2},
        {"N": 2, "C": 3, "H": 7, "W": 10, "kernel_size": 3, "stride": 3},
        {"N": 3, "C": 2, "H": 5, "W": 7, "kernel_size": 2, "stride": 2},
    ],
}

_RNN_BACKWARD_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"T": 6, "N": 3, "D": 5, "H": 6, "O": 2},
        # D = H = O, so that a weight used without its transpose gives wrong values, not a shape error.
        {"T": 5, "N": 2, "D": 4, "H": 4, "O": 4},
    ],
    "single_step": [
        {"T": 1, "N": 3, "D": 4, "H": 5, "O": 2},
        {"T": 1, "N": 2, "D": 3, "H": 3, "O": 3},
    ],
    "long": [
        {"T": 12, "N": 2, "D": 3, "H": 8, "O": 4},
    ],
}

_LSTM_STEP_BACKWARD_GROUPS: dict[str, list[Config]] = {
    "basic": [
        # H + D = 4H, so W is square: W used without its transpose gives wrong values, not a shape error.
        {"N": 2, "D": 6, "H": 2},
        {"N": 3, "D": 4, "H": 5},
    ],
    "two_steps": [
        {"N": 3, "D": 4, "H": 5},
        {"N": 2, "D": 6, "H": 2},
    ],
}

_LSTM_BACKWARD_GROUPS: dict[str, list[Config]] = {
    "basic": [
        {"T": 6, "N": 3, "D": 4, "H": 5},
        {"T": 5, "N": 2, "D": 3, "H": 2},
    ],
    "single_step": [
        {"T": 1, "N": 3, "D": 4, "H": 5},
    ],
}

GROUPS: dict[str, tuple[str, ...]] = {
    "check_conv2d_forward": tuple(_CONV2D_GROUPS),
    "check_maxpool2d_forward": tuple(_MAXPOOL2D_GROUPS),
    "check_rnn_forward": tuple(_RNN_GROUPS),
    "check_lstm_step": tuple(_LSTM_STEP_GROUPS),
    "check_lstm_forward": tuple(_LSTM_FORWARD_GROUPS),
    "check_conv2d_backward": tuple(_CONV2D_BACKWARD_GROUPS),
    "check_maxpool2d_backward": tuple(_MAXPOOL2D_BACKWARD_GROUPS),
    "check_rnn_backward": tuple(_RNN_BACKWARD_GROUPS),
    "check_lstm_step_backward": tuple(_LSTM_STEP_BACKWARD_GROUPS),
    "check_lstm_backward": tuple(_LSTM_BACKWARD_GROUPS),
    "check_conv2d_fast": tuple(_CONV2D_BACKWARD_GROUPS),
}
"""The valid groups of each check function, in the order in which a notebook usually runs them."""

_LSTM_GATES = ("f", "i", "o", "g")
"""The order of the column blocks of LSTMCell.W and LSTMCell.b: forget, input, output, candidate."""


# ---------------------------------------------------------------------------------------------------
# Public checks


def check_conv2d_forward(layer_class: type, group: str) -> None:
    """Check Conv2D.forward on one group of configurations, raising AssertionError on a mismatch.

    Groups: "basic" (stride 1 without padding), "padding" (padding 1 and 2 at stride 1) and
    "stride" (stride 2 and 3, with and without padding, where the windows do not tile the input).
    """
    configs = _select_group("check_conv2d_forward", _CONV2D_GROUPS, group)
    reference = _import_solutions()
    rng = _group_rng("check_conv2d_forward", group)
    with _global_random_state_kept():
        for config in configs:
            _check_conv2d_config(layer_class, reference, config, rng)


def check_maxpool2d_forward(layer_class: type, group: str) -> None:
    """Check MaxPool2D.forward on one group of configurations, raising AssertionError on a mismatch.

    Groups: "basic" (kernel_size 2, stride 2 on even sizes), "overlapping" (kernel_size 3 with
    stride 2 and 1) and "odd_sizes" (odd and non-square inputs that the windows do not tile).
    """
    configs = _select_group("check_maxpool2d_forward", _MAXPOOL2D_GROUPS, group)
    reference = _import_solutions()
    rng = _group_rng("check_maxpool2d_forward", group)
    with _global_random_state_kept():
        for config in configs:
            _check_maxpool2d_config(layer_class, reference, config, rng)


def check_rnn_forward(layer_class: type, group: str) -> None:
    """Check RNNCell.forward on one group of configurations, raising AssertionError on a mismatch.

    Groups: "basic" (several time steps, input, hidden and output sizes all different),
    "single_step" (T = 1) and "long" (T = 20 with larger weights).
    """
    configs = _select_group("check_rnn_forward", _RNN_GROUPS, group)
    reference = _import_solutions()
    rng = _group_rng("check_rnn_forward", group)
    with _global_random_state_kept():
        for config in configs:
            _check_rnn_config(layer_class, reference, config, rng, _RNN_WEIGHT_SCALE[group])


def check_lstm_step(layer_class: type, group: str) -> None:
    """Check LSTMCell.forward_step on one group of configurations, raising AssertionError on a mismatch.

    Groups: "basic" (h_prev and c_prev are zero) and "nonzero_state" (random h_prev and c_prev,
    with input size D different from hidden size H).
    """
    configs = _select_group("check_lstm_step", _LSTM_STEP_GROUPS, group)
    reference = _import_solutions()
    rng = _group_rng("check_lstm_step", group)
    with _global_random_state_kept():
        for config in configs:
            _check_lstm_step_config(layer_class, reference, config, rng, nonzero_state=group == "nonzero_state")


def check_lstm_forward(layer_class: type, group: str) -> None:
    """Check LSTM.forward on one group of configurations, raising AssertionError on a mismatch.

    layer_class is the student's LSTM, whose attribute cell is the student's LSTMCell, so a wrong
    cell fails this check too. Groups: "basic" (several time steps) and "single_step" (T = 1).
    """
    configs = _select_group("check_lstm_forward", _LSTM_FORWARD_GROUPS, group)
    reference = _import_solutions()
    rng = _group_rng("check_lstm_forward", group)
    with _global_random_state_kept():
        for config in configs:
            _check_lstm_forward_config(layer_class, reference, config, rng)


def check_conv2d_backward(layer_class: type, group: str) -> None:
    """Check Conv2D.backward, dfilters and dbias on one group of configurations.

    Runs forward, then backward with a random upstream gradient, and raises AssertionError on a
    mismatch. Groups: "basic" (stride 1 without padding), "padding" (padding 1 and 2, so dX must
    be cropped) and "stride" (stride 2 and 3, with and without padding).
    """
    _run_group("check_conv2d_backward", _CONV2D_BACKWARD_GROUPS, group, layer_class, _check_conv2d_backward_config)


def check_maxpool2d_backward(layer_class: type, group: str) -> None:
    """Check MaxPool2D.backward on one group of configurations, raising AssertionError on a mismatch.

    Groups: "basic" (kernel_size 2, stride 2), "overlapping" (kernel_size 3 with stride 2 and 1,
    where gradients of overlapping windows add up) and "ties". The inputs of "ties" take only the
    values 0, 1 and 2, and the first maximal entry of a window in row-major order gets its gradient.
    """
    _run_group(
        "check_maxpool2d_backward", _MAXPOOL2D_BACKWARD_GROUPS, group, layer_class, _check_maxpool2d_backward_config
    )


def check_rnn_backward(layer_class: type, group: str) -> None:
    """Check RNNCell.backward and its five parameter gradients on one group of configurations.

    Raises AssertionError on a mismatch. Groups: "basic" (T = 5 and 6), "single_step" (T = 1, where
    nothing flows back through time) and "long" (T = 12 with larger weights).
    """
    _run_group("check_rnn_backward", _RNN_BACKWARD_GROUPS, group, layer_class, _check_rnn_backward_config)


def check_lstm_step_backward(layer_class: type, group: str) -> None:
    """Check LSTMCell.backward_step, dW and db on one group of configurations.

    Raises AssertionError on a mismatch. Groups: "basic" (one forward_step, then one backward_step)
    and "two_steps" (two forward_steps, then two backward_steps, which must back-propagate the
    second step first and add both steps' gradients into dW and db).
    """
    _run_group(
        "check_lstm_step_backward", _LSTM_STEP_BACKWARD_GROUPS, group, layer_class, _check_lstm_step_backward_config
    )


def check_lstm_backward(layer_class: type, group: str) -> None:
    """Check LSTM.backward, cell.dW and cell.db on one group of configurations.

    layer_class is the student's LSTM, whose attribute cell is the student's LSTMCell, so a wrong
    backward_step fails this check too. Each configuration runs forward and backward twice, so
    that gradients left over from the first backward call show. Groups: "basic" (T = 5 and 6)
    and "single_step" (T = 1).
    """
    _run_group("check_lstm_backward", _LSTM_BACKWARD_GROUPS, group, layer_class, _check_lstm_backward_config)


def check_conv2d_fast(forward_function: Callable[..., np.ndarray], group: str) -> None:
    """Check a loop-free convolution forward_function(X, filters, bias, stride, padding) -> out.

    It must compute what Conv2D.forward computes. Raises AssertionError on a mismatch. Groups:
    "basic", "padding" and "stride", the configurations of check_conv2d_forward.
    """
    _run_group("check_conv2d_fast", _CONV2D_BACKWARD_GROUPS, group, forward_function, _check_conv2d_fast_config)


def _run_group(
    check_name: str,
    groups: Mapping[str, list[Config]],
    group: str,
    implementation: Any,
    check_config: Callable[..., None],
) -> None:
    """Run check_config(implementation, reference, config, rng, group) on every configuration of a group."""
    configs = _select_group(check_name, groups, group)
    reference = _import_solutions()
    rng = _group_rng(check_name, group)
    with _global_random_state_kept():
        for config in configs:
            check_config(implementation, reference, config, rng, group)


# ---------------------------------------------------------------------------------------------------
# One configuration of each check


def _check_conv2d_config(layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator) -> None:
    N, C, H, W, F = config["N"], config["C"], config["H"], config["W"], config["F"]
    kernel_size, stride, padding = config["kernel_size"], config["stride"], config["padding"]
    kwargs = {"in_channels": C, "out_channels": F, "kernel_size": kernel_size, "stride": stride, "padding": padding}
    parameters = [
        _Parameter(
            "filters", rng.standard_normal((F, C, kernel_size, kernel_size)), "(F, C, kernel_size, kernel_size)"
        ),
        _Parameter("bias", rng.standard_normal(F), "(F,)"),
    ]
    filters, bias = parameters[0].value, parameters[1].value
    X = rng.standard_normal((N, C, H, W))

    def reference_output(
        images: np.ndarray = X, filters: np.ndarray = filters, bias: np.ndarray = bias, **overrides: int
    ) -> np.ndarray:
        layer = _reference_layer(reference.Conv2D, {**kwargs, **overrides}, {"filters": filters, "bias": bias})
        return layer.forward(images.copy())

    expected = reference_output()
    student = _construct_student(layer_class, "Conv2D", config, kwargs, parameters)
    actual = _call_student(_Case("Conv2D.forward", config), student, "forward", {"X": X}, parameters)

    mistakes = _conv2d_forward_mistakes(reference_output, X, filters, bias, config, expected)
    _compare(_Case("Conv2D.forward", config), actual, expected, mistakes)


def _conv2d_forward_mistakes(
    reference_output: Callable[..., np.ndarray],
    X: np.ndarray,
    filters: np.ndarray,
    bias: np.ndarray,
    config: Config,
    expected: np.ndarray,
) -> list["_Mistake"]:
    """Describe the mistakes of a convolution forward pass on X with the given filters and bias.

    reference_output(images=..., filters=..., bias=..., stride=..., padding=...) computes the
    reference result, and each argument left out takes the value of the configuration.
    """
    H, W = config["H"], config["W"]
    kernel_size, stride, padding = config["kernel_size"], config["stride"], config["padding"]

    H_out, W_out = expected.shape[2:]
    mistakes = [
        _gives_result(
            "the kernel is flipped, which computes a true convolution. This layer computes cross-correlation, "
            "so multiply each receptive field by filters[f] as it is.",
            lambda: reference_output(filters=filters[:, :, ::-1, ::-1]),
        ),
        _gives_result(
            "the bias is missing. Add bias[f] to every output of filter f.",
            lambda: reference_output(bias=np.zeros_like(bias)),
        ),
    ]
    if padding > 0:
        for sides, pad_width in (("below and right of", (0, 2 * padding)), ("above and left of", (2 * padding, 0))):
            mistakes.append(
                _gives_result(
                    f"all the zero padding is {sides} the image. Put {padding} rows of zeros above it and "
                    f"{padding} below it, and {padding} columns on its left and on its right, for example with "
                    "np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding))).",
                    lambda pad_width=pad_width: reference_output(
                        images=np.pad(X, ((0, 0), (0, 0), pad_width, pad_width)), padding=0
                    ),
                )
            )
    if stride > 1:
        mistakes.append(
            _gives_result(
                "the windows move by one pixel instead of by the stride. "
                "The window of output (i, j) starts at row i*stride and column j*stride of the padded input.",
                lambda: reference_output(stride=1)[:, :, :H_out, :W_out],
            )
        )
    mistakes.append(_transposed_image(expected))
    mistakes += _image_shape_mistakes(
        expected.shape, H, W, kernel_size, stride, padding, "H_out = (H + 2*padding - kernel_size) // stride + 1"
    )
    return mistakes


def _check_maxpool2d_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator
) -> None:
    N, C, H, W = config["N"], config["C"], config["H"], config["W"]
    kernel_size, stride = config["kernel_size"], config["stride"]
    kwargs = {"kernel_size": kernel_size, "stride": stride}
    X = rng.standard_normal((N, C, H, W))

    expected = reference.MaxPool2D(**kwargs).forward(X.copy())
    student = _construct_student(layer_class, "MaxPool2D", config, kwargs, parameters=[])
    actual = _call_student(_Case("MaxPool2D.forward", config), student, "forward", {"X": X}, parameters=[])

    def window_means() -> np.ndarray:
        windows = sliding_window_view(X, (kernel_size, kernel_size), axis=(2, 3))[:, :, ::stride, ::stride]
        return windows.mean(axis=(4, 5))

    mistakes = [
        _gives_result(
            "each window is averaged. Max pooling takes the maximum of each window.",
            window_means,
        ),
        _gives_result(
            "the running maximum starts at 0, so a window whose values are all negative gives 0. "
            "Start from the first value of the window, or use np.max.",
            lambda: np.maximum(expected, 0.0),
        ),
    ]
    if stride != kernel_size:
        mistakes.append(
            _gives_result(
                "the windows move by kernel_size instead of by the stride. The window of output (i, j) starts at "
                "row i*stride and column j*stride.",
                lambda: _maxima_of_windows_moving_by(X, kernel_size, kernel_size, expected.shape),
            )
        )
    mistakes.append(_transposed_image(expected))
    mistakes += _image_shape_mistakes(
        expected.shape, H, W, kernel_size, stride, 0, "H_out = (H - kernel_size) // stride + 1"
    )
    _compare(_Case("MaxPool2D.forward", config), actual, expected, mistakes)


def _check_rnn_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator, weight_scale: float
) -> None:
    T, N, D, H, O = config["T"], config["N"], config["D"], config["H"], config["O"]
    kwargs = {"input_size": D, "hidden_size": H, "output_size": O}
    parameters = [
        _Parameter("W_xh", rng.standard_normal((D, H)) * weight_scale, "(D, H)"),
        _Parameter("W_hh", rng.standard_normal((H, H)) * weight_scale, "(H, H)"),
        _Parameter("W_hy", rng.standard_normal((H, O)) * weight_scale, "(H, O)"),
        _Parameter("b_h", rng.standard_normal(H) * weight_scale, "(H,)"),
        _Parameter("b_y", rng.standard_normal(O) * weight_scale, "(O,)"),
    ]
    values = {parameter.name: parameter.value for parameter in parameters}
    inputs = rng.standard_normal((T, N, D))

    def reference_result(**overrides: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        layer = _reference_layer(reference.RNNCell, kwargs, {**values, **overrides})
        return layer.forward(inputs.copy())

    def outputs_before_tanh() -> tuple[np.ndarray, np.ndarray]:
        _, hidden_states = expected
        previous = np.concatenate([np.zeros_like(hidden_states[:1]), hidden_states[:-1]])
        pre_activations = inputs @ values["W_xh"] + previous @ values["W_hh"] + values["b_h"]
        return pre_activations @ values["W_hy"] + values["b_y"], hidden_states

    expected = reference_result()
    student = _construct_student(layer_class, "RNNCell", config, kwargs, parameters)
    case = _Case("RNNCell.forward", config)
    actual = _call_student(case, student, "forward", {"inputs": inputs}, parameters)

    mistakes = [
        _gives_result(
            "the returned tuple is in the wrong order. Return (outputs, hidden_states).",
            lambda: (expected[1], expected[0]),
        ),
        _gives_result(
            "the hidden state is not carried from one time step to the next. "
            "h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) needs the previous step's h_{t-1}.",
            lambda: reference_result(W_hh=np.zeros_like(values["W_hh"])),
        ),
        _gives_result(
            "the bias b_h is missing from the hidden state: h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h).",
            lambda: reference_result(b_h=np.zeros_like(values["b_h"])),
        ),
        _gives_result(
            "the bias b_y is missing from the output: y_t = h_t W_hy + b_y.",
            lambda: reference_result(b_y=np.zeros_like(values["b_y"])),
        ),
        _gives_result(
            "the output is computed from the hidden state before tanh. Use y_t = h_t W_hy + b_y with the h_t "
            "that tanh returns.",
            outputs_before_tanh,
        ),
    ]
    # The hidden states come first because the outputs are computed from them.
    _compare(case, actual, expected, mistakes, names=("outputs", "hidden_states"), order=(1, 0))


def _check_lstm_step_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator, nonzero_state: bool
) -> None:
    N, D, H = config["N"], config["D"], config["H"]
    kwargs = {"input_size": D, "hidden_size": H}
    parameters = [
        _Parameter("W", rng.standard_normal((H + D, 4 * H)) * 0.5, "(H + D, 4H)"),
        _Parameter("b", rng.standard_normal(4 * H) * 0.5, "(4H,)"),
    ]
    W, b = parameters[0].value, parameters[1].value
    x_t = rng.standard_normal((N, D))
    if nonzero_state:
        h_prev = rng.uniform(-1.0, 1.0, (N, H))
        c_prev = rng.standard_normal((N, H)) * 1.5
    else:
        h_prev = np.zeros((N, H))
        c_prev = np.zeros((N, H))

    def reference_step(W: np.ndarray = W, b: np.ndarray = b) -> tuple[np.ndarray, np.ndarray]:
        cell = _reference_layer(reference.LSTMCell, kwargs, {"W": W, "b": b})
        return cell.forward_step(x_t.copy(), h_prev.copy(), c_prev.copy())

    def without_forget_gate() -> tuple[np.ndarray, np.ndarray]:
        # A forget-gate bias of +inf makes the reference's sigmoid return exactly 1, so that
        # c_t = c_prev + i * g, which is what a cell state without the forget gate computes.
        b_saturated = b.copy()
        b_saturated[:H] = np.inf
        return reference_step(b=b_saturated)

    expected = reference_step()
    student = _construct_student(layer_class, "LSTMCell", config, kwargs, parameters)
    case = _Case("LSTMCell.forward_step", config)
    inputs = {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev}
    actual = _call_student(case, student, "forward_step", inputs, parameters)

    mistakes = [
        _gives_result(
            "the returned tuple is in the wrong order. Return (h_t, c_t).",
            lambda: (expected[1], expected[0]),
        ),
        *_lstm_gate_order_mistakes(reference_step, W, b, H),
        _gives_result(
            "W multiplies [x_t, h_prev], but the first H rows of W belong to the hidden state, "
            "so concatenate [h_prev, x_t].",
            lambda: reference_step(W=np.concatenate([W[D:], W[:D]])),
        ),
        _gives_result(
            "the cell state ignores the forget gate. Use c_t = f * c_prev + i * g.",
            without_forget_gate,
        ),
        _gives_result(
            "the candidate g uses sigmoid. It uses tanh, g = tanh(z_g), so that it can also lower the cell state.",
            lambda: _lstm_step_forward_model(
                W, b, (x_t, h_prev, c_prev), functions={**_GATE_FUNCTIONS, "g": "sigmoid"}
            ),
        ),
    ]
    # c_t comes first because h_t is computed from it.
    _compare(case, actual, expected, mistakes, names=("h_t", "c_t"), order=(1, 0))


def _check_lstm_forward_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator
) -> None:
    T, N, D, H = config["T"], config["N"], config["D"], config["H"]
    kwargs = {"input_size": D, "hidden_size": H}
    parameters = [
        _Parameter("cell.W", rng.standard_normal((H + D, 4 * H)) * 0.5, "(H + D, 4H)"),
        _Parameter("cell.b", rng.standard_normal(4 * H) * 0.5, "(4H,)"),
    ]
    W, b = parameters[0].value, parameters[1].value
    inputs = rng.standard_normal((T, N, D))

    reference_layer = _reference_layer(reference.LSTM, kwargs, {"cell.W": W, "cell.b": b})
    expected = reference_layer.forward(inputs.copy())
    student = _construct_student(layer_class, "LSTM", config, kwargs, parameters)
    case = _Case("LSTM.forward", config)
    actual = _call_student(case, student, "forward", {"inputs": inputs}, parameters)

    def run_cell(carry_hidden: bool, carry_cell: bool) -> tuple[np.ndarray, np.ndarray]:
        """Run the reference cell over the sequence, optionally resetting h or c to 0 at every step."""
        hidden_states, cell_states = np.empty((T, N, H)), np.empty((T, N, H))
        h, c = np.zeros((N, H)), np.zeros((N, H))
        for t in range(T):
            h_prev = h if carry_hidden else np.zeros((N, H))
            c_prev = c if carry_cell else np.zeros((N, H))
            h, c = reference_layer.cell.forward_step(inputs[t], h_prev, c_prev)
            hidden_states[t], cell_states[t] = h, c
        return hidden_states, cell_states

    mistakes = [
        _gives_result(
            "the result contains the cell states c_t. Return the hidden states h_t.",
            lambda: run_cell(carry_hidden=True, carry_cell=True)[1],
        ),
        _gives_result(
            "the state is not carried from one time step to the next. Pass the h_t and c_t "
            "of each step as h_prev and c_prev of the next.",
            lambda: run_cell(carry_hidden=False, carry_cell=False)[0],
        ),
        _gives_result(
            "the cell state is reset to 0 at every step. Pass the c_t of each step as c_prev of the next.",
            lambda: run_cell(carry_hidden=True, carry_cell=False)[0],
        ),
        _gives_result(
            "the hidden state is reset to 0 at every step. Pass the h_t of each step as h_prev of the next.",
            lambda: run_cell(carry_hidden=False, carry_cell=True)[0],
        ),
    ]
    if N != T:
        mistakes.append(
            _gives_shape(
                "the time and batch axes are swapped. The result has shape (T, N, H), "
                "with the time steps along axis 0.",
                (N, T, H),
            )
        )
    _compare(case, actual, expected, mistakes)


def _lstm_gate_order_mistakes(
    reference_step: Callable[..., tuple[np.ndarray, np.ndarray]], W: np.ndarray, b: np.ndarray, H: int
) -> list["_Mistake"]:
    """Describe each wrong order in which a cell could read its four gates from the column blocks."""
    blocks = [slice(k * H, (k + 1) * H) for k in range(4)]
    mistakes = []
    for read_blocks in itertools.permutations(range(4)):
        if read_blocks == (0, 1, 2, 3):
            continue

        # read_blocks[j] is the block from which the mistaken cell takes gate _LSTM_GATES[j].
        order = [""] * 4
        for gate, block in zip(_LSTM_GATES, read_blocks):
            order[block] = gate
        order_text = ", ".join(order)
        if order_text == "i, f, g, o":
            order_text += " (PyTorch's order)"

        def mistaken_step(read_blocks: tuple[int, ...] = read_blocks) -> tuple[np.ndarray, np.ndarray]:
            columns = [blocks[block] for block in read_blocks]
            W_read = np.concatenate([W[:, column] for column in columns], axis=1)
            b_read = np.concatenate([b[column] for column in columns])
            return reference_step(W=W_read, b=b_read)

        mistakes.append(
            _gives_result(
                f"the gates are read from the column blocks of W and b in the order {order_text}, "
                "but the blocks are, in order, forget f, input i, output o and candidate g.",
                mistaken_step,
            )
        )
    return mistakes


def _maxima_of_windows_moving_by(
    X: np.ndarray, kernel_size: int, step: int, shape: tuple[int, ...]
) -> np.ndarray | None:
    """Take the maximum of windows that start step pixels apart, as many as the output shape has.

    Windows that reach past the input are cut off at its edge, as array slicing cuts them, and
    None is returned if a window lies wholly outside the input, where np.max would raise.
    """
    out = np.empty(shape)
    for i in range(shape[2]):
        for j in range(shape[3]):
            window = X[:, :, i * step : i * step + kernel_size, j * step : j * step + kernel_size]
            if window.size == 0:
                return None
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out


_SWAPPED_HEIGHT_WIDTH = "the height and width of the output are swapped. Its last two axes are H_out, then W_out."


def _transposed_image(expected: np.ndarray) -> "_Mistake":
    """Describe the mistake of swapping the height and width axes of a correct output, square or not."""
    return _gives_result(_SWAPPED_HEIGHT_WIDTH, lambda: expected.swapaxes(2, 3))


def _image_shape_mistakes(
    expected_shape: tuple[int, ...], H: int, W: int, kernel_size: int, stride: int, padding: int, formula: str
) -> list["_Mistake"]:
    """Describe the wrong output shapes of a layer over images that come from a known mistake."""

    def size(length: int, stride: int = stride, padding: int = padding, rounded_up: bool = False) -> int:
        span = length + 2 * padding - kernel_size
        return (-(-span // stride) if rounded_up else span // stride) + 1

    batch, channels, H_out, W_out = expected_shape
    formula += ", and likewise W_out"
    candidates = [
        (_SWAPPED_HEIGHT_WIDTH, W_out, H_out),
        (f"the output size ignores the stride: {formula}.", size(H, stride=1), size(W, stride=1)),
        (f"the output size ignores the padding: {formula}.", size(H, padding=0), size(W, padding=0)),
        (
            f"the output size is rounded up. Use floor division: {formula}.",
            size(H, rounded_up=True),
            size(W, rounded_up=True),
        ),
        (f"the output size is off by one: {formula}.", H_out - 1, W_out - 1),
        (f"the output size is off by one: {formula}.", H_out + 1, W_out + 1),
    ]

    mistakes = []
    for description, rows, columns in candidates:
        shape = (batch, channels, rows, columns)
        if shape != expected_shape:
            mistakes.append(_gives_shape(description, shape))
    return mistakes


# ---------------------------------------------------------------------------------------------------
# One configuration of each backward check, and of check_conv2d_fast

_FORWARD_FIRST = "The backward check runs forward first, so fix forward before backward."


def _check_conv2d_backward_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator, group: str
) -> None:
    N, C, H, W, F = config["N"], config["C"], config["H"], config["W"], config["F"]
    kernel_size, stride, padding = config["kernel_size"], config["stride"], config["padding"]
    kwargs = {"in_channels": C, "out_channels": F, "kernel_size": kernel_size, "stride": stride, "padding": padding}
    parameters = [
        _Parameter(
            "filters", rng.standard_normal((F, C, kernel_size, kernel_size)), "(F, C, kernel_size, kernel_size)"
        ),
        _Parameter("bias", rng.standard_normal(F), "(F,)"),
    ]
    values = {parameter.name: parameter.value for parameter in parameters}
    filters = values["filters"]
    X = rng.standard_normal((N, C, H, W))

    def reference_gradients(
        dout: np.ndarray, filters_in_backward: np.ndarray = filters, images: np.ndarray = X, **overrides: int
    ) -> dict[str, np.ndarray]:
        """Run the reference forward, then its backward with filters_in_backward in place of the filters."""
        layer = _reference_layer(reference.Conv2D, {**kwargs, **overrides}, values)
        layer.forward(images.copy())
        layer.filters = filters_in_backward.copy()
        dX = layer.backward(dout.copy())
        return {"dX": dX, "dfilters": layer.dfilters, "dbias": layer.dbias}

    expected_out = _reference_layer(reference.Conv2D, kwargs, values).forward(X.copy())
    dout = rng.standard_normal(expected_out.shape)
    expected = reference_gradients(dout)

    # backward depends only on the input that forward keeps, so a wrong forward output is left to
    # check_conv2d_forward, and one mistake does not fail both checks.
    student = _construct_student(layer_class, "Conv2D", config, kwargs, parameters)
    _call_student(_Case("Conv2D.forward", config), student, "forward", {"X": X}, parameters)

    case = _Case("Conv2D.backward", config)
    dX = _call_student(case, student, "backward", {"dout": dout}, parameters)
    gradients = [
        _returned_gradient("dX", dX, expected["dX"]),
        _stored_gradient(case, student, "dfilters", expected["dfilters"], "(F, C, kernel_size, kernel_size)"),
        _stored_gradient(case, student, "dbias", expected["dbias"], "(F,)"),
    ]

    H_out, W_out = expected_out.shape[2:]

    def stride_ignored() -> dict[str, np.ndarray]:
        # A stride-1 layer has an output (i, j) for every window position. Putting dout on the first
        # H_out x W_out of them sends each gradient to the window one pixel apart from the previous.
        stride_one_out = _reference_layer(reference.Conv2D, {**kwargs, "stride": 1}, values).forward(X.copy())
        upstream = np.zeros_like(stride_one_out)
        upstream[:, :, :H_out, :W_out] = dout
        gradients = reference_gradients(upstream, stride=1)
        return {"dX": gradients["dX"], "dfilters": gradients["dfilters"]}

    mistakes = [
        _GradientMistake(
            "the kernel is flipped in backward. Forward multiplies each receptive field by filters[f] as it is, "
            "so backward adds dout[n, f, i, j] * filters[f], not flipped, to the gradient of that receptive field.",
            lambda: {"dX": reference_gradients(dout, filters_in_backward=filters[:, :, ::-1, ::-1])["dX"]},
        ),
        _GradientMistake(
            "dfilters is flipped. dfilters[f] is the sum of dout[n, f, i, j] times the receptive field of "
            "output (i, j), as it is, not flipped.",
            lambda: {"dfilters": expected["dfilters"][:, :, ::-1, ::-1]},
        ),
        _GradientMistake(
            "dbias is averaged instead of summed. Each output of filter f adds bias[f], so dbias[f] is the sum "
            "of dout[:, f]: dout.sum(axis=(0, 2, 3)).",
            lambda: {"dbias": dout.mean(axis=(0, 2, 3))},
        ),
    ]
    for axes in _subsets((0, 1, 2, 3)):
        if axes != (0, 2, 3):
            mistakes.append(
                _GradientMistake(
                    f"the bias gradient is summed over the wrong axes {axes} of dout. Each output of filter f adds "
                    "bias[f], so sum over the batch and both spatial axes: dbias = dout.sum(axis=(0, 2, 3)).",
                    lambda axes=axes: {"dbias": np.asarray(dout.sum(axis=axes))},
                )
            )
    if padding > 0:
        mistakes.append(
            _GradientMistake(
                "the input gradient is not cropped after padding: dX has the shape of the padded input. The "
                f"padding is not part of the input, so return dX_padded[:, :, {padding}:{padding} + H, "
                f"{padding}:{padding} + W].",
                lambda: {"dX": (N, C, H + 2 * padding, W + 2 * padding)},
            )
        )
    else:
        mistakes.append(
            _GradientMistake(
                "dX is cropped with dX_padded[:, :, p:-p, p:-p], which is empty for padding 0 because -0 is 0. "
                "Crop with dX_padded[:, :, p:p + H, p:p + W], which works for every padding.",
                lambda: {"dX": (N, C, 0, 0)},
            )
        )
    if stride > 1:
        mistakes.append(
            _GradientMistake(
                "the windows move by one pixel in backward instead of by the stride. The window of output (i, j) "
                "starts at row i*stride and column j*stride of the padded input, in backward as in forward.",
                stride_ignored,
            )
        )
    _compare_gradients(case, gradients, mistakes)


def _check_maxpool2d_backward_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator, group: str
) -> None:
    N, C, H, W = config["N"], config["C"], config["H"], config["W"]
    kernel_size, stride = config["kernel_size"], config["stride"]
    kwargs = {"kernel_size": kernel_size, "stride": stride}
    if group == "ties":
        X = rng.integers(0, 3, (N, C, H, W)).astype(np.float64)
    else:
        X = rng.standard_normal((N, C, H, W))

    reference_layer = reference.MaxPool2D(**kwargs)
    expected_out = reference_layer.forward(X.copy())
    dout = rng.standard_normal(expected_out.shape)
    expected_dX = reference_layer.backward(dout.copy())

    # As for Conv2D, a wrong forward output is left to check_maxpool2d_forward.
    student = _construct_student(layer_class, "MaxPool2D", config, kwargs, parameters=[])
    _call_student(_Case("MaxPool2D.forward", config), student, "forward", {"X": X}, parameters=[])

    case = _Case("MaxPool2D.backward", config)
    dX = _call_student(case, student, "backward", {"dout": dout}, parameters=[])
    gradients = [_returned_gradient("dX", dX, expected_dX)]

    def model(**options: str) -> dict[str, np.ndarray]:
        return {"dX": _maxpool2d_backward_model(X, dout, kernel_size, stride, **options)}

    assigned = (
        "the gradient is assigned instead of accumulated. Where windows overlap, a pixel that is the maximum "
        "of several windows receives the sum of their gradients, so add with dX[...] += ..., not dX[...] = ...."
    )
    first_maximum = "the first maximal entry in row-major order receives it, the entry that np.argmax picks."
    mistakes = [
        _GradientMistake(assigned, lambda: model(combine="assign_entry")),
        _GradientMistake(assigned, lambda: model(combine="assign_window")),
        _GradientMistake(
            "every entry equal to the maximum of its window receives the gradient. When several entries tie, only "
            + first_maximum,
            lambda: model(chosen="all"),
        ),
        _GradientMistake(
            "the last maximal entry of a window receives the gradient. When several entries tie, " + first_maximum,
            lambda: model(chosen="last"),
        ),
        _GradientMistake(
            "the gradient is spread evenly over each window, as in average pooling. Max pooling sends the whole "
            "gradient of a window to the entry that holds its maximum.",
            lambda: model(chosen="spread"),
        ),
        _GradientMistake(
            "the row and column of each window's maximum are swapped. For a flat index m into a window of "
            "kernel_size columns, the row is m // kernel_size and the column m % kernel_size, as "
            "np.unravel_index(m, (kernel_size, kernel_size)) returns them.",
            lambda: model(chosen="transposed"),
        ),
    ]
    _compare_gradients(case, gradients, mistakes)


def _check_rnn_backward_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator, group: str
) -> None:
    T, N, D, H, O = config["T"], config["N"], config["D"], config["H"], config["O"]
    weight_scale = _RNN_WEIGHT_SCALE[group]
    kwargs = {"input_size": D, "hidden_size": H, "output_size": O}
    parameters = [
        _Parameter("W_xh", rng.standard_normal((D, H)) * weight_scale, "(D, H)"),
        _Parameter("W_hh", rng.standard_normal((H, H)) * weight_scale, "(H, H)"),
        _Parameter("W_hy", rng.standard_normal((H, O)) * weight_scale, "(H, O)"),
        _Parameter("b_h", rng.standard_normal(H) * weight_scale, "(H,)"),
        _Parameter("b_y", rng.standard_normal(O) * weight_scale, "(O,)"),
    ]
    values = {parameter.name: parameter.value for parameter in parameters}
    inputs = rng.standard_normal((T, N, D))

    reference_layer = _reference_layer(reference.RNNCell, kwargs, values)
    expected_out = reference_layer.forward(inputs.copy())
    d_outputs = rng.standard_normal((T, N, O))
    expected_d_inputs = reference_layer.backward(d_outputs.copy())

    student = _construct_student(layer_class, "RNNCell", config, kwargs, parameters)
    forward_case = _Case("RNNCell.forward", config)
    out = _call_student(forward_case, student, "forward", {"inputs": inputs}, parameters)
    names = ("outputs", "hidden_states")
    _compare(forward_case, out, expected_out, mistakes=[], names=names, order=(1, 0), note=_FORWARD_FIRST)

    case = _Case("RNNCell.backward", config)
    d_inputs = _call_student(case, student, "backward", {"d_outputs": d_outputs}, parameters)
    # The output layer's gradients come first, because every other gradient flows through it.
    by_name = {parameter.name: parameter for parameter in parameters}
    gradients = [
        _stored_gradient(case, student, f"d{name}", getattr(reference_layer, f"d{name}"), by_name[name].notation)
        for name in ("b_y", "W_hy", "b_h", "W_hh", "W_xh")
    ]
    gradients.append(_returned_gradient("d_inputs", d_inputs, expected_d_inputs))

    hidden_states = expected_out[1]

    def model(**options: Any) -> dict[str, np.ndarray]:
        return _rnn_backward_model(values, inputs, hidden_states, d_outputs, **options)[0]

    _, d_pre_activations = _rnn_backward_model(values, inputs, hidden_states, d_outputs)
    mistakes = [
        _GradientMistake(
            "the hidden-state gradient is not carried back through time. h_t feeds both y_t and h_{t+1}, so "
            "dL/dh_t = d_outputs[t] @ W_hy.T + da_{t+1} @ W_hh.T, where da_{t+1} is the gradient of the "
            "pre-activation of step t+1.",
            lambda: model(carry=False),
        ),
        _GradientMistake(
            "the weights are transposed: W_hh is used without .T when the gradient goes back from step t+1 to "
            "h_t. That part of dL/dh_t is da_{t+1} @ W_hh.T.",
            lambda: model(untransposed=("W_hh",)),
        ),
        _GradientMistake(
            "dW_hh multiplies the gradient of step t by h_t. W_hh multiplies the previous hidden state, so "
            "dW_hh is the sum over t of h_{t-1}.T @ da_t, with h_0 = 0.",
            lambda: {"dW_hh": model(dW_hh_from_current=True)["dW_hh"]},
        ),
        _GradientMistake(
            "the derivative of tanh is missing. h_t = tanh(a_t), so da_t = dL/dh_t * (1 - h_t**2).",
            lambda: model(derivative="missing"),
        ),
        _GradientMistake(
            "the derivative of tanh is computed as 1 - tanh(h_t)**2. h_t is already tanh(a_t), so the "
            "derivative is 1 - h_t**2.",
            lambda: model(derivative="tanh_again"),
        ),
    ]
    if D == H:
        mistakes.append(
            _GradientMistake(
                "the weights are transposed: W_xh is used without .T in the input gradient. "
                "d_inputs[t] = da_t @ W_xh.T.",
                lambda: model(untransposed=("W_xh",)),
            )
        )
    if H == O:
        mistakes.append(
            _GradientMistake(
                "the weights are transposed: W_hy is used without .T when the gradient goes back from y_t to "
                "h_t. That part of dL/dh_t is d_outputs[t] @ W_hy.T.",
                lambda: model(untransposed=("W_hy",)),
            )
        )
    formulas = {
        "W_xh": "the sum over t of x_t.T @ da_t",
        "W_hh": "the sum over t of h_{t-1}.T @ da_t",
        "W_hy": "the sum over t of h_t.T @ d_outputs[t]",
    }
    for name, formula in formulas.items():
        mistakes.append(
            _GradientMistake(
                f"d{name} is transposed. It has the shape of {name}, {by_name[name].notation}: d{name} is {formula}.",
                lambda name=name: {f"d{name}": getattr(reference_layer, f"d{name}").T},
            )
        )
    for name, source, gradient_name in (("b_y", d_outputs, "d_outputs"), ("b_h", d_pre_activations, "da")):
        for axis, kept in ((0, "batch"), (1, "time")):
            mistakes.append(
                _GradientMistake(
                    f"d{name} is summed over one axis only, which keeps the {kept} axis. Sum over both the time "
                    f"and the batch axes: {gradient_name}.sum(axis=(0, 1)).",
                    lambda source=source, axis=axis, name=name: {f"d{name}": source.sum(axis=axis)},
                )
            )
    _compare_gradients(case, gradients, mistakes)


def _check_lstm_step_backward_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator, group: str
) -> None:
    N, D, H = config["N"], config["D"], config["H"]
    step_count = 2 if group == "two_steps" else 1
    kwargs = {"input_size": D, "hidden_size": H}
    parameters = [
        _Parameter("W", rng.standard_normal((H + D, 4 * H)) * 0.5, "(H + D, 4H)"),
        _Parameter("b", rng.standard_normal(4 * H) * 0.5, "(4H,)"),
    ]
    W, b = parameters[0].value, parameters[1].value
    step_inputs = [rng.standard_normal((N, D)) for _ in range(step_count)]
    h_0, c_0 = rng.uniform(-1.0, 1.0, (N, H)), rng.standard_normal((N, H)) * 1.5
    # dL/dh_t from outside the cell for every step, and dL/dc_t after the last step.
    d_hidden_states = [rng.standard_normal((N, H)) for _ in range(step_count)]
    dc_last = rng.standard_normal((N, H))

    # The reference runs every forward_step, then every backward_step. Each backward_step gets the
    # dh_prev and dc_prev of the one before it, and the student's layer gets exactly these inputs.
    cell = _reference_layer(reference.LSTMCell, kwargs, {"W": W, "b": b})
    steps, forward_results = [], []
    h, c = h_0, c_0
    for x_t in step_inputs:
        steps.append((x_t, h, c))
        h, c = cell.forward_step(x_t.copy(), h.copy(), c.copy())
        forward_results.append((h, c))

    upstream, expected_calls = [], []
    dh_from_later, dc = np.zeros((N, H)), dc_last
    for t in reversed(range(step_count)):
        dh_t = d_hidden_states[t] + dh_from_later
        upstream.append((dh_t, dc))
        dx_t, dh_from_later, dc = cell.backward_step(dh_t.copy(), dc.copy())
        expected_calls.append((dx_t, dh_from_later, dc))

    student = _construct_student(layer_class, "LSTMCell", config, kwargs, parameters)
    forward_case = _Case("LSTMCell.forward_step", config)
    for (x_t, h_prev, c_prev), expected_step in zip(steps, forward_results):
        inputs = {"x_t": x_t, "h_prev": h_prev, "c_prev": c_prev}
        result = _call_student(forward_case, student, "forward_step", inputs, parameters)
        _compare(
            forward_case, result, expected_step, mistakes=[], names=("h_t", "c_t"), order=(1, 0), note=_FORWARD_FIRST
        )

    case = _Case("LSTMCell.backward_step", config)
    gradients = []
    names = ("dx_t", "dh_prev", "dc_prev")
    ordinals = ("first", "second", "third")
    for call, ((dh_t, dc_t), expected_call) in enumerate(zip(upstream, expected_calls)):
        result = _call_student(case, student, "backward_step", {"dh_t": dh_t, "dc_t": dc_t}, parameters)
        parts = _unpack_tuple(case, result, names)
        # dc_prev = dc * f depends on the fewest values, so it is compared first.
        for k in (2, 1, 0):
            if step_count == 1:
                label = f"{names[k]} (the {ordinals[k]} returned value)"
            else:
                label = (
                    f"{names[k]} of the {ordinals[call]} backward_step call, which back-propagates forward_step "
                    f"{step_count - call}"
                )
            gradients.append(_returned_gradient(f"{call + 1}.{names[k]}", parts[k], expected_call[k], label))
    gradients.append(_stored_gradient(case, student, "dW", cell.dW, "(H + D, 4H)"))
    gradients.append(_stored_gradient(case, student, "db", cell.db, "(4H,)"))

    mistakes = _lstm_step_backward_mistakes(W, b, steps, upstream, cell.dW)
    _compare_gradients(case, gradients, mistakes)


def _lstm_step_backward_mistakes(
    W: np.ndarray,
    b: np.ndarray,
    steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    upstream: list[tuple[np.ndarray, np.ndarray]],
    expected_dW: np.ndarray,
) -> list["_GradientMistake"]:
    """Describe the mistakes of LSTMCell.backward_step for the given forward steps and backward calls."""
    H = b.shape[0] // 4
    D = W.shape[0] - H

    def model(**options: Any) -> dict[str, np.ndarray]:
        return _lstm_backward_steps_model(W, b, steps, upstream, **options)

    block_order = "The column blocks of W and b are, in order, forget f, input i, output o and candidate g."
    mistakes = []
    for first, second in itertools.combinations(range(4), 2):
        swapped = list(range(4))
        swapped[first], swapped[second] = second, first
        pair = f"the {_GATE_NAMES[_LSTM_GATES[first]]} and the {_GATE_NAMES[_LSTM_GATES[second]]}"
        mistakes += [
            _GradientMistake(
                f"the gates are in the wrong order: the gradients of {pair} are in each other's column blocks. "
                + block_order,
                lambda swapped=tuple(swapped): model(write_blocks=swapped),
            ),
            _GradientMistake(
                f"the gates are in the wrong order: backward_step recomputes {pair} from each other's column "
                "blocks. " + block_order,
                lambda swapped=tuple(swapped): model(read_blocks=swapped),
            ),
            _GradientMistake(
                f"the gates are in the wrong order: backward_step swaps {pair}, reading each from the other's "
                "column block and writing its gradient there. " + block_order,
                lambda swapped=tuple(swapped): model(read_blocks=swapped, write_blocks=swapped),
            ),
        ]

    mistakes += [
        _GradientMistake(
            "the hidden state and the input are concatenated in the wrong order, [x_t, h_prev]. The first H rows "
            "of W belong to the hidden state, so use [h_prev, x_t] as forward_step does: dh_prev is the first H "
            "columns of its gradient and dx_t the last D.",
            lambda: model(concat="x, h", concat_in_dW="x, h", split="x, h"),
        ),
        _GradientMistake(
            "the hidden state and the input are concatenated in the wrong order, [x_t, h_prev], in dW. The first "
            "H rows of W belong to the hidden state: dW += [h_prev, x_t].T @ d_pre_activations.",
            lambda: model(concat_in_dW="x, h"),
        ),
        _GradientMistake(
            "dh_prev and dx_t are taken from the wrong columns of the gradient of [h_prev, x_t]. The hidden state "
            "comes first, so dh_prev is its first H columns and dx_t its last D.",
            lambda: model(split="x, h"),
        ),
        _GradientMistake(
            "the weights are transposed: dW has the shape of W.T. dW has the shape of W, (H + D, 4H): "
            "dW += [h_prev, x_t].T @ d_pre_activations.",
            lambda: {"dW": expected_dW.T},
        ),
    ]
    if W.shape[0] == W.shape[1]:
        mistakes.append(
            _GradientMistake(
                "the weights are transposed: the gradient of [h_prev, x_t] is computed with W instead of W.T. "
                "It is d_pre_activations @ W.T.",
                lambda: model(untransposed_W=True),
            )
        )

    for gate in _LSTM_GATES:
        right = _GATE_FUNCTIONS[gate]
        wrong = "tanh" if right == "sigmoid" else "sigmoid"
        name = _GATE_NAMES[gate]
        mistakes += [
            _GradientMistake(
                f"sigmoid and tanh are swapped on the {name}: it is differentiated as a {wrong}, "
                f"{_DERIVATIVE_TEXT[wrong].format(gate)}. {gate} = {right}(z_{gate}), so its derivative is "
                f"{_DERIVATIVE_TEXT[right].format(gate)}.",
                lambda gate=gate, wrong=wrong: model(derivatives={**_GATE_FUNCTIONS, gate: wrong}),
            ),
            _GradientMistake(
                f"sigmoid and tanh are swapped on the {name}: backward_step recomputes it with {wrong}. "
                f"{gate} = {right}(z_{gate}), as in forward_step.",
                lambda gate=gate, wrong=wrong: model(
                    functions={**_GATE_FUNCTIONS, gate: wrong}, derivatives={**_GATE_FUNCTIONS, gate: wrong}
                ),
            ),
        ]

    mistakes += [
        _GradientMistake(
            "the derivative of tanh(c_t) is written 1 - c_t**2. It is 1 - tanh(c_t)**2.",
            lambda: model(tanh_c_derivative="1 - c**2"),
        ),
        _GradientMistake(
            "dW and db are assigned instead of accumulated in backward_step, so they keep only the gradient of the "
            "last call. Add each step's gradient into them: self.dW += ... and self.db += ....",
            lambda: model(accumulate=False),
        ),
        _GradientMistake(
            "backward_step leaves dW and db at zero. Add the step's gradients into them: "
            "self.dW += [h_prev, x_t].T @ d_pre_activations and self.db += d_pre_activations.sum(axis=0).",
            lambda: {"dW": np.zeros_like(W), "db": np.zeros_like(b)},
        ),
    ]
    if len(steps) > 1:
        mistakes += [
            _GradientMistake(
                "backward_step takes the oldest forward_step from the cache (first in, first out). It must "
                "back-propagate the most recent one first: self.cache.pop().",
                lambda: model(order="fifo"),
            ),
            _GradientMistake(
                "backward_step reads the most recent step from the cache without removing it, so every call "
                "back-propagates the same step. Remove it with self.cache.pop().",
                lambda: model(order="no_pop"),
            ),
        ]
    return mistakes


def _check_lstm_backward_config(
    layer_class: type, reference: ModuleType, config: Config, rng: np.random.Generator, group: str
) -> None:
    T, N, D, H = config["T"], config["N"], config["D"], config["H"]
    kwargs = {"input_size": D, "hidden_size": H}
    parameters = [
        _Parameter("cell.W", rng.standard_normal((H + D, 4 * H)) * 0.5, "(H + D, 4H)"),
        _Parameter("cell.b", rng.standard_normal(4 * H) * 0.5, "(4H,)"),
    ]
    values = {parameter.name: parameter.value for parameter in parameters}
    inputs = rng.standard_normal((T, N, D))
    # The first backward call leaves gradients on the cell that the second must not add to.
    d_hidden_first = rng.standard_normal((T, N, H))
    d_hidden_states = rng.standard_normal((T, N, H))

    reference_layer = _reference_layer(reference.LSTM, kwargs, values)
    reference_layer.forward(inputs.copy())
    reference_layer.backward(d_hidden_first.copy())
    expected_out = reference_layer.forward(inputs.copy())
    expected_d_inputs = reference_layer.backward(d_hidden_states.copy())

    student = _construct_student(layer_class, "LSTM", config, kwargs, parameters)
    forward_case = _Case("LSTM.forward", config)
    case = _Case("LSTM.backward", config)
    out = _call_student(forward_case, student, "forward", {"inputs": inputs}, parameters)
    _compare(forward_case, out, expected_out, mistakes=[], note=_FORWARD_FIRST)
    _call_student(case, student, "backward", {"d_hidden_states": d_hidden_first}, parameters)
    _call_student(forward_case, student, "forward", {"inputs": inputs}, parameters)
    d_inputs = _call_student(case, student, "backward", {"d_hidden_states": d_hidden_states}, parameters)
    gradients = [
        _stored_gradient(case, student, "cell.db", reference_layer.cell.db, "(4H,)"),
        _stored_gradient(case, student, "cell.dW", reference_layer.cell.dW, "(H + D, 4H)"),
        _returned_gradient("d_inputs", d_inputs, expected_d_inputs),
    ]

    def run_cell(upstream: np.ndarray, **options: bool) -> dict[str, np.ndarray]:
        return _lstm_sequence_backward_model(reference, kwargs, values, inputs, upstream, **options)

    first_call = run_cell(d_hidden_first)
    mistakes = [
        _GradientMistake(
            "the hidden-state gradient is not carried back through time. h_t feeds the loss and step t+1, so "
            "backward_step of step t gets dh_t = d_hidden_states[t] + the dh_prev returned for step t+1.",
            lambda: run_cell(d_hidden_states, carry_hidden=False),
        ),
        _GradientMistake(
            "the cell-state gradient is not carried back through time. Pass the dc_prev returned for step t+1 "
            "as dc_t of step t.",
            lambda: run_cell(d_hidden_states, carry_cell=False),
        ),
        _GradientMistake(
            "neither the hidden-state nor the cell-state gradient is carried back through time. Pass dh_prev and "
            "dc_prev of step t+1 on to step t: dh_t = d_hidden_states[t] + dh_prev, dc_t = dc_prev.",
            lambda: run_cell(d_hidden_states, carry_hidden=False, carry_cell=False),
        ),
        _GradientMistake(
            "the time steps are back-propagated from t = 0 upwards. backward_step pops the most recent "
            "forward_step, so run t from T-1 down to 0.",
            lambda: run_cell(d_hidden_states, forward_in_time=True),
        ),
        _GradientMistake(
            "cell.dW and cell.db are not set to zeros at the start of backward, so they still contain the "
            "gradients of the previous backward call. Start with cell.dW = np.zeros_like(cell.W) and likewise db.",
            lambda: {
                "cell.dW": reference_layer.cell.dW + first_call["cell.dW"],
                "cell.db": reference_layer.cell.db + first_call["cell.db"],
            },
        ),
        _GradientMistake(
            "dW and db are assigned instead of accumulated in backward_step, so they keep only the gradient of the "
            "last call. In LSTM.backward that call is time step 0, so cell.dW and cell.db miss every later step. "
            "Add each step's gradient: self.dW += ... and self.db += ....",
            lambda: run_cell(d_hidden_states, cell_accumulates=False),
        ),
    ]
    _compare_gradients(case, gradients, mistakes)


def _check_conv2d_fast_config(
    forward_function: Callable[..., np.ndarray],
    reference: ModuleType,
    config: Config,
    rng: np.random.Generator,
    group: str,
) -> None:
    N, C, H, W, F = config["N"], config["C"], config["H"], config["W"], config["F"]
    kernel_size, stride, padding = config["kernel_size"], config["stride"], config["padding"]
    filters = rng.standard_normal((F, C, kernel_size, kernel_size))
    bias = rng.standard_normal(F)
    X = rng.standard_normal((N, C, H, W))

    def reference_output(
        images: np.ndarray = X,
        filters: np.ndarray = filters,
        bias: np.ndarray = bias,
        stride: int = stride,
        padding: int = padding,
    ) -> np.ndarray:
        return reference.conv2d_forward_fast(images.copy(), filters.copy(), bias.copy(), stride, padding)

    expected = reference_output()
    case = _Case(_function_name(forward_function, "conv2d_forward_fast"), config)
    arguments = {"X": X, "filters": filters, "bias": bias, "stride": stride, "padding": padding}
    actual = _call_function(case, forward_function, arguments)

    k = kernel_size
    flattened_differently = (
        "the receptive fields and the filters are flattened in different orders. Flatten both in the order "
        "(C, kernel_size, kernel_size): the windows as (N * H_out * W_out, C * k * k) and the filters as "
        "filters.reshape(F, -1)."
    )
    reshaped_without_transpose = (
        "the product of the windows and the filters is reshaped to (N, F, H_out, W_out) without moving its "
        "axes. Reshape it to the axis order it has, such as (N, H_out, W_out, F), then move the filter axis "
        "with transpose."
    )
    mistakes = _conv2d_forward_mistakes(reference_output, X, filters, bias, config, expected)
    mistakes += [
        _gives_result(
            flattened_differently,
            lambda: reference_output(filters=filters.reshape(F, k, k, C).transpose(0, 3, 1, 2)),
        ),
        _gives_result(
            flattened_differently,
            lambda: reference_output(filters=filters.transpose(0, 2, 3, 1).reshape(F, C, k, k)),
        ),
        _gives_result(
            reshaped_without_transpose,
            lambda: expected.transpose(0, 2, 3, 1).reshape(expected.shape),
        ),
        _gives_result(
            reshaped_without_transpose,
            lambda: expected.transpose(1, 0, 2, 3).reshape(expected.shape),
        ),
    ]
    _compare(case, actual, expected, mistakes)


def _function_name(function: Callable[..., Any], default: str) -> str:
    """Name a student's function in messages by its __name__, or by default for a lambda or a callable object."""
    name = getattr(function, "__name__", "")
    return name if name.isidentifier() else default


def _subsets(axes: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Return every non-empty subset of axes, each in increasing order."""
    return [subset for size in range(1, len(axes) + 1) for subset in itertools.combinations(axes, size)]


# ---------------------------------------------------------------------------------------------------
# Models of mistaken backward passes
#
# Each model computes what a student's backward pass returns when it contains the mistakes that its
# options name. With the default options a model computes the correct gradients, which the tests
# compare with the reference layers.

_GATE_NAMES = {"f": "forget gate f", "i": "input gate i", "o": "output gate o", "g": "candidate g"}

_GATE_FUNCTIONS = {"f": "sigmoid", "i": "sigmoid", "o": "sigmoid", "g": "tanh"}
"""The nonlinearity of each gate of the LSTM cell."""

_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    # 0.5 * (1 + tanh(x / 2)) equals 1 / (1 + exp(-x)) and cannot overflow.
    "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    "tanh": np.tanh,
}

_DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    # The derivative of each nonlinearity, written with its output a.
    "sigmoid": lambda a: a * (1.0 - a),
    "tanh": lambda a: 1.0 - a**2,
}

_DERIVATIVE_TEXT = {"sigmoid": "{0} * (1 - {0})", "tanh": "1 - {0}**2"}

_BLOCKS_IN_ORDER = (0, 1, 2, 3)


def _maxpool2d_backward_model(
    X: np.ndarray, dout: np.ndarray, kernel_size: int, stride: int, chosen: str = "first", combine: str = "add"
) -> np.ndarray:
    """Compute a max-pooling input gradient, window by window in row-major order.

    chosen selects the entries of a window that receive its gradient: "first", "last" or "all" of the
    maximal entries, "spread" (every entry gets dout / k**2) or "transposed" (the first maximum,
    with its row and column swapped). combine is the way a window's gradient enters dX: "add",
    "assign_entry" (assigned to the chosen entries) or "assign_window" (assigned to the whole
    window, zeros included), where later windows overwrite earlier ones.
    """
    N, C, H_out, W_out = dout.shape
    k = kernel_size
    dX = np.zeros(X.shape)
    for i in range(H_out):
        for j in range(W_out):
            rows, columns = slice(i * stride, i * stride + k), slice(j * stride, j * stride + k)
            window = X[:, :, rows, columns].reshape(N, C, k * k)

            if chosen == "all":
                share = (window == window.max(axis=2, keepdims=True)).astype(np.float64)
            elif chosen == "spread":
                share = np.full(window.shape, 1.0 / (k * k))
            else:
                if chosen == "last":
                    flat = k * k - 1 - np.argmax(window[:, :, ::-1], axis=2)
                else:
                    flat = np.argmax(window, axis=2)
                if chosen == "transposed":
                    flat = (flat % k) * k + flat // k
                share = (np.arange(k * k) == flat[:, :, np.newaxis]).astype(np.float64)

            contribution = (share * dout[:, :, i, j, np.newaxis]).reshape(N, C, k, k)
            target = dX[:, :, rows, columns]
            if combine == "add":
                target += contribution
            elif combine == "assign_window":
                target[...] = contribution
            else:
                np.copyto(target, contribution, where=share.reshape(N, C, k, k) != 0)
    return dX


def _rnn_backward_model(
    values: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    hidden_states: np.ndarray,
    d_outputs: np.ndarray,
    carry: bool = True,
    untransposed: tuple[str, ...] = (),
    dW_hh_from_current: bool = False,
    derivative: str = "1 - h**2",
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Compute the RNN gradients by BPTT, with the named mistakes.

    carry=False drops the gradient from step t+1. untransposed names the weights used without .T
    in the products that carry gradients back. dW_hh_from_current pairs da_t with h_t instead of
    h_{t-1}. derivative is "1 - h**2", "missing" or "tanh_again" (1 - tanh(h)**2). Returns the
    gradients by name, and the gradient of each step's pre-activation (T, N, H).
    """
    W_xh, W_hh, W_hy = (values[name].T if name in untransposed else values[name] for name in ("W_xh", "W_hh", "W_hy"))
    local_derivative = {
        "1 - h**2": 1.0 - hidden_states**2,
        "missing": np.ones_like(hidden_states),
        "tanh_again": 1.0 - np.tanh(hidden_states) ** 2,
    }[derivative]

    dh_from_outputs = d_outputs @ W_hy.T
    d_pre_activations = np.zeros_like(hidden_states)
    dh_from_next_step = np.zeros_like(hidden_states[0])
    for t in reversed(range(len(inputs))):
        dh = dh_from_outputs[t] + (dh_from_next_step if carry else 0.0)
        d_pre_activations[t] = dh * local_derivative[t]
        dh_from_next_step = d_pre_activations[t] @ W_hh.T

    previous_hidden_states = np.zeros_like(hidden_states)
    previous_hidden_states[1:] = hidden_states[:-1]
    paired_hidden_states = hidden_states if dW_hh_from_current else previous_hidden_states

    def summed_product(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        return np.tensordot(left, right, axes=([0, 1], [0, 1]))

    gradients = {
        "db_y": d_outputs.sum(axis=(0, 1)),
        "dW_hy": summed_product(hidden_states, d_outputs),
        "db_h": d_pre_activations.sum(axis=(0, 1)),
        "dW_hh": summed_product(paired_hidden_states, d_pre_activations),
        "dW_xh": summed_product(inputs, d_pre_activations),
        "d_inputs": d_pre_activations @ W_xh.T,
    }
    return gradients, d_pre_activations


def _lstm_step_gates(
    W: np.ndarray,
    b: np.ndarray,
    step: tuple[np.ndarray, np.ndarray, np.ndarray],
    read_blocks: tuple[int, ...] = _BLOCKS_IN_ORDER,
    functions: Mapping[str, str] = _GATE_FUNCTIONS,
    concat: str = "h, x",
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Compute the gates and c_t of one LSTM step from step = (x_t, h_prev, c_prev).

    Gate _LSTM_GATES[j] is read from column block read_blocks[j], through the nonlinearity that
    functions names. concat is the order of the concatenation, "h, x" or "x, h".
    """
    x_t, h_prev, c_prev = step
    H = h_prev.shape[1]
    concatenated = np.concatenate([h_prev, x_t] if concat == "h, x" else [x_t, h_prev], axis=1)
    pre_activations = concatenated @ W + b

    gates = {}
    for gate, block in zip(_LSTM_GATES, read_blocks):
        gates[gate] = _ACTIVATIONS[functions[gate]](pre_activations[:, block * H : (block + 1) * H])
    c_t = gates["f"] * c_prev + gates["i"] * gates["g"]
    return gates, c_t


def _lstm_step_forward_model(
    W: np.ndarray, b: np.ndarray, step: tuple[np.ndarray, np.ndarray, np.ndarray], **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Compute (h_t, c_t) of one LSTM step, with the options of _lstm_step_gates."""
    gates, c_t = _lstm_step_gates(W, b, step, **options)
    return gates["o"] * np.tanh(c_t), c_t


def _lstm_step_backward_model(
    W: np.ndarray,
    b: np.ndarray,
    step: tuple[np.ndarray, np.ndarray, np.ndarray],
    dh_t: np.ndarray,
    dc_t: np.ndarray,
    read_blocks: tuple[int, ...] = _BLOCKS_IN_ORDER,
    write_blocks: tuple[int, ...] = _BLOCKS_IN_ORDER,
    functions: Mapping[str, str] = _GATE_FUNCTIONS,
    derivatives: Mapping[str, str] = _GATE_FUNCTIONS,
    concat: str = "h, x",
    concat_in_dW: str = "h, x",
    split: str = "h, x",
    untransposed_W: bool = False,
    tanh_c_derivative: str = "1 - tanh(c)**2",
) -> tuple[np.ndarray, ...]:
    """Back-propagate one LSTM step with the named mistakes. Returns (dx_t, dh_prev, dc_prev, dW_step, db_step).

    The gates are recomputed with read_blocks, functions and concat as in _lstm_step_gates. The
    gradient of gate _LSTM_GATES[j] goes through the derivative of the nonlinearity derivatives
    names, into column block write_blocks[j]. concat_in_dW orders the concatenation in dW, and split
    the columns of its gradient. untransposed_W uses W in place of W.T. tanh_c_derivative is
    "1 - tanh(c)**2" or "1 - c**2".
    """
    x_t, h_prev, c_prev = step
    H, D = h_prev.shape[1], x_t.shape[1]
    gates, c_t = _lstm_step_gates(W, b, step, read_blocks, functions, concat)
    f, i, o, g = (gates[gate] for gate in ("f", "i", "o", "g"))

    tanh_c = np.tanh(c_t)
    local_tanh_c = 1.0 - tanh_c**2 if tanh_c_derivative == "1 - tanh(c)**2" else 1.0 - c_t**2
    dc = dc_t + dh_t * o * local_tanh_c
    d_gates = {"f": dc * c_prev, "i": dc * g, "o": dh_t * tanh_c, "g": dc * i}

    d_pre_activations = np.empty((x_t.shape[0], 4 * H))
    for gate, block in zip(_LSTM_GATES, write_blocks):
        local = _DERIVATIVES[derivatives[gate]](gates[gate])
        d_pre_activations[:, block * H : (block + 1) * H] = d_gates[gate] * local

    concatenated = np.concatenate([h_prev, x_t] if concat_in_dW == "h, x" else [x_t, h_prev], axis=1)
    dW_step = concatenated.T @ d_pre_activations
    db_step = d_pre_activations.sum(axis=0)

    d_concatenated = d_pre_activations @ (W if untransposed_W else W.T)
    if split == "h, x":
        dh_prev, dx_t = d_concatenated[:, :H], d_concatenated[:, H:]
    else:
        dx_t, dh_prev = d_concatenated[:, :D], d_concatenated[:, D:]
    return dx_t, dh_prev, dc * f, dW_step, db_step


def _lstm_backward_steps_model(
    W: np.ndarray,
    b: np.ndarray,
    steps: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    upstream: Sequence[tuple[np.ndarray, np.ndarray]],
    order: str = "lifo",
    accumulate: bool = True,
    **options: Any,
) -> dict[str, np.ndarray]:
    """Run one backward_step call per (dh_t, dc_t) in upstream after the forward steps in steps.

    order selects the step that each call back-propagates: "lifo" (the most recent not yet popped),
    "fifo" (the oldest) or "no_pop" (always the most recent). accumulate=False keeps only the last
    call's dW and db. The other options go to _lstm_step_backward_model. The result names each
    call's values "1.dx_t", "1.dh_prev", "1.dc_prev", "2.dx_t" and so on, besides dW and db.
    """
    result = {}
    dW, db = np.zeros_like(W), np.zeros_like(b)
    for call, (dh_t, dc_t) in enumerate(upstream, start=1):
        index = {"lifo": len(steps) - call, "fifo": call - 1, "no_pop": len(steps) - 1}[order]
        dx_t, dh_prev, dc_prev, dW_step, db_step = _lstm_step_backward_model(W, b, steps[index], dh_t, dc_t, **options)
        result[f"{call}.dx_t"], result[f"{call}.dh_prev"], result[f"{call}.dc_prev"] = dx_t, dh_prev, dc_prev
        dW, db = (dW + dW_step, db + db_step) if accumulate else (dW_step, db_step)
    result["dW"], result["db"] = dW, db
    return result


def _lstm_sequence_backward_model(
    reference: ModuleType,
    kwargs: Mapping[str, int],
    values: Mapping[str, np.ndarray],
    inputs: np.ndarray,
    d_hidden_states: np.ndarray,
    carry_hidden: bool = True,
    carry_cell: bool = True,
    forward_in_time: bool = False,
    cell_accumulates: bool = True,
) -> dict[str, np.ndarray]:
    """Run LSTM.backward on a fresh reference layer, with the named mistakes of the loop over time.

    carry_hidden and carry_cell pass dh_prev and dc_prev on to the next call. forward_in_time runs
    t = 0, 1, ... while backward_step still pops the most recent step. cell_accumulates=False keeps
    only the last call's contribution to dW and db, as a backward_step that assigns them.
    """
    layer = _reference_layer(reference.LSTM, kwargs, values)
    layer.forward(inputs.copy())
    cell = layer.cell
    T, N, D = inputs.shape
    H = d_hidden_states.shape[2]

    d_inputs = np.zeros((T, N, D))
    dh, dc = np.zeros((N, H)), np.zeros((N, H))
    last_dW, last_db = cell.dW.copy(), cell.db.copy()
    for t in range(T) if forward_in_time else reversed(range(T)):
        dW_before, db_before = cell.dW.copy(), cell.db.copy()
        dh_t = d_hidden_states[t] + dh if carry_hidden else d_hidden_states[t]
        dc_t = dc if carry_cell else np.zeros((N, H))
        d_inputs[t], dh, dc = cell.backward_step(dh_t, dc_t)
        last_dW, last_db = cell.dW - dW_before, cell.db - db_before

    if cell_accumulates:
        return {"d_inputs": d_inputs, "cell.dW": cell.dW, "cell.db": cell.db}
    return {"d_inputs": d_inputs, "cell.dW": last_dW, "cell.db": last_db}


# ---------------------------------------------------------------------------------------------------
# Building blocks: groups, layers, calls


class _Case(NamedTuple):
    """One configuration of one method under test, as the messages name them."""

    method: str  # "Conv2D.forward"
    config: Config

    def describe(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.config.items())

    def failure(self, problem: str, hint: str | None = None) -> AssertionError:
        message = f"{self.method} failed for configuration {self.describe()}: {problem}"
        if hint is not None:
            message += f"\nLikely mistake: {hint}"
        return AssertionError(message)


class _Parameter(NamedTuple):
    """A parameter that a check sets on the student's layer."""

    name: str  # attribute path on the layer, such as "filters" or "cell.W"
    value: np.ndarray
    notation: str  # the shape in the course's notation, such as "(F, C, kernel_size, kernel_size)"


def _select_group(check_name: str, groups: Mapping[str, list[Config]], group: str) -> list[Config]:
    """Return the configurations of a group, or raise ValueError naming the valid groups."""
    if not isinstance(group, str) or group not in groups:
        valid = ", ".join(repr(name) for name in groups)
        raise ValueError(f"{check_name} has no group {group!r}. Valid groups: {valid}.")
    return groups[group]


def _import_solutions() -> ModuleType:
    """Import the reference package, or raise RuntimeError explaining when it is available."""
    try:
        import solutions
    except ImportError as err:
        raise RuntimeError(
            "The reference implementations (the package solutions) cannot be imported. Hidden tests run "
            "only at grading time, when the grading pipeline puts solutions/ on the import path."
        ) from err
    return solutions


def _group_rng(check_name: str, group: str) -> np.random.Generator:
    """Return a generator whose seed depends only on the check and group names."""
    return np.random.default_rng(zlib.crc32(f"{check_name}/{group}".encode()))


@contextlib.contextmanager
def _global_random_state_kept() -> Iterator[None]:
    """Restore numpy's global random state afterwards.

    Layer constructors draw their initial weights from np.random, and the notebook's later cells
    should get the same random numbers whether or not a check ran before them.
    """
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def _get_attribute(owner: Any, path: str) -> Any:
    """Follow a dotted attribute path such as "cell.W". Raises AttributeError if a step is missing."""
    for name in path.split("."):
        owner = getattr(owner, name)
    return owner


def _set_attribute(owner: Any, path: str, value: Any) -> None:
    parent_path, _, name = path.rpartition(".")
    if parent_path:
        owner = _get_attribute(owner, parent_path)
    setattr(owner, name, value)


def _reference_layer(layer_class: type, kwargs: Mapping[str, int], parameters: Mapping[str, np.ndarray]) -> Any:
    """Construct a reference layer and give it copies of the parameters."""
    layer = layer_class(**kwargs)
    for path, value in parameters.items():
        _set_attribute(layer, path, value.copy())
    return layer


def _construct_student(
    layer_class: type, layer_name: str, config: Config, kwargs: Mapping[str, int], parameters: Sequence[_Parameter]
) -> Any:
    """Construct the student's layer and set its parameters to copies of the given values.

    Raises AssertionError if the constructor raises, or if it does not create each parameter with
    the expected shape.
    """
    case = _Case(f"{layer_name}.__init__", config)
    call_text = f"{layer_name}({', '.join(f'{name}={value}' for name, value in kwargs.items())})"
    try:
        layer = layer_class(**kwargs)
    except Exception as err:
        raise _raised_error(case, err, f"The check called {call_text}.") from err

    for parameter in parameters:
        try:
            current = _get_attribute(layer, parameter.name)
        except AttributeError as err:
            raise case.failure(
                f"{call_text} did not set the attribute {parameter.name}. The constructor must create it "
                f"with shape {parameter.notation} = {parameter.value.shape}."
            ) from err

        shape = _shape_or_none(current)
        if shape != parameter.value.shape:
            created = "an object that is not an array" if shape is None else f"shape {shape}"
            raise case.failure(
                f"{call_text} created {parameter.name} with {created}, "
                f"expected shape {parameter.notation} = {parameter.value.shape}."
            )

        _set_attribute(layer, parameter.name, parameter.value.copy())
    return layer


def _call_student(
    case: _Case, layer: Any, method_name: str, inputs: Mapping[str, np.ndarray], parameters: Sequence[_Parameter]
) -> Any:
    """Call the student's method on copies of the inputs and return its result unchecked.

    Raises AssertionError if the method is missing or raises, or if it changed its inputs or the
    layer's parameters.
    """
    method = getattr(layer, method_name, None)
    if not callable(method):
        raise case.failure(f"the layer has no method {method_name}.")

    student_inputs = {name: value.copy() for name, value in inputs.items()}
    try:
        result = method(*student_inputs.values())
    except Exception as err:
        raise _raised_error(case, err) from err

    _check_inputs_unchanged(case, student_inputs, inputs)

    for parameter in parameters:
        try:
            current = _get_attribute(layer, parameter.name)
        except AttributeError:
            current = None
        change = _describe_change(current, parameter.value)
        if change is not None:
            raise case.failure(
                f"it changed the layer's parameter {parameter.name} ({change}). {method_name} must leave the "
                "parameters as they are."
            )
    return result


def _call_function(case: _Case, function: Callable[..., Any], inputs: Mapping[str, Any]) -> Any:
    """Call the student's function on copies of the inputs and return its result unchecked.

    Raises AssertionError if the function raises or changes an input array.
    """
    student_inputs = {name: value.copy() if isinstance(value, np.ndarray) else value for name, value in inputs.items()}
    try:
        result = function(*student_inputs.values())
    except Exception as err:
        raise _raised_error(case, err) from err

    arrays = {name: value for name, value in inputs.items() if isinstance(value, np.ndarray)}
    _check_inputs_unchanged(case, student_inputs, arrays)
    return result


def _check_inputs_unchanged(case: _Case, student_inputs: Mapping[str, Any], inputs: Mapping[str, np.ndarray]) -> None:
    """Raise AssertionError if the student's code changed one of the input arrays in place."""
    for name, original in inputs.items():
        change = _describe_change(student_inputs[name], original)
        if change is not None:
            raise case.failure(
                f"it changed its input {name} in place ({change}). A layer must not modify its inputs, so "
                f"compute new arrays ({name} * a rather than {name} *= a) or work on {name}.copy()."
            )


def _raised_error(case: _Case, err: Exception, context: str = "") -> AssertionError:
    """Build the AssertionError for a student's method that raised err."""
    name = type(err).__name__
    if isinstance(err, NotImplementedError):
        advice = "implement the method body."
    else:
        advice = f"{err}" if str(err) else "(no error message)."
        advice = advice.rstrip(".") + "." + _raising_line(err)
    if context:
        advice += f" {context}"
    return AssertionError(f"{case.method} raised {name} for configuration {case.describe()}: {advice}")


def _raising_line(err: Exception) -> str:
    """Describe the last line of the student's own code in err's traceback, or return "" if there is none.

    Feedback pages show a hidden test's message without its traceback, so the message names the line.
    An exception that autograder.trusted re-created from the student's process has only the
    grader's frames in its traceback, and carries the student's frame in its attribute student_frame.
    """
    frame = getattr(err, "student_frame", None)
    if not isinstance(frame, traceback.FrameSummary):
        own_frames = [frame for frame in traceback.extract_tb(err.__traceback__)
                      if not frame.filename.startswith((_AUTOGRADER_DIR, _NUMPY_DIR))]
        if not own_frames:
            return ""
        frame = own_frames[-1]
    code = f": {frame.line.strip()}" if frame.line else ""
    return f" It was raised in {frame.name}, line {frame.lineno} of its cell{code}"


def _shape_or_none(value: Any) -> tuple[int, ...] | None:
    """Return the shape of an ndarray, or None for anything else."""
    return value.shape if isinstance(value, np.ndarray) else None


def _describe_change(current: Any, original: np.ndarray) -> str | None:
    """Describe how current differs from the original array, or return None if it is unchanged."""
    if not isinstance(current, np.ndarray):
        return f"it is now {_type_name(current)} instead of an array"
    if current.shape != original.shape:
        return f"its shape changed from {original.shape} to {current.shape}"
    if np.array_equal(current, original):
        return None

    with np.errstate(invalid="ignore", over="ignore"):
        change = np.abs(current.astype(np.float64) - original)
    change = np.where(np.isnan(change), np.inf, change)
    index = _index(np.argmax(change), original.shape)
    return f"the largest change is {change[index]:.1e} at index {index}"


def _type_name(value: Any) -> str:
    """Name the type of a value for a message: "None", "a numpy array", "a list", "an int"."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return "a numpy array"
    name = type(value).__name__
    return f"an {name}" if name[0].lower() in "aeiou" else f"a {name}"


def _index(flat_index: np.intp, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Convert a flat index to a tuple of plain ints, which prints as (1, 2, 0, 3)."""
    return tuple(int(i) for i in np.unravel_index(flat_index, shape))


# ---------------------------------------------------------------------------------------------------
# Comparing results and recognising mistakes


class _Mistake(NamedTuple):
    """A common mistake, recognised when the student's result matches what the mistake produces."""

    description: str
    matches: Callable[[Any], bool]


def _gives_result(description: str, compute: Callable[[], Any]) -> _Mistake:
    """A mistake that produces the result compute() returns: an array, or a tuple of arrays.

    compute() may return None when the mistake cannot produce a result for this configuration.
    """
    return _Mistake(description, lambda actual: _results_match(actual, compute(), FORWARD_TOLERANCE))


def _gives_shape(description: str, shape: tuple[int, ...]) -> _Mistake:
    """Describe a mistake that produces an array of a wrong shape, whatever its values."""
    return _Mistake(description, lambda actual: isinstance(actual, np.ndarray) and actual.shape == shape)


def _results_match(actual: Any, candidate: Any, limit: float) -> bool:
    if candidate is None:
        return False
    if isinstance(candidate, tuple):
        return (
            isinstance(actual, tuple)
            and len(actual) == len(candidate)
            and all(_results_match(a, c, limit) for a, c in zip(actual, candidate))
        )
    return (
        isinstance(actual, np.ndarray)
        and actual.shape == candidate.shape
        and np.issubdtype(actual.dtype, np.number)
        and _largest_scaled_error(actual, candidate) <= limit
    )


def _largest_scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Return max |actual - expected| / max(1, |expected|), or inf if any entry is NaN."""
    if actual.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.abs(actual - expected) / np.maximum(1.0, np.abs(expected))
    if np.isnan(scaled).any():
        return np.inf
    return float(scaled.max())


def _recognise_mistake(actual: Any, mistakes: Sequence[_Mistake]) -> str | None:
    """Return the description of the first mistake that produces the actual result, if any."""
    for mistake in mistakes:
        if mistake.matches(actual):
            return mistake.description
    return None


def _compare(
    case: _Case,
    actual: Any,
    expected: np.ndarray | tuple[np.ndarray, ...],
    mistakes: Sequence[_Mistake],
    names: tuple[str, ...] | None = None,
    order: tuple[int, ...] | None = None,
    note: str = "",
) -> None:
    """Raise AssertionError unless the student's result matches the reference result.

    expected is one array, or a tuple of arrays whose names are given in names and which are
    compared in the given order of indices. A shape or value mismatch names the first matching
    mistake, if any. note, if given, is added to the message after the problem.
    """
    if names is None:
        labelled = [("", actual, expected)]
    else:
        parts = _unpack_tuple(case, actual, names)
        ordinals = ("first", "second", "third")
        labelled = [
            (f"in {names[k]} (the {ordinals[k]} returned value), ", parts[k], expected[k])
            for k in (order or range(len(names)))
        ]

    for prefix, part, expected_part in labelled:
        problem, recognisable = _mismatch(part, expected_part, FORWARD_TOLERANCE)
        if problem is not None:
            hint = _recognise_mistake(actual, mistakes) if recognisable else None
            raise case.failure(prefix + problem + (f" {note}" if note else ""), hint)


def _unpack_tuple(case: _Case, actual: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    """Return the elements of a tuple result, or raise AssertionError if it is not a tuple of len(names)."""
    expected_text = f"a tuple ({', '.join(names)})"
    if not isinstance(actual, tuple):
        return_line = f"return {', '.join(names)}"
        raise case.failure(f"it returned {_type_name(actual)}, expected {expected_text}. End with: {return_line}")
    if len(actual) != len(names):
        raise case.failure(f"it returned a tuple of {len(actual)} values, expected {expected_text}.")
    return actual


def _mismatch(actual: Any, expected: np.ndarray, limit: float, noun: str = "output shape") -> tuple[str | None, bool]:
    """Describe the first difference between a returned value and the expected array.

    Returns (problem, recognisable): problem is None when they match, and recognisable is whether
    a known mistake could explain the difference (a wrong shape or wrong values). limit
    is the largest accepted scaled error, and noun names the shape in the message.
    """
    if not isinstance(actual, np.ndarray):
        problem = f"got {_type_name(actual)}, expected a numpy array of shape {expected.shape}."
        if isinstance(actual, list):
            problem += " Convert the list with np.array or np.stack."
        return problem, False

    if actual.shape != expected.shape:
        return f"expected {noun} {expected.shape}, got {actual.shape}.", True

    if actual.dtype != expected.dtype:
        problem = f"expected an array of dtype {expected.dtype}, got {actual.dtype}."
        if actual.dtype == object:
            problem += " Return an array of numbers, not an array of arrays or lists."
        else:
            problem += " Create arrays with np.zeros(shape) and similar functions, whose default dtype is float64."
        return problem, False

    not_finite = ~np.isfinite(actual)
    if not_finite.any():
        index = _index(np.argmax(not_finite), actual.shape)
        return (
            f"got {actual[index]} at index {index}, where {expected[index]:.6g} was expected "
            f"({int(not_finite.sum())} of {actual.size} entries are nan or inf). Look for an overflow, "
            "such as np.exp of a large argument, or a division by zero.",
            False,
        )

    if _largest_scaled_error(actual, expected) <= limit:
        return None, False

    error = np.abs(actual - expected)
    scaled = error / np.maximum(1.0, np.abs(expected))
    index = _index(np.argmax(scaled), actual.shape)
    wrong_count = int((scaled > limit).sum())
    return (
        f"largest error {error[index]:.1e} at index {index}: expected {expected[index]:.6g}, "
        f"got {actual[index]:.6g} ({wrong_count} of {actual.size} entries are wrong).",
        True,
    )


# ---------------------------------------------------------------------------------------------------
# Comparing gradients and recognising mistakes in backward passes


class _Gradient(NamedTuple):
    """One gradient that a backward pass returned or stored, with the reference value."""

    name: str  # the key in the predictions of _GradientMistake: "dX", "dfilters", "cell.dW", "1.dx_t"
    label: str  # how messages name it: "dX (the returned value)"
    actual: Any
    expected: np.ndarray


class _GradientMistake(NamedTuple):
    """A common mistake in a backward pass, recognised by the gradients that it produces.

    predict() returns, by name, the gradients that the mistake produces: arrays, or shape tuples
    where only the shape is known. Gradients that it leaves out are not compared. It may return
    None when the mistake cannot occur in this configuration.
    """

    description: str
    predict: Callable[[], Mapping[str, np.ndarray | tuple[int, ...]] | None]


def _as_array(value: Any) -> Any:
    """Turn a numpy scalar, such as the np.float64 that np.sum returns, into a 0-d array."""
    return np.asarray(value) if isinstance(value, np.generic) else value


def _returned_gradient(name: str, actual: Any, expected: np.ndarray, label: str = "") -> _Gradient:
    return _Gradient(name, label or f"{name} (the returned value)", _as_array(actual), expected)


def _stored_gradient(case: _Case, layer: Any, path: str, expected: np.ndarray, notation: str) -> _Gradient:
    """Read a gradient that backward stores on the layer, such as "dfilters" or "cell.dW".

    Raises AssertionError naming the attribute if the layer does not have it.
    """
    parent, _, name = path.rpartition(".")
    parameter = f"{parent}.{name[1:]}" if parent else name[1:]
    try:
        value = _get_attribute(layer, path)
    except AttributeError as err:
        raise case.failure(
            f"the layer has no attribute {path}. {case.method} must store the gradient of the loss with respect "
            f"to {parameter} in {path}, an array of shape {notation} = {expected.shape}."
        ) from err
    return _Gradient(path, f"{path} (the attribute layer.{path})", _as_array(value), expected)


def _compare_gradients(case: _Case, gradients: Sequence[_Gradient], mistakes: Sequence[_GradientMistake]) -> None:
    """Raise AssertionError at the first gradient, in the given order, that differs from the reference.

    The message names the first mistake whose prediction includes that gradient and matches every
    gradient that it predicts.
    """
    actuals = {gradient.name: gradient.actual for gradient in gradients}
    for gradient in gradients:
        problem, recognisable = _mismatch(gradient.actual, gradient.expected, BACKWARD_TOLERANCE, noun="shape")
        if problem is not None:
            hint = _recognise_gradient_mistake(gradient.name, actuals, mistakes) if recognisable else None
            raise case.failure(f"in {gradient.label}, {problem}", hint)


def _recognise_gradient_mistake(
    failing_name: str, actuals: Mapping[str, Any], mistakes: Sequence[_GradientMistake]
) -> str | None:
    for mistake in mistakes:
        predicted = mistake.predict()
        if not predicted or failing_name not in predicted:
            continue
        if all(name in actuals and _prediction_matches(actuals[name], value) for name, value in predicted.items()):
            return mistake.description
    return None


def _prediction_matches(actual: Any, predicted: np.ndarray | tuple[int, ...]) -> bool:
    if isinstance(predicted, tuple):
        return isinstance(actual, np.ndarray) and actual.shape == predicted
    return _results_match(actual, predicted, BACKWARD_TOLERANCE)
