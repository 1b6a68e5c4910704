"""Tests of autograder.checks: correct layers pass, every broken layer and every group can fail.

The layers come from tests/broken_layers.py. The messages are tested too, because students act on
them: they must name the configuration, the shape or the largest error, and the likely mistake.
"""

import re
import sys

import numpy as np
import pytest
from broken_layers import BROKEN_LAYERS, CORRECT_LAYERS, STUB_LAYERS, BrokenLayer, NaiveConv2D, NaiveRNNCell

import solutions
from autograder import checks

CHECK_GROUPS = [(check, group) for check, groups in checks.GROUPS.items() for group in groups]
CHECK_GROUP_IDS = [f"{check}-{group}" for check, group in CHECK_GROUPS]

REFERENCE_LAYERS = {
    "check_conv2d_forward": solutions.Conv2D,
    "check_maxpool2d_forward": solutions.MaxPool2D,
    "check_rnn_forward": solutions.RNNCell,
    "check_lstm_step": solutions.LSTMCell,
    "check_lstm_forward": solutions.LSTM,
}

SHAPE_MESSAGE = re.compile(r"expected output shape \((\d+, )+\d+\), got \((\d+, )*\d+\)\.")
VALUE_MESSAGE = re.compile(
    r"largest error \d\.\de[+-]\d\d at index \((\d+, )*\d+\): expected -?\d[\d.e+-]*, got -?\d[\d.e+-]*"
    r" \(\d+ of \d+ entries are wrong\)\."
)


def run_check(check: str, layer_class: type, group: str) -> None:
    getattr(checks, check)(layer_class, group)


def failure_message(check: str, layer_class: type, group: str) -> str:
    """Run a check that must fail and return its AssertionError message."""
    with pytest.raises(AssertionError) as failure:
        run_check(check, layer_class, group)
    return str(failure.value)


def failing_groups(broken: BrokenLayer) -> dict[str, str]:
    """Run every group of the broken layer's check and return the failure message of each failing group."""
    messages = {}
    for group in checks.GROUPS[broken.check]:
        try:
            run_check(broken.check, broken.layer_class, group)
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
    assert message.endswith("The traceback above shows the line that raised it.")
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
        run_check("check_conv2d_forward", BROKEN_LAYERS[0].layer_class, "padding")

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
