"""Reference Conv2D and MaxPool2D layers, vectorized with sliding windows.

Both layers work on images in (N, C, H, W) layout. No Python loop runs over pixels or batch items.
Forward and backward loop only over the k*k offsets inside a window: for one offset (p, q), the
input pixels that the windows see there form a strided slice of the input. Forward copies or
compares each slice as a whole. Backward scatters the whole upstream gradient at once for each
offset, and pixels that several windows share add up.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def output_size(size: int, kernel_size: int, stride: int, padding: int = 0) -> int:
    """Compute the output length along one spatial axis: (size + 2*padding - kernel_size) // stride + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def _output_dtype(array: np.ndarray) -> np.dtype:
    """Return the array's dtype if it is a floating type, else float64 (for integer images)."""
    if np.issubdtype(array.dtype, np.floating):
        return array.dtype
    return np.dtype(np.float64)


def _validate_images(X: np.ndarray, layer: str, kernel_size: int, padding: int) -> None:
    """Raise ValueError unless X is a 4-D batch of images that is at least one window tall and wide."""
    if X.ndim != 4:
        raise ValueError(f"{layer} expects X of shape (N, C, H, W), got an array of shape {X.shape}")

    height, width = X.shape[2] + 2 * padding, X.shape[3] + 2 * padding
    if height < kernel_size or width < kernel_size:
        raise ValueError(
            f"{layer}: input of height {X.shape[2]} and width {X.shape[3]} with padding {padding} "
            f"is smaller than the kernel_size {kernel_size}"
        )


def _validate_upstream(dout: np.ndarray, layer: str, expected_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless dout has the shape of the last forward's output."""
    if np.shape(dout) != expected_shape:
        raise ValueError(
            f"{layer}.backward expects dout of the shape of the last forward's output {expected_shape}, "
            f"got an array of shape {np.shape(dout)}"
        )


def _forward_input(layer: object, name: str) -> np.ndarray:
    """Return the input that the last forward stored, or raise RuntimeError if forward never ran."""
    X = getattr(layer, "X", None)
    if X is None:
        raise RuntimeError(f"{name}.backward needs the input of the last forward, so call forward first")
    return X


def _windows(X: np.ndarray, kernel_size: int, stride: int) -> np.ndarray:
    """Return a read-only view (N, C, H_out, W_out, k, k) of every receptive field of X.

    H_out = (H - k) // stride + 1, so rows and columns that do not fill a whole window are dropped.
    """
    every_position = sliding_window_view(X, (kernel_size, kernel_size), axis=(2, 3))
    return every_position[:, :, ::stride, ::stride]


def _offset_slices(p: int, q: int, H_out: int, W_out: int, stride: int) -> tuple[slice, slice, slice, slice]:
    """Index the pixels at offset (p, q) of every window: row p + i*stride, column q + j*stride."""
    rows = slice(p, p + stride * (H_out - 1) + 1, stride)
    columns = slice(q, q + stride * (W_out - 1) + 1, stride)
    return slice(None), slice(None), rows, columns


def _inside_input(offset: int, size: int, out_size: int, stride: int, padding: int) -> tuple[slice, slice]:
    """Along one axis, find the windows whose pixel at this offset lies in the unpadded input.

    Window i reads input pixel i*stride + offset - padding. Returns the slice of those windows and
    the slice of the input pixels they read. The other windows read zero padding there.
    """
    first = max(0, -((offset - padding) // stride))  # ceil((padding - offset) / stride)
    last = min(out_size - 1, (size - 1 + padding - offset) // stride)
    if last < first:
        return slice(0, 0), slice(0, 0)
    start = first * stride + offset - padding
    return slice(first, last + 1), slice(start, start + stride * (last - first) + 1, stride)


def _im2col(X: np.ndarray, kernel_size: int, stride: int, padding: int, columns: np.ndarray) -> np.ndarray:
    """Fill columns (N, C, k, k, H_out, W_out) with the pixel at offset (p, q) of every window.

    Entries that fall on the zero padding are not written, so columns must start as zeros. A
    buffer filled before for the same shapes, stride and padding already has zeros there. One
    strided slice copy per offset is faster than copying the 6-D view of _windows, and it needs no
    padded copy of X.
    """
    H, W = X.shape[2:]
    H_out, W_out = columns.shape[4:]
    for row in range(kernel_size):
        out_rows, in_rows = _inside_input(row, H, H_out, stride, padding)
        for column in range(kernel_size):
            out_columns, in_columns = _inside_input(column, W, W_out, stride, padding)
            columns[:, :, row, column, out_rows, out_columns] = X[:, :, in_rows, in_columns]
    return columns


def _col2im(contributions: np.ndarray, input_shape: tuple[int, ...], stride: int, padding: int) -> np.ndarray:
    """Add each entry of contributions (N, C, k, k, H_out, W_out) to the input pixel it came from.

    The reverse of _im2col: returns dX (N, C, H, W). Pixels that several windows share receive
    the sum, and what falls on the padding is dropped.
    """
    H, W = input_shape[2:]
    k = contributions.shape[2]
    H_out, W_out = contributions.shape[4:]
    dX = np.zeros(input_shape, dtype=contributions.dtype)
    for row in range(k):
        out_rows, in_rows = _inside_input(row, H, H_out, stride, padding)
        for column in range(k):
            out_columns, in_columns = _inside_input(column, W, W_out, stride, padding)
            dX[:, :, in_rows, in_columns] += contributions[:, :, row, column, out_rows, out_columns]
    return dX


def _buffer(cache: dict[str, np.ndarray], name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Return the zero-initialised scratch array cache[name], allocated again if its shape or dtype differs.

    Arrays of tens of megabytes are not reused by malloc: each new one costs page faults, which
    took about a third of a Conv2D pass on the benchmark shapes.
    """
    array = cache.get(name)
    if array is None or array.shape != shape or array.dtype != dtype:
        array = cache[name] = np.zeros(shape, dtype=dtype)
    return array


def _cross_correlate(X: np.ndarray, filters: np.ndarray, bias: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Compute the Conv2D forward pass from columns = _im2col of X: (N, C, H, W) to (N, F, H_out, W_out)."""
    N, _, _, _, H_out, W_out = columns.shape
    F = filters.shape[0]

    # For each image n, one matrix product sums over channels and both kernel axes:
    # (F, C * k * k) @ (C * k * k, H_out * W_out). The result is already in (N, F, ...) order.
    out = filters.reshape(F, -1) @ columns.reshape(N, -1, H_out * W_out)
    out += bias[:, np.newaxis]
    return out.reshape(N, F, H_out, W_out).astype(_output_dtype(X), copy=False)


def _columns_shape(X: np.ndarray, kernel_size: int, stride: int, padding: int) -> tuple[int, ...]:
    N, C, H, W = X.shape
    k = kernel_size
    return (N, C, k, k, output_size(H, k, stride, padding), output_size(W, k, stride, padding))


def conv2d_forward_fast(
    X: np.ndarray, filters: np.ndarray, bias: np.ndarray, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Cross-correlate a batch of images with filters (F, C, k, k) and add bias (F,), without loops.

    X: (N, C, H, W). Returns (N, F, H_out, W_out) with H_out = (H + 2*padding - k) // stride + 1,
    and likewise W_out. It computes exactly what Conv2D.forward computes.
    """
    _validate_images(X, "conv2d_forward_fast", filters.shape[2], padding)
    if filters.ndim != 4 or filters.shape[2] != filters.shape[3] or filters.shape[1] != X.shape[1]:
        raise ValueError(
            f"conv2d_forward_fast expects filters of shape (F, {X.shape[1]}, k, k) for X of shape {X.shape}, "
            f"got filters of shape {filters.shape}"
        )
    if bias.shape != (filters.shape[0],):
        raise ValueError(
            f"conv2d_forward_fast expects bias of shape ({filters.shape[0]},), got an array of shape {bias.shape}"
        )
    columns = np.zeros(_columns_shape(X, filters.shape[2], stride, padding), dtype=np.result_type(X, filters, bias))
    return _cross_correlate(X, filters, bias, _im2col(X, filters.shape[2], stride, padding, columns))


class Conv2D:
    """2-D convolution layer (cross-correlation, as in PyTorch) with zero padding and a stride.

    Parameters: filters (F, C, k, k) and bias (F,). Gradients after backward: dfilters and dbias.
    forward keeps its input in X for backward.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
    ) -> None:
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding

        # He (Kaiming) initialisation: the standard deviation sqrt(2 / fan_in) keeps the variance of
        # ReLU activations constant from layer to layer. fan_in counts the inputs of one output.
        fan_in = in_channels * kernel_size * kernel_size
        self.filters = np.random.randn(out_channels, in_channels, kernel_size, kernel_size) * np.sqrt(2.0 / fan_in)
        self.bias = np.zeros(out_channels)

        self.X: np.ndarray | None = None
        # Scratch arrays that later calls reuse: "columns" contains the im2col matrix of the last
        # forward's input, which backward reuses when X is still that input.
        self._buffers: dict[str, np.ndarray] = {}
        self._columns_of: tuple[np.ndarray, int, int] | None = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Cross-correlate a batch of images with the filters and add the bias.

        X: (N, C, H, W). Returns (N, F, H_out, W_out) with H_out = (H + 2*padding - k) // stride + 1,
        and likewise W_out. The kernel is not flipped.
        """
        _validate_images(X, "Conv2D.forward", self.kernel_size, self.padding)
        if X.shape[1] != self.filters.shape[1]:
            raise ValueError(
                f"Conv2D.forward expects {self.filters.shape[1]} input channels, got X of shape {X.shape}"
            )

        self.X = X
        return _cross_correlate(X, self.filters, self.bias, self._columns(X, reuse=False))

    def _columns(self, X: np.ndarray, reuse: bool) -> np.ndarray:
        """Return the im2col matrix of X. With reuse, return the last one built if it is of X.

        forward always builds it again, since X may have changed in place since the last call.
        """
        k, stride, padding = self.kernel_size, self.stride, self.padding
        shape = _columns_shape(X, k, stride, padding)
        dtype = np.result_type(X, self.filters, self.bias)
        columns = self._buffers.get("columns")
        if (
            reuse
            and self._columns_of is not None
            and self._columns_of[0] is X
            and self._columns_of[1:] == (stride, padding)
            and columns is not None
            and columns.shape == shape
            and columns.dtype == dtype
        ):
            return columns
        # The padding entries of a reused buffer are zero only if stride and padding are unchanged.
        if self._columns_of is not None and self._columns_of[1:] != (stride, padding):
            self._buffers.pop("columns", None)
        self._columns_of = None
        columns = _im2col(X, k, stride, padding, _buffer(self._buffers, "columns", shape, dtype))
        self._columns_of = (X, stride, padding)
        return columns

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Back-propagate dout (N, F, H_out, W_out) through the last forward and return dX (N, C, H, W).

        Stores dfilters (F, C, k, k) and dbias (F,), replacing the previous ones. dX is the gradient
        with respect to the unpadded input: the gradient that reaches the padding is cropped off.
        """
        X = _forward_input(self, "Conv2D")
        k, stride, p = self.kernel_size, self.stride, self.padding
        N, C, H, W = X.shape
        F = self.filters.shape[0]
        H_out, W_out = output_size(H, k, stride, p), output_size(W, k, stride, p)
        _validate_upstream(dout, "Conv2D", (N, F, H_out, W_out))

        self.dbias = dout.sum(axis=(0, 2, 3)).astype(self.bias.dtype, copy=False)

        columns = self._columns(X, reuse=True).reshape(N, C * k * k, H_out * W_out)
        dout_rows = dout.reshape(N, F, H_out * W_out)

        # dfilters[f, (c, p, q)] = sum over images n and output pixels of dout * columns.
        dfilters = np.matmul(dout_rows, columns.transpose(0, 2, 1)).sum(axis=0)
        self.dfilters = dfilters.reshape(self.filters.shape).astype(self.filters.dtype, copy=False)

        # Each output pixel sends dout[n, f, i, j] * filters[f, :, p, q] to the input pixel at offset
        # (p, q) of its window: filters^T @ dout for each image, then col2im.
        contributions = _buffer(
            self._buffers, "contributions", (N, C * k * k, H_out * W_out), np.result_type(self.filters, dout)
        )
        np.matmul(self.filters.reshape(F, -1).T, dout_rows, out=contributions)
        dX = _col2im(contributions.reshape(N, C, k, k, H_out, W_out), X.shape, stride, p)
        return dX.astype(_output_dtype(X), copy=False)


class MaxPool2D:
    """2-D max pooling over square windows, without padding.

    forward keeps its input in X for backward.
    """

    def __init__(self, kernel_size: int = 2, stride: int = 2) -> None:
        self.kernel_size = kernel_size
        self.stride = stride

        self.X: np.ndarray | None = None

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Take the maximum of each window of each channel.

        X: (N, C, H, W). Returns (N, C, H_out, W_out) with H_out = (H - k) // stride + 1, and likewise
        W_out. Rows and columns that do not fill a whole window are ignored. The dtype of X is kept.
        """
        _validate_images(X, "MaxPool2D.forward", self.kernel_size, padding=0)

        self.X = X
        k, stride = self.kernel_size, self.stride
        H_out, W_out = output_size(X.shape[2], k, stride), output_size(X.shape[3], k, stride)

        # A running maximum over the k*k strided slices, one per window offset, is faster than a
        # reduction over the 6-D view of _windows. The first slice is copied, so X stays unchanged.
        out = X[_offset_slices(0, 0, H_out, W_out, stride)].copy()
        for row in range(k):
            for column in range(k):
                if row or column:
                    np.maximum(out, X[_offset_slices(row, column, H_out, W_out, stride)], out=out)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Back-propagate dout (N, C, H_out, W_out) through the last forward and return dX (N, C, H, W).

        Each window sends its whole gradient to the entry with its maximum. When several
        entries tie for the maximum, the first of them in row-major order gets it, which is the
        entry np.argmax picks in the flattened window. A pixel that is the maximum of several
        overlapping windows receives the sum of their gradients.
        """
        X = _forward_input(self, "MaxPool2D")
        k, stride = self.kernel_size, self.stride
        N, C, H, W = X.shape
        H_out, W_out = output_size(H, k, stride), output_size(W, k, stride)
        _validate_upstream(dout, "MaxPool2D", (N, C, H_out, W_out))

        windows = _windows(X, k, stride).reshape(N, C, H_out, W_out, k * k)
        first_maximum = windows.argmax(axis=4)

        dX = np.zeros((N, C, H, W), dtype=np.result_type(_output_dtype(X), dout.dtype))
        for row in range(k):
            for column in range(k):
                at_offset = first_maximum == row * k + column
                dX[_offset_slices(row, column, H_out, W_out, stride)] += np.where(at_offset, dout, 0)
        return dX.astype(_output_dtype(X), copy=False)
