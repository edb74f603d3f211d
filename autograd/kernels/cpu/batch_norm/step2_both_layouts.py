"""Batch norm, step 2: the launchers of the two layouts' kernels, neither layout transposed (the one used).

What changes from step 1: each layout gets kernels that read memory in order (step2_channels_last.py,
step2_channels_first.py), and the work is spread over threads. The backward needs only one pair of
per-channel sums, of dy and of dy * (x - mean), to get dw, db and the coefficients of dx, so both y and dx
are one elementwise pass each:

    y  = (x - mean[c]) * scale[c] + shift[c]                   scale = rstd * w, shift = b
    dx = scale[c] * (dy - mean_dy[c] - (x - mean[c]) * slope[c])

with, in training, mean_dy = db / m and slope = rstd^2 * sum(dy * (x - mean)) / m, and zero in
evaluation (the statistics are constants there).

These are the public batch_norm_statistics, batch_norm_normalize and batch_norm_backward of the package.
"""

import numpy as np

from autograd.kernels.cpu.batch_norm._arrays import view3
from autograd.kernels.cpu.batch_norm.step2_channels_first import (
    planes_backward_sums,
    planes_grad_input,
    planes_normalize,
    planes_sums,
)
from autograd.kernels.cpu.batch_norm.step2_channels_last import (
    rows_backward_sums,
    rows_grad_input,
    rows_normalize,
    rows_sums,
)
from autograd.kernels.cpu.common import contiguous_vector, fixed_chunk_count, float_dtype

ROWS_PER_CHUNK = 16  # at least this many rows per chunk of the channels-last partial buffers


def _sums(x3, center, squared):
    """Per-channel float64 sums of (x - center), or of its square, over a (outer, C, inner) view."""
    channels = x3.shape[1]
    if x3.shape[2] == 1:  # channels last
        x2 = x3.reshape(x3.shape[0], channels)
        partial = np.zeros((fixed_chunk_count(x2.shape[0], ROWS_PER_CHUNK), channels), np.float64)
        rows_sums(x2, center, squared, partial)
        return partial.sum(axis=0)
    out = np.empty(channels, np.float64)
    planes_sums(x3, center, squared, out)
    return out


def _backward_sums(grad_y3, x3, mean, channels_last):
    """Per-channel float64 sums of dy and of dy * (x - mean)."""
    outer, channels, _ = x3.shape
    if channels_last:
        chunks = fixed_chunk_count(outer, ROWS_PER_CHUNK)
        partial_dy = np.zeros((chunks, channels), np.float64)
        partial_dy_centered = np.zeros((chunks, channels), np.float64)
        rows_backward_sums(
            grad_y3.reshape(outer, channels),
            x3.reshape(outer, channels),
            mean,
            partial_dy,
            partial_dy_centered,
        )
        return partial_dy.sum(axis=0), partial_dy_centered.sum(axis=0)
    sum_dy = np.empty(channels, np.float64)
    sum_dy_centered = np.empty(channels, np.float64)
    planes_backward_sums(grad_y3, x3, mean, sum_dy, sum_dy_centered)
    return sum_dy, sum_dy_centered


def _grad_input(grad_y3, x3, mean, coefficients, channels_last):
    """dx from the per-channel (scale, mean_dy, slope), in one elementwise pass."""
    grad_x = np.empty_like(x3)
    if channels_last:
        outer, channels, _ = x3.shape
        rows_grad_input(
            grad_y3.reshape(outer, channels),
            x3.reshape(outer, channels),
            mean,
            *coefficients,
            grad_x.reshape(outer, channels),
        )
    else:
        planes_grad_input(grad_y3, x3, mean, *coefficients, grad_x)
    return grad_x


def batch_norm_statistics(x, channels_last=False):
    """The batch's per-channel mean and biased variance.

    Args:
        x: (N, C, *spatial), or (N, ..., C) with ``channels_last``; float32 or float64, any strides.

    Returns:
        mean (C,), var (C,), in the dtype of x (computed in float64, the variance in a second pass).
    """
    dtype = float_dtype(x)
    x3 = view3(x, channels_last)
    channels = x3.shape[1]
    count = x3.shape[0] * x3.shape[2]
    mean = _sums(x3, np.zeros(channels, np.float64), False) / count
    var = _sums(x3, mean, True) / count
    return mean.astype(dtype), var.astype(dtype)


def batch_norm_normalize(x, mean, rstd, weight, bias, channels_last=False):
    """y = (x - mean) * rstd * weight + bias, per channel (weight and bias may be None).

    Args:
        x: as in ``batch_norm_statistics``.
        mean, rstd: (C,): the batch's statistics in training, the running ones in evaluation.
        weight, bias: (C,) or None.

    Returns:
        y, shaped and typed like x.
    """
    dtype = float_dtype(x)
    x3 = view3(x, channels_last)
    channels = x3.shape[1]
    scale = contiguous_vector(rstd, channels, np.float64)
    if weight is not None:
        scale = scale * contiguous_vector(weight, channels, np.float64)
    shift = np.zeros(channels, dtype) if bias is None else contiguous_vector(bias, channels, dtype)
    mean = contiguous_vector(mean, channels, dtype)
    y = np.empty_like(x3)
    if channels_last:
        rows_normalize(x3.reshape(-1, channels), mean, scale.astype(dtype), shift, y.reshape(-1, channels))
    else:
        planes_normalize(x3, mean, scale.astype(dtype), shift, y)
    return y.reshape(x.shape)


def batch_norm_backward(
    grad_y, x, weight, mean, rstd, training=True, channels_last=False, needs_weight_grad=True
):
    """Gradients of ``batch_norm_normalize`` with the statistics of ``batch_norm_statistics`` (``training``)
    or fixed ones (evaluation).

    Args:
        grad_y, x: shaped as in the forward.
        weight: (C,) or None.
        mean, rstd: (C,), as used by the forward.
        training: whether mean and rstd were the batch's (then they depend on x).
        needs_weight_grad: compute grad_weight and grad_bias (skip them when False).

    Returns:
        grad_x like x; grad_weight = sum(dy * xhat) and grad_bias = sum(dy), each (C,), or None, None
        when not needed.
    """
    dtype = float_dtype(x)
    x3 = view3(x, channels_last)
    grad_y3 = view3(grad_y, channels_last)
    outer, channels, inner = x3.shape
    count = outer * inner
    mean_x = contiguous_vector(mean, channels, dtype)
    rstd64 = contiguous_vector(rstd, channels, np.float64)
    w64 = np.ones(channels) if weight is None else contiguous_vector(weight, channels, np.float64)
    sum_dy = sum_dy_xhat = None
    if training or needs_weight_grad:
        sum_dy, sum_dy_centered = _backward_sums(grad_y3, x3, mean_x, channels_last)
        sum_dy_xhat = sum_dy_centered * rstd64
    scale = w64 * rstd64
    if training:  # dx = w rstd (dy - mean(dy) - (x - mean) rstd * mean(dy xhat))
        mean_dy = sum_dy / count
        slope = rstd64 * sum_dy_xhat / count
    else:
        mean_dy = slope = np.zeros(channels)
    coefficients = [v.astype(dtype) for v in (scale, mean_dy, slope)]
    grad_x = _grad_input(grad_y3, x3, mean_x, coefficients, channels_last).reshape(x.shape)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, sum_dy_xhat.astype(dtype), sum_dy.astype(dtype)
