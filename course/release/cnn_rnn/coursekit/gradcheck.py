"""Numerical gradient check by centred differences, for testing backward passes.

A backward pass returns the gradient of a scalar loss L with respect to a layer's input or
parameter, given the upstream gradient dout = dL/d(output). For any upstream gradient, the loss
L(x) = sum(f(x) * dout) has exactly that gradient, so a layer's backward can be checked without
building a real loss:

    numeric = numerical_gradient(lambda X: conv.forward(X), X, dout)
    conv.forward(X)
    analytic = conv.backward(dout)
    relative_error(analytic, numeric)   # about 1e-7 or smaller when backward is correct

What to expect in float64 with the default step h = 1e-5: a correct layer gives a relative error
of about 1e-7 or smaller, and a relative error above 1e-3 means that the backward pass has a bug.
Errors in between usually have one of two causes. The function may have a kink within h of the
point, such as two nearly equal entries of a pooling window or a ReLU input near 0. Or some
gradient entries are almost 0, so that rounding dominates their relative error.
"""

from collections.abc import Callable

import numpy as np

__all__ = ["assert_gradients_close", "numerical_gradient", "relative_error"]


def numerical_gradient(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Estimate d sum(f(x) * dout) / dx by centred differences, one entry of x at a time.

    Each entry x[idx] is set to x[idx] + h and then to x[idx] - h, and the gradient entry is
    (L(x + h) - L(x - h)) / (2h), with an error of order h**2. The entry is restored before the
    next one is perturbed, so x is unchanged on return, even if f raises.

    x is changed in place while f runs. That is what makes the check work on a layer's
    parameters: pass the parameter array itself, and an f that ignores its argument and runs
    the layer, which reads the perturbed array from the layer:

        numerical_gradient(lambda _: conv.forward(X), conv.filters, dout)

    Args:
        f: function of x that returns an array of the same shape as dout. It must compute from
            the current values of x every time it is called.
        x: float array, perturbed in place and restored.
        dout: upstream gradient dL/d f(x).
        h: step of the centred difference. 1e-5 suits float64. In float32 the rounding error
            of f swamps so small a step, so check gradients in float64.

    Returns:
        Array of the shape of x and dtype float64 with the estimated gradient.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"numerical_gradient perturbs x in place, so x must be a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"numerical_gradient needs a float array x, got dtype {x.dtype}. "
            "Convert it first, for example with x = x.astype(np.float64)."
        )
    if not x.flags.writeable:
        raise ValueError("numerical_gradient perturbs x in place, but x is read-only. Pass a copy: x.copy().")
    if h <= 0:
        raise ValueError(f"numerical_gradient needs a step h > 0, got h = {h}")
    dout = np.asarray(dout)

    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        original = x[idx]
        try:
            x[idx] = original + h
            loss_plus = _loss(f, x, dout)

            x[idx] = original - h
            loss_minus = _loss(f, x, dout)
        finally:
            x[idx] = original

        grad[idx] = (loss_plus - loss_minus) / (2 * h)
    return grad


def _loss(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray) -> float:
    """Compute sum(f(x) * dout), checking that f(x) has the shape of dout."""
    out = np.asarray(f(x))
    if out.shape != dout.shape:
        raise ValueError(
            f"numerical_gradient: f(x) has shape {out.shape} but dout has shape {dout.shape}. "
            "dout must have the shape of the output of f."
        )
    return float(np.sum(out * dout))


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """Compute max |a - b| / max(1e-8, |a| + |b|) over all entries, or inf if any entry is NaN.

    Expected size for an analytic gradient against numerical_gradient with h = 1e-5 in float64:
    about 1e-7 or smaller when the backward pass is correct. Above 1e-3 means a bug. The floor
    1e-8 keeps entries where both gradients are (almost) exactly 0 from dividing by 0.
    """
    errors = _relative_errors(a, b)
    if errors.size == 0:
        return 0.0
    return float(errors.max())


def _relative_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compute |a - b| / max(1e-8, |a| + |b|) entry by entry, with inf where an entry is NaN."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error needs arrays of the same shape, got {a.shape} and {b.shape}")

    with np.errstate(invalid="ignore", over="ignore"):
        errors = np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))
    return np.where(np.isnan(errors), np.inf, errors)


def assert_gradients_close(name: str, analytic: np.ndarray, numeric: np.ndarray, max_error: float = 1e-6) -> float:
    """Raise AssertionError unless analytic has numeric's shape and relative_error <= max_error.

    name labels the gradient in the message, for example "dX" or "dfilters". Returns the
    relative error, so that a notebook can print it.
    """
    if not isinstance(analytic, np.ndarray):
        raise AssertionError(f"{name}: expected a numpy array of shape {numeric.shape}, got {type(analytic).__name__}")
    if analytic.shape != numeric.shape:
        raise AssertionError(f"{name}: expected shape {numeric.shape}, got {analytic.shape}")

    errors = _relative_errors(analytic, numeric)
    error = float(errors.max()) if errors.size else 0.0
    if error > max_error:
        worst = tuple(int(i) for i in np.unravel_index(np.argmax(errors), errors.shape))
        wrong_count = int((errors > max_error).sum())
        raise AssertionError(
            f"{name}: relative error {error:.1e} against the numerical gradient, above {max_error:.0e} "
            f"({wrong_count} of {errors.size} entries). The worst entry is at index {worst}: "
            f"analytic {analytic[worst]:.6g}, numerical {numeric[worst]:.6g}."
        )
    return error
