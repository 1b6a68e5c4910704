"""Tests of autograder.checks: correct layers pass, every broken layer and every group can fail.

The layers come from tests/broken_layers.py. The messages are tested too, because students act on
them: they must name the configuration, the shape or the largest error, and the likely mistake.
The tolerance table in autograder.tolerances is tested here, because the checks are its users.
"""

import re
import sys
from collections.abc import Callable

import numpy as np
import pytest
from broken_layers import BROKEN_LAYERS, CORRECT_LAYERS, STUB_LAYERS, BrokenLayer, NaiveConv2D, NaiveRNNCell

import solutions
from autograder import checks, tolerances

CHECK_GROUPS = [(check, group) for check, groups in checks.GROUPS.items() for group in groups]
CHECK_GROUP_IDS = [f"{check}-{group}" for check, group in CHECK_GROUPS]

REFERENCE_LAYERS = {
    "check_conv2d_forward": solutions.Conv2D,
    "check_maxpool2d_forward": solutions.MaxPool2D,
    "check_rnn_forward": solutions.RNNCell,
    "check_lstm_step": solutions.LSTMCell,
    "check_lstm_forward": solutions.LSTM,
    "check_conv2d_backward": solutions.Conv2D,
    "check_maxpool2d_backward": solutions.MaxPool2D,
    "check_rnn_backward": solutions.RNNCell,
    "check_lstm_step_backward": solutions.LSTMCell,
    "check_lstm_backward": solutions.LSTM,
    "check_conv2d_fast": solutions.conv2d_forward_fast,
}

SHAPE_MESSAGE = re.compile(r"expected output shape \((\d+, )+\d+\), got \((\d+, )*\d+\)\.")
VALUE_MESSAGE = re.compile(
    r"largest error \d\.\de[+-]\d\d at index \((\d+, )*\d+\): expected -?\d[\d.e+-]*, got -?\d[\d.e+-]*"
    r" \(\d+ of \d+ entries are wrong\)\."
)


def run_check(check: str, implementation: type | Callable, group: str) -> None:
    getattr(checks, check)(implementation, group)


def failure_message(check: str, implementation: type | Callable, group: str) -> str:
    """Run a check that must fail and return its AssertionError message."""
    with pytest.raises(AssertionError) as failure:
        run_check(check, implementation, group)
    return str(failure.value)


def failing_groups(broken: BrokenLayer) -> dict[str, str]:
    """Run every group of the broken layer's check and return the failure message of each failing group."""
    messages = {}
    for group in checks.GROUPS[broken.check]:
        try:
            run_check(broken.check, broken.implementation, group)
        except AssertionError as failure:
            messages[group] = str(failure)
    return messages


# ---------------------------------------------------------------------------------------------------
# Correct layers pass


@pytest.mark.parametrize(("check", "group"), CHECK_GROUPS, ids=CHECK_GROUP_IDS)
def test_naive_layer_passes(check: str, group: str) -> None:
    assert run_check(check, CORRECT_LAYERS[check], group) is None


@pytest.mark.parametrize(("check", "group"), CHECK_GROUPS, ids=CHECK_GROUP_IDS)
def test_reference_layer_passes(check: str, group: str) -> None:
    assert run_check(check, REFERENCE_LAYERS[check], group) is None


# ---------------------------------------------------------------------------------------------------
# Broken layers fail, and every group catches something


@pytest.mark.parametrize("broken", BROKEN_LAYERS, ids=lambda broken: broken.name)
def test_broken_layer_fails_its_groups(broken: BrokenLayer) -> None:
    messages = failing_groups(broken)

    assert set(messages) == broken.failing_groups
    for group, message in messages.items():
        assert broken.messages[group] in message, f"group {group}: {message}"


@pytest.mark.parametrize("broken", BROKEN_LAYERS, ids=lambda broken: broken.name)
def test_broken_layer_message_names_configuration(broken: BrokenLayer) -> None:
    for group, message in failing_groups(broken).items():
        first_line = message.splitlines()[0]
        assert re.search(r" for configuration (\w+=\d+, )*\w+=\d+: ", first_line), f"group {group}: {message}"
        assert "solutions" not in message
        assert "Traceback" not in message


@pytest.mark.parametrize(("check", "group"), CHECK_GROUPS, ids=CHECK_GROUP_IDS)
def test_group_catches_a_broken_layer(check: str, group: str) -> None:
    caught_by = [broken.name for broken in BROKEN_LAYERS if broken.check == check and group in failing_groups(broken)]

    assert caught_by, f"no broken layer fails {check}(..., {group!r})"


def test_catalogue_covers_every_check() -> None:
    assert {broken.check for broken in BROKEN_LAYERS} == set(checks.GROUPS)
    assert set(CORRECT_LAYERS) == set(checks.GROUPS)
    assert set(STUB_LAYERS) == set(checks.GROUPS)


# ---------------------------------------------------------------------------------------------------
# Messages


def test_shape_message_format() -> None:
    from broken_layers import ConvOutputSizeWithoutPadding

    message = failure_message("check_conv2d_forward", ConvOutputSizeWithoutPadding, "padding")

    assert message.startswith(
        "Conv2D.forward failed for configuration N=2, C=3, H=5, W=7, F=4, kernel_size=3, stride=1, padding=1: "
        "expected output shape (2, 4, 5, 7), got (2, 4, 3, 5)."
    )
    assert SHAPE_MESSAGE.search(message)
    assert message.endswith(
        "\nLikely mistake: the output size ignores the padding: "
        "H_out = (H + 2*padding - kernel_size) // stride + 1, and likewise W_out."
    )


def test_value_message_format() -> None:
    from broken_layers import ConvKernelFlipped

    message = failure_message("check_conv2d_forward", ConvKernelFlipped, "stride")

    assert message.startswith(
        "Conv2D.forward failed for configuration N=2, C=3, H=8, W=7, F=4, kernel_size=3, stride=2, padding=0: "
        "largest error "
    )
    assert VALUE_MESSAGE.search(message), message
    assert "\nLikely mistake: the kernel is flipped" in message


def test_value_message_points_at_wrong_entry() -> None:
    """The index, expected and actual value in the message must describe the same entry."""

    class OneWrongEntry(NaiveConv2D):
        def forward(self, X):
            output = super().forward(X)
            output[1, 2, 0, 2] += 0.5
            return output

    message = failure_message("check_conv2d_forward", OneWrongEntry, "basic")

    match = re.search(
        r"largest error (\S+) at index \(1, 2, 0, 2\): expected (\S+), got (\S+) \(1 of 72 entries", message
    )
    assert match, message
    error, expected, got = (float(text.rstrip(",")) for text in match.groups())
    assert error == pytest.approx(0.5, rel=0.05)
    assert got - expected == pytest.approx(0.5, abs=1e-5)
    assert "Likely mistake" not in message


def test_tuple_element_message_names_element() -> None:
    from broken_layers import RNNOutputBeforeTanh

    message = failure_message("check_rnn_forward", RNNOutputBeforeTanh, "basic")

    assert message.startswith(
        "RNNCell.forward failed for configuration T=4, N=3, D=5, H=6, O=2: "
        "in outputs (the first returned value), largest error"
    )


@pytest.mark.parametrize("check", list(STUB_LAYERS), ids=str)
def test_stub_asks_to_implement(check: str) -> None:
    stub, method = STUB_LAYERS[check]

    with pytest.raises(AssertionError) as failure:
        run_check(check, stub, checks.GROUPS[check][0])

    message = str(failure.value)
    assert message.startswith(f"{method} raised NotImplementedError for configuration ")
    assert message.endswith(": implement the method body.")
    assert isinstance(failure.value.__cause__, NotImplementedError)


def test_other_exception_is_chained() -> None:
    class ShapeBug(NaiveRNNCell):
        def forward(self, inputs):
            return inputs @ self.W_hh, inputs

    with pytest.raises(AssertionError) as failure:
        run_check("check_rnn_forward", ShapeBug, "basic")

    message = str(failure.value)
    assert message.startswith("RNNCell.forward raised ValueError for configuration T=4, N=3, D=5, H=6, O=2: ")
    assert "matmul" in message
    # Feedback pages hide a hidden test's traceback, so the message names the student's line.
    line = ShapeBug.forward.__code__.co_firstlineno + 1
    assert message.endswith(f"It was raised in forward, line {line} of its cell: return inputs @ self.W_hh, inputs")
    assert isinstance(failure.value.__cause__, ValueError)


def test_constructor_exception_names_call() -> None:
    class RenamedArguments(NaiveConv2D):
        def __init__(self, c_in, c_out, k, stride=1, padding=0):
            super().__init__(c_in, c_out, k, stride, padding)

    message = failure_message("check_conv2d_forward", RenamedArguments, "basic")

    assert message.startswith("Conv2D.__init__ raised TypeError for configuration N=2, C=3, H=5, W=5, F=4")
    assert message.endswith(
        "The check called Conv2D(in_channels=3, out_channels=4, kernel_size=3, stride=1, padding=0)."
    )


def test_nan_output_is_reported() -> None:
    class NaNOutput(NaiveConv2D):
        def forward(self, X):
            output = super().forward(X)
            output[0, 1, 2, 0] = np.nan
            return output

    message = failure_message("check_conv2d_forward", NaNOutput, "basic")

    assert "got nan at index (0, 1, 2, 0), where " in message
    assert "(1 of 72 entries are nan or inf)" in message
    assert "overflow" in message


def test_none_result_is_reported() -> None:
    class MissingReturn(NaiveConv2D):
        def forward(self, X):
            super().forward(X)

    message = failure_message("check_conv2d_forward", MissingReturn, "basic")

    assert message.endswith(": got None, expected a numpy array of shape (2, 4, 3, 3).")


def test_list_result_of_tuple_is_reported() -> None:
    class ReturnsList(NaiveRNNCell):
        def forward(self, inputs):
            return list(super().forward(inputs))

    message = failure_message("check_rnn_forward", ReturnsList, "single_step")

    assert message.endswith(
        ": it returned a list, expected a tuple (outputs, hidden_states). End with: return outputs, hidden_states"
    )


def test_three_tuple_is_reported() -> None:
    class ReturnsThree(NaiveRNNCell):
        def forward(self, inputs):
            return (*super().forward(inputs), None)

    message = failure_message("check_rnn_forward", ReturnsThree, "basic")

    assert message.endswith(": it returned a tuple of 3 values, expected a tuple (outputs, hidden_states).")


def test_missing_attribute_is_reported() -> None:
    class WeightsNotFilters(NaiveConv2D):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
            super().__init__(in_channels, out_channels, kernel_size, stride, padding)
            self.weights = self.filters
            del self.filters

    message = failure_message("check_conv2d_forward", WeightsNotFilters, "basic")

    call = "Conv2D(in_channels=3, out_channels=4, kernel_size=3, stride=1, padding=0)"
    assert f"{call} did not set the attribute filters" in message
    assert "shape (F, C, kernel_size, kernel_size) = (4, 3, 3, 3)" in message


def test_unknown_group_names_valid_groups() -> None:
    for check, groups in checks.GROUPS.items():
        with pytest.raises(ValueError) as failure:
            run_check(check, CORRECT_LAYERS[check], "no_such_group")

        message = str(failure.value)
        assert "'no_such_group'" in message
        for group in groups:
            assert repr(group) in message


def test_passing_groups_return_none_without_output(capsys) -> None:
    for check, group in CHECK_GROUPS:
        assert run_check(check, CORRECT_LAYERS[check], group) is None
    with pytest.raises(AssertionError):
        run_check("check_conv2d_forward", BROKEN_LAYERS[0].implementation, "padding")

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_messages_are_deterministic() -> None:
    from broken_layers import LSTMNoForgetGate

    first = failure_message("check_lstm_step", LSTMNoForgetGate, "nonzero_state")
    np.random.seed(12345)
    second = failure_message("check_lstm_step", LSTMNoForgetGate, "nonzero_state")

    assert first == second


def test_global_random_state_is_kept() -> None:
    np.random.seed(7)
    expected_next = np.random.rand()
    np.random.seed(7)

    for check, group in CHECK_GROUPS:
        run_check(check, CORRECT_LAYERS[check], group)

    assert np.random.rand() == expected_next


def test_tolerance_accepts_rounding_differences() -> None:
    class RoundingNoise(NaiveConv2D):
        def forward(self, X):
            output = super().forward(X)
            return output * (1 + 1e-12)

    assert run_check("check_conv2d_forward", RoundingNoise, "basic") is None


def test_tolerance_rejects_small_real_errors() -> None:
    class SmallError(NaiveConv2D):
        def forward(self, X):
            return super().forward(X) + 1e-6

    message = failure_message("check_conv2d_forward", SmallError, "basic")

    assert "largest error 1.0e-06" in message


def test_missing_solutions_raises_runtime_error(monkeypatch) -> None:
    # A None entry in sys.modules makes "import solutions" raise ImportError.
    monkeypatch.setitem(sys.modules, "solutions", None)

    with pytest.raises(RuntimeError, match="cannot be imported"):
        checks.check_conv2d_forward(CORRECT_LAYERS["check_conv2d_forward"], "basic")


# ---------------------------------------------------------------------------------------------------
# Backward checks: messages


def test_backward_value_message_format() -> None:
    from broken_layers import ConvBackwardKernelFlipped

    message = failure_message("check_conv2d_backward", ConvBackwardKernelFlipped, "stride")

    assert message.startswith(
        "Conv2D.backward failed for configuration N=2, C=3, H=8, W=7, F=4, kernel_size=3, stride=2, padding=0: "
        "in dX (the returned value), largest error "
    )
    assert VALUE_MESSAGE.search(message), message
    assert "\nLikely mistake: the kernel is flipped in backward." in message


def test_backward_shape_message_format() -> None:
    from broken_layers import ConvBackwardNotCropped

    message = failure_message("check_conv2d_backward", ConvBackwardNotCropped, "padding")

    assert message == (
        "Conv2D.backward failed for configuration N=2, C=3, H=5, W=7, F=4, kernel_size=3, stride=1, padding=1: "
        "in dX (the returned value), expected shape (2, 3, 5, 7), got (2, 3, 7, 9).\n"
        "Likely mistake: the input gradient is not cropped after padding: dX has the shape of the padded input. "
        "The padding is not part of the input, so return dX_padded[:, :, 1:1 + H, 1:1 + W]."
    )


def test_stored_gradient_message_names_attribute() -> None:
    from broken_layers import ConvBackwardBiasOverSpace

    message = failure_message("check_conv2d_backward", ConvBackwardBiasOverSpace, "basic")

    assert "in dbias (the attribute layer.dbias), expected shape (4,), got (2, 4)." in message
    assert "\nLikely mistake: the bias gradient is summed over the wrong axes (2, 3) of dout." in message


def test_scalar_bias_gradient_is_reported() -> None:
    from broken_layers import NaiveConv2DBackward

    class BiasSummedOverAll(NaiveConv2DBackward):
        def backward(self, dout):
            dX = super().backward(dout)
            self.dbias = np.sum(dout)
            return dX

    message = failure_message("check_conv2d_backward", BiasSummedOverAll, "basic")

    assert "in dbias (the attribute layer.dbias), expected shape (4,), got ()." in message
    assert "wrong axes (0, 1, 2, 3) of dout" in message


def test_missing_gradient_attribute_is_reported() -> None:
    from broken_layers import ConvBackwardNoGradients

    message = failure_message("check_conv2d_backward", ConvBackwardNoGradients, "basic")

    assert message.endswith(
        ": the layer has no attribute dfilters. Conv2D.backward must store the gradient of the loss with respect "
        "to filters in dfilters, an array of shape (F, C, kernel_size, kernel_size) = (4, 3, 3, 3)."
    )


def test_missing_cell_gradient_names_path() -> None:
    from broken_layers import NaiveLSTMBackward

    class CellGradientsDeleted(NaiveLSTMBackward):
        def backward(self, d_hidden_states):
            d_inputs = super().backward(d_hidden_states)
            del self.cell.db
            return d_inputs

    message = failure_message("check_lstm_backward", CellGradientsDeleted, "single_step")

    assert "the layer has no attribute cell.db. LSTM.backward must store the gradient of the loss with respect " in message
    assert "to cell.b in cell.db, an array of shape (4H,) = (20,)." in message


def test_two_step_message_names_call() -> None:
    from broken_layers import LSTMBackwardFirstInFirstOut

    message = failure_message("check_lstm_step_backward", LSTMBackwardFirstInFirstOut, "two_steps")

    assert message.startswith(
        "LSTMCell.backward_step failed for configuration N=3, D=4, H=5: in dc_prev of the first backward_step "
        "call, which back-propagates forward_step 2, largest error "
    )


def test_wrong_forward_is_reported_before_backward() -> None:
    from broken_layers import NaiveRNNCellBackward

    class ForwardWithoutBias(NaiveRNNCellBackward):
        def forward(self, inputs):
            outputs, hidden_states = super().forward(inputs)
            return outputs - self.b_y, hidden_states

    message = failure_message("check_rnn_backward", ForwardWithoutBias, "basic")

    assert message.startswith("RNNCell.forward failed for configuration T=6, N=3, D=5, H=6, O=2: in outputs")
    assert "The backward check runs forward first, so fix forward before backward." in message


def test_conv_backward_ignores_wrong_forward_output() -> None:
    """Conv2D.backward uses only the stored input, so a forward mistake fails the forward check alone."""
    from broken_layers import NaiveConv2DBackward

    class ForwardWithoutBias(NaiveConv2DBackward):
        def forward(self, X):
            return super().forward(X) - self.bias[:, np.newaxis, np.newaxis]

    for group in checks.GROUPS["check_conv2d_backward"]:
        assert run_check("check_conv2d_backward", ForwardWithoutBias, group) is None


def test_backward_changing_dout_is_reported() -> None:
    from broken_layers import NaiveMaxPool2DBackward

    class ScalesDout(NaiveMaxPool2DBackward):
        def backward(self, dout):
            dout *= 1.0 + 1e-3
            return super().backward(dout) / (1.0 + 1e-3)

    message = failure_message("check_maxpool2d_backward", ScalesDout, "basic")

    assert "MaxPool2D.backward failed for configuration N=2, C=3, H=4, W=4, kernel_size=2, stride=2: " in message
    assert "it changed its input dout in place" in message


def test_backward_changing_parameter_is_reported() -> None:
    from broken_layers import NaiveRNNCellBackward

    class SgdInBackward(NaiveRNNCellBackward):
        def backward(self, d_outputs):
            d_inputs = super().backward(d_outputs)
            self.W_hh -= 0.1 * self.dW_hh
            return d_inputs

    message = failure_message("check_rnn_backward", SgdInBackward, "basic")

    assert "it changed the layer's parameter W_hh" in message


def test_fast_check_names_function() -> None:
    from broken_layers import conv2d_forward_im2col

    def shifted(X, filters, bias, stride, padding):
        return conv2d_forward_im2col(X, filters, bias, stride, padding) + 1.0

    assert failure_message("check_conv2d_fast", shifted, "basic").startswith("shifted failed for configuration ")
    lambda_message = failure_message("check_conv2d_fast", lambda *arguments: shifted(*arguments), "basic")
    assert lambda_message.startswith("conv2d_forward_fast failed for configuration ")


# ---------------------------------------------------------------------------------------------------
# Backward checks: every swapped pair of gates and every gate's nonlinearity is named


def gradient_blocks_swapped(first: int, second: int) -> type:
    """Build an LSTM cell whose backward_step writes the gradients of two gates into each other's blocks."""
    from broken_layers import NaiveLSTMCellBackward

    class GatesSwapped(NaiveLSTMCellBackward):
        def pre_activation_gradients(self, df, di, do, dg, f, i, o, g):
            blocks = np.split(super().pre_activation_gradients(df, di, do, dg, f, i, o, g), 4, axis=1)
            blocks[first], blocks[second] = blocks[second], blocks[first]
            return np.hstack(blocks)

    return GatesSwapped


GATE_NAMES = ["the forget gate f", "the input gate i", "the output gate o", "the candidate g"]
GATE_PAIRS = [(first, second) for first in range(4) for second in range(first + 1, 4)]


@pytest.mark.parametrize(("first", "second"), GATE_PAIRS, ids=lambda index: "fiog"[index])
def test_swapped_gate_pair_is_named(first: int, second: int) -> None:
    for group in ("basic", "two_steps"):
        message = failure_message("check_lstm_step_backward", gradient_blocks_swapped(first, second), group)

        expected = f"the gradients of {GATE_NAMES[first]} and {GATE_NAMES[second]} are in each other's column blocks"
        assert "\nLikely mistake: the gates are in the wrong order: " + expected in message, message


@pytest.mark.parametrize("gate", range(4), ids=list("fiog"))
def test_swapped_nonlinearity_is_named(gate: int) -> None:
    from broken_layers import NaiveLSTMCellBackward

    class WrongDerivative(NaiveLSTMCellBackward):
        def pre_activation_gradients(self, df, di, do, dg, f, i, o, g):
            blocks = np.split(super().pre_activation_gradients(df, di, do, dg, f, i, o, g), 4, axis=1)
            upstream, value = (df, di, do, dg)[gate], (f, i, o, g)[gate]
            blocks[gate] = upstream * (value * (1 - value) if gate == 3 else 1 - value**2)
            return np.hstack(blocks)

    message = failure_message("check_lstm_step_backward", WrongDerivative, "basic")

    wrong = "sigmoid" if gate == 3 else "tanh"
    expected = f"sigmoid and tanh are swapped on {GATE_NAMES[gate]}: it is differentiated as a {wrong}"
    assert "\nLikely mistake: " + expected in message, message


# ---------------------------------------------------------------------------------------------------
# Backward checks: the models of mistakes compute the reference gradients with default options


def test_maxpool_model_matches_reference() -> None:
    rng = np.random.default_rng(1)
    for kernel_size, stride in ((2, 2), (3, 2), (3, 1), (2, 1)):
        X = rng.integers(0, 3, (2, 3, 7, 8)).astype(np.float64)
        layer = solutions.MaxPool2D(kernel_size, stride)
        dout = rng.standard_normal(layer.forward(X).shape)

        model = checks._maxpool2d_backward_model(X, dout, kernel_size, stride)

        np.testing.assert_allclose(model, layer.backward(dout), rtol=0, atol=1e-12)


def test_rnn_model_matches_reference() -> None:
    rng = np.random.default_rng(2)
    layer = solutions.RNNCell(3, 4, 2)
    values = {name: rng.standard_normal(getattr(layer, name).shape) for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y")}
    for name, value in values.items():
        setattr(layer, name, value)
    inputs = rng.standard_normal((5, 2, 3))
    _, hidden_states = layer.forward(inputs)
    d_outputs = rng.standard_normal((5, 2, 2))
    d_inputs = layer.backward(d_outputs)

    gradients, _ = checks._rnn_backward_model(values, inputs, hidden_states, d_outputs)

    np.testing.assert_allclose(gradients["d_inputs"], d_inputs, rtol=0, atol=1e-12)
    for name in values:
        np.testing.assert_allclose(gradients[f"d{name}"], getattr(layer, f"d{name}"), rtol=0, atol=1e-12)


def test_lstm_step_model_matches_reference() -> None:
    rng = np.random.default_rng(3)
    cell = solutions.LSTMCell(4, 3)
    cell.W = rng.standard_normal(cell.W.shape)
    cell.b = rng.standard_normal(cell.b.shape)
    x_1, x_2 = rng.standard_normal((2, 2, 4))
    h_0, c_0 = rng.standard_normal((2, 2, 3))
    h_1, c_1 = cell.forward_step(x_1, h_0, c_0)
    cell.forward_step(x_2, h_1, c_1)
    upstream = [(rng.standard_normal((2, 3)), rng.standard_normal((2, 3))) for _ in range(2)]
    returned = [cell.backward_step(*upstream[0]), cell.backward_step(*upstream[1])]

    model = checks._lstm_backward_steps_model(cell.W, cell.b, [(x_1, h_0, c_0), (x_2, h_1, c_1)], upstream)

    for call, values in enumerate(returned, start=1):
        for name, value in zip(("dx_t", "dh_prev", "dc_prev"), values):
            np.testing.assert_allclose(model[f"{call}.{name}"], value, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model["dW"], cell.dW, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model["db"], cell.db, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------
# Tolerances


def test_checks_use_tolerance_table() -> None:
    assert checks.FORWARD_TOLERANCE == tolerances.tolerance("float64", "forward")
    assert checks.BACKWARD_TOLERANCE == tolerances.tolerance("float64", "backward")
    assert checks.TOLERANCE == checks.FORWARD_TOLERANCE


def test_tolerance_table_is_ordered() -> None:
    for direction in tolerances.DIRECTIONS:
        assert tolerances.tolerance("float32", direction) > tolerances.tolerance("float64", direction)
    for dtype in ("float64", "float32"):
        assert tolerances.tolerance(dtype, "backward") >= tolerances.tolerance(dtype, "forward")
    for entry in tolerances.TOLERANCES.values():
        assert entry.reason


def test_tolerance_accepts_numpy_dtypes() -> None:
    assert tolerances.tolerance(np.float32, "backward") == tolerances.TOLERANCES[("float32", "backward")].value
    assert tolerances.tolerance(np.dtype("float64"), "forward") == tolerances.TOLERANCES[("float64", "forward")].value


@pytest.mark.parametrize(
    ("dtype", "direction", "message"),
    [
        ("int8", "forward", "no tolerance for dtype 'int8'"),
        ("float64", "sideways", "direction 'sideways'"),
        ("no-such-type", "forward", "invalid dtype 'no-such-type'"),
    ],
    ids=["integer-dtype", "unknown-direction", "invalid-dtype"],
)
def test_tolerance_rejects_unknown_pairs(dtype: str, direction: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        tolerances.tolerance(dtype, direction)


def test_format_table_lists_every_entry() -> None:
    table = tolerances.format_table()
    lines = table.splitlines()

    assert lines[0].startswith("Largest accepted error per entry")
    assert lines[1].split()[:4] == ["dtype", "direction", "tolerance", "reason"]
    assert len(lines) == 2 + len(tolerances.TOLERANCES)
    for (dtype, direction), entry in tolerances.TOLERANCES.items():
        assert any(line.split()[:3] == [dtype, direction, f"{entry.value:.0e}"] for line in lines[2:])
        assert entry.reason in table


def test_backward_tolerance_accepts_rounding_differences() -> None:
    from broken_layers import NaiveRNNCellBackward

    class RoundingNoise(NaiveRNNCellBackward):
        def backward(self, d_outputs):
            return super().backward(d_outputs) * (1 + 1e-12)

    assert run_check("check_rnn_backward", RoundingNoise, "basic") is None


def test_backward_tolerance_rejects_small_real_errors() -> None:
    from broken_layers import NaiveRNNCellBackward

    class SmallError(NaiveRNNCellBackward):
        def backward(self, d_outputs):
            d_inputs = super().backward(d_outputs)
            self.db_h = self.db_h + 1e-6
            return d_inputs

    message = failure_message("check_rnn_backward", SmallError, "basic")

    assert "in db_h (the attribute layer.db_h), largest error 1.0e-06" in message
