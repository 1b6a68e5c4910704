"""The released widgets (coursekit.widgets): what each explorer shows for given control values.

Each explorer runs with the reference layers of solutions/ and with the model-answer classes of the
source notebooks, and must show, in its .state and in its figure's artists, what those layers
compute. The release notebooks' stub classes (forward raises NotImplementedError) must give a
message instead of an exception.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

import solutions

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = REPO_ROOT / "course" / "source" / "cnn_rnn"
RELEASE_DIR = REPO_ROOT / "course" / "release" / "cnn_rnn"

# The notebooks import coursekit from the folder they sit in, so the tests do the same.
if str(SOURCE_DIR) not in sys.path:
    sys.path.insert(0, str(SOURCE_DIR))

from coursekit import data, training, widgets  # noqa: E402

CONV_GRADE_IDS = ["conv2d_answer", "maxpool2d_answer", "conv2d_backward_answer", "maxpool2d_backward_answer"]
RECURRENT_GRADE_IDS = [
    "rnn_answer", "lstm_cell_answer", "lstm_answer", "rnn_backward_answer", "lstm_cell_backward_answer",
    "lstm_backward_answer",
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CONV_STUB_MESSAGE = "Conv2D.forward is still a stub: implement it in the Conv2D exercise above"
POOL_STUB_MESSAGE = "MaxPool2D.forward is still a stub: implement it in the MaxPool2D exercise above"
LSTM_STUB_MESSAGE = "LSTMCell.forward_step is still a stub: implement it in the LSTMCell exercise above"
RNN_STUB_MESSAGE = "RNNCell.forward is still a stub: implement it in the RNNCell exercise above"


def notebook_classes(folder: Path, notebook: str, grade_ids: list[str]) -> dict:
    """Run the answer cells of a notebook and return the namespace with the classes they define.

    In course/source the cells hold the model answers. In course/release they hold the stubs that
    students start from, whose methods raise NotImplementedError.
    """
    cells = {
        cell.metadata.get("nbgrader", {}).get("grade_id"): cell.source
        for cell in nbformat.read(folder / f"{notebook}.ipynb", as_version=4).cells
    }
    namespace = {"np": np, "__name__": f"{notebook}_cells"}
    for grade_id in grade_ids:
        assert grade_id in cells, f"{folder.name}/{notebook}.ipynb has no cell with grade_id {grade_id}"
        exec(compile(cells[grade_id], f"{notebook}:{grade_id}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module", params=["reference", "notebook answers"])
def conv_classes(request) -> tuple[type, type]:
    """(Conv2D, MaxPool2D): the reference layers, then the source notebook's model answers."""
    if request.param == "reference":
        return solutions.Conv2D, solutions.MaxPool2D
    answers = notebook_classes(SOURCE_DIR, "conv_pool", CONV_GRADE_IDS)
    return answers["Conv2D"], answers["MaxPool2D"]


@pytest.fixture(scope="module", params=["reference", "notebook answers"])
def recurrent_classes(request) -> tuple[type, type]:
    """(LSTM, RNNCell): the reference layers, then the source notebook's model answers."""
    if request.param == "reference":
        return solutions.LSTM, solutions.RNNCell
    answers = notebook_classes(SOURCE_DIR, "rnn_lstm", RECURRENT_GRADE_IDS)
    return answers["LSTM"], answers["RNNCell"]


@pytest.fixture(scope="module")
def conv_stubs() -> dict:
    return notebook_classes(RELEASE_DIR, "conv_pool", CONV_GRADE_IDS)


@pytest.fixture(scope="module")
def recurrent_stubs() -> dict:
    return notebook_classes(RELEASE_DIR, "rnn_lstm", RECURRENT_GRADE_IDS)


def reference_conv(image: np.ndarray, kernel: np.ndarray, bias: float, stride: int, padding: int) -> np.ndarray:
    layer = solutions.Conv2D(1, 1, kernel.shape[0], stride=stride, padding=padding)
    layer.filters = kernel.reshape(1, 1, *kernel.shape).copy()
    layer.bias = np.array([bias])
    return layer.forward(image.reshape(1, 1, *image.shape))


def trained_kernel(index: int) -> tuple[np.ndarray, float]:
    """Read filter index of the trained CNN's first layer and its bias, by loading the model."""
    model = training.load_trained_cnn(solutions.Conv2D, solutions.MaxPool2D)
    return model.conv.filters[index, 0], float(model.conv.bias[index])


# ---------------------------------------------------------------------------------------------
# Shared behaviour of the explorers


def test_figure_to_png_is_deterministic():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=16)

    first = widgets.figure_to_png(explorer.figure)
    second = widgets.figure_to_png(explorer.figure)

    assert first.startswith(PNG_SIGNATURE)
    assert first == second


def test_conv_output_size_formula():
    assert widgets.conv_output_size(64, 3, 1, 1) == 64
    assert widgets.conv_output_size(64, 5, 2, 0) == 30
    assert widgets.conv_output_size(16, 2, 2) == 8


def test_photograph_is_grayscale_square():
    photograph = widgets.load_photograph(64)

    assert photograph.shape == (64, 64)
    assert photograph.min() >= 0.0
    assert photograph.max() <= 1.0
    assert photograph.std() > 0.1, "the photograph should not be a flat image"
    assert not photograph.flags.writeable


def test_photograph_rejects_invalid_size():
    with pytest.raises(ValueError, match="size must be an integer from 1 to 512"):
        widgets.load_photograph(0)


def test_kernel_names_list_presets_and_trained_filters():
    names = widgets.kernel_names()

    assert names[:6] == [
        "edges (Sobel x)", "edges (Sobel y)", "edges (Laplacian)", "blur (box 3x3)", "blur (Gaussian 5x5)", "sharpen",
    ]
    assert names[6:] == [f"trained filter {index}" for index in range(8)]


def test_blur_kernels_sum_to_one():
    for name in ("blur (box 3x3)", "blur (Gaussian 5x5)"):
        kernel, bias = widgets.kernel_by_name(name)
        assert kernel.sum() == pytest.approx(1.0), name
        assert bias == 0.0


@pytest.mark.parametrize("explorer_kind", ["feature maps", "receptive field", "gates"])
def test_explorer_controls_and_css_classes(explorer_kind):
    if explorer_kind == "feature maps":
        explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D)
        css_class = "cnnrnn-feature-maps"
    elif explorer_kind == "receptive field":
        explorer = widgets.ReceptiveFieldExplorer(solutions.Conv2D)
        css_class = "cnnrnn-receptive-field"
    else:
        explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)
        css_class = "cnnrnn-gates"

    assert css_class in explorer.image._dom_classes
    assert "cnnrnn-status" in explorer.status._dom_classes
    assert "cnnrnn-explorer" in explorer.widget._dom_classes
    assert explorer.image.format == "png"
    assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
    # A tooltip on an Image keeps ipywidgets 8.1.9 from displaying it in JupyterLab.
    assert not explorer.image.tooltip
    assert explorer.state["caption"]
    assert explorer.state["message"] == ""
    for name, control in explorer._controls.items():
        assert f"cnnrnn-control-{name.replace('_', '-')}" in control._dom_classes
        if hasattr(control, "continuous_update"):
            assert control.continuous_update is False, f"control {name} updates while it is dragged"


def test_set_rejects_unknown_control():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=16)

    with pytest.raises(TypeError, match="unknown controls strides"):
        explorer.set(strides=2)


def test_set_rejects_invalid_values():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=16)

    with pytest.raises(ValueError, match="stride must be an integer from 1 to 3, got 4"):
        explorer.set(stride=4)
    with pytest.raises(ValueError, match="kernel must be one of"):
        explorer.set(kernel="emboss")
    with pytest.raises(ValueError, match="padding must be an integer"):
        explorer.set(padding=1.5)


def test_change_rerenders_png_on_the_same_figure():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D)
    figure = explorer.figure
    axes = list(figure.axes)
    feature_map_artist = explorer.feature_map_panel.image
    png_before = bytes(explorer.image.value)

    state = explorer.set(stride=2)

    assert bytes(explorer.image.value) != png_before
    assert bytes(explorer.image.value) == widgets.figure_to_png(figure)
    assert explorer.figure is figure
    assert figure.axes == axes, "the update added or removed axes instead of updating the artists"
    assert explorer.feature_map_panel.image is feature_map_artist
    np.testing.assert_array_equal(feature_map_artist.get_array(), state["feature_maps"][0, 0])


def test_user_change_updates_state():
    explorer = widgets.ReceptiveFieldExplorer(solutions.Conv2D)
    explorer.set(row=15)
    png_before = bytes(explorer.image.value)

    # The browser changes a control's value trait, the same as this assignment.
    explorer._controls["stride"].value = 3

    assert explorer.state["stride"] == 3
    assert explorer.state["row"] == 5
    assert explorer.state["output_shape"] == (1, 1, 6, 6)
    assert bytes(explorer.image.value) != png_before


def test_user_choice_of_example_sets_sequence():
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)

    explorer._controls["example"].value = 4

    assert explorer._controls["sequence"].value == explorer.examples[4]
    assert explorer.state["sequence_shown"] == explorer.examples[4]


def test_state_is_a_new_dict_per_update():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=16)
    before = explorer.state

    after = explorer.set(padding=0)

    assert before["padding"] == 1
    assert after["padding"] == 0
    assert after is explorer.state


# ---------------------------------------------------------------------------------------------
# FeatureMapExplorer

SHAPE_CASES = [
    # (kernel, stride, padding, pool kernel, pool stride)
    ("edges (Sobel x)", 1, 1, 2, 2),
    ("edges (Sobel y)", 2, 0, 2, 2),
    ("blur (Gaussian 5x5)", 3, 2, 3, 2),
    ("blur (Gaussian 5x5)", 1, 0, 3, 1),
    ("sharpen", 3, 3, 2, 3),
    ("trained filter 5", 2, 1, 3, 3),
]


@pytest.mark.parametrize("kernel_name, stride, padding, pool_kernel, pool_stride", SHAPE_CASES)
def test_feature_map_shapes_follow_formula(conv_classes, kernel_name, stride, padding, pool_kernel, pool_stride):
    Conv2D, MaxPool2D = conv_classes
    explorer = widgets.FeatureMapExplorer(Conv2D, MaxPool2D)
    k = 5 if "5x5" in kernel_name else 3
    H_out = (64 + 2 * padding - k) // stride + 1
    pooled_out = (H_out - pool_kernel) // pool_stride + 1

    state = explorer.set(kernel=kernel_name, stride=stride, padding=padding, pool_kernel=pool_kernel,
                         pool_stride=pool_stride)

    assert state["message"] == ""
    assert state["output_shape"] == (1, 1, H_out, H_out)
    assert state["feature_maps"].shape == (1, 1, H_out, H_out)
    assert state["pooled_shape"] == (1, 1, pooled_out, pooled_out)
    assert state["pooled"].shape == (1, 1, pooled_out, pooled_out)
    assert f"({64} + 2*{padding} - {k}) // {stride} + 1 = {H_out}" in explorer.status.value
    assert f"({H_out} - {pool_kernel}) // {pool_stride} + 1 = {pooled_out}" in explorer.status.value
    assert state["formula"] == "\n".join(state["formula_lines"])


@pytest.mark.parametrize("kernel_name, stride, padding, pool_kernel, pool_stride", SHAPE_CASES)
def test_feature_map_equals_conv_forward(conv_classes, kernel_name, stride, padding, pool_kernel, pool_stride):
    Conv2D, MaxPool2D = conv_classes
    explorer = widgets.FeatureMapExplorer(Conv2D, MaxPool2D)

    state = explorer.set(kernel=kernel_name, stride=stride, padding=padding, pool_kernel=pool_kernel,
                         pool_stride=pool_stride)
    expected = reference_conv(widgets.load_photograph(64), state["kernel_values"], state["bias"], stride, padding)

    np.testing.assert_allclose(state["feature_maps"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(explorer.feature_map_panel.image.get_array(), state["feature_maps"][0, 0])
    np.testing.assert_array_equal(state["image"], widgets.load_photograph(64))


@pytest.mark.parametrize("kernel_name, stride, padding, pool_kernel, pool_stride", SHAPE_CASES)
def test_pooled_map_equals_maxpool_forward(conv_classes, kernel_name, stride, padding, pool_kernel, pool_stride):
    Conv2D, MaxPool2D = conv_classes
    explorer = widgets.FeatureMapExplorer(Conv2D, MaxPool2D)

    state = explorer.set(kernel=kernel_name, stride=stride, padding=padding, pool_kernel=pool_kernel,
                         pool_stride=pool_stride)
    expected = solutions.MaxPool2D(pool_kernel, pool_stride).forward(state["feature_maps"])

    np.testing.assert_allclose(state["pooled"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(explorer.pooled_panel.image.get_array(), state["pooled"][0, 0])


def test_preset_kernel_values_are_shown():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=16)

    state = explorer.set(kernel="edges (Sobel x)")

    np.testing.assert_array_equal(state["kernel_values"], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert state["bias"] == 0.0
    np.testing.assert_array_equal(explorer.kernel_panel.image.get_array(), state["kernel_values"])
    shown_numbers = [text.get_text() for row in explorer.kernel_panel.numbers for text in row if text.get_visible()]
    assert shown_numbers == ["-1", "0", "1", "-2", "0", "2", "-1", "0", "1"]


def test_trained_filter_is_the_cnn_first_layer():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=16)
    kernel, bias = trained_kernel(3)

    state = explorer.set(kernel="trained filter 3")

    np.testing.assert_array_equal(state["kernel_values"], kernel)
    assert state["bias"] == bias
    assert bias != 0.0, "the trained filter should carry its bias"


def test_digit_input_shows_test_digit(conv_classes):
    Conv2D, MaxPool2D = conv_classes
    explorer = widgets.FeatureMapExplorer(Conv2D, MaxPool2D)
    _, _, digits, labels = data.load_digits(0, widgets.N_DIGITS, seed=widgets.DIGIT_SEED)

    state = explorer.set(input="digit", digit_index=4, kernel="edges (Laplacian)", stride=1, padding=0)

    np.testing.assert_array_equal(state["image"], digits[4, 0])
    assert state["output_shape"] == (1, 1, 14, 14)
    assert f"digit {labels[4]}" in state["caption"]
    assert explorer._controls["digit_index"].disabled is False
    np.testing.assert_allclose(state["feature_maps"], reference_conv(digits[4, 0], state["kernel_values"], 0.0, 1, 0),
                               rtol=1e-12, atol=1e-12)


def test_kernel_larger_than_padded_input():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=4)

    state = explorer.set(kernel="blur (Gaussian 5x5)", padding=0)

    assert state["message"].startswith("kernel 5 with padding 0 does not fit a 4 x 4 input: ")
    assert state["feature_maps"] is None
    assert state["pooled"] is None
    assert state["output_shape"] is None
    assert "does not fit a 4 x 4 input" in explorer.status.value
    assert "Traceback" not in explorer.status.value
    assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)


def test_padding_makes_large_kernel_fit_again():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=4)
    explorer.set(kernel="blur (Gaussian 5x5)", padding=0)

    state = explorer.set(padding=1, pool_kernel=2, pool_stride=1)

    assert state["message"] == ""
    assert state["output_shape"] == (1, 1, 2, 2)
    assert state["pooled_shape"] == (1, 1, 1, 1)


def test_pool_larger_than_feature_map():
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, solutions.MaxPool2D, image_size=4)

    state = explorer.set(kernel="edges (Sobel x)", stride=1, padding=0, pool_kernel=3)

    assert state["message"].startswith("pool kernel 3 does not fit the 2 x 2 feature map")
    assert state["feature_maps"].shape == (1, 1, 2, 2)
    assert state["pooled"] is None
    assert "pool kernel 3 does not fit" in explorer.status.value


def test_stub_conv_gives_stub_message(conv_stubs):
    explorer = widgets.FeatureMapExplorer(conv_stubs["Conv2D"], conv_stubs["MaxPool2D"])

    assert explorer.state["message"] == CONV_STUB_MESSAGE
    assert explorer.state["feature_maps"] is None
    assert explorer.state["pooled"] is None
    assert CONV_STUB_MESSAGE in explorer.status.value
    assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
    # The formula needs no layer, so it still shows.
    assert explorer.state["output_shape"] == (1, 1, 64, 64)


def test_stub_pool_gives_stub_message(conv_stubs):
    explorer = widgets.FeatureMapExplorer(solutions.Conv2D, conv_stubs["MaxPool2D"])

    assert explorer.state["message"] == POOL_STUB_MESSAGE
    assert explorer.state["feature_maps"].shape == (1, 1, 64, 64)
    assert explorer.state["pooled"] is None


def test_failing_conv_forward_gives_message():
    class IndexErrorConv2D(solutions.Conv2D):
        def forward(self, X):
            raise IndexError("index 66 is out of bounds for axis 2 with size 66")

    explorer = widgets.FeatureMapExplorer(IndexErrorConv2D, solutions.MaxPool2D)

    assert explorer.state["message"] == (
        "IndexErrorConv2D.forward raised IndexError: index 66 is out of bounds for axis 2 with size 66. "
        "Fix it in the IndexErrorConv2D exercise above."
    )
    assert explorer.state["feature_maps"] is None


def test_conv_forward_of_wrong_shape_gives_message():
    class NoPaddingConv2D(solutions.Conv2D):
        def forward(self, X):
            self.padding = 0
            return super().forward(X)

    explorer = widgets.FeatureMapExplorer(NoPaddingConv2D, solutions.MaxPool2D)

    state = explorer.set(padding=2)

    assert "returned an array of shape (1, 1, 62, 62), but the shape should be (1, 1, 66, 66)." in state["message"]
    assert state["feature_maps"] is None


def test_conv_forward_returning_none_gives_message():
    class NoReturnConv2D(solutions.Conv2D):
        def forward(self, X):
            super().forward(X)

    explorer = widgets.FeatureMapExplorer(NoReturnConv2D, solutions.MaxPool2D, image_size=8)

    assert explorer.state["message"].startswith("NoReturnConv2D.forward returned NoneType, not a numpy array.")


def test_forward_does_not_change_cached_photograph():
    class InPlaceConv2D(solutions.Conv2D):
        def forward(self, X):
            X *= 0.0
            return super().forward(X)

    widgets.FeatureMapExplorer(InPlaceConv2D, solutions.MaxPool2D, image_size=8)

    assert widgets.load_photograph(8).max() > 0.0


# ---------------------------------------------------------------------------------------------
# ReceptiveFieldExplorer

RECEPTIVE_FIELD_CASES = [
    # (kernel, stride, padding, row, column)
    ("edges (Sobel x)", 1, 1, 0, 0),
    ("edges (Sobel y)", 2, 1, 3, 5),
    ("blur (Gaussian 5x5)", 3, 2, 4, 1),
    ("sharpen", 2, 0, 6, 6),
    ("trained filter 2", 1, 3, 17, 9),
]


@pytest.mark.parametrize("kernel_name, stride, padding, row, column", RECEPTIVE_FIELD_CASES)
def test_receptive_field_text_equals_output_value(conv_classes, kernel_name, stride, padding, row, column):
    Conv2D, _ = conv_classes
    explorer = widgets.ReceptiveFieldExplorer(Conv2D)
    k = 5 if "5x5" in kernel_name else 3

    state = explorer.set(kernel=kernel_name, stride=stride, padding=padding, row=row, column=column)
    expected_maps = reference_conv(state["image"], state["kernel_values"], state["bias"], stride, padding)
    expected_value = float(expected_maps[0, 0, row, column])

    assert state["message"] == ""
    np.testing.assert_allclose(state["feature_maps"], expected_maps, rtol=1e-12, atol=1e-12)
    assert state["value"] == pytest.approx(expected_value, abs=1e-12)
    assert state["dot_product"] == pytest.approx(expected_value, abs=1e-12)
    assert f"sum(patch * kernel) + bias = {expected_value:.3f}" in state["text"]
    assert explorer.dot_product_text.get_text() == state["text"]
    assert state["patch_top_left"] == (row * stride, column * stride)
    assert state["rectangle"] == (column * stride - 0.5, row * stride - 0.5, k, k)
    np.testing.assert_array_equal(state["padded_input"], np.pad(state["image"], padding))
    np.testing.assert_array_equal(
        state["patch"], state["padded_input"][row * stride : row * stride + k, column * stride : column * stride + k]
    )


def test_receptive_field_lists_small_kernels():
    explorer = widgets.ReceptiveFieldExplorer(solutions.Conv2D)

    small = explorer.set(kernel="edges (Sobel x)", row=2, column=2)["text"]
    large = explorer.set(kernel="blur (Gaussian 5x5)")["text"]

    assert "kernel" in small.splitlines()[3]
    assert " -2.00   0.00   2.00" in small
    assert "bias = 0.000" in small
    # A 5 x 5 kernel gives the position, the patch's rows and columns and the sum, without the 2 x 25 numbers.
    assert len(large.splitlines()) == 5
    assert large.splitlines()[3].startswith("sum(patch * kernel) + bias = ")


def test_receptive_field_sliders_follow_output_shape():
    explorer = widgets.ReceptiveFieldExplorer(solutions.Conv2D)
    explorer.set(stride=1, padding=1, row=15, column=15)

    state = explorer.set(stride=3)

    # (16 + 2 - 3) // 3 + 1 = 6 positions, so the sliders end at 5 and the old position moves to 5.
    assert explorer._controls["row"].max == 5
    assert explorer._controls["column"].max == 5
    assert (state["row"], state["column"]) == (5, 5)
    assert state["patch_top_left"] == (15, 15)
    with pytest.raises(ValueError, match="row must be an integer from 0 to 5, got 6"):
        explorer.set(row=6)


def test_receptive_field_position_checked_after_stride():
    explorer = widgets.ReceptiveFieldExplorer(solutions.Conv2D)
    explorer.set(stride=3)

    # row 12 is out of range at stride 3, but set applies stride first.
    state = explorer.set(row=12, stride=1)

    assert state["row"] == 12
    assert state["patch_top_left"] == (12, 0)


def test_receptive_field_reports_missing_bias():
    class NoBiasConv2D(solutions.Conv2D):
        def forward(self, X):
            return super().forward(X) - self.bias[:, np.newaxis, np.newaxis]

    explorer = widgets.ReceptiveFieldExplorer(NoBiasConv2D)

    state = explorer.set(kernel="trained filter 0", row=4, column=4)

    assert state["message"].startswith("NoBiasConv2D.forward gives ")
    assert "Check the window position and the bias." in state["message"]
    assert state["value"] == pytest.approx(state["dot_product"] - state["bias"])


def test_receptive_field_stub_shows_dot_product(conv_stubs):
    explorer = widgets.ReceptiveFieldExplorer(conv_stubs["Conv2D"])

    state = explorer.set(row=3, column=4)

    assert state["message"] == CONV_STUB_MESSAGE
    assert CONV_STUB_MESSAGE in explorer.status.value
    assert state["value"] is None
    assert state["patch_top_left"] == (3, 4)
    assert f"sum(patch * kernel) + bias = {state['dot_product']:.3f}" in state["text"]


def test_receptive_field_kernel_too_large():
    explorer = widgets.ReceptiveFieldExplorer(solutions.Conv2D, image_size=4)

    state = explorer.set(kernel="blur (Gaussian 5x5)", padding=0)

    assert state["message"].startswith("kernel 5 with padding 0 does not fit a 4 x 4 input: ")
    assert state["rectangle"] is None
    assert state["dot_product"] is None
    assert explorer.patch_outline.get_visible() is False


# ---------------------------------------------------------------------------------------------
# GateExplorer


def reference_lstm_run(sequence: str) -> dict[str, np.ndarray]:
    """Run the trained weights through the reference LSTMCell and recompute its gates from W and b."""
    model = training.load_trained_lstm(solutions.LSTM)
    cell = model.cell
    H = cell.hidden_size
    inputs = np.zeros((len(sequence), 1, 8))
    inputs[np.arange(len(sequence)), 0, ["ABCDEFGH".index(symbol) for symbol in sequence]] = 1.0

    names = ("forget_gate", "input_gate", "output_gate", "candidate", "cell_state", "hidden_state")
    traces = {name: np.zeros((len(sequence), H)) for name in names}
    h, c = np.zeros((1, H)), np.zeros((1, H))
    for t in range(len(sequence)):
        z = np.concatenate([h, inputs[t]], axis=1) @ cell.W + cell.b
        gates = 1.0 / (1.0 + np.exp(-z[:, : 3 * H]))
        values = (gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :], np.tanh(z[:, 3 * H :]))
        h, c = cell.forward_step(inputs[t], h, c)
        for name, value in zip(names, values + (c, h)):
            traces[name][t] = value[0]
    traces["inputs"] = inputs
    traces["lstm_forward"] = model.lstm.forward(inputs)[:, 0]
    return traces


def test_gates_equal_recomputed_from_weights(recurrent_classes):
    LSTM, RNNCell = recurrent_classes
    explorer = widgets.GateExplorer(LSTM, RNNCell)
    sequence = explorer.state["sequence_shown"]

    expected = reference_lstm_run(sequence)

    assert explorer.state["message"] == ""
    for name in ("forget_gate", "input_gate", "output_gate", "candidate", "cell_state"):
        np.testing.assert_allclose(explorer.state[name], expected[name], rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(explorer.heatmaps[name].get_array(), explorer.state[name].T, err_msg=name)


def test_hidden_state_equals_forward_step(recurrent_classes):
    LSTM, RNNCell = recurrent_classes
    explorer = widgets.GateExplorer(LSTM, RNNCell)

    state = explorer.set(sequence="HGFEDCBAABCD")
    expected = reference_lstm_run("HGFEDCBAABCD")

    np.testing.assert_allclose(state["hidden_state"], expected["hidden_state"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state["hidden_state"], expected["lstm_forward"], rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(explorer.heatmaps["hidden_state"].get_array(), state["hidden_state"].T)


def test_rnn_hidden_state_equals_rnn_forward(recurrent_classes):
    LSTM, RNNCell = recurrent_classes
    explorer = widgets.GateExplorer(LSTM, RNNCell)
    model = training.load_trained_rnn(solutions.RNNCell)

    state = explorer.set(example=3)
    outputs, hidden_states = model.rnn.forward(state["inputs"])

    np.testing.assert_allclose(state["rnn_hidden_state"], hidden_states[:, 0], rtol=1e-10, atol=1e-12)
    assert state["rnn_prediction"] == "ABCDEFGH"[int(outputs[-1, 0].argmax())]
    np.testing.assert_array_equal(explorer.heatmaps["rnn_hidden_state"].get_array(), state["rnn_hidden_state"].T)


def test_lstm_predicts_label_of_every_example(recurrent_classes):
    LSTM, RNNCell = recurrent_classes
    explorer = widgets.GateExplorer(LSTM, RNNCell)
    info = explorer.lstm_model.info
    inputs, labels = data.make_recall_task(info["n_test"], info["T"], info["n_symbols"], info["test_seed"])
    assert info["test_accuracy"] == 1.0, "the committed LSTM no longer solves the recall task"

    for index in range(widgets.N_EXAMPLES):
        state = explorer.set(example=index)

        np.testing.assert_array_equal(state["inputs"], inputs[:, index : index + 1])
        assert state["first_symbol"] == "ABCDEFGH"[labels[index]]
        assert state["lstm_prediction"] == state["first_symbol"], f"example {index}"
        assert f"LSTM predicts <b>{state['first_symbol']}</b>" in explorer.predictions.value


def test_example_sets_the_sequence_text():
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)

    state = explorer.set(example=2)

    assert explorer._controls["sequence"].value == explorer.examples[2]
    assert state["sequence"] == state["sequence_shown"] == explorer.examples[2]
    assert len(state["sequence_shown"]) == explorer.lstm_model.info["T"]


def test_time_cursor_moves_every_heatmap_line():
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)
    png_before = bytes(explorer.image.value)

    state = explorer.set(time=7)

    assert set(state["cursor_positions"]) == {
        "forget_gate", "input_gate", "output_gate", "candidate", "cell_state", "hidden_state", "rnn_hidden_state",
    }
    assert all(position == 7 for position in state["cursor_positions"].values()), state["cursor_positions"]
    for name, line in explorer.cursor_lines.items():
        assert list(line.get_xdata()) == [7, 7], name
        assert line.axes is explorer.heatmaps[name].axes, name
    assert bytes(explorer.image.value) != png_before
    assert state["readout"].startswith(f"t = 7 (input {state['sequence_shown'][6]}), unit 0: f = ")


def test_gate_figure_is_built_once():
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)
    figure = explorer.figure
    axes = list(figure.axes)
    artists = dict(explorer.heatmaps)

    explorer.set(sequence="ABC", time=2, unit=5)
    explorer.set(example=1)

    assert explorer.figure is figure
    assert figure.axes == axes
    assert all(explorer.heatmaps[name] is artist for name, artist in artists.items())


def test_sequence_length_sets_time_range():
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)
    explorer.set(time=20)

    state = explorer.set(sequence="abc de")

    assert state["sequence_shown"] == "ABCDE"
    assert explorer._controls["time"].max == 5
    assert state["time"] == 5
    assert state["hidden_state"].shape == (5, 32)
    assert explorer.heatmaps["forget_gate"].get_array().shape == (32, 5)


def test_time_is_checked_against_new_sequence_length():
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)

    state = explorer.set(sequence="A" * 30, time=25)

    assert state["time"] == 25


@pytest.mark.parametrize("text, message", [
    ("ABZ", "Invalid character 'Z' at position 3: type only the letters A to H. The plots still show the last valid sequence."),
    ("AB1C", "Invalid character '1' at position 3: type only the letters A to H. The plots still show the last valid sequence."),
    ("", "The sequence is empty. Type at least one of the letters A to H."),
    ("A" * 61, "The sequence has 61 symbols. Type at most 60."),
])
def test_invalid_sequence_gives_message(text, message):
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)
    shown_before = explorer.state["sequence_shown"]

    state = explorer.set(sequence=text)

    assert state["message"] == message
    assert message in html.unescape(explorer.status.value)
    assert state["sequence_shown"] == shown_before


def test_coloured_html_has_one_span_per_symbol():
    explorer = widgets.GateExplorer(solutions.LSTM, solutions.RNNCell)

    state = explorer.set(sequence="CABBAGE", unit=4, time=2)
    spans = re.findall(r'<span class="cnnrnn-symbol"[^>]*>([A-H])</span>', state["symbols_html"])

    assert state["symbols_html"] == explorer.sequence_html.value
    assert state["symbols_html"].count("<span") == 7
    assert "".join(spans) == "CABBAGE"
    assert f'title="t = 3, unit 4, h = {state["hidden_state"][2, 4]:.2f}"' in state["symbols_html"]
    assert state["symbols_html"].count("outline: 2px solid black") == 1


def test_lstm_cell_cache_is_emptied_after_run():
    answers = notebook_classes(SOURCE_DIR, "rnn_lstm", RECURRENT_GRADE_IDS)
    explorer = widgets.GateExplorer(answers["LSTM"], answers["RNNCell"])

    explorer.set(example=1)

    assert explorer.lstm_model.cell.cache == []


def test_stub_recurrent_layers_give_stub_messages(recurrent_stubs):
    explorer = widgets.GateExplorer(recurrent_stubs["LSTM"], recurrent_stubs["RNNCell"])

    state = explorer.state

    assert state["message"] == f"{LSTM_STUB_MESSAGE}\n{RNN_STUB_MESSAGE}"
    assert LSTM_STUB_MESSAGE in explorer.status.value
    assert RNN_STUB_MESSAGE in explorer.status.value
    assert state["hidden_state"] is None
    assert state["lstm_prediction"] is None
    assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
    assert "LSTM: no prediction" in explorer.predictions.value
    assert state["symbols_html"].count("<span") == len(state["sequence_shown"])


def test_stub_rnn_leaves_lstm_working(recurrent_stubs):
    explorer = widgets.GateExplorer(solutions.LSTM, recurrent_stubs["RNNCell"])

    state = explorer.state

    assert state["message"] == RNN_STUB_MESSAGE
    assert state["lstm_prediction"] == state["first_symbol"]
    assert state["rnn_hidden_state"] is None


def test_swapped_gate_blocks_are_reported():
    class SwappedGatesCell(solutions.LSTMCell):
        def forward_step(self, x_t, h_prev, c_prev):
            H = self.hidden_size
            W, b = self.W.copy(), self.b.copy()
            # Read the input gate's block as the forget gate's and the other way round.
            self.W[:, :H], self.W[:, H : 2 * H] = W[:, H : 2 * H], W[:, :H]
            self.b[:H], self.b[H : 2 * H] = b[H : 2 * H], b[:H]
            try:
                return super().forward_step(x_t, h_prev, c_prev)
            finally:
                self.W, self.b = W, b

    class SwappedGatesLSTM(solutions.LSTM):
        def __init__(self, input_size, hidden_size):
            self.cell = SwappedGatesCell(input_size, hidden_size)

    explorer = widgets.GateExplorer(SwappedGatesLSTM, solutions.RNNCell)

    message = explorer.state["message"]

    assert message.startswith("SwappedGatesCell.forward_step does not match the gates at time step 1: ")
    assert "Check the block order f, i, o, g" in message


def test_forward_step_of_wrong_shape_gives_message():
    class TransposedCell(solutions.LSTMCell):
        def forward_step(self, x_t, h_prev, c_prev):
            h_t, c_t = super().forward_step(x_t, h_prev, c_prev)
            return h_t.T, c_t

    class TransposedLSTM(solutions.LSTM):
        def __init__(self, input_size, hidden_size):
            self.cell = TransposedCell(input_size, hidden_size)

    explorer = widgets.GateExplorer(TransposedLSTM, solutions.RNNCell)

    assert explorer.state["message"].startswith(
        "TransposedCell.forward_step (h_t) returned an array of shape (32, 1), but the shape should be (1, 32)."
    )
