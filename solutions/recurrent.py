"""Reference vanilla RNN and LSTM layers, with backpropagation through time (BPTT).

Sequences are laid out as (T, N, D): time steps first, then batch, then features. The layers loop
over time steps only, because each step needs the previous hidden state, and each backward step
needs the gradient that flows back from the next one.
"""

import numpy as np


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


def _validate_upstream(
    gradient: np.ndarray, layer: str, name: str, expected_shape: tuple[int, ...], method: str = "backward"
) -> None:
    """Raise ValueError unless an upstream gradient has the shape of the value it belongs to."""
    if np.shape(gradient) != expected_shape:
        raise ValueError(
            f"{layer}.{method} expects {name} of shape {expected_shape}, like the last forward's result, "
            f"got an array of shape {np.shape(gradient)}"
        )


def _cast(gradient: np.ndarray, parameter: np.ndarray) -> np.ndarray:
    """Return the gradient in the dtype of its parameter, so that float32 parameters get float32 gradients."""
    return gradient.astype(parameter.dtype, copy=False)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Compute the logistic function 1 / (1 + exp(-x)) without overflow for any finite or infinite x."""
    # exp(-|x|) lies in [0, 1], so neither branch can overflow. np.where evaluates both branches.
    exp_minus_abs = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + exp_minus_abs), exp_minus_abs / (1.0 + exp_minus_abs))


class RNNCell:
    """Vanilla (Elman) RNN with a tanh hidden state and a linear output, run over a whole sequence.

    Parameters: W_xh (D, H), W_hh (H, H), W_hy (H, O), b_h (H,), b_y (O,). Gradients after
    backward: dW_xh, dW_hh, dW_hy, db_h, db_y. forward keeps its inputs and hidden_states for backward.
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

        self.inputs: np.ndarray | None = None
        self.hidden_states: np.ndarray | None = None

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

        self.inputs = inputs
        self.hidden_states = hidden_states
        return outputs.astype(dtype, copy=False), hidden_states

    def backward(self, d_outputs: np.ndarray) -> np.ndarray:
        """Back-propagate through the whole last sequence (full BPTT) and return d_inputs (T, N, D).

        d_outputs: (T, N, O), the gradient of the loss with respect to the outputs of the last
        forward. Stores dW_xh, dW_hh, dW_hy, db_h and db_y, replacing the previous ones. h_0 = 0 is
        a constant, so no gradient flows into it.
        """
        if self.inputs is None or self.hidden_states is None:
            raise RuntimeError(
                "RNNCell.backward needs the inputs and hidden states of the last forward, so call forward first"
            )
        inputs, hidden_states = self.inputs, self.hidden_states
        steps, batch, _ = inputs.shape
        _validate_upstream(d_outputs, "RNNCell", "d_outputs", (steps, batch, self.W_hy.shape[1]))

        # The output layer y_t = h_t W_hy + b_y: every time step at once.
        self.dW_hy = _cast(np.tensordot(hidden_states, d_outputs, axes=([0, 1], [0, 1])), self.W_hy)
        self.db_y = _cast(d_outputs.sum(axis=(0, 1)), self.b_y)
        dh_from_outputs = d_outputs @ self.W_hy.T

        # h_t feeds y_t and h_{t+1}, so its gradient collects both, from the last step backwards.
        # d_pre_activations[t] is the gradient of a_t = x_t W_xh + h_{t-1} W_hh + b_h, and tanh'(a_t) = 1 - h_t**2.
        d_pre_activations = np.empty_like(dh_from_outputs)
        dh_from_next_step = np.zeros(dh_from_outputs.shape[1:], dtype=dh_from_outputs.dtype)
        for t in reversed(range(steps)):
            dh = dh_from_outputs[t] + dh_from_next_step
            d_pre_activations[t] = dh * (1.0 - hidden_states[t] ** 2)
            dh_from_next_step = d_pre_activations[t] @ self.W_hh.T

        previous_hidden_states = np.zeros_like(hidden_states)
        previous_hidden_states[1:] = hidden_states[:-1]

        self.dW_xh = _cast(np.tensordot(inputs, d_pre_activations, axes=([0, 1], [0, 1])), self.W_xh)
        self.dW_hh = _cast(np.tensordot(previous_hidden_states, d_pre_activations, axes=([0, 1], [0, 1])), self.W_hh)
        self.db_h = _cast(d_pre_activations.sum(axis=(0, 1)), self.b_h)

        d_inputs = d_pre_activations @ self.W_xh.T
        return d_inputs.astype(_output_dtype(inputs), copy=False)


class LSTMCell:
    """One step of a long short-term memory (LSTM) cell.

    Parameters: W (H + D, 4H) and b (4H,). W multiplies the concatenation [h_prev, x_t], hidden
    state first. Its column blocks of width H are, in order, the forget gate f, the input gate i,
    the output gate o and the candidate g. PyTorch orders its gates i, f, g, o instead.

    Gradients: dW and db, which the constructor sets to zeros and backward_step adds into.
    Each forward_step pushes its inputs and gate values onto the stack cache, and each
    backward_step pops the most recent step (last in, first out). Nothing else empties the stack,
    so a cell that only runs forward_step keeps every step until an LSTM.forward resets it.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        self.input_size = input_size
        self.hidden_size = hidden_size

        self.W = np.random.randn(hidden_size + input_size, 4 * hidden_size) * 0.01
        self.b = np.zeros(4 * hidden_size)

        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.cache: list[tuple[np.ndarray, ...]] = []

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
        tanh_c = np.tanh(c_t)
        h_t = o * tanh_c

        self.cache.append((x_t, h_prev, c_prev, f, i, o, g, tanh_c))
        return h_t.astype(dtype, copy=False), c_t.astype(dtype, copy=False)

    def backward_step(self, dh_t: np.ndarray, dc_t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Back-propagate the most recent forward_step not yet back-propagated, and pop it.

        dh_t: (N, H), the gradient of the loss with respect to h_t. dc_t: (N, H), the gradient that
        reaches c_t directly from later time steps. Returns (dx_t, dh_prev, dc_prev) of shapes
        (N, D), (N, H) and (N, H), and adds the step's gradients into dW and db.
        """
        if not self.cache:
            raise RuntimeError(
                "LSTMCell.backward_step has no forward_step left to back-propagate: every step was "
                "already popped, or forward_step never ran"
            )
        x_t, h_prev, c_prev, f, i, o, g, tanh_c = self.cache[-1]
        _validate_upstream(dh_t, "LSTMCell", "dh_t", h_prev.shape, method="backward_step")
        _validate_upstream(dc_t, "LSTMCell", "dc_t", h_prev.shape, method="backward_step")
        self.cache.pop()
        H = self.hidden_size

        # c_t reaches the loss directly (dc_t) and through h_t = o * tanh(c_t).
        dc = dc_t + dh_t * o * (1.0 - tanh_c**2)
        d_o = dh_t * tanh_c
        d_f = dc * c_prev
        d_i = dc * g
        d_g = dc * i
        dc_prev = dc * f

        # Through the nonlinearities, sigmoid' = s * (1 - s) and tanh' = 1 - t**2, into the blocks f, i, o, g.
        d_pre_activations = np.concatenate(
            [d_f * f * (1.0 - f), d_i * i * (1.0 - i), d_o * o * (1.0 - o), d_g * (1.0 - g**2)], axis=1
        )

        concatenated = np.concatenate([h_prev, x_t], axis=1)
        self.dW += concatenated.T @ d_pre_activations
        self.db += d_pre_activations.sum(axis=0)

        d_concatenated = d_pre_activations @ self.W.T
        dtype = _output_dtype(x_t)
        dh_prev = d_concatenated[:, :H].astype(dtype, copy=False)
        dx_t = d_concatenated[:, H:].astype(dtype, copy=False)
        return dx_t, dh_prev, dc_prev.astype(dtype, copy=False)


class LSTM:
    """LSTM layer that runs one LSTMCell, stored in the attribute cell, over a whole sequence.

    Gradients after backward: cell.dW and cell.db.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        self.cell = LSTMCell(input_size, hidden_size)

    def forward(self, inputs: np.ndarray) -> np.ndarray:
        """Run the LSTM over a sequence, starting from h_0 = c_0 = 0.

        inputs: (T, N, D). Returns the hidden states h_1 ... h_T as an array of shape (T, N, H).
        The cell's stack holds the T steps of this sequence afterwards, for backward.
        """
        _validate_sequence(inputs, "LSTM", self.cell.W.shape[0] - self.cell.hidden_size)
        steps, batch, _ = inputs.shape
        dtype = _output_dtype(inputs)

        # Steps of an earlier sequence that were never back-propagated are dropped.
        self.cell.cache = []

        hidden_states = np.empty((steps, batch, self.cell.hidden_size), dtype=dtype)
        h = np.zeros((batch, self.cell.hidden_size), dtype=dtype)
        c = np.zeros_like(h)
        for t in range(steps):
            h, c = self.cell.forward_step(inputs[t], h, c)
            hidden_states[t] = h
        return hidden_states

    def backward(self, d_hidden_states: np.ndarray) -> np.ndarray:
        """Back-propagate through the last sequence (full BPTT) and return d_inputs (T, N, D).

        d_hidden_states: (T, N, H), the gradient of the loss with respect to the hidden states
        that forward returned. Sets cell.dW and cell.db to zeros, then runs cell.backward_step
        from t = T-1 down to 0, carrying the gradients of h and c from each step to the one before.
        """
        cell = self.cell
        H = cell.hidden_size
        D = cell.W.shape[0] - H
        if np.ndim(d_hidden_states) != 3 or d_hidden_states.shape[2] != H:
            raise ValueError(
                f"LSTM.backward expects d_hidden_states of shape (T, N, {H}), "
                f"got an array of shape {np.shape(d_hidden_states)}"
            )
        steps, batch, _ = d_hidden_states.shape
        if len(cell.cache) < steps:
            raise RuntimeError(
                f"LSTM.backward got {steps} time steps, but the cell has {len(cell.cache)} steps "
                "that are not yet back-propagated, so call forward first"
            )

        cell.dW = np.zeros_like(cell.W)
        cell.db = np.zeros_like(cell.b)

        dtype = _output_dtype(cell.cache[-1][0]) if steps else np.dtype(np.float64)
        d_inputs = np.empty((steps, batch, D), dtype=dtype)
        dh = np.zeros((batch, H), dtype=dtype)
        dc = np.zeros((batch, H), dtype=dtype)
        for t in reversed(range(steps)):
            d_inputs[t], dh, dc = cell.backward_step(d_hidden_states[t] + dh, dc)
        return d_inputs
