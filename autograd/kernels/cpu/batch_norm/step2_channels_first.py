"""Batch norm, step 2, channels first: (N, C, S) kernels that visit each channel's contiguous planes.

A channel's values are N contiguous planes of S positions, so the per-channel sums give each channel to
one task (channels spread over threads, no partial buffers needed), which sums its planes one after the
other. The plane sums are small helpers compiled with fastmath={'reassoc'} only: that flag lets LLVM
vectorise a sum (it changes the summation order, nothing else); they stay in float64. The elementwise
kernels spread the (n, c) planes over threads.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True, fastmath={"reassoc"})
def _plane_sum(x, n, c, center):
    """sum over plane (n, c) of (x - center), in float64."""
    plane = x[n, c]
    total = 0.0
    for s in range(plane.shape[0]):
        total += np.float64(plane[s]) - center
    return total


@njit(cache=True, fastmath={"reassoc"})
def _plane_squared_deviation(x, n, c, center):
    plane = x[n, c]
    total = 0.0
    for s in range(plane.shape[0]):
        d = np.float64(plane[s]) - center
        total += d * d
    return total


@njit(cache=True, fastmath={"reassoc"})
def _plane_backward_sums(grad_y, x, n, c, mean):
    """sum over plane (n, c) of dy and of dy * (x - mean), in float64."""
    dy_plane = grad_y[n, c]
    x_plane = x[n, c]
    sum_dy = 0.0
    sum_dy_centered = 0.0
    for s in range(x_plane.shape[0]):
        dy = np.float64(dy_plane[s])
        sum_dy += dy
        sum_dy_centered += dy * (np.float64(x_plane[s]) - mean)
    return sum_dy, sum_dy_centered


@njit(parallel=True, cache=True, fastmath=False)
def planes_sums(x, center, squared, out):
    """out[c] = sum over samples and positions of (x - center[c]), or of its square."""
    batch, channels, _ = x.shape
    for c in prange(channels):
        total = 0.0
        for n in range(batch):
            if squared:
                total += _plane_squared_deviation(x, n, c, center[c])
            else:
                total += _plane_sum(x, n, c, center[c])
        out[c] = total


@njit(parallel=True, cache=True, fastmath=False)
def planes_backward_sums(grad_y, x, mean, sum_dy, sum_dy_centered):
    """sum_dy[c] and sum_dy_centered[c] = sums over samples and positions of dy and of dy * (x - mean[c])."""
    batch, channels, _ = x.shape
    for c in prange(channels):
        total_dy = 0.0
        total_dy_centered = 0.0
        for n in range(batch):
            dy, dy_centered = _plane_backward_sums(grad_y, x, n, c, mean[c])
            total_dy += dy
            total_dy_centered += dy_centered
        sum_dy[c] = total_dy
        sum_dy_centered[c] = total_dy_centered


@njit(parallel=True, cache=True, fastmath=False)
def planes_normalize(x, mean, scale, shift, y):
    """y = (x - mean[c]) * scale[c] + shift[c]."""
    batch, channels, spatial = x.shape
    for plane in prange(batch * channels):
        n = plane // channels
        c = plane % channels
        x_plane = x[n, c]
        y_plane = y[n, c]
        m, k, b = mean[c], scale[c], shift[c]
        for s in range(spatial):
            y_plane[s] = (x_plane[s] - m) * k + b


@njit(parallel=True, cache=True, fastmath=False)
def planes_grad_input(grad_y, x, mean, scale, mean_dy, slope, grad_x):
    """dx = scale[c] * (dy - mean_dy[c] - (x - mean[c]) * slope[c])."""
    batch, channels, spatial = x.shape
    for plane in prange(batch * channels):
        n = plane // channels
        c = plane % channels
        dy_plane = grad_y[n, c]
        x_plane = x[n, c]
        dx_plane = grad_x[n, c]
        m, scale_c, mean_dy_c, slope_c = mean[c], scale[c], mean_dy[c], slope[c]
        for s in range(spatial):
            dx_plane[s] = scale_c * (dy_plane[s] - mean_dy_c - (x_plane[s] - m) * slope_c)
