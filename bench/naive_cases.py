"""Naive student-style loops against the reference layers, on a small shape.

The naive layers are the correct ones of tests/broken_layers.py: the forward-exercise classes for
forward, and the backward-exercise classes for backward. For Conv2D and MaxPool2D they loop over the
batch, the channels or filters and every output pixel, like the original week's notebook. The
reference layers are vectorized, and both loop over time steps in the RNN and the LSTM. Both get
the same parameters and inputs, and the run stops if their results differ, because then the
timings would compare different computations.
"""

from dataclasses import dataclass, field

import numpy as np
from broken_layers import (
    NaiveConv2D,
    NaiveConv2DBackward,
    NaiveLSTM,
    NaiveLSTMBackward,
    NaiveMaxPool2D,
    NaiveMaxPool2DBackward,
    NaiveRNNCell,
)

import solutions
from autograder.tolerances import tolerance
from bench.timing import Case, Contender
from bench.torch_cases import ConvShape, PoolShape, SequenceShape

NAIVE = "naive"
REFERENCE = "reference"

SMALL_CONV_SHAPE = ConvShape(N=4, C=3, H=16, W=16, F=8, kernel_size=3, stride=1, padding=1)
SMALL_POOL_SHAPE = PoolShape(N=4, C=8, H=16, W=16, kernel_size=2, stride=2)
SMALL_RNN_SHAPE = SequenceShape(T=10, N=4, D=16, H=32, O=8)
SMALL_LSTM_SHAPE = SequenceShape(T=10, N=4, D=16, H=32)


@dataclass
class NaiveCase(Case):
    """A naive-against-reference case, with the labels that the table prints."""

    layer: str = ""
    direction: str = ""
    shape: str = ""
    largest_error: dict[str, float] = field(default_factory=dict)

    def ratio(self) -> float:
        return self.median_seconds(NAIVE) / self.median_seconds(REFERENCE)


def _new_case(layer: str, direction: str, shape: object, naive: Contender, reference: Contender) -> NaiveCase:
    return NaiveCase({NAIVE: naive, REFERENCE: reference}, layer=layer, direction=direction, shape=str(shape))


def _agree(case: NaiveCase, name: str, naive: np.ndarray, reference: np.ndarray, direction: str) -> None:
    """Store the largest error between the two results, or raise RuntimeError if it is above the tolerance."""
    error = float((np.abs(naive - reference) / np.maximum(1.0, np.abs(reference))).max(initial=0.0))
    case.largest_error[name] = error
    if error > tolerance("float64", direction):
        raise RuntimeError(
            f"naive and reference {case.layer} {case.direction} disagree on {name}: largest error {error:.2e}"
        )


def _conv2d_cases(rng: np.random.Generator) -> list[NaiveCase]:
    s = SMALL_CONV_SHAPE
    arguments = (s.C, s.F, s.kernel_size, s.stride, s.padding)
    naive_forward = NaiveConv2D(*arguments)
    naive_backward = NaiveConv2DBackward(*arguments)
    reference = solutions.Conv2D(*arguments)
    filters, bias = rng.standard_normal(reference.filters.shape), rng.standard_normal(s.F)
    for layer in (naive_forward, naive_backward, reference):
        layer.filters, layer.bias = filters, bias
    X = rng.standard_normal((s.N, s.C, s.H, s.W))
    dout = rng.standard_normal(reference.forward(X).shape)
    naive_backward.forward(X)

    forward = _new_case(
        "Conv2D", "forward", s, Contender(lambda: naive_forward.forward(X)), Contender(lambda: reference.forward(X))
    )
    _agree(forward, "output", naive_forward.forward(X), reference.forward(X), "forward")

    backward = _new_case(
        "Conv2D",
        "backward",
        s,
        Contender(lambda: naive_backward.backward(dout)),
        Contender(lambda: reference.backward(dout)),
    )
    _agree(backward, "dX", naive_backward.backward(dout), reference.backward(dout), "backward")
    _agree(backward, "dfilters", naive_backward.dfilters, reference.dfilters, "backward")
    return [forward, backward]


def _maxpool2d_cases(rng: np.random.Generator) -> list[NaiveCase]:
    s = SMALL_POOL_SHAPE
    naive_forward = NaiveMaxPool2D(s.kernel_size, s.stride)
    naive_backward = NaiveMaxPool2DBackward(s.kernel_size, s.stride)
    reference = solutions.MaxPool2D(s.kernel_size, s.stride)
    X = rng.standard_normal((s.N, s.C, s.H, s.W))
    dout = rng.standard_normal(reference.forward(X).shape)
    naive_backward.forward(X)

    forward = _new_case(
        "MaxPool2D", "forward", s, Contender(lambda: naive_forward.forward(X)), Contender(lambda: reference.forward(X))
    )
    _agree(forward, "output", naive_forward.forward(X), reference.forward(X), "forward")

    backward = _new_case(
        "MaxPool2D",
        "backward",
        s,
        Contender(lambda: naive_backward.backward(dout)),
        Contender(lambda: reference.backward(dout)),
    )
    _agree(backward, "dX", naive_backward.backward(dout), reference.backward(dout), "backward")
    return [forward, backward]


def _rnn_cases(rng: np.random.Generator) -> list[NaiveCase]:
    s = SMALL_RNN_SHAPE
    naive = NaiveRNNCell(s.D, s.H, s.O)
    reference = solutions.RNNCell(s.D, s.H, s.O)
    for name in ("W_xh", "W_hh", "W_hy", "b_h", "b_y"):
        setattr(reference, name, getattr(naive, name))
    inputs = rng.standard_normal((s.T, s.N, s.D))

    forward = _new_case(
        "RNNCell", "forward", s, Contender(lambda: naive.forward(inputs)), Contender(lambda: reference.forward(inputs))
    )
    _agree(forward, "hidden states", naive.forward(inputs)[1], reference.forward(inputs)[1], "forward")
    return [forward]


def _lstm_cases(rng: np.random.Generator) -> list[NaiveCase]:
    s = SMALL_LSTM_SHAPE
    naive_forward = NaiveLSTM(s.D, s.H)
    naive_backward = NaiveLSTMBackward(s.D, s.H)
    reference = solutions.LSTM(s.D, s.H)
    W = rng.standard_normal(reference.cell.W.shape) / np.sqrt(s.H + s.D)
    b = rng.standard_normal(4 * s.H) * 0.1
    for layer in (naive_forward, naive_backward, reference):
        layer.cell.W, layer.cell.b = W, b
    inputs = rng.standard_normal((s.T, s.N, s.D))
    d_hidden_states = rng.standard_normal((s.T, s.N, s.H))

    forward = _new_case(
        "LSTM",
        "forward",
        s,
        Contender(lambda: naive_forward.forward(inputs)),
        Contender(lambda: reference.forward(inputs)),
    )
    _agree(forward, "hidden states", naive_forward.forward(inputs), reference.forward(inputs), "forward")

    # Each backward pass consumes the steps that its forward pushed onto the cell's stack, so every
    # timed backward call follows an untimed forward.
    backward = _new_case(
        "LSTM",
        "backward",
        s,
        Contender(lambda: naive_backward.backward(d_hidden_states), setup=lambda: naive_backward.forward(inputs)),
        Contender(lambda: reference.backward(d_hidden_states), setup=lambda: reference.forward(inputs)),
    )
    naive_backward.forward(inputs)
    reference.forward(inputs)
    naive_d_inputs = naive_backward.backward(d_hidden_states)
    _agree(backward, "d_inputs", naive_d_inputs, reference.backward(d_hidden_states), "backward")
    return [forward, backward]


def all_cases(seed: int = 1) -> list[NaiveCase]:
    """Build every naive-against-reference case, in float64."""
    rng = np.random.default_rng(seed)
    return _conv2d_cases(rng) + _maxpool2d_cases(rng) + _rnn_cases(rng) + _lstm_cases(rng)
