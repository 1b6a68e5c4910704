"""Student implementations, correct and broken, written in the naive loop style of a first solution.

The correct ones follow the original week's notebook and must pass every group of every check.
Each broken one contains one mistake that students make, and BROKEN_LAYERS records which groups of
its check must catch it, so the tests prove that every check can fail and what each group is for.
The fast-convolution check grades a function, so its implementations here are functions.
"""

from collections.abc import Callable
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


class LSTMWithoutCell(NaiveLSTM):
    """Stores its cell under another name than cell."""

    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.lstm_cell = NaiveLSTMCell(input_size, hidden_size)

    def forward(self, inputs):
        self.cell = self.lstm_cell
        return super().forward(inputs)


# ---------------------------------------------------------------------------------------------------
# Correct naive backward passes, written as the notebooks' backward exercises are: a subclass whose
# given forward keeps what backward needs, and a backward with loops like the forward's


class NaiveConv2DBackward(NaiveConv2D):
    def forward(self, X):
        self.X = X
        return super().forward(X)

    def window_start(self, i, j):
        return i * self.stride, j * self.stride

    def kernel_for_input_gradient(self, c):
        return self.filters[c]

    def backward(self, dout):
        batch, out_c, h_out, w_out = dout.shape
        _, _, h, w = self.X.shape
        k = self.kernel_size
        X_pad = self.pad(self.X)
        dX_pad = np.zeros_like(X_pad)
        self.dfilters = np.zeros_like(self.filters)
        self.dbias = np.zeros_like(self.bias)
        for b in range(batch):
            for c in range(out_c):
                for i in range(h_out):
                    for j in range(w_out):
                        h_start, w_start = self.window_start(i, j)
                        receptive_field = X_pad[b, :, h_start : h_start + k, w_start : w_start + k]
                        self.dfilters[c] += dout[b, c, i, j] * receptive_field
                        kernel = self.kernel_for_input_gradient(c)
                        dX_pad[b, :, h_start : h_start + k, w_start : w_start + k] += dout[b, c, i, j] * kernel
                        self.dbias[c] += dout[b, c, i, j]
        p = self.padding
        return dX_pad[:, :, p : p + h, p : p + w]


class NaiveMaxPool2DBackward(NaiveMaxPool2D):
    def forward(self, X):
        self.X = X
        return super().forward(X)

    def backward(self, dout):
        batch, c, h_out, w_out = dout.shape
        dX = np.zeros_like(self.X)
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        window = self.window(self.X, b, ch, i, j, self.stride)
                        r, q = np.unravel_index(np.argmax(window), window.shape)
                        dX[b, ch, i * self.stride + r, j * self.stride + q] += dout[b, ch, i, j]
        return dX


class NaiveRNNCellBackward(NaiveRNNCell):
    def forward(self, inputs):
        self.inputs = inputs
        outputs, hidden_states = super().forward(inputs)
        self.hidden_states = hidden_states
        return outputs, hidden_states

    def tanh_derivative(self, h):
        return 1 - h**2

    def gradient_to_previous_step(self, da):
        return da @ self.W_hh.T

    def previous_hidden_state(self, t):
        if t == 0:
            return np.zeros_like(self.hidden_states[0])
        return self.hidden_states[t - 1]

    def backward(self, d_outputs):
        seq_len = self.inputs.shape[0]
        self.dW_xh = np.zeros_like(self.W_xh)
        self.dW_hh = np.zeros_like(self.W_hh)
        self.dW_hy = np.zeros_like(self.W_hy)
        self.db_h = np.zeros_like(self.b_h)
        self.db_y = np.zeros_like(self.b_y)
        d_inputs = np.zeros_like(self.inputs)
        dh_next = np.zeros_like(self.hidden_states[0])
        for t in reversed(range(seq_len)):
            h = self.hidden_states[t]
            self.dW_hy += h.T @ d_outputs[t]
            self.db_y += d_outputs[t].sum(axis=0)
            dh = d_outputs[t] @ self.W_hy.T + dh_next
            da = dh * self.tanh_derivative(h)
            self.dW_xh += self.inputs[t].T @ da
            self.dW_hh += self.previous_hidden_state(t).T @ da
            self.db_h += da.sum(axis=0)
            d_inputs[t] = da @ self.W_xh.T
            dh_next = self.gradient_to_previous_step(da)
        return d_inputs


class NaiveLSTMCellBackward(NaiveLSTMCell):
    """LSTMCell whose given forward_step pushes (x_t, h_prev, c_prev) and whose backward_step recomputes the gates."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.cache = []
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)

    def forward_step(self, x_t, h_prev, c_prev):
        self.cache.append((x_t, h_prev, c_prev))
        return super().forward_step(x_t, h_prev, c_prev)

    def pop_step(self):
        return self.cache.pop()

    def recompute(self, x_t, h_prev, c_prev):
        z_f, z_i, z_o, z_g = self.gates(x_t, h_prev)
        f, i, o, g = self.sigmoid(z_f), self.sigmoid(z_i), self.sigmoid(z_o), np.tanh(z_g)
        return f, i, o, g, f * c_prev + i * g

    def pre_activation_gradients(self, df, di, do, dg, f, i, o, g):
        return np.hstack((df * f * (1 - f), di * i * (1 - i), do * o * (1 - o), dg * (1 - g**2)))

    def add_gradients(self, concat, dz):
        self.dW += concat.T @ dz
        self.db += dz.sum(axis=0)

    def tanh_derivative_at(self, c_t):
        return 1 - np.tanh(c_t) ** 2

    def concat_gradient(self, dz):
        return dz @ self.W.T

    def backward_step(self, dh_t, dc_t):
        x_t, h_prev, c_prev = self.pop_step()
        f, i, o, g, c_t = self.recompute(x_t, h_prev, c_prev)
        dc = dc_t + dh_t * o * self.tanh_derivative_at(c_t)
        do = dh_t * np.tanh(c_t)
        df = dc * c_prev
        di = dc * g
        dg = dc * i
        dz = self.pre_activation_gradients(df, di, do, dg, f, i, o, g)
        self.add_gradients(np.hstack((h_prev, x_t)), dz)
        d_concat = self.concat_gradient(dz)
        H = self.hidden_size
        return d_concat[:, H:], d_concat[:, :H], dc * f


class NaiveLSTMBackward(NaiveLSTM):
    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.cell = NaiveLSTMCellBackward(input_size, hidden_size)

    def backward(self, d_hidden_states):
        seq_len, batch, _ = d_hidden_states.shape
        self.cell.dW = np.zeros_like(self.cell.W)
        self.cell.db = np.zeros_like(self.cell.b)
        d_inputs = []
        dh = np.zeros((batch, self.hidden_size))
        dc = np.zeros((batch, self.hidden_size))
        for t in reversed(range(seq_len)):
            dx, dh, dc = self.cell.backward_step(d_hidden_states[t] + dh, dc)
            d_inputs.append(dx)
        return np.array(d_inputs[::-1])


def conv2d_forward_im2col(X, filters, bias, stride, padding):
    """Convolution as one matrix product: gather every receptive field as a row, loop over kernel offsets only."""
    batch, channels, h, w = X.shape
    n_filters, _, k, _ = filters.shape
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (w + 2 * padding - k) // stride + 1
    X_pad = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))

    columns = np.zeros((batch, channels, k, k, h_out, w_out))
    for p in range(k):
        for q in range(k):
            columns[:, :, p, q] = X_pad[:, :, p : p + stride * h_out : stride, q : q + stride * w_out : stride]

    rows = columns.transpose(0, 4, 5, 1, 2, 3).reshape(batch * h_out * w_out, -1)
    out = rows @ filters.reshape(n_filters, -1).T + bias
    return out.reshape(batch, h_out, w_out, n_filters).transpose(0, 3, 1, 2)


# ---------------------------------------------------------------------------------------------------
# Stubs of the backward exercises


class StubConv2DBackward(NaiveConv2DBackward):
    def backward(self, dout):
        raise NotImplementedError()


class StubMaxPool2DBackward(NaiveMaxPool2DBackward):
    def backward(self, dout):
        raise NotImplementedError()


class StubRNNCellBackward(NaiveRNNCellBackward):
    def backward(self, d_outputs):
        raise NotImplementedError()


class StubLSTMCellBackward(NaiveLSTMCellBackward):
    def backward_step(self, dh_t, dc_t):
        raise NotImplementedError()


class StubLSTMBackward(NaiveLSTMBackward):
    def backward(self, d_hidden_states):
        raise NotImplementedError()


def conv2d_forward_fast(X, filters, bias, stride, padding):
    raise NotImplementedError()


# ---------------------------------------------------------------------------------------------------
# Broken Conv2D.backward


class ConvBackwardNotCropped(NaiveConv2DBackward):
    """Returns the gradient of the padded input."""

    def backward(self, dout):
        p = self.padding
        dX = super().backward(dout)
        return np.pad(dX, ((0, 0), (0, 0), (p, p), (p, p))) if p else dX


class ConvBackwardCropsWithNegativeIndex(NaiveConv2DBackward):
    """Crops with [p:-p], which gives an empty array for padding 0."""

    def backward(self, dout):
        p = self.padding
        dX = super().backward(dout)
        dX_pad = np.pad(dX, ((0, 0), (0, 0), (p, p), (p, p)))
        return dX_pad[:, :, p:-p, p:-p]


class ConvBackwardBiasOverBatchOnly(NaiveConv2DBackward):
    """Sums dout over the batch axis only, which leaves one bias gradient per pixel."""

    def backward(self, dout):
        dX = super().backward(dout)
        self.dbias = np.sum(dout, axis=0)
        return dX


class ConvBackwardBiasOverSpace(NaiveConv2DBackward):
    """Sums dout over the spatial axes only, which leaves one row of bias gradients per image."""

    def backward(self, dout):
        dX = super().backward(dout)
        self.dbias = dout.sum(axis=(2, 3))
        return dX


class ConvBackwardKernelFlipped(NaiveConv2DBackward):
    """Sends the gradient back through the flipped kernel, as a derivation with true convolution would."""

    def kernel_for_input_gradient(self, c):
        return self.filters[c, :, ::-1, ::-1]


class ConvBackwardStrideIgnored(NaiveConv2DBackward):
    """Moves the window by one pixel in backward."""

    def window_start(self, i, j):
        return i, j


class ConvBackwardNoGradients(NaiveConv2DBackward):
    """Returns dX but never stores dfilters and dbias."""

    def backward(self, dout):
        dX = super().backward(dout)
        del self.dfilters, self.dbias
        return dX


# ---------------------------------------------------------------------------------------------------
# Broken MaxPool2D.backward


class PoolBackwardAssigns(NaiveMaxPool2DBackward):
    """Assigns the gradient to the maximal entry, so overlapping windows overwrite each other."""

    def backward(self, dout):
        batch, c, h_out, w_out = dout.shape
        dX = np.zeros_like(self.X)
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        window = self.window(self.X, b, ch, i, j, self.stride)
                        r, q = np.unravel_index(np.argmax(window), window.shape)
                        dX[b, ch, i * self.stride + r, j * self.stride + q] = dout[b, ch, i, j]
        return dX


class PoolBackwardAssignsWindow(NaiveMaxPool2DBackward):
    """Assigns mask * dout to the whole window, zeros included."""

    def backward(self, dout):
        batch, c, h_out, w_out = dout.shape
        k, s = self.kernel_size, self.stride
        dX = np.zeros_like(self.X)
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        window = self.window(self.X, b, ch, i, j, s)
                        mask = np.zeros_like(window)
                        mask[np.unravel_index(np.argmax(window), window.shape)] = 1
                        dX[b, ch, i * s : i * s + k, j * s : j * s + k] = mask * dout[b, ch, i, j]
        return dX


class PoolBackwardAllMaxima(NaiveMaxPool2DBackward):
    """Gives the gradient to every entry equal to the maximum."""

    def backward(self, dout):
        batch, c, h_out, w_out = dout.shape
        k, s = self.kernel_size, self.stride
        dX = np.zeros_like(self.X)
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        window = self.window(self.X, b, ch, i, j, s)
                        mask = window == np.max(window)
                        dX[b, ch, i * s : i * s + k, j * s : j * s + k] += mask * dout[b, ch, i, j]
        return dX


class PoolBackwardLastMaximum(NaiveMaxPool2DBackward):
    """Scans the window with >=, so the last of several maximal entries wins."""

    def backward(self, dout):
        batch, c, h_out, w_out = dout.shape
        dX = np.zeros_like(self.X)
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        window = self.window(self.X, b, ch, i, j, self.stride)
                        best, best_r, best_q = -np.inf, 0, 0
                        for r in range(window.shape[0]):
                            for q in range(window.shape[1]):
                                if window[r, q] >= best:
                                    best, best_r, best_q = window[r, q], r, q
                        dX[b, ch, i * self.stride + best_r, j * self.stride + best_q] += dout[b, ch, i, j]
        return dX


class PoolBackwardSpreadsEvenly(NaiveMaxPool2DBackward):
    def backward(self, dout):
        batch, c, h_out, w_out = dout.shape
        k, s = self.kernel_size, self.stride
        dX = np.zeros_like(self.X)
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        dX[b, ch, i * s : i * s + k, j * s : j * s + k] += dout[b, ch, i, j] / (k * k)
        return dX


class PoolBackwardRowColumnSwapped(NaiveMaxPool2DBackward):
    """Computes the column of the maximum as the row and the other way round."""

    def backward(self, dout):
        batch, c, h_out, w_out = dout.shape
        k, s = self.kernel_size, self.stride
        dX = np.zeros_like(self.X)
        for b in range(batch):
            for ch in range(c):
                for i in range(h_out):
                    for j in range(w_out):
                        flat = np.argmax(self.window(self.X, b, ch, i, j, s))
                        q, r = flat // k, flat % k
                        dX[b, ch, i * s + r, j * s + q] += dout[b, ch, i, j]
        return dX


# ---------------------------------------------------------------------------------------------------
# Broken RNNCell.backward


class RNNBackwardNotCarried(NaiveRNNCellBackward):
    """Forgets the gradient that flows into h_t from step t+1."""

    def gradient_to_previous_step(self, da):
        return np.zeros_like(da)


class RNNBackwardWhhNotTransposed(NaiveRNNCellBackward):
    def gradient_to_previous_step(self, da):
        return da @ self.W_hh


class RNNBackwardCurrentHidden(NaiveRNNCellBackward):
    """Pairs da_t with h_t instead of h_{t-1} in dW_hh."""

    def previous_hidden_state(self, t):
        return self.hidden_states[t]


class RNNBackwardTanhTwice(NaiveRNNCellBackward):
    def tanh_derivative(self, h):
        return 1 - np.tanh(h) ** 2


class RNNBackwardWeightGradientTransposed(NaiveRNNCellBackward):
    """Computes dW_xh as da.T @ x, the transpose of the gradient."""

    def backward(self, d_outputs):
        d_inputs = super().backward(d_outputs)
        self.dW_xh = self.dW_xh.T
        return d_inputs


class RNNBackwardBiasOverTimeOnly(NaiveRNNCellBackward):
    def backward(self, d_outputs):
        d_inputs = super().backward(d_outputs)
        self.db_y = d_outputs.sum(axis=0)
        return d_inputs


# ---------------------------------------------------------------------------------------------------
# Broken LSTMCell.backward_step


class LSTMBackwardForgetInputSwapped(NaiveLSTMCellBackward):
    """Stacks the gate gradients in the order i, f, o, g."""

    def pre_activation_gradients(self, df, di, do, dg, f, i, o, g):
        return np.hstack((di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)))


class LSTMBackwardOutputCandidateSwapped(NaiveLSTMCellBackward):
    """Recomputes the gates reading the output gate and the candidate from each other's blocks."""

    def recompute(self, x_t, h_prev, c_prev):
        z_f, z_i, z_g, z_o = self.gates(x_t, h_prev)
        f, i, o, g = self.sigmoid(z_f), self.sigmoid(z_i), self.sigmoid(z_o), np.tanh(z_g)
        return f, i, o, g, f * c_prev + i * g


class LSTMBackwardInputFirstConcat(NaiveLSTMCellBackward):
    """Uses [x_t, h_prev] in backward_step, for recomputing the gates, for dW and for splitting the gradient."""

    def backward_step(self, dh_t, dc_t):
        x_t, h_prev, c_prev = self.pop_step()
        H, D = self.hidden_size, x_t.shape[1]
        z = np.hstack((x_t, h_prev)) @ self.W + self.b
        f, i, o = self.sigmoid(z[:, :H]), self.sigmoid(z[:, H : 2 * H]), self.sigmoid(z[:, 2 * H : 3 * H])
        g = np.tanh(z[:, 3 * H :])
        c_t = f * c_prev + i * g
        dc = dc_t + dh_t * o * (1 - np.tanh(c_t) ** 2)
        dz = self.pre_activation_gradients(dc * c_prev, dc * g, dh_t * np.tanh(c_t), dc * i, f, i, o, g)
        self.add_gradients(np.hstack((x_t, h_prev)), dz)
        d_concat = dz @ self.W.T
        return d_concat[:, :D], d_concat[:, D:], dc * f


class LSTMBackwardWNotTransposed(NaiveLSTMCellBackward):
    """Computes the gradient of the concatenation as dz @ W, which runs only when W is square."""

    def concat_gradient(self, dz):
        return dz @ self.W


class LSTMBackwardCandidateSigmoidDerivative(NaiveLSTMCellBackward):
    """Differentiates the candidate g = tanh(z_g) as if it were a sigmoid."""

    def pre_activation_gradients(self, df, di, do, dg, f, i, o, g):
        return np.hstack((df * f * (1 - f), di * i * (1 - i), do * o * (1 - o), dg * g * (1 - g)))


class LSTMBackwardCandidateSigmoid(NaiveLSTMCellBackward):
    """Recomputes the candidate with sigmoid in backward_step, and differentiates it as such."""

    def recompute(self, x_t, h_prev, c_prev):
        z_f, z_i, z_o, z_g = self.gates(x_t, h_prev)
        f, i, o, g = self.sigmoid(z_f), self.sigmoid(z_i), self.sigmoid(z_o), self.sigmoid(z_g)
        return f, i, o, g, f * c_prev + i * g

    def pre_activation_gradients(self, df, di, do, dg, f, i, o, g):
        return np.hstack((df * f * (1 - f), di * i * (1 - i), do * o * (1 - o), dg * g * (1 - g)))


class LSTMBackwardAssignsGradients(NaiveLSTMCellBackward):
    """Assigns dW and db in backward_step, so only the last step's gradient remains."""

    def add_gradients(self, concat, dz):
        self.dW = concat.T @ dz
        self.db = dz.sum(axis=0)


class LSTMBackwardFirstInFirstOut(NaiveLSTMCellBackward):
    def pop_step(self):
        return self.cache.pop(0)


class LSTMBackwardTanhOfCellMissing(NaiveLSTMCellBackward):
    """Writes the derivative of tanh(c_t) as 1 - c_t**2."""

    def tanh_derivative_at(self, c_t):
        return 1 - c_t**2


# ---------------------------------------------------------------------------------------------------
# Broken LSTM.backward (the sequence loop around a correct cell, unless the name says otherwise)


class LSTMBackwardHiddenNotCarried(NaiveLSTMBackward):
    def backward(self, d_hidden_states):
        seq_len, batch, _ = d_hidden_states.shape
        self.cell.dW = np.zeros_like(self.cell.W)
        self.cell.db = np.zeros_like(self.cell.b)
        d_inputs = np.zeros((seq_len, batch, self.cell.W.shape[0] - self.hidden_size))
        dc = np.zeros((batch, self.hidden_size))
        for t in reversed(range(seq_len)):
            d_inputs[t], _, dc = self.cell.backward_step(d_hidden_states[t], dc)
        return d_inputs


class LSTMBackwardCellNotCarried(NaiveLSTMBackward):
    def backward(self, d_hidden_states):
        seq_len, batch, _ = d_hidden_states.shape
        self.cell.dW = np.zeros_like(self.cell.W)
        self.cell.db = np.zeros_like(self.cell.b)
        d_inputs = np.zeros((seq_len, batch, self.cell.W.shape[0] - self.hidden_size))
        dh = np.zeros((batch, self.hidden_size))
        for t in reversed(range(seq_len)):
            d_inputs[t], dh, _ = self.cell.backward_step(d_hidden_states[t] + dh, np.zeros((batch, self.hidden_size)))
        return d_inputs


class LSTMBackwardForwardInTime(NaiveLSTMBackward):
    """Loops t = 0, 1, ... while backward_step pops the most recent step."""

    def backward(self, d_hidden_states):
        seq_len, batch, _ = d_hidden_states.shape
        self.cell.dW = np.zeros_like(self.cell.W)
        self.cell.db = np.zeros_like(self.cell.b)
        d_inputs = np.zeros((seq_len, batch, self.cell.W.shape[0] - self.hidden_size))
        dh = np.zeros((batch, self.hidden_size))
        dc = np.zeros((batch, self.hidden_size))
        for t in range(seq_len):
            d_inputs[t], dh, dc = self.cell.backward_step(d_hidden_states[t] + dh, dc)
        return d_inputs


class LSTMBackwardGradientsNotReset(NaiveLSTMBackward):
    """Leaves cell.dW and cell.db as the previous backward call left them."""

    def backward(self, d_hidden_states):
        seq_len, batch, _ = d_hidden_states.shape
        d_inputs = np.zeros((seq_len, batch, self.cell.W.shape[0] - self.hidden_size))
        dh = np.zeros((batch, self.hidden_size))
        dc = np.zeros((batch, self.hidden_size))
        for t in reversed(range(seq_len)):
            d_inputs[t], dh, dc = self.cell.backward_step(d_hidden_states[t] + dh, dc)
        return d_inputs


class LSTMBackwardCellAssigns(NaiveLSTMBackward):
    """A correct loop around a cell whose backward_step assigns dW and db."""

    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.cell = LSTMBackwardAssignsGradients(input_size, hidden_size)


# ---------------------------------------------------------------------------------------------------
# Broken fast convolutions


def im2col_flattened_differently(X, filters, bias, stride, padding):
    """Flattens each receptive field as (k, k, C) but the filters as (C, k, k)."""
    batch, channels, h, w = X.shape
    n_filters, _, k, _ = filters.shape
    h_out = (h + 2 * padding - k) // stride + 1
    w_out = (w + 2 * padding - k) // stride + 1
    X_pad = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    columns = np.zeros((batch, channels, k, k, h_out, w_out))
    for p in range(k):
        for q in range(k):
            columns[:, :, p, q] = X_pad[:, :, p : p + stride * h_out : stride, q : q + stride * w_out : stride]
    rows = columns.transpose(0, 4, 5, 2, 3, 1).reshape(batch * h_out * w_out, -1)
    out = rows @ filters.reshape(n_filters, -1).T + bias
    return out.reshape(batch, h_out, w_out, n_filters).transpose(0, 3, 1, 2)


def im2col_reshaped_without_transpose(X, filters, bias, stride, padding):
    """Reshapes the (N * H_out * W_out, F) product straight to (N, F, H_out, W_out)."""
    out = conv2d_forward_im2col(X, filters, bias, stride, padding)
    return out.transpose(0, 2, 3, 1).reshape(out.shape)


def im2col_kernel_flipped(X, filters, bias, stride, padding):
    return conv2d_forward_im2col(X, filters[:, :, ::-1, ::-1], bias, stride, padding)


def im2col_clears_input(X, filters, bias, stride, padding):
    """Computes the right result, then overwrites the caller's X with zeros."""
    out = conv2d_forward_im2col(X, filters, bias, stride, padding)
    X[...] = 0.0
    return out


# ---------------------------------------------------------------------------------------------------
# Catalogue


class BrokenLayer(NamedTuple):
    """A broken implementation, the check that grades it, and what that check must report."""

    implementation: type | Callable  # a layer class, or a function for check_conv2d_fast
    check: str
    messages: dict[str, str]  # each group that must fail, and text that its failure message contains

    @property
    def name(self) -> str:
        return self.implementation.__name__

    @property
    def failing_groups(self) -> frozenset[str]:
        return frozenset(self.messages)


def _broken(
    implementation: type | Callable, check: str, failing_groups: str, message: str, **group_messages: str
) -> BrokenLayer:
    """Catalogue a broken implementation whose failures all contain message, except where group_messages differ."""
    messages = {group: group_messages.get(group, message) for group in failing_groups.split()}
    return BrokenLayer(implementation, check, messages)


CORRECT_LAYERS: dict[str, type | Callable] = {
    "check_conv2d_forward": NaiveConv2D,
    "check_maxpool2d_forward": NaiveMaxPool2D,
    "check_rnn_forward": NaiveRNNCell,
    "check_lstm_step": NaiveLSTMCell,
    "check_lstm_forward": NaiveLSTM,
    "check_conv2d_backward": NaiveConv2DBackward,
    "check_maxpool2d_backward": NaiveMaxPool2DBackward,
    "check_rnn_backward": NaiveRNNCellBackward,
    "check_lstm_step_backward": NaiveLSTMCellBackward,
    "check_lstm_backward": NaiveLSTMBackward,
    "check_conv2d_fast": conv2d_forward_im2col,
}
"""The correct naive implementation that each check grades."""

STUB_LAYERS: dict[str, tuple[type | Callable, str]] = {
    "check_conv2d_forward": (StubConv2D, "Conv2D.forward"),
    "check_maxpool2d_forward": (StubMaxPool2D, "MaxPool2D.forward"),
    "check_rnn_forward": (StubRNNCell, "RNNCell.forward"),
    "check_lstm_step": (StubLSTMCell, "LSTMCell.forward_step"),
    "check_lstm_forward": (StubLSTM, "LSTM.forward"),
    "check_conv2d_backward": (StubConv2DBackward, "Conv2D.backward"),
    "check_maxpool2d_backward": (StubMaxPool2DBackward, "MaxPool2D.backward"),
    "check_rnn_backward": (StubRNNCellBackward, "RNNCell.backward"),
    "check_lstm_step_backward": (StubLSTMCellBackward, "LSTMCell.backward_step"),
    "check_lstm_backward": (StubLSTMBackward, "LSTM.backward"),
    "check_conv2d_fast": (conv2d_forward_fast, "conv2d_forward_fast"),
}
"""The unimplemented stub for each check, and the method name that its failure message must show."""

_CONV = "check_conv2d_forward"
_POOL = "check_maxpool2d_forward"
_RNN = "check_rnn_forward"
_STEP = "check_lstm_step"
_LSTM = "check_lstm_forward"
_CONV_BACKWARD = "check_conv2d_backward"
_POOL_BACKWARD = "check_maxpool2d_backward"
_RNN_BACKWARD = "check_rnn_backward"
_STEP_BACKWARD = "check_lstm_step_backward"
_LSTM_BACKWARD = "check_lstm_backward"
_FAST = "check_conv2d_fast"
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
    _broken(PoolStepsByKernel, _POOL, "overlapping", _LIKELY + "the windows move by kernel_size instead of by the"),
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
    _broken(LSTMSigmoidCandidate, _STEP, "basic nonzero_state", _LIKELY + "the candidate g uses sigmoid"),
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
    _broken(
        ConvBackwardNotCropped, _CONV_BACKWARD, "padding stride", _LIKELY + "the input gradient is not cropped after"
    ),
    _broken(
        ConvBackwardCropsWithNegativeIndex,
        _CONV_BACKWARD,
        "basic stride",
        _LIKELY + "dX is cropped with dX_padded[:, :, p:-p, p:-p], which is empty",
    ),
    _broken(
        ConvBackwardBiasOverBatchOnly,
        _CONV_BACKWARD,
        "basic padding stride",
        _LIKELY + "the bias gradient is summed over the wrong axes (0,) of dout",
    ),
    _broken(
        ConvBackwardBiasOverSpace,
        _CONV_BACKWARD,
        "basic padding stride",
        _LIKELY + "the bias gradient is summed over the wrong axes (2, 3) of dout",
    ),
    _broken(
        ConvBackwardKernelFlipped,
        _CONV_BACKWARD,
        "basic padding stride",
        _LIKELY + "the kernel is flipped in backward",
    ),
    _broken(ConvBackwardStrideIgnored, _CONV_BACKWARD, "stride", _LIKELY + "the windows move by one pixel in backward"),
    _broken(ConvBackwardNoGradients, _CONV_BACKWARD, "basic padding stride", "the layer has no attribute dfilters"),
    _broken(PoolBackwardAssigns, _POOL_BACKWARD, "overlapping", _LIKELY + "the gradient is assigned instead of"),
    _broken(
        PoolBackwardAssignsWindow, _POOL_BACKWARD, "overlapping", _LIKELY + "the gradient is assigned instead of"
    ),
    _broken(PoolBackwardAllMaxima, _POOL_BACKWARD, "ties", _LIKELY + "every entry equal to the maximum of its window"),
    _broken(PoolBackwardLastMaximum, _POOL_BACKWARD, "ties", _LIKELY + "the last maximal entry of a window"),
    _broken(
        PoolBackwardSpreadsEvenly, _POOL_BACKWARD, "basic overlapping ties", _LIKELY + "the gradient is spread evenly"
    ),
    _broken(
        PoolBackwardRowColumnSwapped,
        _POOL_BACKWARD,
        "basic overlapping ties",
        _LIKELY + "the row and column of each window's maximum are swapped",
    ),
    _broken(
        RNNBackwardNotCarried,
        _RNN_BACKWARD,
        "basic long",
        _LIKELY + "the hidden-state gradient is not carried back through time",
    ),
    _broken(
        RNNBackwardWhhNotTransposed,
        _RNN_BACKWARD,
        "basic long",
        _LIKELY + "the weights are transposed: W_hh is used without .T",
    ),
    _broken(
        RNNBackwardCurrentHidden,
        _RNN_BACKWARD,
        "basic single_step long",
        _LIKELY + "dW_hh multiplies the gradient of step t by h_t",
    ),
    _broken(
        RNNBackwardTanhTwice,
        _RNN_BACKWARD,
        "basic single_step long",
        _LIKELY + "the derivative of tanh is computed as 1 - tanh(h_t)**2",
    ),
    _broken(
        RNNBackwardWeightGradientTransposed, _RNN_BACKWARD, "basic single_step long", _LIKELY + "dW_xh is transposed"
    ),
    _broken(
        RNNBackwardBiasOverTimeOnly,
        _RNN_BACKWARD,
        "basic single_step long",
        _LIKELY + "db_y is summed over one axis only",
    ),
    _broken(
        LSTMBackwardForgetInputSwapped,
        _STEP_BACKWARD,
        "basic two_steps",
        _LIKELY + "the gates are in the wrong order: the gradients of the forget gate f and the input gate i are in "
        "each other's column blocks",
    ),
    _broken(
        LSTMBackwardOutputCandidateSwapped,
        _STEP_BACKWARD,
        "basic two_steps",
        _LIKELY + "the gates are in the wrong order: backward_step recomputes the output gate o and the candidate g",
    ),
    _broken(
        LSTMBackwardInputFirstConcat,
        _STEP_BACKWARD,
        "basic two_steps",
        _LIKELY + "the hidden state and the input are concatenated in the wrong order",
    ),
    _broken(
        LSTMBackwardWNotTransposed,
        _STEP_BACKWARD,
        "basic two_steps",
        _LIKELY + "the weights are transposed: the gradient of [h_prev, x_t] is computed with W instead of W.T",
        two_steps="LSTMCell.backward_step raised ValueError",
    ),
    _broken(
        LSTMBackwardCandidateSigmoidDerivative,
        _STEP_BACKWARD,
        "basic two_steps",
        _LIKELY + "sigmoid and tanh are swapped on the candidate g: it is differentiated as a sigmoid",
    ),
    _broken(
        LSTMBackwardCandidateSigmoid,
        _STEP_BACKWARD,
        "basic two_steps",
        _LIKELY + "sigmoid and tanh are swapped on the candidate g: backward_step recomputes it with sigmoid",
    ),
    _broken(
        LSTMBackwardAssignsGradients,
        _STEP_BACKWARD,
        "two_steps",
        _LIKELY + "dW and db are assigned instead of accumulated in backward_step",
    ),
    _broken(
        LSTMBackwardFirstInFirstOut,
        _STEP_BACKWARD,
        "two_steps",
        _LIKELY + "backward_step takes the oldest forward_step from the cache (first in, first out)",
    ),
    _broken(
        LSTMBackwardTanhOfCellMissing,
        _STEP_BACKWARD,
        "basic two_steps",
        _LIKELY + "the derivative of tanh(c_t) is written 1 - c_t**2",
    ),
    _broken(
        LSTMBackwardHiddenNotCarried,
        _LSTM_BACKWARD,
        "basic",
        _LIKELY + "the hidden-state gradient is not carried back through time",
    ),
    _broken(
        LSTMBackwardCellNotCarried, _LSTM_BACKWARD, "basic", _LIKELY + "the cell-state gradient is not carried back"
    ),
    _broken(
        LSTMBackwardForwardInTime,
        _LSTM_BACKWARD,
        "basic",
        _LIKELY + "the time steps are back-propagated from t = 0 upwards",
    ),
    _broken(
        LSTMBackwardGradientsNotReset,
        _LSTM_BACKWARD,
        "basic single_step",
        _LIKELY + "cell.dW and cell.db are not set to zeros at the start of backward",
    ),
    _broken(
        LSTMBackwardCellAssigns,
        _LSTM_BACKWARD,
        "basic",
        _LIKELY + "dW and db are assigned instead of accumulated in backward_step",
    ),
    _broken(
        im2col_flattened_differently,
        _FAST,
        "basic padding stride",
        _LIKELY + "the receptive fields and the filters are flattened in different orders",
    ),
    _broken(
        im2col_reshaped_without_transpose,
        _FAST,
        "basic padding stride",
        _LIKELY + "the product of the windows and the filters is reshaped",
    ),
    _broken(im2col_kernel_flipped, _FAST, "basic padding stride", _LIKELY + "the kernel is flipped"),
    _broken(im2col_clears_input, _FAST, "basic padding stride", "it changed its input X in place"),
]
"""Every broken implementation, with the exact set of groups that must fail it."""
