"""The reference layers of solutions against PyTorch on the CPU, on the same shapes and dtype.

Each case builds a reference layer with random parameters, copies them into PyTorch, checks that
both compute the same result, and returns the two calls to time. PyTorch's Conv2D and MaxPool2D
backward passes are timed through the ATen operators that autograd runs (convolution_backward and
max_pool2d_with_indices_backward), so no autograd bookkeeping is timed. The RNN and the LSTM run
many operators in backward, so their backward is timed with torch.autograd.grad on a graph that is
built once and retained.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import solutions
from autograder.tolerances import tolerance
from bench.timing import Case, Contender


@dataclass(frozen=True)
class ConvShape:
    N: int
    C: int
    H: int
    W: int
    F: int
    kernel_size: int
    stride: int
    padding: int

    def __str__(self) -> str:
        return (
            f"X ({self.N}, {self.C}, {self.H}, {self.W}), F={self.F}, "
            f"k={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        )


@dataclass(frozen=True)
class PoolShape:
    N: int
    C: int
    H: int
    W: int
    kernel_size: int
    stride: int

    def __str__(self) -> str:
        return f"X ({self.N}, {self.C}, {self.H}, {self.W}), k={self.kernel_size}, stride={self.stride}"


@dataclass(frozen=True)
class SequenceShape:
    T: int
    N: int
    D: int
    H: int
    O: int = 0  # output size of the RNN, 0 for the LSTM, which has no output layer

    def __str__(self) -> str:
        text = f"inputs (T={self.T}, N={self.N}, D={self.D}), H={self.H}"
        if self.O:
            text += f", O={self.O}"
        return text


# A batch of 32 images or sequences, at the sizes of a small course model. Conv2D maps 16 channels
# of 32 x 32 pixels to 32 channels with a 3 x 3 kernel and padding 1. Pooling then takes 2 x 2
# windows, or overlapping 3 x 3 windows, of that output. The sequences have 50 steps of 64 features.
CONV_SHAPE = ConvShape(N=32, C=16, H=32, W=32, F=32, kernel_size=3, stride=1, padding=1)
POOL_SHAPES = (
    PoolShape(N=32, C=32, H=32, W=32, kernel_size=2, stride=2),
    PoolShape(N=32, C=32, H=32, W=32, kernel_size=3, stride=2),
)
LSTM_SHAPE = SequenceShape(T=50, N=32, D=64, H=128)
RNN_SHAPE = SequenceShape(T=50, N=32, D=64, H=128, O=64)

# Largest accepted ratio of reference time to PyTorch time, for (layer, direction, dtype). The other
# rows are printed for information.
GOALS: dict[tuple[str, str, str], float] = {
    ("Conv2D", "forward", "float64"): 0.7,
    ("Conv2D", "backward", "float64"): 1.0,
    ("MaxPool2D k=2 s=2", "forward", "float64"): 1.0,
    ("MaxPool2D k=2 s=2", "backward", "float64"): 1.0,
    ("MaxPool2D k=3 s=2", "forward", "float64"): 1.0,
    ("MaxPool2D k=3 s=2", "backward", "float64"): 1.0,
    ("LSTM", "forward", "float64"): 1.0,
    ("Conv2D", "forward", "float32"): 3.0,
}

REFERENCE = "reference"
TORCH = "PyTorch"


@dataclass
class LayerCase(Case):
    """A reference-against-PyTorch case, with the labels that the table prints."""

    layer: str = ""
    direction: str = ""
    computes: str = ""  # what the call returns or stores, such as "dX, dfilters, dbias"
    dtype: str = ""
    shape: str = ""
    goal: float | None = None
    largest_error: dict[str, float] = field(default_factory=dict)

    def ratio(self) -> float:
        return self.median_seconds(REFERENCE) / self.median_seconds(TORCH)


def _new_case(
    layer: str, direction: str, computes: str, dtype: np.dtype, shape: object, reference: Contender, torch: Contender
) -> LayerCase:
    dtype_name = np.dtype(dtype).name
    return LayerCase(
        contenders={REFERENCE: reference, TORCH: torch},
        layer=layer,
        direction=direction,
        computes=computes,
        dtype=dtype_name,
        shape=str(shape),
        goal=GOALS.get((layer, direction, dtype_name)),
    )


def _scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Return max |actual - expected| / max(1, |expected|), the error measure of autograder.tolerances."""
    actual64 = np.asarray(actual, dtype=np.float64)
    expected64 = np.asarray(expected, dtype=np.float64)
    if actual64.shape != expected64.shape:
        raise RuntimeError(f"shapes differ: reference {actual64.shape}, PyTorch {expected64.shape}")
    return float((np.abs(actual64 - expected64) / np.maximum(1.0, np.abs(expected64))).max(initial=0.0))


def _agreement(case: LayerCase, results: dict[str, tuple[np.ndarray, Any]], direction: str) -> None:
    """Store each result's largest error in case.largest_error, or raise RuntimeError if one is too large.

    results maps a name such as "dX" to (reference result, PyTorch tensor). A benchmark of two
    implementations that disagree measures nothing, so disagreement stops the run.
    """
    limit = tolerance(case.dtype, direction)
    for name, (reference, torch_result) in results.items():
        error = _scaled_error(reference, torch_result.detach().numpy())
        case.largest_error[name] = error
        if error > limit:
            raise RuntimeError(
                f"{case.layer} {case.direction} ({case.dtype}): the reference and PyTorch disagree on {name}, "
                f"largest error {error:.2e} > tolerance {limit:.0e}, so the timings would not compare the "
                "same computation."
            )


def _load_state(torch: Any, module: Any, state: dict[str, np.ndarray]) -> None:
    module.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()})


# ---------------------------------------------------------------------------------------------------
# Conv2D and MaxPool2D


def conv2d_cases(torch: Any, dtype: np.dtype, shape: ConvShape, rng: np.random.Generator) -> list[LayerCase]:
    """Return the Conv2D forward and backward cases. Backward computes dX, dfilters and dbias."""
    s = shape
    layer = solutions.Conv2D(s.C, s.F, s.kernel_size, s.stride, s.padding)
    fan_in = s.C * s.kernel_size**2
    layer.filters = (rng.standard_normal(layer.filters.shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    layer.bias = rng.standard_normal(s.F).astype(dtype)
    X = rng.standard_normal((s.N, s.C, s.H, s.W)).astype(dtype)
    out = layer.forward(X)
    dout = rng.standard_normal(out.shape).astype(dtype)

    X_torch, dout_torch = torch.from_numpy(X), torch.from_numpy(dout)
    filters_torch, bias_torch = torch.from_numpy(layer.filters), torch.from_numpy(layer.bias)
    stride, padding = [s.stride, s.stride], [s.padding, s.padding]

    def torch_forward() -> Any:
        return torch.nn.functional.conv2d(X_torch, filters_torch, bias_torch, stride, padding)

    def torch_backward() -> Any:
        dilation, transposed, output_padding, groups = [1, 1], False, [0, 0], 1
        output_mask = [True, True, True]  # compute dX, dfilters and dbias
        return torch.ops.aten.convolution_backward(
            dout_torch, X_torch, filters_torch, [s.F], stride, padding, dilation, transposed, output_padding, groups,
            output_mask,
        )

    forward = _new_case(
        "Conv2D", "forward", "output", dtype, s, Contender(lambda: layer.forward(X)), Contender(torch_forward)
    )
    _agreement(forward, {"output": (out, torch_forward())}, "forward")

    backward = _new_case(
        "Conv2D",
        "backward",
        "dX, dfilters, dbias",
        dtype,
        s,
        Contender(lambda: layer.backward(dout)),
        Contender(torch_backward),
    )
    dX = layer.backward(dout)
    dX_torch, dfilters_torch, dbias_torch = torch_backward()
    gradients = {
        "dX": (dX, dX_torch),
        "dfilters": (layer.dfilters, dfilters_torch),
        "dbias": (layer.dbias, dbias_torch),
    }
    _agreement(backward, gradients, "backward")
    return [forward, backward]


def maxpool2d_cases(torch: Any, dtype: np.dtype, shape: PoolShape, rng: np.random.Generator) -> list[LayerCase]:
    """Return the MaxPool2D forward and backward cases.

    PyTorch's backward receives the indices of the maxima that its forward saved, while the
    reference backward finds the maxima again from the stored input. Each is what its own
    backward pass does after its own forward.
    """
    s = shape
    layer = solutions.MaxPool2D(s.kernel_size, s.stride)
    X = rng.standard_normal((s.N, s.C, s.H, s.W)).astype(dtype)
    out = layer.forward(X)
    dout = rng.standard_normal(out.shape).astype(dtype)

    X_torch, dout_torch = torch.from_numpy(X), torch.from_numpy(dout)
    kernel, stride = [s.kernel_size, s.kernel_size], [s.stride, s.stride]
    _, indices = torch.ops.aten.max_pool2d_with_indices(X_torch, kernel, stride)

    def torch_forward() -> Any:
        return torch.nn.functional.max_pool2d(X_torch, kernel, stride)

    def torch_backward() -> Any:
        padding, dilation, ceil_mode = [0, 0], [1, 1], False
        return torch.ops.aten.max_pool2d_with_indices_backward(
            dout_torch, X_torch, kernel, stride, padding, dilation, ceil_mode, indices
        )

    name = f"MaxPool2D k={s.kernel_size} s={s.stride}"
    forward = _new_case(
        name, "forward", "output", dtype, s, Contender(lambda: layer.forward(X)), Contender(torch_forward)
    )
    _agreement(forward, {"output": (out, torch_forward())}, "forward")

    backward = _new_case(
        name, "backward", "dX", dtype, s, Contender(lambda: layer.backward(dout)), Contender(torch_backward)
    )
    _agreement(backward, {"dX": (layer.backward(dout), torch_backward())}, "backward")
    return [forward, backward]


# ---------------------------------------------------------------------------------------------------
# LSTM and RNNCell


def _lstm_weights_to_torch(W: np.ndarray, b: np.ndarray, hidden_size: int) -> dict[str, np.ndarray]:
    """Map LSTMCell's W (H + D, 4H) and b (4H,) to the parameters of torch.nn.LSTM.

    The course computes [h_prev, x_t] @ W + b with gate blocks f, i, o, g. PyTorch computes
    x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh with gate blocks i, f, g, o. So the blocks are reordered,
    the first H rows of W (those that multiply h_prev) become W_hh^T, and the others become W_ih^T.
    """
    H = hidden_size
    blocks = {gate: slice(index * H, (index + 1) * H) for index, gate in enumerate("fiog")}
    W_torch_order = np.concatenate([W[:, blocks[gate]] for gate in "ifgo"], axis=1)
    b_torch_order = np.concatenate([b[blocks[gate]] for gate in "ifgo"])
    return {
        "weight_ih_l0": W_torch_order[H:].T,
        "weight_hh_l0": W_torch_order[:H].T,
        "bias_ih_l0": b_torch_order,
        "bias_hh_l0": np.zeros_like(b_torch_order),
    }


def lstm_cases(torch: Any, dtype: np.dtype, shape: SequenceShape, rng: np.random.Generator) -> list[LayerCase]:
    """Return the LSTM sequence forward and backward cases. Backward computes d_inputs, dW and db.

    The reference backward consumes the steps that forward pushed onto the cell's stack, so each
    timed backward call follows an untimed forward.
    """
    s = shape
    layer = solutions.LSTM(s.D, s.H)
    # Weights of standard deviation 1 / sqrt(H + D) keep the gates away from saturation.
    layer.cell.W = (rng.standard_normal(layer.cell.W.shape) / np.sqrt(s.H + s.D)).astype(dtype)
    layer.cell.b = (rng.standard_normal(layer.cell.b.shape) * 0.1).astype(dtype)
    inputs = rng.standard_normal((s.T, s.N, s.D)).astype(dtype)
    d_hidden_states = rng.standard_normal((s.T, s.N, s.H)).astype(dtype)

    torch_lstm = torch.nn.LSTM(s.D, s.H, dtype=getattr(torch, np.dtype(dtype).name))
    _load_state(torch, torch_lstm, _lstm_weights_to_torch(layer.cell.W, layer.cell.b, s.H))
    inputs_torch = torch.from_numpy(inputs).requires_grad_(True)
    d_hidden_states_torch = torch.from_numpy(d_hidden_states)
    hidden_states_torch, _ = torch_lstm(inputs_torch)
    gradient_targets = [inputs_torch, *torch_lstm.parameters()]

    def torch_forward() -> Any:
        with torch.no_grad():
            return torch_lstm(inputs_torch)[0]

    def torch_backward() -> Any:
        return torch.autograd.grad(hidden_states_torch, gradient_targets, d_hidden_states_torch, retain_graph=True)

    def reference_backward() -> np.ndarray:
        return layer.backward(d_hidden_states)

    forward = _new_case(
        "LSTM",
        "forward",
        "hidden states",
        dtype,
        s,
        Contender(lambda: layer.forward(inputs)),
        Contender(torch_forward),
    )
    _agreement(forward, {"hidden states": (layer.forward(inputs), torch_forward())}, "forward")

    backward = _new_case(
        "LSTM",
        "backward",
        "d_inputs, dW, db",
        dtype,
        s,
        Contender(reference_backward, setup=lambda: layer.forward(inputs)),
        Contender(torch_backward),
    )
    layer.forward(inputs)
    d_inputs = reference_backward()
    d_inputs_torch, dW_ih_torch, dW_hh_torch, db_ih_torch, _ = torch_backward()
    gradients_in_torch_layout = _lstm_weights_to_torch(layer.cell.dW, layer.cell.db, s.H)
    gradients = {
        "d_inputs": (d_inputs, d_inputs_torch),
        "dW (input rows)": (gradients_in_torch_layout["weight_ih_l0"], dW_ih_torch),
        "dW (hidden rows)": (gradients_in_torch_layout["weight_hh_l0"], dW_hh_torch),
        "db": (gradients_in_torch_layout["bias_ih_l0"], db_ih_torch),
    }
    _agreement(backward, gradients, "backward")
    return [forward, backward]


def rnn_cases(torch: Any, dtype: np.dtype, shape: SequenceShape, rng: np.random.Generator) -> list[LayerCase]:
    """Return the RNNCell forward and backward cases, with PyTorch's nn.RNN followed by nn.Linear."""
    s = shape
    layer = solutions.RNNCell(s.D, s.H, s.O)
    layer.W_xh = (rng.standard_normal((s.D, s.H)) / np.sqrt(s.D)).astype(dtype)
    layer.W_hh = (rng.standard_normal((s.H, s.H)) / np.sqrt(s.H)).astype(dtype)
    layer.W_hy = (rng.standard_normal((s.H, s.O)) / np.sqrt(s.H)).astype(dtype)
    layer.b_h = (rng.standard_normal(s.H) * 0.1).astype(dtype)
    layer.b_y = (rng.standard_normal(s.O) * 0.1).astype(dtype)
    inputs = rng.standard_normal((s.T, s.N, s.D)).astype(dtype)
    d_outputs = rng.standard_normal((s.T, s.N, s.O)).astype(dtype)

    torch_dtype = getattr(torch, np.dtype(dtype).name)
    torch_rnn = torch.nn.RNN(s.D, s.H, nonlinearity="tanh", dtype=torch_dtype)
    torch_linear = torch.nn.Linear(s.H, s.O, dtype=torch_dtype)
    # The course's matrices are (input, output) and PyTorch's are (output, input). PyTorch adds two
    # hidden biases, so b_h goes into one of them.
    rnn_state = {
        "weight_ih_l0": layer.W_xh.T,
        "weight_hh_l0": layer.W_hh.T,
        "bias_ih_l0": layer.b_h,
        "bias_hh_l0": np.zeros_like(layer.b_h),
    }
    _load_state(torch, torch_rnn, rnn_state)
    _load_state(torch, torch_linear, {"weight": layer.W_hy.T, "bias": layer.b_y})
    inputs_torch = torch.from_numpy(inputs).requires_grad_(True)
    d_outputs_torch = torch.from_numpy(d_outputs)
    outputs_torch = torch_linear(torch_rnn(inputs_torch)[0])
    gradient_targets = [inputs_torch, *torch_rnn.parameters(), *torch_linear.parameters()]

    def torch_forward() -> Any:
        with torch.no_grad():
            hidden_states = torch_rnn(inputs_torch)[0]
            return torch_linear(hidden_states), hidden_states

    def torch_backward() -> Any:
        return torch.autograd.grad(outputs_torch, gradient_targets, d_outputs_torch, retain_graph=True)

    forward = _new_case(
        "RNNCell",
        "forward",
        "outputs, hidden states",
        dtype,
        s,
        Contender(lambda: layer.forward(inputs)),
        Contender(torch_forward),
    )
    outputs, hidden_states = layer.forward(inputs)
    outputs_torch_no_grad, hidden_states_torch = torch_forward()
    results = {"outputs": (outputs, outputs_torch_no_grad), "hidden states": (hidden_states, hidden_states_torch)}
    _agreement(forward, results, "forward")

    backward = _new_case(
        "RNNCell",
        "backward",
        "d_inputs and 5 parameter gradients",
        dtype,
        s,
        Contender(lambda: layer.backward(d_outputs)),
        Contender(torch_backward),
    )
    d_inputs = layer.backward(d_outputs)
    d_inputs_torch, dW_ih, dW_hh, db_ih, _, dW_linear, db_linear = torch_backward()
    gradients = {
        "d_inputs": (d_inputs, d_inputs_torch),
        "dW_xh": (layer.dW_xh.T, dW_ih),
        "dW_hh": (layer.dW_hh.T, dW_hh),
        "db_h": (layer.db_h, db_ih),
        "dW_hy": (layer.dW_hy.T, dW_linear),
        "db_y": (layer.db_y, db_linear),
    }
    _agreement(backward, gradients, "backward")
    return [forward, backward]


def all_cases(torch: Any, dtypes: tuple[str, ...] = ("float64", "float32"), seed: int = 0) -> list[LayerCase]:
    """Build every reference-against-PyTorch case, for each dtype, in the order the table prints them."""
    rng = np.random.default_rng(seed)
    cases: list[LayerCase] = []
    for dtype in map(np.dtype, dtypes):
        cases += conv2d_cases(torch, dtype, CONV_SHAPE, rng)
        for pool_shape in POOL_SHAPES:
            cases += maxpool2d_cases(torch, dtype, pool_shape, rng)
        cases += lstm_cases(torch, dtype, LSTM_SHAPE, rng)
        cases += rnn_cases(torch, dtype, RNN_SHAPE, rng)
    return cases
