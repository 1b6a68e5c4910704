"""Student implementations, correct and broken, written in the naive loop style of a first solution.

The correct ones follow the original week's notebook and must pass every group of every check.
Each broken one contains one mistake that students make, and BROKEN_LAYERS records which groups of
its check must catch it, so the tests prove that every check can fail and what each group is for.
"""

from typing import NamedTuple

import numpy as np

# ---------------------------------------------------------------------------------------------------
# Correct naive implementations


class NaiveConv2D:
    """Conv2D with four nested loops, as in the original notebook."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        scale = np.sqrt(2.0 / (in_channels * kernel_size * kernel_size))
        self.filters = np.random.randn(out_channels, in_channels, kernel_size, kernel_size) * scale
        self.bias = np.zeros(out_channels)

    def output_size(self, h, w):
        h_out = (h + 2 * self.padding - self.kernel_size) // self.stride + 1
        w_out = (w + 2 * self.padding - self.kernel_size) // self.stride + 1
        return h_out, w_out

    def pad(self, X):
        p = self.padding
        return np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)))

    def forward(self, X):
        batch, _, h, w = X.shape
        out_c, _, k_h, k_w = self.filters.shape
        h_out, w_out = self.output_size(h, w)
        X_pad = self.pad(X)

        output = np.zeros((batch, out_c, h_out, w_out))
        for b in range(batch):
            for c in range(out_c):
                for i in range(h_out):
                    for j in range(w_out):
                        h_start = i * self.stride
                        w_start = j * self.stride
                        receptive_field = X_pad[b, :, h_start : h_start + k_h, w_start : w_start + k_w]
                        output[b, c, i, j] = np.sum(receptive_field * self.filters[c]) + self.bias[c]
        return output


class NaiveMaxPool2D:
    """MaxPool2D with four nested loops, as in the original notebook."""

    def __init__(self, kernel_size=2, stride=2):
        self.kernel_size = kernel_size
        self.stride = stride

    def output_size(self, h, w):
        return (h - self.kernel_size) // self.stride + 1, (w - self.kernel_size) // self.stride + 1

    def window(self, X, b, ch, i, j, step):
        h_start, w_start = i * step, j * step
        return X[b, ch, h_start : h_start + self.kernel_size, w_start : w_start + self.kernel_size]

    def forward(self, X):
        batch, c, h, w = X.shape
        h_out, w_out = self.output_size(h, w)
        output = np.zeros((batch, c, h_out, w_out))
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        output[b, ch, i, j] = np.max(self.window(X, b, ch, i, j, self.stride))
        return output


class NaiveRNNCell:
    """RNNCell with a loop over time steps, as in the original notebook."""

    def __init__(self, input_size, hidden_size, output_size):
        self.hidden_size = hidden_size
        self.W_xh = np.random.randn(input_size, hidden_size) * 0.01
        self.W_hh = np.random.randn(hidden_size, hidden_size) * 0.01
        self.W_hy = np.random.randn(hidden_size, output_size) * 0.01
        self.b_h = np.zeros(hidden_size)
        self.b_y = np.zeros(output_size)

    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        h = np.zeros((batch, self.hidden_size))
        hidden_states = []
        outputs = []
        for t in range(seq_len):
            h = np.tanh(inputs[t] @ self.W_xh + h @ self.W_hh + self.b_h)
            y = h @ self.W_hy + self.b_y
            hidden_states.append(h)
            outputs.append(y)
        return np.array(outputs), np.array(hidden_states)


class NaiveLSTMCell:
    """LSTMCell as in the original notebook, with its clipped sigmoid."""

    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.W = np.random.randn(input_size + hidden_size, 4 * hidden_size) * 0.01
        self.b = np.zeros(4 * hidden_size)

    def sigmoid(self, x):
        return 1 / (1 + np.exp(-np.clip(x, -500, 500)))

    def gates(self, x_t, h_prev):
        H = self.hidden_size
        z = np.hstack((h_prev, x_t)) @ self.W + self.b
        return z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]

    def forward_step(self, x_t, h_prev, c_prev):
        z_f, z_i, z_o, z_g = self.gates(x_t, h_prev)
        f_gate, i_gate, o_gate = self.sigmoid(z_f), self.sigmoid(z_i), self.sigmoid(z_o)
        cell_cand = np.tanh(z_g)
        c_t = f_gate * c_prev + i_gate * cell_cand
        h_t = o_gate * np.tanh(c_t)
        return h_t, c_t


class NaiveLSTM:
    """LSTM that loops NaiveLSTMCell.forward_step over time and collects the hidden states in a list."""

    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.cell = NaiveLSTMCell(input_size, hidden_size)

    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        h = np.zeros((batch, self.hidden_size))
        c = np.zeros((batch, self.hidden_size))
        hidden_states = []
        for t in range(seq_len):
            h, c = self.cell.forward_step(inputs[t], h, c)
            hidden_states.append(h)
        return np.array(hidden_states)


# ---------------------------------------------------------------------------------------------------
# Stubs as the release notebooks ship them


class StubConv2D(NaiveConv2D):
    def forward(self, X):
        raise NotImplementedError()


class StubMaxPool2D(NaiveMaxPool2D):
    def forward(self, X):
        raise NotImplementedError()


class StubRNNCell(NaiveRNNCell):
    def forward(self, inputs):
        raise NotImplementedError()


class StubLSTMCell(NaiveLSTMCell):
    def forward_step(self, x_t, h_prev, c_prev):
        raise NotImplementedError()


class StubLSTM(NaiveLSTM):
    def forward(self, inputs):
        raise NotImplementedError()


# ---------------------------------------------------------------------------------------------------
# Broken Conv2D


class ConvPaddingOneSide(NaiveConv2D):
    """Copies X into the top-left corner of the zero array, so all 2*padding zeros end up below and right."""

    def pad(self, X):
        batch, c, h, w = X.shape
        X_pad = np.zeros((batch, c, h + 2 * self.padding, w + 2 * self.padding))
        X_pad[:, :, :h, :w] = X
        return X_pad


class ConvStrideIgnored(NaiveConv2D):
    """Computes the output size with the stride but moves the window one pixel at a time."""

    def forward(self, X):
        batch, _, h, w = X.shape
        out_c, _, k_h, k_w = self.filters.shape
        h_out, w_out = self.output_size(h, w)
        X_pad = self.pad(X)
        output = np.zeros((batch, out_c, h_out, w_out))
        for b in range(batch):
            for c in range(out_c):
                for i in range(h_out):
                    for j in range(w_out):
                        receptive_field = X_pad[b, :, i : i + k_h, j : j + k_w]
                        output[b, c, i, j] = np.sum(receptive_field * self.filters[c]) + self.bias[c]
        return output


class ConvHeightWidthSwapped(NaiveConv2D):
    """Allocates the output as (N, F, W_out, H_out) and fills it transposed."""

    def forward(self, X):
        batch, _, h, w = X.shape
        out_c, _, k_h, k_w = self.filters.shape
        h_out, w_out = self.output_size(h, w)
        X_pad = self.pad(X)
        output = np.zeros((batch, out_c, w_out, h_out))
        for b in range(batch):
            for c in range(out_c):
                for i in range(h_out):
                    for j in range(w_out):
                        h_start, w_start = i * self.stride, j * self.stride
                        receptive_field = X_pad[b, :, h_start : h_start + k_h, w_start : w_start + k_w]
                        output[b, c, j, i] = np.sum(receptive_field * self.filters[c]) + self.bias[c]
        return output


class ConvKernelFlipped(NaiveConv2D):
    """Flips each kernel, so it computes a true convolution instead of cross-correlation."""

    def forward(self, X):
        filters = self.filters
        self.filters = filters[:, :, ::-1, ::-1]
        try:
            return super().forward(X)
        finally:
            self.filters = filters


class ConvBiasMissing(NaiveConv2D):
    def forward(self, X):
        bias = self.bias
        self.bias = np.zeros_like(bias)
        try:
            return super().forward(X)
        finally:
            self.bias = bias


class ConvOutputSizeWithoutPadding(NaiveConv2D):
    """Leaves the padding out of the output size, so padded inputs lose their border outputs."""

    def output_size(self, h, w):
        return (h - self.kernel_size) // self.stride + 1, (w - self.kernel_size) // self.stride + 1


class ConvModifiesInput(NaiveConv2D):
    """Multiplies each receptive field in place, which writes into X when padding is 0 and no copy is made.

    With padding, only the padded copy changes, but the overlapping windows still corrupt the output.
    """

    def forward(self, X):
        batch, _, h, w = X.shape
        out_c, _, k_h, k_w = self.filters.shape
        h_out, w_out = self.output_size(h, w)
        X_pad = X if self.padding == 0 else self.pad(X)
        output = np.zeros((batch, out_c, h_out, w_out))
        for b in range(batch):
            for c in range(out_c):
                for i in range(h_out):
                    for j in range(w_out):
                        h_start, w_start = i * self.stride, j * self.stride
                        receptive_field = X_pad[b, :, h_start : h_start + k_h, w_start : w_start + k_w]
                        receptive_field *= self.filters[c]
                        output[b, c, i, j] = np.sum(receptive_field) + self.bias[c]
        return output


class ConvFloat32Output(NaiveConv2D):
    """Allocates the output as float32, which loses about half of the float64 digits."""

    def forward(self, X):
        return super().forward(X).astype(np.float32)


class ConvFlipsStoredFilters(NaiveConv2D):
    """Flips the kernels and stores them back on the layer, which changes a parameter in forward."""

    def forward(self, X):
        self.filters = self.filters[:, :, ::-1, ::-1]
        return super().forward(X)


class ConvFiltersChannelsFirst(NaiveConv2D):
    """Creates filters of shape (C, F, k, k) instead of (F, C, k, k)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding)
        self.filters = np.random.randn(in_channels, out_channels, kernel_size, kernel_size)


# ---------------------------------------------------------------------------------------------------
# Broken MaxPool2D


class PoolStepsByKernel(NaiveMaxPool2D):
    """Moves the window by kernel_size instead of by the stride."""

    def forward(self, X):
        batch, c, h, w = X.shape
        h_out, w_out = self.output_size(h, w)
        output = np.zeros((batch, c, h_out, w_out))
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        output[b, ch, i, j] = np.max(self.window(X, b, ch, i, j, self.kernel_size))
        return output


class PoolAverage(NaiveMaxPool2D):
    def forward(self, X):
        batch, c, h, w = X.shape
        h_out, w_out = self.output_size(h, w)
        output = np.zeros((batch, c, h_out, w_out))
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        output[b, ch, i, j] = np.mean(self.window(X, b, ch, i, j, self.stride))
        return output


class PoolMaxStartsAtZero(NaiveMaxPool2D):
    """Keeps a running maximum that starts at 0, so all-negative windows give 0.

    The random inputs of "overlapping" happen to have no all-negative 3 x 3 window, so only the
    groups with 2 x 2 windows catch it.
    """

    def forward(self, X):
        batch, c, h, w = X.shape
        h_out, w_out = self.output_size(h, w)
        output = np.zeros((batch, c, h_out, w_out))
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        best = 0.0
                        for value in self.window(X, b, ch, i, j, self.stride).flat:
                            if value > best:
                                best = value
                        output[b, ch, i, j] = best
        return output


class PoolOffByOne(NaiveMaxPool2D):
    """Forgets the + 1 in the output size."""

    def output_size(self, h, w):
        return (h - self.kernel_size) // self.stride, (w - self.kernel_size) // self.stride


class PoolRoundsUp(NaiveMaxPool2D):
    """Rounds the number of windows up, so a partial window at the border also counts."""

    def output_size(self, h, w):
        return (
            int(np.ceil((h - self.kernel_size) / self.stride)) + 1,
            int(np.ceil((w - self.kernel_size) / self.stride)) + 1,
        )


# ---------------------------------------------------------------------------------------------------
# Broken RNNCell


class RNNMissingRecurrence(NaiveRNNCell):
    """Leaves out the h_{t-1} W_hh term."""

    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        hidden_states, outputs = [], []
        for t in range(seq_len):
            h = np.tanh(inputs[t] @ self.W_xh + self.b_h)
            hidden_states.append(h)
            outputs.append(h @ self.W_hy + self.b_y)
        return np.array(outputs), np.array(hidden_states)


class RNNHiddenStateNotCarried(NaiveRNNCell):
    """Stores each new hidden state in h_new but never assigns it to h, so h stays 0."""

    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        h = np.zeros((batch, self.hidden_size))
        hidden_states, outputs = [], []
        for t in range(seq_len):
            h_new = np.tanh(inputs[t] @ self.W_xh + h @ self.W_hh + self.b_h)
            hidden_states.append(h_new)
            outputs.append(h_new @ self.W_hy + self.b_y)
        return np.array(outputs), np.array(hidden_states)


class RNNOutputBeforeTanh(NaiveRNNCell):
    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        h = np.zeros((batch, self.hidden_size))
        hidden_states, outputs = [], []
        for t in range(seq_len):
            a = inputs[t] @ self.W_xh + h @ self.W_hh + self.b_h
            h = np.tanh(a)
            hidden_states.append(h)
            outputs.append(a @ self.W_hy + self.b_y)
        return np.array(outputs), np.array(hidden_states)


class RNNBiasMissing(NaiveRNNCell):
    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        h = np.zeros((batch, self.hidden_size))
        hidden_states, outputs = [], []
        for t in range(seq_len):
            h = np.tanh(inputs[t] @ self.W_xh + h @ self.W_hh)
            hidden_states.append(h)
            outputs.append(h @ self.W_hy + self.b_y)
        return np.array(outputs), np.array(hidden_states)


class RNNReturnsLists(NaiveRNNCell):
    def forward(self, inputs):
        outputs, hidden_states = super().forward(inputs)
        return list(outputs), list(hidden_states)


class RNNReturnsSwapped(NaiveRNNCell):
    def forward(self, inputs):
        outputs, hidden_states = super().forward(inputs)
        return hidden_states, outputs


# ---------------------------------------------------------------------------------------------------
# Broken LSTMCell


class LSTMForgetInputSwapped(NaiveLSTMCell):
    def forward_step(self, x_t, h_prev, c_prev):
        z_i, z_f, z_o, z_g = self.gates(x_t, h_prev)
        f_gate, i_gate, o_gate = self.sigmoid(z_f), self.sigmoid(z_i), self.sigmoid(z_o)
        c_t = f_gate * c_prev + i_gate * np.tanh(z_g)
        return o_gate * np.tanh(c_t), c_t


class LSTMTorchGateOrder(NaiveLSTMCell):
    """Reads the gate blocks in PyTorch's order i, f, g, o."""

    def forward_step(self, x_t, h_prev, c_prev):
        z_i, z_f, z_g, z_o = self.gates(x_t, h_prev)
        f_gate, i_gate, o_gate = self.sigmoid(z_f), self.sigmoid(z_i), self.sigmoid(z_o)
        c_t = f_gate * c_prev + i_gate * np.tanh(z_g)
        return o_gate * np.tanh(c_t), c_t


class LSTMInputFirstConcat(NaiveLSTMCell):
    """Concatenates [x_t, h_prev] instead of [h_prev, x_t]."""

    def gates(self, x_t, h_prev):
        H = self.hidden_size
        z = np.hstack((x_t, h_prev)) @ self.W + self.b
        return z[:, :H], z[:, H : 2 * H], z[:, 2 * H : 3 * H], z[:, 3 * H :]


class LSTMSigmoidCandidate(NaiveLSTMCell):
    def forward_step(self, x_t, h_prev, c_prev):
        z_f, z_i, z_o, z_g = self.gates(x_t, h_prev)
        c_t = self.sigmoid(z_f) * c_prev + self.sigmoid(z_i) * self.sigmoid(z_g)
        return self.sigmoid(z_o) * np.tanh(c_t), c_t


class LSTMNoForgetGate(NaiveLSTMCell):
    def forward_step(self, x_t, h_prev, c_prev):
        z_f, z_i, z_o, z_g = self.gates(x_t, h_prev)
        c_t = c_prev + self.sigmoid(z_i) * np.tanh(z_g)
        return self.sigmoid(z_o) * np.tanh(c_t), c_t


class LSTMModifiesCellState(NaiveLSTMCell):
    """Scales c_prev by the forget gate in place: c_t is right, but the caller's c_prev changes."""

    def forward_step(self, x_t, h_prev, c_prev):
        z_f, z_i, z_o, z_g = self.gates(x_t, h_prev)
        c_prev *= self.sigmoid(z_f)
        c_t = c_prev + self.sigmoid(z_i) * np.tanh(z_g)
        return self.sigmoid(z_o) * np.tanh(c_t), c_t


class LSTMStepReturnsOnlyH(NaiveLSTMCell):
    def forward_step(self, x_t, h_prev, c_prev):
        h_t, _ = super().forward_step(x_t, h_prev, c_prev)
        return h_t


class LSTMStepReturnsSwapped(NaiveLSTMCell):
    def forward_step(self, x_t, h_prev, c_prev):
        h_t, c_t = super().forward_step(x_t, h_prev, c_prev)
        return c_t, h_t


class LSTMCellInitStub(NaiveLSTMCell):
    """The constructor is still the release stub."""

    def __init__(self, input_size, hidden_size):
        raise NotImplementedError()


# ---------------------------------------------------------------------------------------------------
# Broken LSTM (the sequence layer around a correct cell)


class LSTMForwardStateNotCarried(NaiveLSTM):
    """Starts every time step from zero h and c."""

    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        hidden_states = []
        for t in range(seq_len):
            h = np.zeros((batch, self.hidden_size))
            c = np.zeros((batch, self.hidden_size))
            h, c = self.cell.forward_step(inputs[t], h, c)
            hidden_states.append(h)
        return np.array(hidden_states)


class LSTMForwardCellStateReset(NaiveLSTM):
    """Carries h but passes a fresh zero c_prev at every step."""

    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        h = np.zeros((batch, self.hidden_size))
        hidden_states = []
        for t in range(seq_len):
            h, _ = self.cell.forward_step(inputs[t], h, np.zeros((batch, self.hidden_size)))
            hidden_states.append(h)
        return np.array(hidden_states)


class LSTMForwardReturnsCellStates(NaiveLSTM):
    def forward(self, inputs):
        seq_len, batch, _ = inputs.shape
        h = np.zeros((batch, self.hidden_size))
        c = np.zeros((batch, self.hidden_size))
        cell_states = []
        for t in range(seq_len):
            h, c = self.cell.forward_step(inputs[t], h, c)
            cell_states.append(c)
        return np.array(cell_states)


class LSTMForwardBatchFirst(NaiveLSTM):
    """Stacks the hidden states along axis 1, giving (N, T, H)."""

    def forward(self, inputs):
        return np.stack(list(super().forward(inputs)), axis=1)


# ---------------------------------------------------------------------------------------------------
# Catalogue


class LSTMWithoutCell(NaiveLSTM):
    """Stores its cell under another name than cell."""

    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.lstm_cell = NaiveLSTMCell(input_size, hidden_size)

    def forward(self, inputs):
        self.cell = self.lstm_cell
        return super().forward(inputs)


# ---------------------------------------------------------------------------------------------------
# Catalogue


class BrokenLayer(NamedTuple):
    """A broken implementation, the check that grades it, and what that check must report."""

    layer_class: type
    check: str
    messages: dict[str, str]  # each group that must fail, and text that its failure message contains

    @property
    def name(self) -> str:
        return self.layer_class.__name__

    @property
    def failing_groups(self) -> frozenset[str]:
        return frozenset(self.messages)


def _broken(layer_class: type, check: str, failing_groups: str, message: str, **group_messages: str) -> BrokenLayer:
    """Catalogue a broken layer whose failures all contain message, except where group_messages differ."""
    messages = {group: group_messages.get(group, message) for group in failing_groups.split()}
    return BrokenLayer(layer_class, check, messages)


CORRECT_LAYERS: dict[str, type] = {
    "check_conv2d_forward": NaiveConv2D,
    "check_maxpool2d_forward": NaiveMaxPool2D,
    "check_rnn_forward": NaiveRNNCell,
    "check_lstm_step": NaiveLSTMCell,
    "check_lstm_forward": NaiveLSTM,
}
"""The correct naive implementation that each check grades."""

STUB_LAYERS: dict[str, tuple[type, str]] = {
    "check_conv2d_forward": (StubConv2D, "Conv2D.forward"),
    "check_maxpool2d_forward": (StubMaxPool2D, "MaxPool2D.forward"),
    "check_rnn_forward": (StubRNNCell, "RNNCell.forward"),
    "check_lstm_step": (StubLSTMCell, "LSTMCell.forward_step"),
    "check_lstm_forward": (StubLSTM, "LSTM.forward"),
}
"""The unimplemented stub for each check, and the method name that its failure message must show."""

_CONV = "check_conv2d_forward"
_POOL = "check_maxpool2d_forward"
_RNN = "check_rnn_forward"
_STEP = "check_lstm_step"
_LSTM = "check_lstm_forward"
_LIKELY = "\nLikely mistake: "  # the line that names a recognised mistake

BROKEN_LAYERS: list[BrokenLayer] = [
    _broken(ConvPaddingOneSide, _CONV, "padding stride", _LIKELY + "all the zero padding is below and right"),
    _broken(ConvStrideIgnored, _CONV, "stride", _LIKELY + "the windows move by one pixel instead of by the"),
    _broken(
        ConvHeightWidthSwapped, _CONV, "basic padding stride", _LIKELY + "the height and width of the output are swapped"
    ),
    _broken(ConvKernelFlipped, _CONV, "basic padding stride", _LIKELY + "the kernel is flipped"),
    _broken(ConvBiasMissing, _CONV, "basic padding stride", _LIKELY + "the bias is missing"),
    _broken(ConvOutputSizeWithoutPadding, _CONV, "padding stride", _LIKELY + "the output size ignores the padding"),
    _broken(
        ConvModifiesInput, _CONV, "basic padding stride", "it changed its input X in place", padding="largest error"
    ),
    _broken(ConvFloat32Output, _CONV, "basic padding stride", "expected an array of dtype float64, got float32"),
    _broken(ConvFlipsStoredFilters, _CONV, "basic padding stride", "it changed the layer's parameter filters"),
    _broken(ConvFiltersChannelsFirst, _CONV, "basic padding stride", "created filters with shape"),
    _broken(PoolStepsByKernel, _POOL, "overlapping", "largest error"),
    _broken(PoolAverage, _POOL, "basic overlapping odd_sizes", _LIKELY + "each window is averaged"),
    _broken(PoolMaxStartsAtZero, _POOL, "basic odd_sizes", _LIKELY + "the running maximum starts at 0"),
    _broken(PoolOffByOne, _POOL, "basic overlapping odd_sizes", _LIKELY + "the output size is off by one"),
    _broken(PoolRoundsUp, _POOL, "overlapping odd_sizes", _LIKELY + "the output size is rounded up"),
    _broken(RNNMissingRecurrence, _RNN, "basic long", _LIKELY + "the hidden state is not carried"),
    _broken(RNNHiddenStateNotCarried, _RNN, "basic long", _LIKELY + "the hidden state is not carried"),
    _broken(
        RNNOutputBeforeTanh,
        _RNN,
        "basic single_step long",
        _LIKELY + "the output is computed from the hidden state before tanh",
    ),
    _broken(RNNBiasMissing, _RNN, "basic single_step long", _LIKELY + "the bias b_h is missing"),
    _broken(RNNReturnsLists, _RNN, "basic single_step long", "got a list, expected a numpy array"),
    _broken(RNNReturnsSwapped, _RNN, "basic single_step long", _LIKELY + "the returned tuple is in the wrong order"),
    _broken(LSTMForgetInputSwapped, _STEP, "basic nonzero_state", "in the order i, f, o, g,"),
    _broken(LSTMTorchGateOrder, _STEP, "basic nonzero_state", "in the order i, f, g, o (PyTorch's order)"),
    _broken(LSTMInputFirstConcat, _STEP, "basic nonzero_state", _LIKELY + "W multiplies [x_t, h_prev]"),
    _broken(LSTMSigmoidCandidate, _STEP, "basic nonzero_state", "largest error"),
    _broken(LSTMNoForgetGate, _STEP, "nonzero_state", _LIKELY + "the cell state ignores the forget gate"),
    _broken(LSTMModifiesCellState, _STEP, "nonzero_state", "it changed its input c_prev in place"),
    _broken(LSTMStepReturnsOnlyH, _STEP, "basic nonzero_state", "expected a tuple (h_t, c_t)"),
    _broken(
        LSTMStepReturnsSwapped, _STEP, "basic nonzero_state", _LIKELY + "the returned tuple is in the wrong order"
    ),
    _broken(LSTMCellInitStub, _STEP, "basic nonzero_state", "LSTMCell.__init__ raised NotImplementedError"),
    _broken(LSTMForwardStateNotCarried, _LSTM, "basic", _LIKELY + "the state is not carried"),
    _broken(LSTMForwardCellStateReset, _LSTM, "basic", _LIKELY + "the cell state is reset to 0"),
    _broken(LSTMForwardReturnsCellStates, _LSTM, "basic single_step", _LIKELY + "the result contains the cell states"),
    _broken(LSTMForwardBatchFirst, _LSTM, "basic single_step", _LIKELY + "the time and batch axes are swapped"),
    _broken(LSTMWithoutCell, _LSTM, "basic single_step", "did not set the attribute cell.W"),
]
"""Every broken implementation, with the exact set of groups that must fail it."""
