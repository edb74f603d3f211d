"""Pooling over the spatial axes of an NCHW batch: average, maximum, and adaptive average.

``avg_pool2d`` and ``max_pool2d`` slide a KH x KW window with a stride; padding adds zeros (counted in
the average, as PyTorch's default ``count_include_pad=True``) or -inf (never the maximum; max pooling runs
as a kernel, ``autograd.kernels.cpu.max_pool2d``).
Backward sends each window's gradient back to its taps: 1/(KH KW) to every tap for the average, all of it
to the tap that held the maximum for max pooling. ``adaptive_avg_pool2d`` picks the windows so that the
output has a given size (bin i spans rows floor(i H / Ho) to ceil((i+1) H / Ho)).
"""

from __future__ import annotations

import math

from ...backend import get_array_module
from ...function import Function
from ...tensor import as_tensor
from ...utils import conv_output_size, pair, sliding_windows


def _scatter_taps(xp, grad_taps, pad_shape, kh, kw, sh, sw, ho, wo):
    """Add grad_taps[..., u, v] (N, C, Ho, Wo, KH, KW) back to the input positions each tap read."""
    grad_pad = xp.zeros(pad_shape, dtype=grad_taps.dtype)
    for u in range(kh):
        for v in range(kw):
            grad_pad[:, :, u : u + sh * ho : sh, v : v + sw * wo : sw] += grad_taps[..., u, v]
    return grad_pad


class AvgPool2d(Function):
    """y = mean of each KH x KW window (zero padding counted)."""

    def forward(self, x, kernel=(2, 2), stride=(2, 2), padding=(0, 0)):
        xp = get_array_module(x)
        (ph, pw) = padding
        x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
        windows = sliding_windows(xp, x_pad, *kernel, *stride)
        self.geometry = (x.shape, x_pad.shape, kernel, stride, padding, windows.shape[2], windows.shape[3])
        return windows.mean(axis=(-2, -1))

    def backward(self, grad):
        xp = get_array_module(grad)
        x_shape, pad_shape, (kh, kw), (sh, sw), (ph, pw), ho, wo = self.geometry
        share = xp.broadcast_to((grad / (kh * kw))[..., None, None], grad.shape + (kh, kw))
        grad_pad = _scatter_taps(xp, share, pad_shape, kh, kw, sh, sw, ho, wo)
        return grad_pad[:, :, ph : ph + x_shape[2], pw : pw + x_shape[3]]


class MaxPool2d(Function):
    """y = max of each KH x KW window; padding is -inf, so it never wins. The gradient of each output goes to
    its window's first maximal tap (the first real tap of a window whose real inputs are all -inf).

    Fast paths: the Numba kernel of ``autograd/kernels/cpu/max_pool2d.py`` on NumPy arrays, the CUDA kernel of
    ``autograd/kernels/cuda/max_pool2d.py`` on CuPy arrays (both keep each output's winner as a flat index).
    """

    fast_paths = {"cpu": "autograd.kernels.cpu.max_pool2d", "cuda": "autograd.kernels.cuda.max_pool2d"}

    def forward(self, x, kernel_size, stride, padding):
        xp = get_array_module(x)
        (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
        h, w = x.shape[2:]
        x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-math.inf)
        windows = sliding_windows(xp, x_pad, kh, kw, sh, sw)  # (N, C, Ho, Wo, KH, KW)
        ho, wo = windows.shape[2:4]
        taps = windows.reshape(windows.shape[:4] + (kh * kw,))
        tap = taps.argmax(axis=-1)  # the first maximal tap
        top, left = (xp.arange(ho) * sh - ph)[:, None], (xp.arange(wo) * sw - pw)[None, :]
        row, col = top + tap // kw, left + tap % kw
        padded = (row < 0) | (row >= h) | (col < 0) | (col >= w)  # all real inputs -inf: the first real tap
        row, col = xp.where(padded, xp.maximum(top, 0), row), xp.where(padded, xp.maximum(left, 0), col)
        self.save_for_backward((row - top) * kw + col - left)  # the winning tap of each window
        self.geometry = (x.shape, kernel_size, stride, padding)
        return xp.take_along_axis(taps, tap[..., None], axis=-1)[..., 0]

    def backward(self, grad):
        xp = get_array_module(grad)
        (winning_tap,) = self.saved
        (n, c, h, w), (kh, kw), (sh, sw), (ph, pw) = self.geometry
        ho, wo = grad.shape[2:]
        # grad_taps[..., u, v]: each window's gradient at the tap that won it, zero at the others
        won = winning_tap[..., None] == xp.arange(kh * kw)
        grad_taps = xp.where(won, grad[..., None], 0).astype(grad.dtype).reshape(grad.shape + (kh, kw))
        grad_pad = _scatter_taps(xp, grad_taps, (n, c, h + 2 * ph, w + 2 * pw), kh, kw, sh, sw, ho, wo)
        return grad_pad[:, :, ph : ph + h, pw : pw + w]

    def fast_forward(self, kernels, x, kernel_size, stride, padding):
        y, winner = kernels.max_pool2d_forward(x, kernel_size, stride, padding)
        self.save_for_backward(winner)
        self.geometry = (x.shape, kernel_size, stride, padding)
        return y

    def fast_backward(self, grad):
        (winner,) = self.saved
        return (self.kernels.max_pool2d_backward(grad, winner, *self.geometry),)


class AdaptiveAvgPool2d(Function):
    """y[:, :, i, j] = mean of x over the bin (rows of bin i) x (columns of bin j)."""

    def forward(self, x, output_size=(1, 1)):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        self.row_bins = _adaptive_bins(h, output_size[0])
        self.col_bins = _adaptive_bins(w, output_size[1])
        self.input_shape = x.shape
        out = xp.empty((n, c) + tuple(output_size), dtype=x.dtype)
        for i, (r0, r1) in enumerate(self.row_bins):
            for j, (c0, c1) in enumerate(self.col_bins):
                out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_x = xp.zeros(self.input_shape, dtype=grad.dtype)
        for i, (r0, r1) in enumerate(self.row_bins):
            for j, (c0, c1) in enumerate(self.col_bins):
                grad_x[:, :, r0:r1, c0:c1] += (grad[:, :, i, j] / ((r1 - r0) * (c1 - c0)))[:, :, None, None]
        return grad_x


def _adaptive_bins(size, bins):
    return [(i * size // bins, math.ceil((i + 1) * size / bins)) for i in range(bins)]


def _pool_arguments(name, x, kernel_size, stride, padding):
    if x.ndim != 4:
        raise ValueError(f"{name} expects input of shape (N, C, H, W), got shape {x.shape}")
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1:
        raise ValueError(f"{name}: kernel_size and stride must be >= 1, got {kernel} and {stride}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2 or min(padding) < 0:
        raise ValueError(f"{name}: padding {padding} must be between 0 and half the kernel size {kernel}")
    ho = conv_output_size(x.shape[2], kernel[0], stride[0], padding[0])
    wo = conv_output_size(x.shape[3], kernel[1], stride[1], padding[1])
    if ho < 1 or wo < 1:
        raise ValueError(f"{name}: input {x.shape} is smaller than the window {kernel} (padding {padding})")
    return kernel, stride, padding


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Average pooling, as ``torch.nn.functional.avg_pool2d`` (stride defaults to the kernel size)."""
    x = as_tensor(x)
    kernel, stride, padding = _pool_arguments("avg_pool2d", x, kernel_size, stride, padding)
    return AvgPool2d.apply(x, kernel=kernel, stride=stride, padding=padding)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max pooling, as ``torch.nn.functional.max_pool2d`` (stride defaults to the kernel size)."""
    x = as_tensor(x)
    kernel, stride, padding = _pool_arguments("max_pool2d", x, kernel_size, stride, padding)
    return MaxPool2d.apply(x, kernel_size=kernel, stride=stride, padding=padding)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size (``torch.nn.functional.adaptive_avg_pool2d``).

    To 1x1 (global average pooling, every classifier head) it is simply the mean over H and W.
    """
    x = as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d expects input of shape (N, C, H, W), got shape {x.shape}")
    size = pair(output_size, "output_size")
    if min(size) < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be >= 1, got {output_size}")
    if size == (1, 1):
        return x.mean(axis=(2, 3), keepdims=True)
    return AdaptiveAvgPool2d.apply(x, output_size=size)
