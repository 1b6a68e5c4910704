"""Compare the reference layers, forward and backward, with PyTorch on the CPU in float64.

PyTorch is an independent oracle here: it shares no code with the references, so agreement to
within MAX_ABS_DIFFERENCE on many random configurations means that the references implement the
course's conventions. Backward passes are compared with torch.autograd. The RNN and LSTM weights
need an explicit mapping, because PyTorch stores them transposed, in another gate order and with
two biases.

Tests at the end check properties that need no oracle: the tie rule of max pooling on inputs
worked out by hand, initialisation, dtypes and input checks.
"""

import re
import zlib
from typing import NamedTuple

import numpy as np
import pytest
from conftest import require_module, running_in_ci

import solutions
from autograder.tolerances import tolerance

# Both sides compute in float64, whose machine epsilon is 2.2e-16, but they sum in different orders.
# The largest difference on these configurations, forward and backward, is 3e-14. A wrong LSTM gate order, for comparison,
# gives differences near 1.
MAX_ABS_DIFFERENCE = 1e-10


def make_rng(test_id: str) -> np.random.Generator:
    """Return a generator seeded from the test id, so that every case is reproducible on its own."""
    return np.random.default_rng(zlib.crc32(test_id.encode()))


def read_only(array: np.ndarray) -> np.ndarray:
    """Mark an array read-only, so that a layer writing into its input raises ValueError."""
    array.flags.writeable = False
    return array


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Assert equal shapes, float64 dtype and a max abs difference within MAX_ABS_DIFFERENCE."""
    assert actual.shape == expected.shape
    assert actual.dtype == np.float64
    largest_difference = np.max(np.abs(actual - expected), initial=0.0)
    assert largest_difference <= MAX_ABS_DIFFERENCE, f"max abs difference {largest_difference:.3e}"


def scaled_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Return max |actual - expected| / max(1, |expected|), the error measure of autograder.tolerances."""
    difference = np.abs(actual.astype(np.float64) - expected)
    return float((difference / np.maximum(1.0, np.abs(expected))).max(initial=0.0))


# ---------------------------------------------------------------------------------------------------
# Weight mappings between the course's conventions and PyTorch's

LSTM_GATES = "fiog"
"""The order of the column blocks of LSTMCell.W and LSTMCell.b: forget, input, output, candidate."""

TORCH_LSTM_GATES = "ifgo"
"""The order of the row blocks of PyTorch's LSTM weights and biases: input, forget, candidate, output."""


def rnn_weights_to_torch(cell: solutions.RNNCell) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Map an RNNCell's parameters to state dicts for torch.nn.RNN and torch.nn.Linear.

    The course computes x_t W_xh with W_xh of shape (D, H), so the matrices are (input, output).
    PyTorch computes W x_t with W of shape (H, D), so every matrix is transposed. PyTorch adds two
    biases, b_ih + b_hh, so b_h goes into one of them and the other is zero. The output layer
    y_t = h_t W_hy + b_y is a torch.nn.Linear with weight W_hy^T.
    """
    rnn_state = {
        "weight_ih_l0": cell.W_xh.T,
        "weight_hh_l0": cell.W_hh.T,
        "bias_ih_l0": cell.b_h,
        "bias_hh_l0": np.zeros_like(cell.b_h),
    }
    linear_state = {"weight": cell.W_hy.T, "bias": cell.b_y}
    return rnn_state, linear_state


def lstm_weights_to_torch(W: np.ndarray, b: np.ndarray, hidden_size: int) -> dict[str, np.ndarray]:
    """Map an LSTMCell's W (H + D, 4H) and b (4H,) to the parameters of torch.nn.LSTMCell.

    The course computes [h_prev, x_t] @ W + b with column blocks f, i, o, g. PyTorch computes
    W_ih x_t + b_ih + W_hh h_prev + b_hh with W_ih (4H, D), W_hh (4H, H) and row blocks i, f, g, o.
    So the column blocks are reordered, the first H rows of W (those that multiply h_prev) become
    W_hh^T, the other D rows become W_ih^T, b becomes b_ih and b_hh is zero. For torch.nn.LSTM,
    append "_l0" to each key.
    """
    H = hidden_size
    block = {gate: slice(k * H, (k + 1) * H) for k, gate in enumerate(LSTM_GATES)}
    torch_order = [block[gate] for gate in TORCH_LSTM_GATES]

    W_reordered = np.concatenate([W[:, columns] for columns in torch_order], axis=1)
    b_reordered = np.concatenate([b[columns] for columns in torch_order])
    return {
        "weight_ih": W_reordered[H:].T,
        "weight_hh": W_reordered[:H].T,
        "bias_ih": b_reordered,
        "bias_hh": np.zeros_like(b_reordered),
    }


def load_numpy_state(torch, module, state: dict[str, np.ndarray]) -> None:
    """Copy numpy arrays into a torch module's parameters. Every parameter of the module must be given."""
    module.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in state.items()})


# ---------------------------------------------------------------------------------------------------
# Configurations


class ConvConfig(NamedTuple):
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
            f"N{self.N}-C{self.C}-H{self.H}-W{self.W}-F{self.F}"
            f"-k{self.kernel_size}-s{self.stride}-p{self.padding}"
        )


class PoolConfig(NamedTuple):
    N: int
    C: int
    H: int
    W: int
    kernel_size: int
    stride: int

    def __str__(self) -> str:
        return f"N{self.N}-C{self.C}-H{self.H}-W{self.W}-k{self.kernel_size}-s{self.stride}"


class SequenceConfig(NamedTuple):
    T: int
    N: int
    D: int
    H: int
    O: int = 0  # output size, used by the RNN only

    def __str__(self) -> str:
        output = f"-O{self.O}" if self.O else ""
        return f"T{self.T}-N{self.N}-D{self.D}-H{self.H}{output}"


def random_conv_configs(count: int, seed: int) -> list[ConvConfig]:
    """Draw convolution configurations with stride 1..3, padding 0..2 and a window that fits."""
    rng = np.random.default_rng(seed)
    configs: list[ConvConfig] = []
    while len(configs) < count:
        kernel_size, stride, padding = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(0, 3))
        H, W = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        if min(H, W) + 2 * padding < kernel_size:
            continue
        N, C, F = int(rng.integers(2, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 6))
        configs.append(ConvConfig(N, C, H, W, F, kernel_size, stride, padding))
    return configs


def random_pool_configs(count: int, seed: int) -> list[PoolConfig]:
    """Draw pooling configurations with kernel_size 1..4 and stride 1..3 whose window fits."""
    rng = np.random.default_rng(seed)
    configs: list[PoolConfig] = []
    while len(configs) < count:
        kernel_size, stride = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        H, W = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        if min(H, W) < kernel_size:
            continue
        configs.append(PoolConfig(int(rng.integers(2, 4)), int(rng.integers(1, 4)), H, W, kernel_size, stride))
    return configs


def random_sequence_configs(count: int, seed: int, with_output: bool) -> list[SequenceConfig]:
    """Draw sequence configurations with T 1..8, N 2..4 and sizes 1..7."""
    rng = np.random.default_rng(seed)
    return [
        SequenceConfig(
            T=int(rng.integers(1, 9)),
            N=int(rng.integers(2, 5)),
            D=int(rng.integers(1, 8)),
            H=int(rng.integers(1, 8)),
            O=int(rng.integers(1, 8)) if with_output else 0,
        )
        for _ in range(count)
    ]


CONV_CONFIGS = [
    ConvConfig(N=2, C=3, H=5, W=5, F=4, kernel_size=3, stride=1, padding=0),
    ConvConfig(N=2, C=3, H=7, W=5, F=4, kernel_size=3, stride=2, padding=1),
    ConvConfig(N=3, C=2, H=8, W=11, F=3, kernel_size=3, stride=3, padding=2),
    ConvConfig(N=2, C=1, H=6, W=9, F=2, kernel_size=5, stride=1, padding=2),
    # Padding larger than the kernel: the border outputs see only zeros, so they equal the bias.
    ConvConfig(N=2, C=2, H=3, W=4, F=3, kernel_size=1, stride=1, padding=2),
    # The kernel covers the whole padded input, so the output is 1 x 1.
    ConvConfig(N=2, C=2, H=3, W=3, F=2, kernel_size=5, stride=2, padding=1),
] + random_conv_configs(count=40, seed=2024)

POOL_CONFIGS = [
    PoolConfig(N=2, C=3, H=4, W=6, kernel_size=2, stride=2),
    PoolConfig(N=2, C=2, H=7, W=7, kernel_size=3, stride=2),
    PoolConfig(N=2, C=3, H=6, W=9, kernel_size=3, stride=1),
    PoolConfig(N=3, C=2, H=5, W=7, kernel_size=2, stride=2),
    PoolConfig(N=2, C=1, H=8, W=11, kernel_size=3, stride=3),
] + random_pool_configs(count=30, seed=2025)

RNN_CONFIGS = [
    SequenceConfig(T=1, N=3, D=4, H=5, O=2),
    SequenceConfig(T=20, N=2, D=3, H=8, O=4),
] + random_sequence_configs(count=20, seed=2026, with_output=True)

LSTM_CONFIGS = [
    SequenceConfig(T=1, N=3, D=4, H=5),
    SequenceConfig(T=12, N=2, D=3, H=6),
] + random_sequence_configs(count=20, seed=2027, with_output=False)


# ---------------------------------------------------------------------------------------------------
# Comparisons with PyTorch


@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_conv2d_matches_torch(torch_module, config: ConvConfig) -> None:
    torch = torch_module
    rng = make_rng(f"conv-{config}")
    layer = solutions.Conv2D(config.C, config.F, config.kernel_size, stride=config.stride, padding=config.padding)
    layer.filters = rng.standard_normal(layer.filters.shape)
    layer.bias = rng.standard_normal(layer.bias.shape)
    X = read_only(rng.standard_normal((config.N, config.C, config.H, config.W)))

    expected = torch.nn.functional.conv2d(
        torch.from_numpy(X.copy()),
        torch.from_numpy(layer.filters),
        torch.from_numpy(layer.bias),
        stride=config.stride,
        padding=config.padding,
    ).numpy()

    assert_close(layer.forward(X), expected)


@pytest.mark.parametrize("config", POOL_CONFIGS, ids=str)
def test_maxpool2d_matches_torch(torch_module, config: PoolConfig) -> None:
    torch = torch_module
    rng = make_rng(f"pool-{config}")
    layer = solutions.MaxPool2D(kernel_size=config.kernel_size, stride=config.stride)
    X = read_only(rng.standard_normal((config.N, config.C, config.H, config.W)))

    expected = torch.nn.functional.max_pool2d(
        torch.from_numpy(X.copy()), kernel_size=config.kernel_size, stride=config.stride
    ).numpy()

    assert_close(layer.forward(X), expected)


@pytest.mark.parametrize("config", RNN_CONFIGS, ids=str)
def test_rnn_matches_torch(torch_module, config: SequenceConfig) -> None:
    torch = torch_module
    rng = make_rng(f"rnn-{config}")
    cell = solutions.RNNCell(config.D, config.H, config.O)
    for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        setattr(cell, name, rng.standard_normal(getattr(cell, name).shape) * 0.7)
    inputs = read_only(rng.standard_normal((config.T, config.N, config.D)))

    torch_rnn = torch.nn.RNN(config.D, config.H, nonlinearity="tanh", dtype=torch.float64)
    torch_linear = torch.nn.Linear(config.H, config.O, dtype=torch.float64)
    rnn_state, linear_state = rnn_weights_to_torch(cell)
    load_numpy_state(torch, torch_rnn, rnn_state)
    load_numpy_state(torch, torch_linear, linear_state)
    with torch.no_grad():
        expected_hidden, _ = torch_rnn(torch.from_numpy(inputs.copy()))
        expected_outputs = torch_linear(expected_hidden)

    outputs, hidden_states = cell.forward(inputs)

    assert_close(hidden_states, expected_hidden.numpy())
    assert_close(outputs, expected_outputs.numpy())


@pytest.mark.parametrize("config", LSTM_CONFIGS, ids=str)
def test_lstm_cell_step_matches_torch(torch_module, config: SequenceConfig) -> None:
    torch = torch_module
    rng = make_rng(f"lstm-step-{config}")
    cell = solutions.LSTMCell(config.D, config.H)
    cell.W = rng.standard_normal(cell.W.shape)
    cell.b = rng.standard_normal(cell.b.shape)
    x_t = read_only(rng.standard_normal((config.N, config.D)))
    h_prev = read_only(rng.standard_normal((config.N, config.H)))
    c_prev = read_only(rng.standard_normal((config.N, config.H)) * 2.0)

    torch_cell = torch.nn.LSTMCell(config.D, config.H, dtype=torch.float64)
    load_numpy_state(torch, torch_cell, lstm_weights_to_torch(cell.W, cell.b, config.H))
    with torch.no_grad():
        expected_h, expected_c = torch_cell(
            torch.from_numpy(x_t.copy()), (torch.from_numpy(h_prev.copy()), torch.from_numpy(c_prev.copy()))
        )

    h_t, c_t = cell.forward_step(x_t, h_prev, c_prev)

    assert_close(h_t, expected_h.numpy())
    assert_close(c_t, expected_c.numpy())


@pytest.mark.parametrize("config", LSTM_CONFIGS, ids=str)
def test_lstm_forward_matches_torch(torch_module, config: SequenceConfig) -> None:
    torch = torch_module
    rng = make_rng(f"lstm-forward-{config}")
    layer = solutions.LSTM(config.D, config.H)
    layer.cell.W = rng.standard_normal(layer.cell.W.shape)
    layer.cell.b = rng.standard_normal(layer.cell.b.shape)
    inputs = read_only(rng.standard_normal((config.T, config.N, config.D)))

    torch_lstm = torch.nn.LSTM(config.D, config.H, dtype=torch.float64)
    state = lstm_weights_to_torch(layer.cell.W, layer.cell.b, config.H)
    load_numpy_state(torch, torch_lstm, {f"{name}_l0": value for name, value in state.items()})
    with torch.no_grad():
        expected, _ = torch_lstm(torch.from_numpy(inputs.copy()))

    assert_close(layer.forward(inputs), expected.numpy())


def test_lstm_saturated_gates_match_torch(torch_module) -> None:
    """Pre-activations of several hundred must give exact 0 and 1 gates without overflow warnings."""
    torch = torch_module
    rng = make_rng("lstm-saturated")
    cell = solutions.LSTMCell(3, 4)
    cell.W = rng.standard_normal(cell.W.shape) * 300.0
    cell.b = rng.standard_normal(cell.b.shape) * 300.0
    x_t, h_prev, c_prev = (rng.standard_normal((2, size)) for size in (3, 4, 4))

    torch_cell = torch.nn.LSTMCell(3, 4, dtype=torch.float64)
    load_numpy_state(torch, torch_cell, lstm_weights_to_torch(cell.W, cell.b, 4))
    with torch.no_grad():
        expected_h, expected_c = torch_cell(
            torch.from_numpy(x_t), (torch.from_numpy(h_prev), torch.from_numpy(c_prev))
        )

    # Underflow of exp(-|x|) to 0 is harmless, so only overflow and invalid operations raise.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        h_t, c_t = cell.forward_step(x_t, h_prev, c_prev)

    assert_close(h_t, expected_h.numpy())
    assert_close(c_t, expected_c.numpy())


# ---------------------------------------------------------------------------------------------------
# Backward passes compared with torch.autograd
#
# For an upstream gradient G, the loss L = sum(output * G) has dL/d output = G, so torch.autograd
# of L gives exactly the gradients that backward(G) must return and store.


def torch_leaf(torch, array: np.ndarray):
    """Return a float64 tensor copy of array that records its gradient."""
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def lstm_gradients_from_torch(
    weight_ih_grad: np.ndarray, weight_hh_grad: np.ndarray, bias_grad: np.ndarray, hidden_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map PyTorch's LSTM weight and bias gradients back to dW (H + D, 4H) and db (4H,).

    This inverts lstm_weights_to_torch: the row blocks i, f, g, o become the column blocks f, i, o, g,
    the transposed W_hh gradient gives the first H rows of dW and the transposed W_ih gradient the
    other D rows. b enters PyTorch's cell as b_ih, so db is the gradient of b_ih (equal to that of b_hh).
    """
    H = hidden_size
    torch_block = {gate: slice(k * H, (k + 1) * H) for k, gate in enumerate(TORCH_LSTM_GATES)}
    course_order = [torch_block[gate] for gate in LSTM_GATES]

    dW_hh = np.concatenate([weight_hh_grad[rows] for rows in course_order]).T
    dW_ih = np.concatenate([weight_ih_grad[rows] for rows in course_order]).T
    db = np.concatenate([bias_grad[rows] for rows in course_order])
    return np.concatenate([dW_hh, dW_ih]), db


@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_conv2d_backward_matches_torch(torch_module, config: ConvConfig) -> None:
    torch = torch_module
    rng = make_rng(f"conv-backward-{config}")
    layer = solutions.Conv2D(config.C, config.F, config.kernel_size, stride=config.stride, padding=config.padding)
    layer.filters = rng.standard_normal(layer.filters.shape)
    layer.bias = rng.standard_normal(layer.bias.shape)
    X = read_only(rng.standard_normal((config.N, config.C, config.H, config.W)))

    out = layer.forward(X)
    dout = read_only(rng.standard_normal(out.shape))
    dX = layer.backward(dout)

    X_torch, filters_torch, bias_torch = (torch_leaf(torch, a) for a in (X, layer.filters, layer.bias))
    out_torch = torch.nn.functional.conv2d(
        X_torch, filters_torch, bias_torch, stride=config.stride, padding=config.padding
    )
    (out_torch * torch.from_numpy(dout.copy())).sum().backward()

    assert_close(dX, X_torch.grad.numpy())
    assert_close(layer.dfilters, filters_torch.grad.numpy())
    assert_close(layer.dbias, bias_torch.grad.numpy())


@pytest.mark.parametrize("config", POOL_CONFIGS, ids=str)
def test_maxpool2d_backward_matches_torch(torch_module, config: PoolConfig) -> None:
    torch = torch_module
    rng = make_rng(f"pool-backward-{config}")
    layer = solutions.MaxPool2D(kernel_size=config.kernel_size, stride=config.stride)
    X = read_only(rng.standard_normal((config.N, config.C, config.H, config.W)))

    out = layer.forward(X)
    dout = read_only(rng.standard_normal(out.shape))
    dX = layer.backward(dout)

    X_torch = torch_leaf(torch, X)
    out_torch = torch.nn.functional.max_pool2d(X_torch, kernel_size=config.kernel_size, stride=config.stride)
    (out_torch * torch.from_numpy(dout.copy())).sum().backward()

    assert_close(dX, X_torch.grad.numpy())


@pytest.mark.parametrize("config", RNN_CONFIGS, ids=str)
def test_rnn_backward_matches_torch(torch_module, config: SequenceConfig) -> None:
    torch = torch_module
    rng = make_rng(f"rnn-backward-{config}")
    cell = solutions.RNNCell(config.D, config.H, config.O)
    for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        setattr(cell, name, rng.standard_normal(getattr(cell, name).shape) * 0.7)
    inputs = read_only(rng.standard_normal((config.T, config.N, config.D)))

    outputs, _ = cell.forward(inputs)
    d_outputs = read_only(rng.standard_normal(outputs.shape))
    d_inputs = cell.backward(d_outputs)

    torch_rnn = torch.nn.RNN(config.D, config.H, nonlinearity="tanh", dtype=torch.float64)
    torch_linear = torch.nn.Linear(config.H, config.O, dtype=torch.float64)
    rnn_state, linear_state = rnn_weights_to_torch(cell)
    load_numpy_state(torch, torch_rnn, rnn_state)
    load_numpy_state(torch, torch_linear, linear_state)
    inputs_torch = torch_leaf(torch, inputs)
    hidden_torch, _ = torch_rnn(inputs_torch)
    (torch_linear(hidden_torch) * torch.from_numpy(d_outputs.copy())).sum().backward()

    assert_close(d_inputs, inputs_torch.grad.numpy())
    assert_close(cell.dW_xh, torch_rnn.weight_ih_l0.grad.numpy().T)
    assert_close(cell.dW_hh, torch_rnn.weight_hh_l0.grad.numpy().T)
    assert_close(cell.db_h, torch_rnn.bias_ih_l0.grad.numpy())
    assert_close(cell.dW_hy, torch_linear.weight.grad.numpy().T)
    assert_close(cell.db_y, torch_linear.bias.grad.numpy())


@pytest.mark.parametrize("config", LSTM_CONFIGS, ids=str)
def test_lstm_cell_backward_step_matches_torch(torch_module, config: SequenceConfig) -> None:
    torch = torch_module
    rng = make_rng(f"lstm-backward-step-{config}")
    cell = solutions.LSTMCell(config.D, config.H)
    cell.W = rng.standard_normal(cell.W.shape)
    cell.b = rng.standard_normal(cell.b.shape)
    x_t = read_only(rng.standard_normal((config.N, config.D)))
    h_prev = read_only(rng.standard_normal((config.N, config.H)))
    c_prev = read_only(rng.standard_normal((config.N, config.H)) * 2.0)
    dh_t = read_only(rng.standard_normal((config.N, config.H)))
    dc_t = read_only(rng.standard_normal((config.N, config.H)))

    cell.forward_step(x_t, h_prev, c_prev)
    dx_t, dh_prev, dc_prev = cell.backward_step(dh_t, dc_t)

    torch_cell = torch.nn.LSTMCell(config.D, config.H, dtype=torch.float64)
    load_numpy_state(torch, torch_cell, lstm_weights_to_torch(cell.W, cell.b, config.H))
    x_torch, h_torch, c_torch = (torch_leaf(torch, a) for a in (x_t, h_prev, c_prev))
    h_next, c_next = torch_cell(x_torch, (h_torch, c_torch))
    ((h_next * torch.from_numpy(dh_t.copy())).sum() + (c_next * torch.from_numpy(dc_t.copy())).sum()).backward()
    expected_dW, expected_db = lstm_gradients_from_torch(
        torch_cell.weight_ih.grad.numpy(), torch_cell.weight_hh.grad.numpy(), torch_cell.bias_ih.grad.numpy(), config.H
    )

    assert_close(dx_t, x_torch.grad.numpy())
    assert_close(dh_prev, h_torch.grad.numpy())
    assert_close(dc_prev, c_torch.grad.numpy())
    assert_close(cell.dW, expected_dW)
    assert_close(cell.db, expected_db)
    assert cell.cache == []


def test_lstm_cell_two_steps_last_in_first_out(torch_module) -> None:
    """Two forward_steps, then two backward_steps: the second step comes back first, and dW adds up."""
    torch = torch_module
    rng = make_rng("lstm-two-steps")
    N, D, H = 3, 4, 5
    cell = solutions.LSTMCell(D, H)
    cell.W = rng.standard_normal(cell.W.shape)
    cell.b = rng.standard_normal(cell.b.shape)
    x_1, x_2 = (read_only(rng.standard_normal((N, D))) for _ in range(2))
    h_0, c_0 = read_only(rng.standard_normal((N, H))), read_only(rng.standard_normal((N, H)))
    dh_1, dh_2, dc_2 = (read_only(rng.standard_normal((N, H))) for _ in range(3))

    h_1, c_1 = cell.forward_step(x_1, h_0, c_0)
    cell.forward_step(x_2, h_1, c_1)
    dx_2, dh_1_from_step_2, dc_1 = cell.backward_step(dh_2, dc_2)
    dx_1, dh_0, dc_0 = cell.backward_step(dh_1 + dh_1_from_step_2, dc_1)

    torch_cell = torch.nn.LSTMCell(D, H, dtype=torch.float64)
    load_numpy_state(torch, torch_cell, lstm_weights_to_torch(cell.W, cell.b, H))
    x_1_torch, x_2_torch, h_0_torch, c_0_torch = (torch_leaf(torch, a) for a in (x_1, x_2, h_0, c_0))
    h_1_torch, c_1_torch = torch_cell(x_1_torch, (h_0_torch, c_0_torch))
    h_2_torch, c_2_torch = torch_cell(x_2_torch, (h_1_torch, c_1_torch))
    loss = sum(
        (value * torch.from_numpy(gradient.copy())).sum()
        for value, gradient in ((h_1_torch, dh_1), (h_2_torch, dh_2), (c_2_torch, dc_2))
    )
    loss.backward()
    expected_dW, expected_db = lstm_gradients_from_torch(
        torch_cell.weight_ih.grad.numpy(), torch_cell.weight_hh.grad.numpy(), torch_cell.bias_ih.grad.numpy(), H
    )

    assert_close(dx_2, x_2_torch.grad.numpy())
    assert_close(dx_1, x_1_torch.grad.numpy())
    assert_close(dh_0, h_0_torch.grad.numpy())
    assert_close(dc_0, c_0_torch.grad.numpy())
    assert_close(cell.dW, expected_dW)
    assert_close(cell.db, expected_db)


@pytest.mark.parametrize("config", LSTM_CONFIGS, ids=str)
def test_lstm_backward_matches_torch(torch_module, config: SequenceConfig) -> None:
    torch = torch_module
    rng = make_rng(f"lstm-backward-{config}")
    layer = solutions.LSTM(config.D, config.H)
    layer.cell.W = rng.standard_normal(layer.cell.W.shape)
    layer.cell.b = rng.standard_normal(layer.cell.b.shape)
    inputs = read_only(rng.standard_normal((config.T, config.N, config.D)))

    # A first forward and backward leave gradients behind, which the second backward must reset.
    layer.backward(rng.standard_normal(layer.forward(inputs).shape))
    hidden_states = layer.forward(inputs)
    d_hidden_states = read_only(rng.standard_normal(hidden_states.shape))
    d_inputs = layer.backward(d_hidden_states)

    torch_lstm = torch.nn.LSTM(config.D, config.H, dtype=torch.float64)
    state = lstm_weights_to_torch(layer.cell.W, layer.cell.b, config.H)
    load_numpy_state(torch, torch_lstm, {f"{name}_l0": value for name, value in state.items()})
    inputs_torch = torch_leaf(torch, inputs)
    hidden_torch, _ = torch_lstm(inputs_torch)
    (hidden_torch * torch.from_numpy(d_hidden_states.copy())).sum().backward()
    expected_dW, expected_db = lstm_gradients_from_torch(
        torch_lstm.weight_ih_l0.grad.numpy(),
        torch_lstm.weight_hh_l0.grad.numpy(),
        torch_lstm.bias_ih_l0.grad.numpy(),
        config.H,
    )

    assert_close(d_inputs, inputs_torch.grad.numpy())
    assert_close(layer.cell.dW, expected_dW)
    assert_close(layer.cell.db, expected_db)


@pytest.mark.parametrize("config", CONV_CONFIGS, ids=str)
def test_conv2d_forward_fast_matches_torch(torch_module, config: ConvConfig) -> None:
    torch = torch_module
    rng = make_rng(f"conv-fast-{config}")
    filters = read_only(rng.standard_normal((config.F, config.C, config.kernel_size, config.kernel_size)))
    bias = read_only(rng.standard_normal(config.F))
    X = read_only(rng.standard_normal((config.N, config.C, config.H, config.W)))

    expected = torch.nn.functional.conv2d(
        torch.from_numpy(X.copy()),
        torch.from_numpy(filters.copy()),
        torch.from_numpy(bias.copy()),
        stride=config.stride,
        padding=config.padding,
    ).numpy()

    assert_close(solutions.conv2d_forward_fast(X, filters, bias, config.stride, config.padding), expected)


# ---------------------------------------------------------------------------------------------------
# The tie rule of MaxPool2D.backward, on inputs whose expected gradient is worked out by hand


def test_maxpool2d_backward_ties_go_to_first_maximum() -> None:
    X = np.array(
        [
            [5.0, 5.0, 0.0, 1.0],
            [1.0, 5.0, 1.0, 1.0],
            [2.0, 3.0, 7.0, 0.0],
            [3.0, 1.0, 0.0, 7.0],
        ]
    )[np.newaxis, np.newaxis]
    dout = np.array([[1.0, 2.0], [3.0, 4.0]])[np.newaxis, np.newaxis]
    # Window (0, 0): three entries tie at 5, the first is (0, 0). Window (0, 1): three tie at 1, the
    # first in row-major order is (0, 3). Window (1, 0): (2, 1) and (3, 0) tie at 3, and row 2 comes
    # first. Window (1, 1): (2, 2) and (3, 3) tie at 7.
    expected = np.array(
        [
            [1.0, 0.0, 0.0, 2.0],
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 3.0, 4.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )[np.newaxis, np.newaxis]
    layer = solutions.MaxPool2D(kernel_size=2, stride=2)

    layer.forward(X)

    np.testing.assert_array_equal(layer.backward(dout), expected)


def test_maxpool2d_backward_ties_in_overlapping_windows_add_up() -> None:
    X = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])[np.newaxis, np.newaxis]
    dout = np.array([[1.0, 2.0], [3.0, 4.0]])[np.newaxis, np.newaxis]
    # With kernel_size 2 and stride 1, the first maximum of windows (0, 0) and (0, 1) is pixel (0, 1),
    # and that of windows (1, 0) and (1, 1) is pixel (1, 1), so each of them collects two gradients.
    expected = np.array([[0.0, 1.0 + 2.0, 0.0], [0.0, 3.0 + 4.0, 0.0], [0.0, 0.0, 0.0]])[np.newaxis, np.newaxis]
    layer = solutions.MaxPool2D(kernel_size=2, stride=1)

    layer.forward(X)

    np.testing.assert_array_equal(layer.backward(dout), expected)


def test_maxpool2d_backward_constant_image() -> None:
    """Every window of a constant image ties everywhere, so each gradient goes to its window's top-left pixel."""
    layer = solutions.MaxPool2D(kernel_size=3, stride=2)
    X = np.full((2, 3, 7, 9), 0.5)
    dout = make_rng("constant-image").standard_normal((2, 3, 3, 4))

    layer.forward(X)
    dX = layer.backward(dout)

    expected = np.zeros_like(X)
    expected[:, :, 0:6:2, 0:8:2] = dout
    np.testing.assert_array_equal(dX, expected)


def test_maxpool2d_tie_rule_agrees_with_torch(torch_module) -> None:
    """PyTorch's CPU max_pool2d also sends the gradient of a tied window to its first maximum."""
    torch = torch_module
    rng = make_rng("pool-ties-torch")
    X = rng.integers(0, 3, (2, 3, 9, 8)).astype(np.float64)
    layer = solutions.MaxPool2D(kernel_size=3, stride=2)
    dout = rng.standard_normal(layer.forward(X).shape)

    X_torch = torch_leaf(torch, X)
    (torch.nn.functional.max_pool2d(X_torch, 3, 2) * torch.from_numpy(dout)).sum().backward()

    assert_close(layer.backward(dout), X_torch.grad.numpy())


# ---------------------------------------------------------------------------------------------------
# Properties that need no oracle


def test_conv2d_he_initialisation() -> None:
    np.random.seed(0)
    layer = solutions.Conv2D(in_channels=16, out_channels=64, kernel_size=3)

    assert layer.filters.shape == (64, 16, 3, 3)
    assert layer.bias.shape == (64,)
    assert np.all(layer.bias == 0)
    # 9216 draws: the sample standard deviation is within 3% of sqrt(2 / 144) with high probability.
    assert layer.filters.std() == pytest.approx(np.sqrt(2.0 / (16 * 3 * 3)), rel=0.03)


def test_layer_attributes_and_shapes() -> None:
    conv = solutions.Conv2D(3, 8, 5, stride=2, padding=1)
    pool = solutions.MaxPool2D()
    rnn = solutions.RNNCell(input_size=4, hidden_size=6, output_size=2)
    lstm = solutions.LSTM(input_size=4, hidden_size=6)

    assert (conv.kernel_size, conv.stride, conv.padding) == (5, 2, 1)
    assert (pool.kernel_size, pool.stride) == (2, 2)
    assert [getattr(rnn, name).shape for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y")] == [
        (4, 6),
        (6, 6),
        (6, 2),
        (6,),
        (2,),
    ]
    assert isinstance(lstm.cell, solutions.LSTMCell)
    assert lstm.cell.W.shape == (10, 24)
    assert lstm.cell.b.shape == (24,)


def test_float32_input_keeps_dtype() -> None:
    rng = make_rng("float32")
    images = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    sequence = rng.standard_normal((3, 2, 4)).astype(np.float32)

    assert solutions.Conv2D(3, 2, 3, padding=1).forward(images).dtype == np.float32
    assert solutions.MaxPool2D().forward(images).dtype == np.float32
    outputs, hidden_states = solutions.RNNCell(4, 5, 2).forward(sequence)
    assert outputs.dtype == np.float32
    assert hidden_states.dtype == np.float32
    assert solutions.LSTM(4, 5).forward(sequence).dtype == np.float32


def test_float32_backward_keeps_dtype() -> None:
    rng = make_rng("float32-backward")
    images = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    sequence = rng.standard_normal((3, 2, 4)).astype(np.float32)
    conv = solutions.Conv2D(3, 2, 3, padding=1)
    conv.filters = conv.filters.astype(np.float32)
    conv.bias = conv.bias.astype(np.float32)
    pool = solutions.MaxPool2D()
    rnn = solutions.RNNCell(4, 5, 2)
    for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        setattr(rnn, name, getattr(rnn, name).astype(np.float32))
    lstm = solutions.LSTM(4, 5)
    lstm.cell.W = lstm.cell.W.astype(np.float32)
    lstm.cell.b = lstm.cell.b.astype(np.float32)

    dX_conv = conv.backward(np.ones_like(conv.forward(images)))
    dX_pool = pool.backward(np.ones_like(pool.forward(images)))
    d_inputs_rnn = rnn.backward(np.ones_like(rnn.forward(sequence)[0]))
    d_inputs_lstm = lstm.backward(np.ones_like(lstm.forward(sequence)))

    assert dX_conv.dtype == np.float32
    assert conv.dfilters.dtype == np.float32
    assert conv.dbias.dtype == np.float32
    assert dX_pool.dtype == np.float32
    assert d_inputs_rnn.dtype == np.float32
    for name in ("dW_xh", "dW_hh", "dW_hy", "db_h", "db_y"):
        assert getattr(rnn, name).dtype == np.float32, name
    assert d_inputs_lstm.dtype == np.float32
    assert lstm.cell.dW.dtype == np.float32
    assert lstm.cell.db.dtype == np.float32


def test_float32_backward_within_tolerance() -> None:
    """float32 gradients differ from float64 ones by rounding only, within the float32 backward tolerance."""
    rng = make_rng("float32-backward-values")
    limit = tolerance("float32", "backward")
    inputs = rng.standard_normal((12, 3, 4))
    d_outputs = rng.standard_normal((12, 3, 2))
    cells = {dtype: solutions.RNNCell(4, 5, 2) for dtype in (np.float64, np.float32)}
    names = ("W_xh", "W_hh", "W_hy", "b_h", "b_y")
    parameters = {name: rng.standard_normal(getattr(cells[np.float64], name).shape) * 0.7 for name in names}
    for dtype, cell in cells.items():
        for name, value in parameters.items():
            setattr(cell, name, value.astype(dtype))
        cell.forward(inputs.astype(dtype))

    d_inputs = {dtype: cell.backward(d_outputs.astype(dtype)) for dtype, cell in cells.items()}

    assert scaled_error(d_inputs[np.float32], d_inputs[np.float64]) <= limit
    for name in parameters:
        assert scaled_error(getattr(cells[np.float32], "d" + name), getattr(cells[np.float64], "d" + name)) <= limit


def test_conv2d_forward_fast_equals_layer() -> None:
    rng = make_rng("conv-fast-layer")
    layer = solutions.Conv2D(3, 4, 3, stride=2, padding=1)
    layer.bias = rng.standard_normal(4)
    X = rng.standard_normal((2, 3, 9, 6))

    fast = solutions.conv2d_forward_fast(X, layer.filters, layer.bias, 2, 1)

    np.testing.assert_array_equal(fast, layer.forward(X))


def test_backward_before_forward_raises() -> None:
    with pytest.raises(RuntimeError, match="call forward first"):
        solutions.Conv2D(3, 2, 3).backward(np.zeros((1, 2, 3, 3)))
    with pytest.raises(RuntimeError, match="call forward first"):
        solutions.MaxPool2D().backward(np.zeros((1, 2, 3, 3)))
    with pytest.raises(RuntimeError, match="call forward first"):
        solutions.RNNCell(3, 4, 2).backward(np.zeros((2, 1, 2)))
    with pytest.raises(RuntimeError, match="call forward first"):
        solutions.LSTM(3, 4).backward(np.zeros((2, 1, 4)))
    with pytest.raises(RuntimeError, match="no forward_step left"):
        solutions.LSTMCell(3, 4).backward_step(np.zeros((1, 4)), np.zeros((1, 4)))


def test_lstm_cell_stack_empties_after_backward() -> None:
    rng = make_rng("lstm-stack")
    cell = solutions.LSTMCell(3, 4)
    h, c = np.zeros((2, 4)), np.zeros((2, 4))
    for _ in range(3):
        h, c = cell.forward_step(rng.standard_normal((2, 3)), h, c)

    for _ in range(3):
        cell.backward_step(np.ones((2, 4)), np.zeros((2, 4)))

    assert cell.cache == []
    with pytest.raises(RuntimeError, match="no forward_step left"):
        cell.backward_step(np.ones((2, 4)), np.zeros((2, 4)))


def test_lstm_cell_gradients_start_at_zero() -> None:
    cell = solutions.LSTMCell(3, 4)

    assert cell.dW.shape == (7, 16)
    assert cell.db.shape == (16,)
    assert not cell.dW.any()
    assert not cell.db.any()


def forward_then(forward_input: tuple[np.ndarray, ...], backward_input: tuple[np.ndarray, ...], step: bool = False):
    """Return a call that runs forward (or forward_step) on one input, then backward on another."""

    def call(layer) -> None:
        if step:
            layer.forward_step(*forward_input)
            layer.backward_step(*backward_input)
        else:
            layer.forward(*forward_input)
            layer.backward(*backward_input)

    return call


@pytest.mark.parametrize(
    ("layer", "call", "message"),
    [
        (
            solutions.Conv2D(3, 2, 3),
            forward_then((np.zeros((2, 3, 5, 5)),), (np.zeros((2, 2, 4, 3)),)),
            "shape of the last forward's output (2, 2, 3, 3)",
        ),
        (
            solutions.MaxPool2D(2, 2),
            forward_then((np.zeros((2, 3, 5, 5)),), (np.zeros((2, 3, 3, 3)),)),
            "shape of the last forward's output (2, 3, 2, 2)",
        ),
        (
            solutions.RNNCell(4, 3, 2),
            forward_then((np.zeros((5, 2, 4)),), (np.zeros((5, 2, 3)),)),
            "d_outputs of shape (5, 2, 2)",
        ),
        (
            solutions.LSTM(4, 3),
            forward_then((np.zeros((5, 2, 4)),), (np.zeros((5, 2, 4)),)),
            "d_hidden_states of shape (T, N, 3)",
        ),
        (
            solutions.LSTMCell(4, 3),
            forward_then(
                (np.zeros((2, 4)), np.zeros((2, 3)), np.zeros((2, 3))), (np.zeros((2, 3)), np.zeros((1, 3))), step=True
            ),
            "dc_t of shape (2, 3)",
        ),
    ],
    ids=["conv", "pool", "rnn", "lstm", "lstm-cell"],
)
def test_backward_wrong_gradient_shape_raises(layer, call, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call(layer)


def test_lstm_cell_wrong_gradient_shape_keeps_step() -> None:
    """A rejected backward_step leaves its step on the stack, so a corrected call still works."""
    cell = solutions.LSTMCell(4, 3)
    cell.forward_step(np.ones((2, 4)), np.zeros((2, 3)), np.zeros((2, 3)))

    with pytest.raises(ValueError):
        cell.backward_step(np.zeros((2, 4)), np.zeros((2, 3)))

    assert len(cell.cache) == 1


def test_empty_sequence_backward() -> None:
    rnn = solutions.RNNCell(3, 4, 2)
    lstm = solutions.LSTM(3, 4)
    rnn.forward(np.zeros((0, 2, 3)))
    lstm.forward(np.zeros((0, 2, 3)))

    assert rnn.backward(np.zeros((0, 2, 2))).shape == (0, 2, 3)
    assert not rnn.dW_hh.any()
    assert lstm.backward(np.zeros((0, 2, 4))).shape == (0, 2, 3)
    assert not lstm.cell.dW.any()


def test_conv2d_integer_input_gives_float64() -> None:
    images = np.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4)
    layer = solutions.Conv2D(1, 1, 2)
    layer.filters = np.ones((1, 1, 2, 2))

    out = layer.forward(images)

    assert out.dtype == np.float64
    assert out[0, 0, 0, 0] == 0 + 1 + 4 + 5


def test_empty_sequence_gives_empty_outputs() -> None:
    outputs, hidden_states = solutions.RNNCell(3, 4, 2).forward(np.zeros((0, 2, 3)))

    assert outputs.shape == (0, 2, 2)
    assert hidden_states.shape == (0, 2, 4)
    assert solutions.LSTM(3, 4).forward(np.zeros((0, 2, 3))).shape == (0, 2, 4)


@pytest.mark.parametrize(
    ("layer", "call", "message"),
    [
        (solutions.Conv2D(3, 2, 3), lambda layer: layer.forward(np.zeros((3, 5, 5))), "(N, C, H, W)"),
        (solutions.Conv2D(3, 2, 3), lambda layer: layer.forward(np.zeros((1, 2, 5, 5))), "3 input channels"),
        (solutions.Conv2D(3, 2, 5), lambda layer: layer.forward(np.zeros((1, 3, 4, 9))), "smaller than the kernel"),
        (solutions.MaxPool2D(3, 1), lambda layer: layer.forward(np.zeros((1, 1, 2, 5))), "smaller than the kernel"),
        (solutions.RNNCell(4, 3, 2), lambda layer: layer.forward(np.zeros((5, 2, 3))), "(T, N, 4)"),
        (solutions.LSTM(4, 3), lambda layer: layer.forward(np.zeros((2, 4))), "(T, N, 4)"),
        (
            solutions.LSTMCell(4, 3),
            lambda layer: layer.forward_step(np.zeros((2, 4)), np.zeros((2, 3)), np.zeros((1, 3))),
            "c_prev (N, 3)",
        ),
    ],
    ids=[
        "conv-3d-input",
        "conv-wrong-channels",
        "conv-input-smaller-than-kernel",
        "pool-input-smaller-than-kernel",
        "rnn-wrong-input-size",
        "lstm-2d-input",
        "lstm-cell-wrong-state-shape",
    ],
)
def test_invalid_input_raises(layer, call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(layer)


# ---------------------------------------------------------------------------------------------------
# The require-a-dependency helpers in conftest.py


def test_missing_module_skips_outside_ci(monkeypatch) -> None:
    monkeypatch.setenv("CI", "false")

    with pytest.raises(pytest.skip.Exception, match="pip install no-such-package"):
        require_module("no_such_module_for_this_test", "pip install no-such-package")


def test_missing_module_fails_in_ci(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")

    assert running_in_ci()
    with pytest.raises(pytest.fail.Exception, match="pip install no-such-package"):
        require_module("no_such_module_for_this_test", "pip install no-such-package")


def test_installed_module_is_returned(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")

    assert require_module("numpy", "pip install numpy") is np
