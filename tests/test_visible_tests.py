"""The visible test cells of the source notebooks pass correct layers and catch common mistakes.

Students run these cells on their own machines, without autograder/ or solutions/, so they are
checked here directly: each cell runs with a layer class from tests/broken_layers.py in place of
the student's answer.
"""

from __future__ import annotations

import os

import nbformat
import numpy as np
import pytest

import broken_layers as layers
from autograder.course import SOURCE_DIR


def visible_cell(notebook: str, grade_id: str) -> str:
    source = nbformat.read(os.fspath(SOURCE_DIR / "cnn_rnn" / f"{notebook}.ipynb"), as_version=4)
    for cell in source.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return cell.source
    raise LookupError(f"{notebook}.ipynb has no cell {grade_id}")


def run_visible(notebook: str, grade_id: str, **classes: type) -> None:
    """Run one visible test cell with ``classes`` as the notebook's layer classes."""
    exec(compile(visible_cell(notebook, grade_id), grade_id, "exec"), {"np": np, "print": lambda *a: None, **classes})


class ConvBiasPerChannel(layers.NaiveConv2D):
    """Adds the bias once per input channel instead of once per output value."""

    def forward(self, X):
        out = super().forward(X)
        return out + (X.shape[1] - 1) * self.bias[None, :, None, None]


class RNNTransposedRecurrence(layers.NaiveRNNCell):
    """Multiplies h_{t-1} by W_hh transposed, as PyTorch's weight layout would suggest."""

    def forward(self, inputs):
        original = self.W_hh
        self.W_hh = original.T
        try:
            return super().forward(inputs)
        finally:
            self.W_hh = original


class LSTMForwardReturnsTuple(layers.NaiveLSTM):
    """Returns (hidden_states, last cell state) instead of the hidden states alone."""

    def forward(self, inputs):
        return super().forward(inputs), None


class LSTMForwardHiddenNotFedBack(layers.NaiveLSTM):
    """Carries the cell state but starts every step from h = 0."""

    def forward(self, inputs):
        steps, batch, _ = inputs.shape
        zeros = np.zeros((batch, self.hidden_size))
        c = zeros
        hidden_states = []
        for t in range(steps):
            h, c = self.cell.forward_step(inputs[t], zeros, c)
            hidden_states.append(h)
        return np.array(hidden_states)


CASES = {
    ("conv_pool", "conv2d_visible", "Conv2D"): (layers.NaiveConv2D, [
        layers.ConvPaddingOneSide, layers.ConvStrideIgnored, layers.ConvHeightWidthSwapped,
        layers.ConvKernelFlipped, layers.ConvBiasMissing, layers.ConvModifiesInput, ConvBiasPerChannel]),
    ("conv_pool", "maxpool2d_visible", "MaxPool2D"): (layers.NaiveMaxPool2D, [
        layers.PoolStepsByKernel, layers.PoolAverage, layers.PoolMaxStartsAtZero, layers.PoolOffByOne,
        layers.PoolRoundsUp]),
    ("rnn_lstm", "rnn_visible", "RNNCell"): (layers.NaiveRNNCell, [
        layers.RNNMissingRecurrence, layers.RNNHiddenStateNotCarried, layers.RNNOutputBeforeTanh,
        layers.RNNReturnsSwapped, RNNTransposedRecurrence]),
    ("rnn_lstm", "lstm_cell_visible", "LSTMCell"): (layers.NaiveLSTMCell, [
        layers.LSTMForgetInputSwapped, layers.LSTMTorchGateOrder, layers.LSTMInputFirstConcat,
        layers.LSTMSigmoidCandidate, layers.LSTMNoForgetGate, layers.LSTMStepReturnsSwapped]),
    ("rnn_lstm", "lstm_visible", "LSTM"): (layers.NaiveLSTM, [
        layers.LSTMForwardStateNotCarried, layers.LSTMForwardCellStateReset,
        layers.LSTMForwardReturnsCellStates, layers.LSTMForwardBatchFirst, LSTMForwardReturnsTuple,
        LSTMForwardHiddenNotFedBack]),
}


@pytest.mark.parametrize("key", sorted(CASES), ids=lambda key: key[1])
def test_visible_cell_passes_correct_layer(key):
    notebook, grade_id, name = key
    correct, _ = CASES[key]
    run_visible(notebook, grade_id, **{name: correct})


BROKEN = [(key, broken) for key, (_, broken_list) in sorted(CASES.items()) for broken in broken_list]


@pytest.mark.parametrize("key, broken", BROKEN, ids=[f"{key[1]}-{broken.__name__}" for key, broken in BROKEN])
def test_visible_cell_catches_mistake(key, broken):
    notebook, grade_id, name = key
    with pytest.raises((AssertionError, ValueError, IndexError, TypeError, AttributeError)):
        run_visible(notebook, grade_id, **{name: broken})


@pytest.mark.parametrize("key, broken, hint", [
    (("conv_pool", "conv2d_visible", "Conv2D"), ConvBiasPerChannel, "the bias was added once per input channel"),
    (("rnn_lstm", "rnn_visible", "RNNCell"), RNNTransposedRecurrence, "multiplied by W_hh transposed"),
    (("rnn_lstm", "lstm_visible", "LSTM"), LSTMForwardReturnsTuple, "got tuple"),
    (("rnn_lstm", "lstm_visible", "LSTM"), LSTMForwardHiddenNotFedBack, "passes h and c on to the next step"),
], ids=["bias-per-channel", "transposed-recurrence", "lstm-tuple", "lstm-hidden-not-fed-back"])
def test_visible_cell_names_mistake(key, broken, hint):
    notebook, grade_id, name = key
    with pytest.raises(AssertionError, match=hint):
        run_visible(notebook, grade_id, **{name: broken})
