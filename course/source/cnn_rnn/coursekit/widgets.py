"""Interactive explorers of what your layers compute, built with ipywidgets and matplotlib.

- FeatureMapExplorer(Conv2D, MaxPool2D): an input image, a kernel, the feature map that your
  Conv2D.forward computes from them, and the map that your MaxPool2D.forward pools from it.
- ReceptiveFieldExplorer(Conv2D): the receptive field of one output position in the padded input,
  and the dot product that gives the value at that position.
- GateExplorer(LSTM, RNNCell): the gates, cell state and hidden state of the trained LSTM, run through
  your LSTMCell.forward_step over a sequence of the recall task, beside the hidden state of the
  trained vanilla RNN.

Show an explorer with display(explorer.widget). Every explorer draws one matplotlib Figure (Agg
backend, no pyplot), updates its artists when a control changes, and shows the figure as a PNG
image. explorer.set(stride=2) changes controls from code, explorer.state is a dict of the arrays and
text currently shown, and explorer.status is the label with the output-size formula or a message.
A method of yours that still raises NotImplementedError, or fails, gives a message in that label.
"""

from __future__ import annotations

import contextlib
import html
import io
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import ipywidgets as widgets
import matplotlib.cbook
import matplotlib.image
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from . import data, training

# Resolution of every explorer's figure. An 11-inch-wide figure is 880 pixels wide.
DPI = 80

PHOTOGRAPH_FILE = "grace_hopper.jpg"  # a sample image that matplotlib ships in mpl-data/sample_data
FEATURE_MAP_IMAGE_SIZE = 64
# The receptive-field view draws every pixel of the padded input, so it uses a smaller image.
RECEPTIVE_FIELD_IMAGE_SIZE = 16
# ITU-R BT.601 luma weights of R, G and B, the usual conversion of a colour photograph to grayscale.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

# Test digits of coursekit.data.load_digits. With 10 images each digit 0-9 appears once.
N_DIGITS = 10
DIGIT_SEED = 0

INPUTS = ("photograph", "digit")
STRIDE_RANGE = (1, 3)
PADDING_RANGE = (0, 3)
POOL_KERNEL_RANGE = (2, 3)
POOL_STRIDE_RANGE = (1, 3)
# Kernels up to this size list their numbers, and the receptive field's patch, as text.
MAX_LISTED_KERNEL_SIZE = 3

# Kernels as Conv2D applies them: cross-correlation, the kernel is not flipped. So Sobel x is
# positive where the brightness increases to the right, and Sobel y where it increases downwards.
_BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
KERNEL_PRESETS: dict[str, np.ndarray] = {
    "edges (Sobel x)": np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]),
    "edges (Sobel y)": np.array([[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]),
    "edges (Laplacian)": np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]),
    "blur (box 3x3)": np.full((3, 3), 1.0 / 9.0),
    # The binomial weights 1 4 6 4 1 approximate a Gaussian with standard deviation 1.
    "blur (Gaussian 5x5)": np.outer(_BINOMIAL_5, _BINOMIAL_5) / _BINOMIAL_5.sum() ** 2,
    "sharpen": np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
}
# The trained CNN's filters are 3 x 3, so no kernel is larger than the largest preset.
MAX_KERNEL_SIZE = max(kernel.shape[0] for kernel in KERNEL_PRESETS.values())
TRAINED_FILTER_PREFIX = "trained filter "

SYMBOL_LETTERS = "ABCDEFGH"
N_EXAMPLES = 6
# Longer sequences would squeeze the heatmap columns below a few pixels at the default figure width.
MAX_SEQUENCE_LENGTH = 60
# forward_step's h_t and c_t may differ from the values recomputed from the gates by rounding only.
STEP_TOLERANCE = 1e-6

DIVERGING_COLORMAP = "RdBu_r"  # red positive, blue negative, white 0
GATE_COLORMAP = "viridis"
UNIT_MARKER_COLOR = "#ff00ff"
MESSAGE_COLOR = "#b00020"
HIGHLIGHT_COLOR = "tab:orange"
BORDER_COLOR = "tab:cyan"


# ---------------------------------------------------------------------------------------------
# Rendering and data


def figure_to_png(figure: Figure) -> bytes:
    """Render a matplotlib Figure with the Agg backend and return the bytes of a PNG file.

    The file carries no "Software" entry with the matplotlib version, so the same figure gives the
    same bytes on every call.
    """
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int = 0) -> int:
    """Compute the output length along one spatial axis: (size + 2 * padding - kernel_size) // stride + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def _block_mean(image: np.ndarray, size: int) -> np.ndarray:
    """Shrink a square (S, S) image to (size, size), each output pixel the mean of a block of about S / size pixels."""
    # With size <= S the edges are strictly increasing, which np.add.reduceat needs for its sums.
    edges = np.linspace(0, image.shape[0], size + 1).round().astype(np.int64)
    sums = np.add.reduceat(np.add.reduceat(image, edges[:-1], axis=0), edges[:-1], axis=1)
    counts = np.outer(np.diff(edges), np.diff(edges))
    return sums / counts


@lru_cache(maxsize=4)
def load_photograph(size: int = FEATURE_MAP_IMAGE_SIZE) -> np.ndarray:
    """Load matplotlib's sample photograph of Grace Hopper as a (size, size) grayscale image in [0, 1].

    The central square of the photograph is averaged down to size x size pixels. The result is
    kept in memory for the next call and is read-only.
    """
    with matplotlib.cbook.get_sample_data(PHOTOGRAPH_FILE) as file:
        rgb = matplotlib.image.imread(file, format="jpg")
    gray = rgb[..., :3] @ LUMA_WEIGHTS / 255.0

    side = min(gray.shape)
    if not 1 <= size <= side:
        raise ValueError(f"load_photograph: size must be an integer from 1 to {side}, got {size!r}")
    top = (gray.shape[0] - side) // 2
    left = (gray.shape[1] - side) // 2

    photograph = _block_mean(gray[top : top + side, left : left + side], size)
    photograph.flags.writeable = False
    return photograph


@lru_cache(maxsize=1)
def load_test_digits() -> tuple[np.ndarray, np.ndarray]:
    """Generate the N_DIGITS test digits that the explorers offer: images (N_DIGITS, 16, 16) and labels.

    The first call renders the digit templates, which takes about a second. Later calls reuse the result.
    """
    _, _, images, labels = data.load_digits(0, N_DIGITS, seed=DIGIT_SEED)
    images = images[:, 0]
    images.flags.writeable = False
    return images, labels


@lru_cache(maxsize=1)
def load_trained_filters() -> tuple[np.ndarray, np.ndarray]:
    """Read the first-layer filters (F, k, k) and biases (F,) of the trained digit CNN from its weights file."""
    path = training.CNN_WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}. Keep the weights/ folder next to coursekit/.")
    # The names are those that training.save_model gives the SmallCNN's parameters.
    with np.load(path, allow_pickle=False) as archive:
        filters = archive["conv.filters"][:, 0]
        biases = archive["conv.bias"]
    return filters, biases


def kernel_names() -> list[str]:
    """List the kernels that the convolution explorers offer: the presets, then the trained filters."""
    filters, _ = load_trained_filters()
    return list(KERNEL_PRESETS) + [f"{TRAINED_FILTER_PREFIX}{index}" for index in range(len(filters))]


def kernel_by_name(name: str) -> tuple[np.ndarray, float]:
    """Return the kernel (k, k) and bias of a name from kernel_names(). Only trained filters have a bias."""
    if name in KERNEL_PRESETS:
        return KERNEL_PRESETS[name].copy(), 0.0
    filters, biases = load_trained_filters()
    index = int(name[len(TRAINED_FILTER_PREFIX):])
    return filters[index].copy(), float(biases[index])


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Compute the logistic function 1 / (1 + exp(-z)), written with tanh so that no exp can overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def lstm_gates(
    W: np.ndarray, b: np.ndarray, h_prev: np.ndarray, x_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compute the forget, input and output gates and the candidate (f, i, o, g), each (N, H).

    W (H + D, 4H) multiplies [h_prev, x_t], hidden state first, and its column blocks are f, i, o, g.
    """
    H = h_prev.shape[1]
    z = np.concatenate([h_prev, x_t], axis=1) @ W + b

    f = sigmoid(z[:, 0:H])
    i = sigmoid(z[:, H : 2 * H])
    o = sigmoid(z[:, 2 * H : 3 * H])
    g = np.tanh(z[:, 3 * H : 4 * H])
    return f, i, o, g


# ---------------------------------------------------------------------------------------------
# Calling your layers


def _call_student_method(method: Callable[..., Any], name: str, exercise: str, *args: Any) -> tuple[Any, str]:
    """Call one of your layer methods and return (result, message), turning any exception into the message."""
    try:
        return method(*args), ""
    except NotImplementedError:
        return None, f"{name} is still a stub: implement it in the {exercise} exercise above"
    except Exception as error:  # A bug of any kind becomes a message in the status label, never a traceback.
        return None, f"{name} raised {type(error).__name__}: {error}. Fix it in the {exercise} exercise above."


def _check_array(result: Any, name: str, exercise: str, expected_shape: tuple[int, ...]) -> str:
    """Return a message if a layer's result is not a numpy array of the expected shape, else ""."""
    if not isinstance(result, np.ndarray):
        return f"{name} returned {type(result).__name__}, not a numpy array. Fix it in the {exercise} exercise above."
    if result.shape != expected_shape:
        return (
            f"{name} returned an array of shape {result.shape}, but the shape should be {expected_shape}. "
            f"Fix it in the {exercise} exercise above."
        )
    return ""


def _run_forward(
    layer_class: type, arguments: tuple, X: np.ndarray, expected_shape: tuple[int, ...],
    parameters: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray | None, str]:
    """Build one of your layers, set its parameters, run its forward on a copy of X and check the output's shape.

    Returns (output, "") or, if the constructor or forward raises or the output's shape is wrong,
    (None, message).
    """
    exercise = layer_class.__name__
    layer, message = _call_student_method(layer_class, f"{exercise}()", exercise, *arguments)
    if message:
        return None, message
    for name, value in (parameters or {}).items():
        setattr(layer, name, value)

    # A copy, so a forward that changes its input in place cannot change a cached image.
    output, message = _call_student_method(layer.forward, f"{exercise}.forward", exercise, X.copy())
    message = message or _check_array(output, f"{exercise}.forward", exercise, expected_shape)
    return (None, message) if message else (output, "")


# ---------------------------------------------------------------------------------------------
# Figure helpers


def _show_array(artist: AxesImage, array: np.ndarray) -> None:
    """Replace the array of an AxesImage, one cell per entry, and fit the extent and axes limits to its shape."""
    rows, columns = array.shape
    artist.set_data(array)
    artist.set_extent((-0.5, columns - 0.5, rows - 0.5, -0.5))
    artist.axes.set_xlim(-0.5, columns - 0.5)
    artist.axes.set_ylim(rows - 0.5, -0.5)


def _hide_ticks(axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def _symmetric_limit(*arrays: np.ndarray | None) -> float:
    """Return the maximum finite |value| in the arrays, or 1 if there is none above 0, for a colour scale around 0."""
    magnitudes = [np.abs(array[np.isfinite(array)]) for array in arrays if array is not None]
    limit = max((float(magnitude.max()) for magnitude in magnitudes if magnitude.size), default=0.0)
    return limit if limit > 0 else 1.0


def _empty_map() -> np.ndarray:
    # NaN entries are drawn transparent, so a missing map shows as an empty panel.
    return np.full((1, 1), np.nan)


class _KernelPanel:
    """An axes that shows a kernel (k, k) as an image, with each number written in its cell."""

    def __init__(self, axes, max_size: int) -> None:
        self.axes = axes
        self.image = axes.imshow(np.zeros((1, 1)), cmap=DIVERGING_COLORMAP, vmin=-1, vmax=1)
        self.numbers = [
            [axes.text(column, row, "", ha="center", va="center", fontsize=7) for column in range(max_size)]
            for row in range(max_size)
        ]
        _hide_ticks(axes)

    def show(self, kernel: np.ndarray, title: str) -> None:
        """Draw the kernel, with a colour scale symmetric around 0, and write its numbers."""
        size = kernel.shape[0]
        limit = _symmetric_limit(kernel)
        _show_array(self.image, kernel)
        self.image.set_clim(-limit, limit)

        for row, texts in enumerate(self.numbers):
            for column, text in enumerate(texts):
                visible = row < size and column < size
                text.set_visible(visible)
                if visible:
                    value = kernel[row, column]
                    text.set_text(f"{value:.2g}")
                    text.set_color("white" if abs(value) > 0.6 * limit else "black")
        self.axes.set_title(title, fontsize=9)


class _MapPanel:
    """An axes that shows a feature map, or a note in its place when there is none to show."""

    def __init__(self, axes) -> None:
        self.axes = axes
        self.image = axes.imshow(_empty_map(), cmap=DIVERGING_COLORMAP, vmin=-1, vmax=1)
        self.note = axes.text(0.5, 0.5, "", ha="center", va="center", fontsize=8, wrap=True,
                              transform=axes.transAxes)
        _hide_ticks(axes)

    def show(self, array: np.ndarray | None, limit: float, title: str, note: str = "") -> None:
        """Draw a (rows, columns) array with the colour scale -limit to limit, or the note if array is None."""
        _show_array(self.image, _empty_map() if array is None else array)
        self.image.set_clim(-limit, limit)
        self.note.set_text(note if array is None else "")
        self.axes.set_title(title, fontsize=9)


def _status_html(message: str, formula_lines: list[str]) -> str:
    """Format the status label: the message, if any, in red, then the output-size formulas."""
    parts = []
    if message:
        # One message per line: the explorers join several messages with newlines.
        escaped = "<br>".join(html.escape(line) for line in message.splitlines())
        parts.append(f'<span class="cnnrnn-message" style="color: {MESSAGE_COLOR}">{escaped}</span>')
    parts.extend(f'<span class="cnnrnn-formula"><code>{html.escape(line)}</code></span>' for line in formula_lines)
    return "<br>".join(parts)


# ---------------------------------------------------------------------------------------------
# Shared wiring of the explorers


class _Explorer:
    """Named controls, one update of the figure per change, the PNG image and the status label.

    A subclass creates its controls with _add_control, builds its figure once, sets self.widget,
    and implements _update, which computes the data for the current control values, updates the
    artists and returns the new state. _sync_controls adjusts controls that depend on others.
    """

    css_class = ""

    def __init__(self, figure_size: tuple[float, float]) -> None:
        self.figure = Figure(figsize=figure_size, dpi=DPI)
        FigureCanvasAgg(self.figure)

        self.image = widgets.Image(format="png")
        self.image.add_class(self.css_class)
        self.status = widgets.HTML()
        self.status.add_class("cnnrnn-status")

        self.state: dict[str, Any] = {}
        self.widget: widgets.Box = widgets.VBox()
        self._controls: dict[str, widgets.ValueWidget] = {}
        self._holding = False

    def _add_control(self, name: str, control: widgets.ValueWidget) -> widgets.ValueWidget:
        """Register a control under the name that set() accepts, with the CSS class cnnrnn-control-<name>."""
        control.add_class("cnnrnn-control-" + name.replace("_", "-"))
        control.observe(self._on_control_change, names="value")
        self._controls[name] = control
        return control

    @contextlib.contextmanager
    def _hold_updates(self) -> Iterator[None]:
        """Suppress the update of each single change, so that several changes give one update."""
        holding = self._holding
        self._holding = True
        try:
            yield
        finally:
            self._holding = holding

    def _on_control_change(self, change: dict[str, Any]) -> None:
        if self._holding:
            return
        name = next(name for name, control in self._controls.items() if control is change["owner"])
        with self._hold_updates():
            self._sync_controls(name)
        self._refresh()

    def _sync_controls(self, changed: str) -> None:
        """Adjust the controls that depend on the control named changed, e.g. the range of a slider."""

    def set(self, **controls: Any) -> dict[str, Any]:
        """Set controls by name, as a user would, update the figure once, and return the new state.

        Controls are applied in the order the explorer lists them, so set(stride=2, row=3) checks row
        against the range that stride 2 leaves. Raises TypeError for an unknown name and ValueError
        for a value that the control does not offer. The controls applied before that value keep
        their new values, and the figure shows them.
        """
        unknown = sorted(set(controls) - set(self._controls))
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.set() got unknown controls {', '.join(unknown)}. "
                f"The controls are: {', '.join(self._controls)}."
            )

        try:
            with self._hold_updates():
                for name, control in self._controls.items():
                    if name in controls:
                        self._validate_control_value(name, control, controls[name])
                        control.value = controls[name]
                        self._sync_controls(name)
        finally:
            self._refresh()
        return self.state

    def _validate_control_value(self, name: str, control: widgets.ValueWidget, value: Any) -> None:
        """Raise ValueError unless value is one that the control offers a user."""
        if isinstance(control, widgets.Dropdown):
            allowed = [option[1] if isinstance(option, tuple) else option for option in control.options]
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        elif isinstance(control, widgets.IntSlider):
            valid = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            if not valid or not control.min <= value <= control.max:
                raise ValueError(f"{name} must be an integer from {control.min} to {control.max}, got {value!r}")
        elif isinstance(control, widgets.Text) and not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")

    def _refresh(self) -> None:
        """Recompute what the controls select, update the artists, and render the figure to the image."""
        self.state = self._update()
        # NOTE: no tooltip on the Image: ipywidgets 8.1.9's front end reads the description of a widget
        # with a tooltip, and an Image has none, so the figure would not display. The caption stays in state.
        self.image.value = figure_to_png(self.figure)
        self.status.value = _status_html(self.state["message"], self.state.get("formula_lines", []))

    def _update(self) -> dict[str, Any]:
        raise NotImplementedError

    def _control_values(self) -> dict[str, Any]:
        return {name: control.value for name, control in self._controls.items()}

    def _layout(self, rows: list[list[str]], extra: list[widgets.Widget]) -> widgets.VBox:
        """Arrange rows of controls, the status label, the image and any extra widgets in one column."""
        control_rows = [widgets.HBox([self._controls[name] for name in row]) for row in rows]
        box = widgets.VBox(control_rows + [self.status, self.image] + extra)
        box.add_class("cnnrnn-explorer")
        return box


def _slider(description: str, value: int, bounds: tuple[int, int]) -> widgets.IntSlider:
    return widgets.IntSlider(
        value=value, min=bounds[0], max=bounds[1], description=description, continuous_update=False,
        style={"description_width": "initial"},
    )


def _dropdown(description: str, options: list, value: Any) -> widgets.Dropdown:
    return widgets.Dropdown(options=options, value=value, description=description,
                            style={"description_width": "initial"})


class _ConvolutionExplorer(_Explorer):
    """The controls input, digit_index, kernel, stride and padding, and the feature map of your Conv2D."""

    def __init__(self, Conv2D: type, image_size: int, figure_size: tuple[float, float]) -> None:
        if not isinstance(image_size, (int, np.integer)) or isinstance(image_size, bool) or image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
        super().__init__(figure_size)
        self.Conv2D = Conv2D
        self.image_size = int(image_size)
        load_photograph(self.image_size)

        self._add_control("input", _dropdown("input", list(INPUTS), "photograph"))
        digit = self._add_control("digit_index", _slider("test image", 0, (0, N_DIGITS - 1)))
        digit.disabled = True
        self._add_control("kernel", _dropdown("kernel", kernel_names(), "edges (Sobel x)"))
        self._add_control("stride", _slider("stride s", 1, STRIDE_RANGE))
        self._add_control("padding", _slider("padding P", 1, PADDING_RANGE))

    def _sync_controls(self, changed: str) -> None:
        self._controls["digit_index"].disabled = self._controls["input"].value != "digit"

    def _input_image(self) -> tuple[np.ndarray, str]:
        """Return the selected input image (H, W) and a description of it."""
        if self._controls["input"].value == "photograph":
            image = load_photograph(self.image_size)
            return image, f"photograph {image.shape[0]} x {image.shape[1]}"
        images, labels = load_test_digits()
        index = self._controls["digit_index"].value
        return images[index], f"digit {labels[index]} (test digit {index}), 16 x 16"

    def _convolve(self, image: np.ndarray, kernel: np.ndarray, bias: float) -> dict[str, Any]:
        """Run your Conv2D.forward on the image (H, W) with one filter, the kernel, and return what it gives.

        Returns a dict with feature_maps (1, 1, H_out, W_out) or None, output_shape, formula_lines
        and message. The kernel's fit is checked first, so Conv2D.forward is never called with a
        kernel larger than the padded input.
        """
        height, width = image.shape
        k = kernel.shape[0]
        stride, padding = self._controls["stride"].value, self._controls["padding"].value
        result: dict[str, Any] = {"feature_maps": None, "output_shape": None, "formula_lines": [], "message": ""}

        if height + 2 * padding < k or width + 2 * padding < k:
            result["message"] = (
                f"kernel {k} with padding {padding} does not fit a {height} x {width} input: the padded input "
                f"is {height + 2 * padding} x {width + 2 * padding}. Raise the padding or choose a smaller kernel."
            )
            return result

        # Every input is square, so W_out equals H_out.
        H_out = conv_output_size(height, k, stride, padding)
        result["output_shape"] = (1, 1, H_out, H_out)
        result["formula_lines"] = [
            f"H_out = (H + 2P - k) // s + 1 = ({height} + 2*{padding} - {k}) // {stride} + 1 = {H_out} (W_out likewise)"
        ]

        parameters = {"filters": kernel.reshape(1, 1, k, k).copy(), "bias": np.array([bias])}
        result["feature_maps"], result["message"] = _run_forward(
            self.Conv2D, (1, 1, k, stride, padding), image.reshape(1, 1, height, width), result["output_shape"], parameters
        )
        return result


# ---------------------------------------------------------------------------------------------
# Feature maps


class FeatureMapExplorer(_ConvolutionExplorer):
    """Input image, kernel, the feature map of your Conv2D and the max-pooled map of your MaxPool2D, side by side.

    Controls (names for set): input ("photograph" or "digit"), digit_index (0-9), kernel (a name from
    kernel_names()), stride (1-3), padding (0-3), pool_kernel (2-3), pool_stride (1-3). The
    photograph is image_size x image_size pixels, and the digits are 16 x 16. The first choice of
    "digit" renders the digits, which takes about a second.
    """

    css_class = "cnnrnn-feature-maps"

    def __init__(self, Conv2D: type, MaxPool2D: type, image_size: int = FEATURE_MAP_IMAGE_SIZE) -> None:
        super().__init__(Conv2D, image_size, figure_size=(11, 3.4))
        self.MaxPool2D = MaxPool2D
        self._add_control("pool_kernel", _slider("pool kernel", 2, POOL_KERNEL_RANGE))
        self._add_control("pool_stride", _slider("pool stride", 2, POOL_STRIDE_RANGE))

        input_axes, kernel_axes, map_axes, pooled_axes = self.figure.subplots(1, 4)
        self.figure.subplots_adjust(left=0.02, right=0.98, bottom=0.03, top=0.8, wspace=0.12)
        self.input_image = input_axes.imshow(np.zeros((1, 1)), cmap="gray", vmin=0, vmax=1)
        self.image_border = input_axes.add_patch(
            Rectangle((0, 0), 1, 1, fill=False, edgecolor=BORDER_COLOR, linestyle="--", linewidth=1)
        )
        _hide_ticks(input_axes)
        self.kernel_panel = _KernelPanel(kernel_axes, MAX_KERNEL_SIZE)
        self.feature_map_panel = _MapPanel(map_axes)
        self.pooled_panel = _MapPanel(pooled_axes)

        self.widget = self._layout(
            [["input", "digit_index", "kernel"], ["stride", "padding"], ["pool_kernel", "pool_stride"]], []
        )
        self._refresh()

    def _pool(self, feature_maps: np.ndarray) -> dict[str, Any]:
        """Run your MaxPool2D.forward on the feature maps and return pooled, pooled_shape, formula_line and message."""
        k, stride = self._controls["pool_kernel"].value, self._controls["pool_stride"].value
        _, _, height, width = feature_maps.shape
        result: dict[str, Any] = {"pooled": None, "pooled_shape": None, "formula_line": "", "message": ""}

        if height < k or width < k:
            result["message"] = (
                f"pool kernel {k} does not fit the {height} x {width} feature map. Choose a smaller pool kernel, "
                f"or a smaller stride or more padding for the convolution."
            )
            return result

        H_out = conv_output_size(height, k, stride)
        result["pooled_shape"] = (1, 1, H_out, H_out)
        result["formula_line"] = f"pooled: H_out = (H - k) // s + 1 = ({height} - {k}) // {stride} + 1 = {H_out}"

        result["pooled"], result["message"] = _run_forward(self.MaxPool2D, (k, stride), feature_maps, result["pooled_shape"])
        return result

    def _update(self) -> dict[str, Any]:
        controls = self._control_values()
        image, description = self._input_image()
        kernel, bias = kernel_by_name(controls["kernel"])
        k, padding = kernel.shape[0], controls["padding"]

        convolution = self._convolve(image, kernel, bias)
        pooling: dict[str, Any] = {"pooled": None, "pooled_shape": None, "formula_line": "", "message": ""}
        if convolution["feature_maps"] is not None:
            pooling = self._pool(convolution["feature_maps"])
        feature_maps, pooled = convolution["feature_maps"], pooling["pooled"]
        message = convolution["message"] or pooling["message"]

        # The input panel shows the zero padding around the image, and a dashed line marks the image itself.
        _show_array(self.input_image, np.pad(image, padding))
        self.image_border.set_bounds(padding - 0.5, padding - 0.5, image.shape[1], image.shape[0])
        self.input_image.axes.set_title(f"input {image.shape[0]} x {image.shape[1]}, padding {padding}", fontsize=9)

        bias_text = f", bias {bias:.2f}" if bias else ""
        self.kernel_panel.show(kernel, f"kernel {k} x {k}{bias_text}\n{controls['kernel']}")

        limit = _symmetric_limit(None if feature_maps is None else feature_maps[0, 0])
        self.feature_map_panel.show(
            None if feature_maps is None else feature_maps[0, 0], limit,
            _map_title("feature map", feature_maps, f"stride {controls['stride']}"), note="no feature map",
        )
        self.pooled_panel.show(
            None if pooled is None else pooled[0, 0], limit,
            _map_title("max-pooled map", pooled, f"pool {controls['pool_kernel']}, stride {controls['pool_stride']}"),
            note="no pooled map",
        )

        caption = (
            f"Input: {description}, zero-padded by {padding}. Kernel: {controls['kernel']}, {k} x {k}. "
            + _shape_sentence("Feature map", feature_maps, f"stride {controls['stride']}")
            + " "
            + _shape_sentence(
                "Max-pooled map", pooled, f"pool kernel {controls['pool_kernel']}, pool stride {controls['pool_stride']}"
            )
        )
        formula_lines = convolution["formula_lines"] + ([pooling["formula_line"]] if pooling["formula_line"] else [])
        return {
            **controls,
            "image": image,
            "kernel_values": kernel,
            "bias": bias,
            "feature_maps": feature_maps,
            "pooled": pooled,
            "output_shape": convolution["output_shape"],
            "pooled_shape": pooling["pooled_shape"],
            "formula_lines": formula_lines,
            "formula": "\n".join(formula_lines),
            "message": message,
            "caption": caption,
        }


def _map_title(name: str, maps: np.ndarray | None, settings: str) -> str:
    if maps is None:
        return f"{name}\n{settings}"
    _, _, rows, columns = maps.shape
    return f"{name} {rows} x {columns}, {settings}\nrange {maps.min():.2f} to {maps.max():.2f}"


def _shape_sentence(name: str, maps: np.ndarray | None, settings: str) -> str:
    if maps is None:
        return f"{name} ({settings}): none, see the status message."
    return f"{name} ({settings}): {maps.shape[2]} x {maps.shape[3]}."


# ---------------------------------------------------------------------------------------------
# Receptive field


class ReceptiveFieldExplorer(_ConvolutionExplorer):
    """The receptive field of one output position in the padded input, and the dot product that gives its value.

    Controls (names for set): input ("photograph" or "digit"), digit_index (0-9), kernel (a name from
    kernel_names()), stride (1-3), padding (0-3), row and column (the output position, from 0 to
    H_out - 1 and W_out - 1). Output position (i, j) reads the k x k patch whose top-left corner is
    row i * stride, column j * stride of the padded input. The photograph is image_size x
    image_size pixels, and the digits are 16 x 16.
    """

    css_class = "cnnrnn-receptive-field"

    def __init__(self, Conv2D: type, image_size: int = RECEPTIVE_FIELD_IMAGE_SIZE) -> None:
        super().__init__(Conv2D, image_size, figure_size=(11, 3.6))
        self._add_control("row", _slider("output row i", 0, (0, 0)))
        self._add_control("column", _slider("output column j", 0, (0, 0)))
        self._sync_controls("stride")

        grid = self.figure.add_gridspec(1, 4, width_ratios=(1.0, 0.6, 1.0, 1.5), left=0.03, right=0.99,
                                        bottom=0.08, top=0.84, wspace=0.15)
        input_axes = self.figure.add_subplot(grid[0])
        kernel_axes = self.figure.add_subplot(grid[1])
        map_axes = self.figure.add_subplot(grid[2])
        text_axes = self.figure.add_subplot(grid[3])

        self.input_image = input_axes.imshow(np.zeros((1, 1)), cmap="gray", vmin=0, vmax=1)
        self.image_border = input_axes.add_patch(
            Rectangle((0, 0), 1, 1, fill=False, edgecolor=BORDER_COLOR, linestyle="--", linewidth=1)
        )
        self.patch_outline = input_axes.add_patch(
            Rectangle((0, 0), 1, 1, fill=False, edgecolor=HIGHLIGHT_COLOR, linewidth=2)
        )
        for axes in (input_axes, map_axes):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.yaxis.set_major_locator(MaxNLocator(integer=True))
            axes.tick_params(labelsize=7)

        self.kernel_panel = _KernelPanel(kernel_axes, MAX_KERNEL_SIZE)
        self.feature_map_panel = _MapPanel(map_axes)
        map_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        map_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        self.output_outline = map_axes.add_patch(
            Rectangle((0, 0), 1, 1, fill=False, edgecolor=HIGHLIGHT_COLOR, linewidth=2)
        )

        text_axes.set_axis_off()
        self.dot_product_text = text_axes.text(0.0, 1.0, "", ha="left", va="top", family="monospace", fontsize=8,
                                               transform=text_axes.transAxes)

        self.widget = self._layout([["input", "digit_index", "kernel"], ["stride", "padding"], ["row", "column"]], [])
        self._refresh()

    def _sync_controls(self, changed: str) -> None:
        super()._sync_controls(changed)
        if "row" not in self._controls:
            return
        image, _ = self._input_image()
        kernel, _ = kernel_by_name(self._controls["kernel"].value)
        stride, padding = self._controls["stride"].value, self._controls["padding"].value
        # Lowering max below a slider's value moves the value to the new max.
        for name, size in (("row", image.shape[0]), ("column", image.shape[1])):
            self._controls[name].max = max(0, conv_output_size(size, kernel.shape[0], stride, padding) - 1)

    def _update(self) -> dict[str, Any]:
        controls = self._control_values()
        image, description = self._input_image()
        kernel, bias = kernel_by_name(controls["kernel"])
        k, stride, padding = kernel.shape[0], controls["stride"], controls["padding"]
        row, column = controls["row"], controls["column"]

        convolution = self._convolve(image, kernel, bias)
        feature_maps = convolution["feature_maps"]
        padded = np.pad(image, padding)
        fits = convolution["output_shape"] is not None

        _show_array(self.input_image, padded)
        self.image_border.set_bounds(padding - 0.5, padding - 0.5, image.shape[1], image.shape[0])
        self.input_image.axes.set_title(f"padded input {padded.shape[0]} x {padded.shape[1]}", fontsize=9)
        self.kernel_panel.show(kernel, f"kernel {k} x {k}" + (f", bias {bias:.2f}" if bias else ""))

        top, left = row * stride, column * stride
        self.patch_outline.set_xy((left - 0.5, top - 0.5))
        self.patch_outline.set_width(k)
        self.patch_outline.set_height(k)
        self.patch_outline.set_visible(fits)
        self.output_outline.set_xy((column - 0.5, row - 0.5))
        self.output_outline.set_visible(feature_maps is not None)

        maps = None if feature_maps is None else feature_maps[0, 0]
        title = f"feature map, stride {stride}" if maps is None else f"feature map {maps.shape[0]} x {maps.shape[1]}"
        self.feature_map_panel.show(maps, _symmetric_limit(maps), title, note="no feature map")

        patch = padded[top : top + k, left : left + k] if fits else None
        dot_product = float(np.sum(patch * kernel) + bias) if fits else None
        value = float(maps[row, column]) if maps is not None else None
        message = convolution["message"]
        if value is not None and not np.isclose(value, dot_product, rtol=1e-9, atol=1e-9):
            message = (
                f"{self.Conv2D.__name__}.forward gives {value:.6g} at row {row}, column {column}, but "
                f"sum(patch * kernel) + bias = {dot_product:.6g}. Check the window position and the bias."
            )
        text = _dot_product_text(patch, kernel, bias, top, left, row, column, value, self.Conv2D.__name__)
        self.dot_product_text.set_text(text)

        caption = f"Padded input: {description}, zero-padded by {padding}. Kernel: {controls['kernel']}, {k} x {k}. "
        if fits:
            caption += (
                f"Output row {row}, column {column} reads the {k} x {k} patch at rows {top} to {top + k - 1} and "
                f"columns {left} to {left + k - 1} of the padded input: sum(patch * kernel) + bias = {dot_product:.3f}."
            )
        else:
            caption += "The kernel does not fit, so there is no output position."

        x, y = self.patch_outline.get_xy()
        return {
            **controls,
            "image": image,
            "padded_input": padded,
            "kernel_values": kernel,
            "bias": bias,
            "feature_maps": feature_maps,
            "output_shape": convolution["output_shape"],
            "patch": patch,
            # The highlighted rectangle, read back from the artist: corner (x, y) in padded-input pixels.
            "rectangle": (x, y, self.patch_outline.get_width(), self.patch_outline.get_height()) if fits else None,
            "patch_top_left": (top, left) if fits else None,
            "dot_product": dot_product,
            "value": value,
            "text": text,
            "formula_lines": convolution["formula_lines"],
            "formula": "\n".join(convolution["formula_lines"]),
            "message": message,
            "caption": caption,
        }


def _format_matrix(matrix: np.ndarray) -> list[str]:
    return [" ".join(f"{value:6.2f}" for value in row) for row in matrix]


def _dot_product_text(
    patch: np.ndarray | None, kernel: np.ndarray, bias: float, top: int, left: int, row: int, column: int,
    value: float | None, layer_name: str,
) -> str:
    """Format the dot product of one output position as text: patch and kernel numbers for small kernels, then the sum."""
    if patch is None:
        return "The kernel does not fit the padded input,\nso there is no receptive field to show."
    k = kernel.shape[0]
    lines = [f"output (i, j) = ({row}, {column})", f"patch: rows {top}-{top + k - 1}, columns {left}-{left + k - 1}", ""]
    if k <= MAX_LISTED_KERNEL_SIZE:
        width = len(_format_matrix(patch)[0])
        lines.append(f"{'patch':<{width}}   kernel")
        lines += [f"{patch_row}   {kernel_row}" for patch_row, kernel_row in zip(_format_matrix(patch), _format_matrix(kernel))]
        lines.append(f"bias = {bias:.3f}")
        lines.append("")
    dot_product = float(np.sum(patch * kernel) + bias)
    lines.append(f"sum(patch * kernel) + bias = {dot_product:.3f}")
    if value is not None:
        lines.append(f"{layer_name}.forward gives       {value:.3f}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# LSTM gates

# State keys of the LSTM traces, each (T, H), with the panel title of each heatmap.
LSTM_TRACES = {
    "forget_gate": "forget gate f",
    "input_gate": "input gate i",
    "output_gate": "output gate o",
    "candidate": "candidate g",
    "cell_state": "cell state c",
    "hidden_state": "hidden state h (LSTM)",
}
RNN_TRACE = ("rnn_hidden_state", "hidden state h (RNN)")
SIGMOID_TRACES = ("forget_gate", "input_gate", "output_gate")


class GateExplorer(_Explorer):
    """Gates, cell state and hidden state of the trained LSTM over a symbol sequence, beside the trained RNN's.

    The recall task's label is the first symbol of the sequence. The letters A-H stand for its 8
    symbols. The explorer loads the trained weights into your classes, runs your
    cell.forward_step one time step after another from h_0 = c_0 = 0, and recomputes the gates f,
    i, o, g of each step from cell.W, cell.b and [h_prev, x_t]. Your RNNCell.forward gives the
    vanilla RNN's hidden states.

    Controls (names for set): sequence, example, time and unit. sequence is a string of the letters
    A-H, in which whitespace is ignored and lower case accepted. example is the index of a test
    sequence, and choosing one sets sequence. time is the time step t of the cursor, from 1 to T.
    unit is the hidden unit, from 0 to H - 1, whose h colours the sequence.
    """

    css_class = "cnnrnn-gates"

    def __init__(self, LSTM: type, RNNCell: type) -> None:
        super().__init__(figure_size=(11, 5.6))
        self.lstm_model = training.load_trained_lstm(LSTM)
        self.rnn_model = training.load_trained_rnn(RNNCell)
        info = self.lstm_model.info
        self.symbols = SYMBOL_LETTERS[: info["n_symbols"]]
        self.hidden_size = self.lstm_model.config()["hidden_size"]

        # The first test sequences of the recall task, which the trained LSTM classifies correctly.
        inputs, labels = data.make_recall_task(info["n_test"], info["T"], info["n_symbols"], info["test_seed"])
        self.examples = [
            "".join(self.symbols[symbol] for symbol in inputs[:, index].argmax(axis=1)) for index in range(N_EXAMPLES)
        ]
        self._computed: dict[str, Any] = {}

        example_options = [(f"{index}: {sequence}", index) for index, sequence in enumerate(self.examples)]
        self._add_control("sequence", widgets.Text(
            value=self.examples[0], description="sequence", continuous_update=False,
            placeholder=f"letters {self.symbols[0]}-{self.symbols[-1]}", layout=widgets.Layout(width="32em"),
        ))
        self._add_control("example", _dropdown("example", example_options, 0))
        self._add_control("time", _slider("time step t", 1, (1, len(self.examples[0]))))
        self._add_control("unit", _slider("unit", 0, (0, self.hidden_size - 1)))

        self.predictions = widgets.HTML()
        self.predictions.add_class("cnnrnn-predictions")
        self.sequence_html = widgets.HTML()
        self.sequence_html.add_class("cnnrnn-sequence")
        self._build_figure()

        self.widget = self._layout([["sequence", "example"], ["time", "unit"]], [self.predictions, self.sequence_html])
        self._refresh()

    def _build_figure(self) -> None:
        grid = self.figure.add_gridspec(2, 4, left=0.05, right=0.98, bottom=0.09, top=0.94, wspace=0.22, hspace=0.35)
        names = list(LSTM_TRACES) + [RNN_TRACE[0]]
        titles = list(LSTM_TRACES.values()) + [RNN_TRACE[1]]
        self.heatmaps: dict[str, AxesImage] = {}
        self.cursor_lines = {}
        self.unit_lines = {}

        for position, (name, title) in enumerate(zip(names, titles)):
            axes = self.figure.add_subplot(grid[position // 4, position % 4])
            colormap, limit = (GATE_COLORMAP, (0, 1)) if name in SIGMOID_TRACES else (DIVERGING_COLORMAP, (-1, 1))
            self.heatmaps[name] = axes.imshow(np.zeros((1, 1)), cmap=colormap, vmin=limit[0], vmax=limit[1],
                                              aspect="auto", interpolation="nearest")
            self.cursor_lines[name] = axes.axvline(1, color="black", linewidth=1.2)
            # The chosen unit is marked on every heatmap, in a colour that neither colour map uses.
            self.unit_lines[name] = axes.axhline(0, color=UNIT_MARKER_COLOR, linewidth=1.0, linestyle="--")
            axes.set_title(title, fontsize=9)
            # Few ticks, with labels on the first column only: tick labels take most of the drawing time.
            axes.tick_params(labelsize=7, labelleft=position % 4 == 0)
            axes.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
            axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
            if position % 4 == 0:
                axes.set_ylabel("unit", fontsize=8)
            if position >= 4:
                axes.set_xlabel("time step t", fontsize=8)

        # Three colour bars stacked in the last cell of the grid: the gates, tanh values and the cell state.
        # hspace is relative to a bar's height: the gaps leave room for the tick labels and the titles.
        bars = grid[1, 3].subgridspec(3, 1, hspace=2.5)
        for slot, (name, label) in enumerate(
            (("forget_gate", "gates f, i, o"), ("hidden_state", "candidate g, hidden state h"), ("cell_state", "cell state c"))
        ):
            bar_axes = self.figure.add_subplot(bars[slot])
            colorbar = self.figure.colorbar(self.heatmaps[name], cax=bar_axes, orientation="horizontal")
            colorbar.ax.tick_params(labelsize=7)
            colorbar.ax.set_title(label, fontsize=8)

    def _sync_controls(self, changed: str) -> None:
        if changed == "example":
            self._controls["sequence"].value = self.examples[self._controls["example"].value]
        if changed in ("sequence", "example"):
            sequence, _ = self._parse_sequence(self._controls["sequence"].value)
            # Lowering max below the slider's value moves the value to the new max.
            if sequence:
                self._controls["time"].max = len(sequence)

    def _parse_sequence(self, text: str) -> tuple[str, str]:
        """Return (sequence, message): the upper-case symbols of text, or a message naming an invalid character."""
        sequence = "".join(text.split()).upper()
        if not sequence:
            return "", f"The sequence is empty. Type at least one of the letters {self.symbols[0]} to {self.symbols[-1]}."
        for position, character in enumerate(sequence, start=1):
            if character not in self.symbols:
                return "", (
                    f"Invalid character {character!r} at position {position}: type only the letters "
                    f"{self.symbols[0]} to {self.symbols[-1]}. The plots still show the last valid sequence."
                )
        if len(sequence) > MAX_SEQUENCE_LENGTH:
            return "", f"The sequence has {len(sequence)} symbols. Type at most {MAX_SEQUENCE_LENGTH}."
        return sequence, ""

    def _one_hot(self, sequence: str) -> np.ndarray:
        """Encode a sequence as inputs (T, 1, n_symbols), the layout (T, N, D) of the recall task."""
        inputs = np.zeros((len(sequence), 1, len(self.symbols)))
        inputs[np.arange(len(sequence)), 0, [self.symbols.index(symbol) for symbol in sequence]] = 1.0
        return inputs

    def _run_lstm(self, inputs: np.ndarray) -> tuple[dict[str, np.ndarray] | None, str]:
        """Run your cell.forward_step over inputs (T, 1, D) and return the traces (T, H) by name, and a message."""
        cell = self.lstm_model.cell
        exercise = type(cell).__name__
        name = f"{exercise}.forward_step"
        steps, H = inputs.shape[0], self.hidden_size
        traces = {key: np.zeros((steps, H)) for key in LSTM_TRACES}
        note = ""

        # A cell with a backward_step stacks every step for it. Nothing here runs backward, so the stack is emptied.
        if isinstance(getattr(cell, "cache", None), list):
            cell.cache.clear()
        h, c = np.zeros((1, H)), np.zeros((1, H))
        for t in range(steps):
            f, i, o, g = lstm_gates(cell.W, cell.b, h, inputs[t])
            c_prev = c
            result, message = _call_student_method(cell.forward_step, name, exercise, inputs[t], h.copy(), c.copy())
            if not message:
                message = _check_step_result(result, name, exercise, (1, H))
            if message:
                return None, message
            h, c = result

            # The gates come from the given formula, h_t and c_t from your forward_step: they must agree.
            c_error = float(np.max(np.abs(c - (f * c_prev + i * g))))
            h_error = float(np.max(np.abs(h - o * np.tanh(c))))
            if not note and max(c_error, h_error) > STEP_TOLERANCE:
                note = (
                    f"{name} does not match the gates at time step {t + 1}: c_t differs from f * c_prev + i * g by "
                    f"{c_error:.3g} and h_t from o * tanh(c_t) by {h_error:.3g}. Check the block order f, i, o, g "
                    f"and that [h_prev, x_t] puts the hidden state first."
                )
            for key, value in zip(LSTM_TRACES, (f, i, o, g, c, h)):
                traces[key][t] = value[0]

        if isinstance(getattr(cell, "cache", None), list):
            cell.cache.clear()
        return traces, note

    def _run_rnn(self, inputs: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
        """Run your RNNCell.forward over inputs (T, 1, D) and return (outputs, hidden_states) and a message."""
        rnn = self.rnn_model.rnn
        exercise = type(rnn).__name__
        name = f"{exercise}.forward"
        steps = inputs.shape[0]
        result, message = _call_student_method(rnn.forward, name, exercise, inputs.copy())
        if message:
            return None, message
        if not isinstance(result, tuple) or len(result) != 2:
            return None, f"{name} must return a tuple (outputs, hidden_states). Fix it in the {exercise} exercise above."
        outputs, hidden_states = result
        message = _check_array(outputs, name, exercise, (steps, 1, rnn.W_hy.shape[1]))
        message = message or _check_array(hidden_states, name, exercise, (steps, 1, self.hidden_size))
        if message:
            return None, message
        return (outputs, hidden_states), ""

    def _compute(self, sequence: str) -> dict[str, Any]:
        """Run both models over a sequence, and keep the result until the sequence changes."""
        if self._computed.get("sequence") == sequence:
            return self._computed
        inputs = self._one_hot(sequence)
        traces, lstm_message = self._run_lstm(inputs)
        rnn_result, rnn_message = self._run_rnn(inputs)

        computed: dict[str, Any] = {"sequence": sequence, "inputs": inputs, "messages": [], "lstm_probabilities": None,
                                    "rnn_probabilities": None, "rnn_hidden_state": None}
        computed.update({key: None for key in LSTM_TRACES})
        if traces is not None:
            computed.update(traces)
            scores = self.lstm_model.head.forward(traces["hidden_state"][-1:])
            computed["lstm_probabilities"] = training.softmax(scores)[0]
        if rnn_result is not None:
            outputs, hidden_states = rnn_result
            computed["rnn_hidden_state"] = hidden_states[:, 0]
            computed["rnn_probabilities"] = training.softmax(outputs[-1])[0]
        computed["messages"] = [message for message in (lstm_message, rnn_message) if message]
        self._computed = computed
        return computed

    def _update(self) -> dict[str, Any]:
        controls = self._control_values()
        typed_sequence, input_message = self._parse_sequence(controls["sequence"])
        # An invalid sequence leaves the last valid one on display, with the message above it.
        sequence = typed_sequence or self._computed.get("sequence", self.examples[0])
        computed = self._compute(sequence)
        steps = len(sequence)
        time, unit = controls["time"], controls["unit"]

        for name, artist in self.heatmaps.items():
            trace = computed[name]
            # Heatmaps show units down and time steps across: trace (T, H) transposed.
            heatmap_values = np.full((self.hidden_size, steps), np.nan) if trace is None else trace.T
            artist.set_data(heatmap_values)
            artist.set_extent((0.5, steps + 0.5, self.hidden_size - 0.5, -0.5))
            artist.axes.set_xlim(0.5, steps + 0.5)
            artist.axes.set_ylim(self.hidden_size - 0.5, -0.5)
            self.cursor_lines[name].set_xdata([time, time])
        for line in self.unit_lines.values():
            line.set_ydata([unit, unit])
        cell_limit = _symmetric_limit(computed["cell_state"])
        self.heatmaps["cell_state"].set_clim(-cell_limit, cell_limit)

        lstm_prediction = _predicted_symbol(computed["lstm_probabilities"], self.symbols)
        rnn_prediction = _predicted_symbol(computed["rnn_probabilities"], self.symbols)
        readout = self._readout(computed, time, unit)
        self.predictions.value = self._predictions_html(sequence, computed, readout)
        symbols_html = _coloured_symbols_html(sequence, computed["hidden_state"], unit, time)
        self.sequence_html.value = symbols_html

        messages = ([input_message] if input_message else []) + computed["messages"]
        caption = (
            f"Heatmaps of units (0 to {self.hidden_size - 1}, down) against time steps (1 to {steps}, across) "
            f"for the sequence {sequence}: forget, input and output gates, candidate, cell state and hidden "
            f"state of the trained LSTM, and hidden state of the trained RNN. The cursor is at time step {time}."
        )
        return {
            **controls,
            "sequence_shown": sequence,
            "symbols": self.symbols,
            "inputs": computed["inputs"],
            **{key: computed[key] for key in LSTM_TRACES},
            "rnn_hidden_state": computed["rnn_hidden_state"],
            "first_symbol": sequence[0],
            "lstm_prediction": lstm_prediction,
            "lstm_probabilities": computed["lstm_probabilities"],
            "rnn_prediction": rnn_prediction,
            "rnn_probabilities": computed["rnn_probabilities"],
            "cursor_positions": {name: float(line.get_xdata()[0]) for name, line in self.cursor_lines.items()},
            "readout": readout,
            "symbols_html": symbols_html,
            "message": "\n".join(messages),
            "caption": caption,
        }

    def _readout(self, computed: dict[str, Any], time: int, unit: int) -> str:
        """Describe the values of one unit at the cursor's time step, e.g. "t = 3, unit 5: f = 0.98, ..."."""
        if time > len(computed["sequence"]):
            return ""
        values = [
            f"{symbol} = {computed[key][time - 1, unit]:.2f}"
            for key, symbol in zip(LSTM_TRACES, ("f", "i", "o", "g", "c", "h"))
            if computed[key] is not None
        ]
        if computed["rnn_hidden_state"] is not None:
            values.append(f"RNN h = {computed['rnn_hidden_state'][time - 1, unit]:.2f}")
        symbol = computed["sequence"][time - 1]
        return f"t = {time} (input {symbol}), unit {unit}: " + ", ".join(values) if values else ""

    def _predictions_html(self, sequence: str, computed: dict[str, Any], readout: str) -> str:
        lines = [f"First symbol, the label: <b>{sequence[0]}</b>."]
        for model, key in (("LSTM", "lstm_probabilities"), ("RNN", "rnn_probabilities")):
            probabilities = computed[key]
            if probabilities is None:
                lines.append(f"{model}: no prediction, see the status message.")
            else:
                best = int(np.argmax(probabilities))
                lines.append(f"{model} predicts <b>{self.symbols[best]}</b> (probability {probabilities[best]:.2f}).")
        text = " ".join(lines)
        return text + (f"<br>{html.escape(readout)}" if readout else "")


def _check_step_result(result: Any, name: str, exercise: str, state_shape: tuple[int, int]) -> str:
    """Return a message unless forward_step returned (h_t, c_t), two arrays of shape state_shape."""
    if not isinstance(result, tuple) or len(result) != 2:
        return f"{name} must return a tuple (h_t, c_t). Fix it in the {exercise} exercise above."
    for label, array in zip(("h_t", "c_t"), result):
        message = _check_array(array, f"{name} ({label})", exercise, state_shape)
        if message:
            return message
    return ""


def _predicted_symbol(probabilities: np.ndarray | None, symbols: str) -> str | None:
    return None if probabilities is None else symbols[int(np.argmax(probabilities))]


def _coloured_symbols_html(sequence: str, hidden_state: np.ndarray | None, unit: int, time: int) -> str:
    """Write the sequence as one span per symbol, its background coloured by the unit's h at that time step.

    Red is h near 1, blue near -1 and white 0. The symbol at the cursor's time step is outlined.
    """
    colormap = colormaps[DIVERGING_COLORMAP]
    spans = []
    for t, symbol in enumerate(sequence, start=1):
        if hidden_state is None:
            colour, value_text = (1.0, 1.0, 1.0, 1.0), "no hidden state"
        else:
            value = float(hidden_state[t - 1, unit])
            colour, value_text = colormap((np.clip(value, -1, 1) + 1) / 2), f"h = {value:.2f}"
        red, green, blue = (round(255 * channel) for channel in colour[:3])
        # Dark backgrounds get white text, by the relative luminance of the background.
        text_colour = "white" if 0.299 * red + 0.587 * green + 0.114 * blue < 128 else "black"
        outline = "outline: 2px solid black;" if t == time else ""
        spans.append(
            f'<span class="cnnrnn-symbol" title="t = {t}, unit {unit}, {value_text}" '
            f'style="background-color: rgb({red}, {green}, {blue}); color: {text_colour}; {outline} '
            f'font-family: monospace; padding: 0 3px;">{html.escape(symbol)}</span>'
        )
    return f'<div style="font-size: 1.3em; line-height: 1.8">{"".join(spans)}</div>'
