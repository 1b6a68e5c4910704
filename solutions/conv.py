"""Reference Conv2D and MaxPool2D layers, vectorized with sliding windows.

Both layers work on images in (N, C, H, W) layout and compute their output from a strided view
of every receptive field, so no Python loop runs over pixels or batch items.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# TODO: add Conv2D.backward(dout) and MaxPool2D.backward(dout). Each forward will then have to keep
# on the layer what its backward needs (the padded input for Conv2D, the argmax positions for MaxPool2D).


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
        raise ValueError(f"{layer}.forward expects X of shape (N, C, H, W), got an array of shape {X.shape}")

    height, width = X.shape[2] + 2 * padding, X.shape[3] + 2 * padding
    if height < kernel_size or width < kernel_size:
        raise ValueError(
            f"{layer}.forward: input of height {X.shape[2]} and width {X.shape[3]} with padding {padding} "
            f"is smaller than the kernel_size {kernel_size}"
        )


def _windows(X: np.ndarray, kernel_size: int, stride: int) -> np.ndarray:
    """Return a read-only view (N, C, H_out, W_out, k, k) of every receptive field of X.

    H_out = (H - k) // stride + 1, so rows and columns that do not fill a whole window are dropped.
    """
    every_position = sliding_window_view(X, (kernel_size, kernel_size), axis=(2, 3))
    return every_position[:, :, ::stride, ::stride]


class Conv2D:
    """2-D convolution layer (cross-correlation, as in PyTorch) with zero padding and a stride.

    Parameters: filters (F, C, k, k) and bias (F,).
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

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Cross-correlate a batch of images with the filters and add the bias.

        X: (N, C, H, W). Returns (N, F, H_out, W_out) with H_out = (H + 2*padding - k) // stride + 1,
        and likewise W_out. The kernel is not flipped.
        """
        _validate_images(X, "Conv2D", self.kernel_size, self.padding)
        if X.shape[1] != self.filters.shape[1]:
            raise ValueError(
                f"Conv2D.forward expects {self.filters.shape[1]} input channels, got X of shape {X.shape}"
            )

        p = self.padding
        X_padded = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)))

        windows = _windows(X_padded, self.kernel_size, self.stride)

        # Sum over channels and both kernel axes: (N, H_out, W_out, F).
        products = np.tensordot(windows, self.filters, axes=([1, 4, 5], [1, 2, 3]))

        out = products.transpose(0, 3, 1, 2) + self.bias[:, np.newaxis, np.newaxis]
        return np.ascontiguousarray(out, dtype=_output_dtype(X))


class MaxPool2D:
    """2-D max pooling over square windows, without padding."""

    def __init__(self, kernel_size: int = 2, stride: int = 2) -> None:
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Take the maximum of each window of each channel.

        X: (N, C, H, W). Returns (N, C, H_out, W_out) with H_out = (H - k) // stride + 1, and likewise
        W_out. Rows and columns that do not fill a whole window are ignored. The dtype of X is kept.
        """
        _validate_images(X, "MaxPool2D", self.kernel_size, padding=0)

        windows = _windows(X, self.kernel_size, self.stride)

        return windows.max(axis=(4, 5))
