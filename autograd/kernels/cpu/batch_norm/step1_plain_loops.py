"""Batch norm, step 1: plain loops, the formula as written, one channel after another.

Both layouts go through one body: x is viewed as (outer, C, inner), (rows, C, 1) channels last and
(N, C, S) channels first, and each channel's values are visited as x[n, c, s]. Per channel: one loop for
the mean, one for the variance (two passes); the backward takes the sums of dy and dy * xhat in one loop
and writes dx in the next. Every sum and product runs in float64; results are stored in the dtype of x.
One thread, no fastmath, and in channels last the inner loop strides over memory: step 2 fixes both.
"""

import numpy as np
from numba import njit

from autograd.kernels.cpu.batch_norm._arrays import view3
from autograd.kernels.cpu.common import contiguous_vector


@njit(cache=True)
def _statistics(x, mean, var):
    outer, channels, inner = x.shape
    count = outer * inner
    for c in range(channels):
        total = 0.0
        for n in range(outer):
            for s in range(inner):
                total += np.float64(x[n, c, s])
        channel_mean = total / count
        total = 0.0
        for n in range(outer):
            for s in range(inner):
                d = np.float64(x[n, c, s]) - channel_mean
                total += d * d
        mean[c] = channel_mean
        var[c] = total / count


@njit(cache=True)
def _normalize(x, mean, rstd, weight, bias, y):
    outer, channels, inner = x.shape
    for c in range(channels):
        for n in range(outer):
            for s in range(inner):
                xhat = (np.float64(x[n, c, s]) - mean[c]) * rstd[c]
                y[n, c, s] = xhat * weight[c] + bias[c]


@njit(cache=True)
def _backward(grad_y, x, weight, statistics, training, grad_x, grad_weight, grad_bias):
    mean, rstd = statistics
    outer, channels, inner = x.shape
    count = outer * inner
    for c in range(channels):
        sum_dy = 0.0
        sum_dy_xhat = 0.0
        for n in range(outer):
            for s in range(inner):
                dy = np.float64(grad_y[n, c, s])
                sum_dy += dy
                sum_dy_xhat += dy * (np.float64(x[n, c, s]) - mean[c]) * rstd[c]
        grad_weight[c] = sum_dy_xhat
        grad_bias[c] = sum_dy
        for n in range(outer):
            for s in range(inner):
                dy = np.float64(grad_y[n, c, s])
                if training:  # the statistics depend on x
                    xhat = (np.float64(x[n, c, s]) - mean[c]) * rstd[c]
                    dy = dy - sum_dy / count - xhat * sum_dy_xhat / count
                grad_x[n, c, s] = weight[c] * rstd[c] * dy


def _per_channel(a, channels, default):
    """A (C,) float64 vector; None becomes ``default`` everywhere."""
    if a is None:
        return np.full(channels, default, np.float64)
    return contiguous_vector(a, channels, np.float64)


def batch_norm_statistics(x, channels_last=False):
    """Step 1 of batch_norm_statistics: same arguments and results."""
    x3 = view3(x, channels_last)
    mean = np.empty(x3.shape[1], np.float64)
    var = np.empty(x3.shape[1], np.float64)
    _statistics(x3, mean, var)
    return mean.astype(x3.dtype), var.astype(x3.dtype)


def batch_norm_normalize(x, mean, rstd, weight, bias, channels_last=False):
    """Step 1 of batch_norm_normalize: same arguments and results."""
    x3 = view3(x, channels_last)
    channels = x3.shape[1]
    y = np.empty_like(x3)
    vectors = [_per_channel(v, channels, d) for v, d in ((mean, 0), (rstd, 1), (weight, 1), (bias, 0))]
    _normalize(x3, *vectors, y)
    return y.reshape(x.shape)


def batch_norm_backward(
    grad_y, x, weight, mean, rstd, training=True, channels_last=False, needs_weight_grad=True
):
    """Step 1 of batch_norm_backward: same arguments and results (dw and db are always computed)."""
    x3 = view3(x, channels_last)
    channels = x3.shape[1]
    statistics = (_per_channel(mean, channels, 0), _per_channel(rstd, channels, 1))
    grad_x = np.empty_like(x3)
    grad_weight = np.empty(channels, np.float64)
    grad_bias = np.empty(channels, np.float64)
    w = _per_channel(weight, channels, 1)
    _backward(view3(grad_y, channels_last), x3, w, statistics, bool(training), grad_x, grad_weight, grad_bias)
    grad_x = grad_x.reshape(x.shape)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, grad_weight.astype(x3.dtype), grad_bias.astype(x3.dtype)
