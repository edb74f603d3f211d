"""Layer norm rows, step 2: vectorised float64 sums, fused passes, elementwise loops in the input dtype.

What changes from step 1 (still one thread):
- The row sums move into small helpers compiled with fastmath={'reassoc'} only: that flag lets LLVM
  vectorise a sum (it changes the summation order, nothing else). The sums stay in float64.
- The elementwise loops run in the dtype of x: mean, rstd and the two backward means are read back in that
  dtype, so float32 input fills twice as many vector lanes as float64 would.
- The backward's two sums share one pass over the row, and dx, dw and db share the next one: two passes
  over the row instead of four. dw and db are only added up when asked for.
"""

import numpy as np
from numba import njit

from autograd.kernels.cpu.layer_norm._arrays import rows_backward_arrays, rows_forward_arrays


@njit(cache=True, fastmath={"reassoc"})
def row_sum(x, i):
    total = 0.0
    for j in range(x.shape[1]):
        total += np.float64(x[i, j])
    return total


@njit(cache=True, fastmath={"reassoc"})
def row_squared_deviation(x, i, mean):
    total = 0.0
    for j in range(x.shape[1]):
        d = np.float64(x[i, j]) - mean
        total += d * d
    return total


@njit(cache=True, fastmath={"reassoc"})
def row_backward_sums(grad_y, x, weight, i, mean, rstd):
    """sum_j(dy*w) and sum_j(dy*w*xhat) over row i, in float64."""
    sum_g = 0.0
    sum_g_xhat = 0.0
    for j in range(x.shape[1]):
        # dy * w in the input dtype, exactly as the elementwise loop computes it, so that the
        # cancellation in dx = rstd * (g - mean(g) - ...) is exact when D = 1.
        g = np.float64(grad_y[i, j] * weight[j])
        sum_g += g
        sum_g_xhat += g * ((np.float64(x[i, j]) - mean) * rstd)
    return sum_g, sum_g_xhat


@njit(cache=True, fastmath=False)
def _forward(x, weight, bias, eps, y, mean, rstd):
    rows, size = x.shape
    for i in range(rows):
        row_mean = row_sum(x, i) / size
        row_var = row_squared_deviation(x, i, row_mean) / size
        mean[i] = row_mean
        rstd[i] = 1.0 / np.sqrt(row_var + eps)
        # Read back in the input dtype, so the elementwise loop runs in float32 for float32 input.
        m = mean[i]
        r = rstd[i]
        for j in range(size):
            y[i, j] = (x[i, j] - m) * r * weight[j] + bias[j]


@njit(cache=True, fastmath=False)
def _backward(grad_y, x, weight, statistics, needs_weight_grad, grad_x, grad_weight, grad_bias):
    mean, rstd = statistics
    rows, size = x.shape
    # Holds the two row means in the dtype of x, so the elementwise loop runs in that dtype.
    row_means = np.empty(2, x.dtype)
    for i in range(rows):
        m = mean[i]
        r = rstd[i]
        sum_g, sum_g_xhat = row_backward_sums(grad_y, x, weight, i, np.float64(m), np.float64(r))
        row_means[0] = sum_g / size
        row_means[1] = sum_g_xhat / size
        mean_g = row_means[0]
        mean_g_xhat = row_means[1]
        if needs_weight_grad:
            for j in range(size):
                dy = grad_y[i, j]
                xhat = (x[i, j] - m) * r
                grad_x[i, j] = r * (dy * weight[j] - mean_g - xhat * mean_g_xhat)
                grad_weight[j] += dy * xhat
                grad_bias[j] += dy
        else:
            for j in range(size):
                xhat = (x[i, j] - m) * r
                grad_x[i, j] = r * (grad_y[i, j] * weight[j] - mean_g - xhat * mean_g_xhat)


def layer_norm_forward(x2d, weight, bias, eps):
    """Step 2 of layer_norm_forward: same arguments and results."""
    x, w, b, y, mean, rstd = rows_forward_arrays(x2d, weight, bias)
    _forward(x, w, b, float(eps), y, mean, rstd)
    return y, mean, rstd


def layer_norm_backward(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad=True):
    """Step 2 of layer_norm_backward: same arguments and results."""
    grad_y, x, w, statistics, grad_x = rows_backward_arrays(grad_y2d, x2d, weight, mean, rstd)
    grad_weight = np.zeros(x.shape[1], np.float64)
    grad_bias = np.zeros(x.shape[1], np.float64)
    _backward(grad_y, x, w, statistics, bool(needs_weight_grad), grad_x, grad_weight, grad_bias)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, grad_weight.astype(x.dtype), grad_bias.astype(x.dtype)
