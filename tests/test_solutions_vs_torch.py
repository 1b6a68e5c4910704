"""Compare the reference layers in solutions/ with PyTorch on the CPU in float64.

PyTorch is an independent oracle here: it shares no code with the references, so agreement to
within MAX_ABS_DIFFERENCE on many random configurations means that the references implement the
course's conventions. The RNN and LSTM weights need an explicit mapping, because PyTorch stores
them transposed, in another gate order and with two biases.

Tests at the end check properties that need no oracle: initialisation, dtypes and input checks.
"""

import zlib
from typing import NamedTuple

import numpy as np
import pytest
from conftest import require_module, running_in_ci

import solutions

# Both sides compute in float64, whose machine epsilon is 2.2e-16, but they sum in different orders.
# The largest difference on these configurations is 3e-14. A wrong LSTM gate order, for comparison,
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
