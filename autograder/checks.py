"""Checks that the hidden test cells call to compare a student's layer with the reference layer.

Each check_* function runs one group of configurations. For every configuration it constructs the
student's layer, overwrites its parameters with random float64 values (so the initialisation does
not matter), runs the student's method and the reference method from the package solutions on the
same random inputs, and compares the results. A check returns None when every configuration
passes. Otherwise it raises AssertionError with a message for the student: the method, the
configuration, the expected and actual shape or the largest error and where it is, and the likely
mistake when the check recognises one.

The checks are deterministic: each group draws its inputs from its own seeded generator. They
print nothing and leave numpy's global random state as they found it.

A hidden test cell looks like this::

    from autograder.checks import check_conv2d_forward
    check_conv2d_forward(Conv2D, "padding")
"""

import contextlib
import itertools
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

TOLERANCE = 1e-8
"""Largest accepted error, relative to max(1, |expected|), for every entry of a result.

The student's layer and the reference both compute in float64 (machine epsilon 2.2e-16), but they
sum in different orders, such as loops against tensordot. On these configurations the correct
naive loops in tests/broken_layers.py differ from the reference by at most 4e-15, far below this
tolerance, while the broken layers there that return wrong values are off by 0.3 or more. Above
|expected| = 1 the tolerance grows with the value, so that large outputs are not judged more
strictly than small ones.
"""

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

GROUPS: dict[str, tuple[str, ...]] = {
    "check_conv2d_forward": tuple(_CONV2D_GROUPS),
    "check_maxpool2d_forward": tuple(_MAXPOOL2D_GROUPS),
    "check_rnn_forward": tuple(_RNN_GROUPS),
    "check_lstm_step": tuple(_LSTM_STEP_GROUPS),
    "check_lstm_forward": tuple(_LSTM_FORWARD_GROUPS),
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
    _compare(_Case("Conv2D.forward", config), actual, expected, mistakes)


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


_SWAPPED_HEIGHT_WIDTH = "the height and width of the output are swapped. Its last two axes are H_out, then W_out."


def _transposed_image(expected: np.ndarray) -> "_Mistake":
    """The mistake of swapping the height and width axes of a correct output, square or not."""
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

    for name, original in inputs.items():
        change = _describe_change(student_inputs[name], original)
        if change is not None:
            raise case.failure(
                f"it changed its input {name} in place ({change}). A layer must not modify its inputs, so "
                f"compute new arrays ({name} * a rather than {name} *= a) or work on {name}.copy()."
            )

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


def _raised_error(case: _Case, err: Exception, context: str = "") -> AssertionError:
    """Build the AssertionError for a student's method that raised err."""
    name = type(err).__name__
    if isinstance(err, NotImplementedError):
        advice = "implement the method body."
    else:
        advice = f"{err}" if str(err) else "(no error message)."
        advice = advice.rstrip(".") + ". The traceback above shows the line that raised it."
    if context:
        advice += f" {context}"
    return AssertionError(f"{case.method} raised {name} for configuration {case.describe()}: {advice}")


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
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


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
    """A mistake that produces the result compute() returns: an array, or a tuple of arrays."""
    return _Mistake(description, lambda actual: _results_match(actual, compute()))


def _gives_shape(description: str, shape: tuple[int, ...]) -> _Mistake:
    """A mistake that produces an array of a wrong shape, whatever its values."""
    return _Mistake(description, lambda actual: isinstance(actual, np.ndarray) and actual.shape == shape)


def _results_match(actual: Any, candidate: Any) -> bool:
    if isinstance(candidate, tuple):
        return (
            isinstance(actual, tuple)
            and len(actual) == len(candidate)
            and all(_results_match(a, c) for a, c in zip(actual, candidate))
        )
    return (
        isinstance(actual, np.ndarray)
        and actual.shape == candidate.shape
        and np.issubdtype(actual.dtype, np.number)
        and _largest_scaled_error(actual, candidate) <= TOLERANCE
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
) -> None:
    """Raise AssertionError unless the student's result matches the reference result.

    expected is one array, or a tuple of arrays whose names are given in names and which are
    compared in the given order of indices. A shape or value mismatch names the first matching
    mistake, if any.
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
        problem, recognisable = _mismatch(part, expected_part)
        if problem is not None:
            hint = _recognise_mistake(actual, mistakes) if recognisable else None
            raise case.failure(prefix + problem, hint)


def _unpack_tuple(case: _Case, actual: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    """Return the elements of a tuple result, or raise AssertionError if it is not a tuple of len(names)."""
    expected_text = f"a tuple ({', '.join(names)})"
    if not isinstance(actual, tuple):
        return_line = f"return {', '.join(names)}"
        raise case.failure(f"it returned {_type_name(actual)}, expected {expected_text}. End with: {return_line}")
    if len(actual) != len(names):
        raise case.failure(f"it returned a tuple of {len(actual)} values, expected {expected_text}.")
    return actual


def _mismatch(actual: Any, expected: np.ndarray) -> tuple[str | None, bool]:
    """Describe the first difference between a returned value and the expected array.

    Returns (problem, recognisable): problem is None when they match, and recognisable tells
    whether a known mistake could explain the difference (a wrong shape or wrong values).
    """
    if not isinstance(actual, np.ndarray):
        problem = f"got {_type_name(actual)}, expected a numpy array of shape {expected.shape}."
        if isinstance(actual, list):
            problem += " Convert the list with np.array or np.stack."
        return problem, False

    if actual.shape != expected.shape:
        return f"expected output shape {expected.shape}, got {actual.shape}.", True

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

    if _largest_scaled_error(actual, expected) <= TOLERANCE:
        return None, False

    error = np.abs(actual - expected)
    scaled = error / np.maximum(1.0, np.abs(expected))
    index = _index(np.argmax(scaled), actual.shape)
    wrong_count = int((scaled > TOLERANCE).sum())
    return (
        f"largest error {error[index]:.1e} at index {index}: expected {expected[index]:.6g}, "
        f"got {actual[index]:.6g} ({wrong_count} of {actual.size} entries are wrong).",
        True,
    )
