"""Layer norm rows, step 1: plain loops, the formula as written, one row after another.

Forward, per row: one loop for the mean, one for the variance (two passes, the stable way), one for y.
Backward, per row: one loop for each of the two means dx needs (of g = dy * w and of g * xhat), one for
dx, one adding the row into dw and db. Every sum and product runs in float64 (float32 input is converted
as it is read); results are stored in the dtype of x. One thread, no fastmath.
"""

import numpy as np
from numba import njit

from autograd.kernels.cpu.layer_norm._arrays import rows_backward_arrays, rows_forward_arrays


@njit(cache=True)
def _forward(x, weight, bias, eps, y, mean, rstd):
    rows, size = x.shape
    for i in range(rows):
        total = 0.0
        for j in range(size):
            total += np.float64(x[i, j])
        row_mean = total / size
        total = 0.0
        for j in range(size):
            d = np.float64(x[i, j]) - row_mean
            total += d * d
        row_rstd = 1.0 / np.sqrt(total / size + eps)
        for j in range(size):
            xhat = (np.float64(x[i, j]) - row_mean) * row_rstd
            y[i, j] = xhat * np.float64(weight[j]) + np.float64(bias[j])
        mean[i] = row_mean
        rstd[i] = row_rstd


@njit(cache=True)
def _backward(grad_y, x, weight, statistics, grad_x, grad_weight, grad_bias):
    mean, rstd = statistics
    rows, size = x.shape
    for i in range(rows):
        m = np.float64(mean[i])
        r = np.float64(rstd[i])
        total = 0.0
        for j in range(size):
            total += np.float64(grad_y[i, j]) * np.float64(weight[j])
        mean_g = total / size
        total = 0.0
        for j in range(size):
            xhat = (np.float64(x[i, j]) - m) * r
            total += np.float64(grad_y[i, j]) * np.float64(weight[j]) * xhat
        mean_g_xhat = total / size
        for j in range(size):
            xhat = (np.float64(x[i, j]) - m) * r
            g = np.float64(grad_y[i, j]) * np.float64(weight[j])
            grad_x[i, j] = r * (g - mean_g - xhat * mean_g_xhat)
        for j in range(size):
            xhat = (np.float64(x[i, j]) - m) * r
            grad_weight[j] += np.float64(grad_y[i, j]) * xhat
            grad_bias[j] += np.float64(grad_y[i, j])


def layer_norm_forward(x2d, weight, bias, eps):
    """Step 1 of layer_norm_forward: same arguments and results."""
    x, w, b, y, mean, rstd = rows_forward_arrays(x2d, weight, bias)
    _forward(x, w, b, float(eps), y, mean, rstd)
    return y, mean, rstd


def layer_norm_backward(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad=True):
    """Step 1 of layer_norm_backward: same arguments and results (dw and db are always computed)."""
    grad_y, x, w, statistics, grad_x = rows_backward_arrays(grad_y2d, x2d, weight, mean, rstd)
    grad_weight = np.zeros(x.shape[1], np.float64)
    grad_bias = np.zeros(x.shape[1], np.float64)
    _backward(grad_y, x, w, statistics, grad_x, grad_weight, grad_bias)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, grad_weight.astype(x.dtype), grad_bias.astype(x.dtype)
