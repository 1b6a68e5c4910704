"""Reference vanilla RNN and LSTM layers.

Sequences are laid out as (T, N, D): time steps first, then batch, then features. The layers loop
over time steps only, because each step needs the previous hidden state.
"""

import numpy as np

# TODO: add RNNCell.backward, LSTMCell.backward_step and LSTM.backward (BPTT). Each forward will then
# have to keep on the layer what its backward needs: the hidden states for the RNN, and a last-in,
# first-out stack of per-step gate values for the LSTM cell.


def _output_dtype(array: np.ndarray) -> np.dtype:
    """Return the array's dtype if it is a floating type, else float64."""
    if np.issubdtype(array.dtype, np.floating):
        return array.dtype
    return np.dtype(np.float64)


def _validate_sequence(inputs: np.ndarray, layer: str, input_size: int) -> None:
    """Raise ValueError unless inputs has shape (T, N, input_size)."""
    if inputs.ndim != 3 or inputs.shape[2] != input_size:
        raise ValueError(
            f"{layer}.forward expects inputs of shape (T, N, {input_size}), got an array of shape {inputs.shape}"
        )


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Compute the logistic function 1 / (1 + exp(-x)) without overflow for any finite or infinite x."""
    # exp(-|x|) lies in [0, 1], so neither branch can overflow. np.where evaluates both branches.
    exp_minus_abs = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + exp_minus_abs), exp_minus_abs / (1.0 + exp_minus_abs))


class RNNCell:
    """Vanilla (Elman) RNN with a tanh hidden state and a linear output, run over a whole sequence.

    Parameters: W_xh (D, H), W_hh (H, H), W_hy (H, O), b_h (H,), b_y (O,).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size

        self.W_xh = np.random.randn(input_size, hidden_size) * 0.01
        self.W_hh = np.random.randn(hidden_size, hidden_size) * 0.01
        self.W_hy = np.random.randn(hidden_size, output_size) * 0.01
        self.b_h = np.zeros(hidden_size)
        self.b_y = np.zeros(output_size)

    def forward(self, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the RNN over a sequence, starting from the hidden state h_0 = 0.

        inputs: (T, N, D). Returns (outputs, hidden_states) of shapes (T, N, O) and (T, N, H), where
        h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h) and y_t = h_t W_hy + b_y.
        """
        _validate_sequence(inputs, "RNNCell", self.W_xh.shape[0])
        steps, batch, _ = inputs.shape
        dtype = _output_dtype(inputs)

        hidden_states = np.empty((steps, batch, self.hidden_size), dtype=dtype)
        h = np.zeros((batch, self.hidden_size), dtype=dtype)
        for t in range(steps):
            h = np.tanh(inputs[t] @ self.W_xh + h @ self.W_hh + self.b_h)
            hidden_states[t] = h

        # The output layer has no recurrence, so all time steps go through it at once.
        outputs = hidden_states @ self.W_hy + self.b_y
        return outputs.astype(dtype, copy=False), hidden_states


class LSTMCell:
    """One step of a long short-term memory (LSTM) cell.

    Parameters: W (H + D, 4H) and b (4H,). W multiplies the concatenation [h_prev, x_t], hidden
    state first. Its column blocks of width H are, in order, the forget gate f, the input gate i,
    the output gate o and the candidate g. PyTorch orders its gates i, f, g, o instead.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        self.input_size = input_size
        self.hidden_size = hidden_size

        self.W = np.random.randn(hidden_size + input_size, 4 * hidden_size) * 0.01
        self.b = np.zeros(4 * hidden_size)

    def forward_step(
        self, x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Advance the hidden state and cell state by one time step.

        x_t: (N, D), h_prev: (N, H), c_prev: (N, H). Returns (h_t, c_t), both (N, H), where
        c_t = f * c_prev + i * g and h_t = o * tanh(c_t).
        """
        H = self.hidden_size
        D = self.W.shape[0] - H
        state_shape = (x_t.shape[0], H) if x_t.ndim == 2 else None
        if x_t.ndim != 2 or x_t.shape[1] != D or h_prev.shape != state_shape or c_prev.shape != state_shape:
            raise ValueError(
                f"LSTMCell.forward_step expects x_t (N, {D}), h_prev (N, {H}) and c_prev (N, {H}), "
                f"got shapes {x_t.shape}, {h_prev.shape} and {c_prev.shape}"
            )
        dtype = _output_dtype(x_t)

        pre_activations = np.concatenate([h_prev, x_t], axis=1) @ self.W + self.b

        f = sigmoid(pre_activations[:, 0 * H : 1 * H])
        i = sigmoid(pre_activations[:, 1 * H : 2 * H])
        o = sigmoid(pre_activations[:, 2 * H : 3 * H])
        g = np.tanh(pre_activations[:, 3 * H : 4 * H])

        c_t = f * c_prev + i * g
        h_t = o * np.tanh(c_t)
        return h_t.astype(dtype, copy=False), c_t.astype(dtype, copy=False)


class LSTM:
    """LSTM layer that runs one LSTMCell, stored in the attribute cell, over a whole sequence."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        self.cell = LSTMCell(input_size, hidden_size)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Run the LSTM over a sequence, starting from h_0 = c_0 = 0.

        inputs: (T, N, D). Returns the hidden states h_1 ... h_T as an array of shape (T, N, H).
        """
        _validate_sequence(inputs, "LSTM", self.cell.W.shape[0] - self.cell.hidden_size)
        steps, batch, _ = inputs.shape
        dtype = _output_dtype(inputs)

        hidden_states = np.empty((steps, batch, self.cell.hidden_size), dtype=dtype)
        h = np.zeros((batch, self.cell.hidden_size), dtype=dtype)
        c = np.zeros_like(h)
        for t in range(steps):
            h, c = self.cell.forward_step(inputs[t], h, c)
            hidden_states[t] = h
        return hidden_states
