"""Layer norm rows, step 3: rows spread over threads, weight gradients summed per chunk (the one used).

What changes from step 2: the rows are independent, so the forward's row loop becomes a prange. In the
backward, dw and db are sums over all rows, which threads cannot add into one buffer without races: the
rows are cut into a fixed number of chunks (a function of the shape, not of the thread count), the chunks
run in parallel, each adds its rows into its own row of a float64 partial buffer, and the partials are
added in a fixed order afterwards. The result is free of races and the same on any number of threads.

These are the public layer_norm_forward and layer_norm_backward of the package.
"""

import numpy as np
from numba import njit, prange

from autograd.kernels.cpu.common import fixed_chunk_count
from autograd.kernels.cpu.layer_norm._arrays import rows_backward_arrays, rows_forward_arrays, sum_partials
from autograd.kernels.cpu.layer_norm.step2_fused_passes import (
    row_backward_sums,
    row_squared_deviation,
    row_sum,
)

ROWS_PER_CHUNK = 16  # at least this many rows per chunk of the weight-gradient partials


@njit(parallel=True, cache=True, fastmath=False)
def _forward(x, weight, bias, eps, y, mean, rstd):
    rows, size = x.shape
    for i in prange(rows):
        row_mean = row_sum(x, i) / size
        row_var = row_squared_deviation(x, i, row_mean) / size
        mean[i] = row_mean
        rstd[i] = 1.0 / np.sqrt(row_var + eps)
        # Read back in the input dtype, so the elementwise loop runs in float32 for float32 input.
        m = mean[i]
        r = rstd[i]
        for j in range(size):
            y[i, j] = (x[i, j] - m) * r * weight[j] + bias[j]


@njit(parallel=True, cache=True, fastmath=False)
def _backward(grad_y, x, weight, statistics, needs_weight_grad, grad_x, partials):
    mean, rstd = statistics
    partial_weight, partial_bias = partials
    rows, size = x.shape
    chunks = partial_weight.shape[0]
    for chunk in prange(chunks):
        first = chunk * rows // chunks
        last = (chunk + 1) * rows // chunks
        # Holds the two row means in the dtype of x, so the elementwise loop runs in that dtype.
        row_means = np.empty(2, x.dtype)
        for i in range(first, last):
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
                    partial_weight[chunk, j] += dy * xhat
                    partial_bias[chunk, j] += dy
            else:
                for j in range(size):
                    xhat = (x[i, j] - m) * r
                    grad_x[i, j] = r * (grad_y[i, j] * weight[j] - mean_g - xhat * mean_g_xhat)


def layer_norm_forward(x2d, weight, bias, eps):
    """Layer norm over the last axis of a 2-D array.

    Args:
        x2d: (rows, D) float array (any strides).
        weight, bias: (D,) arrays or None (no affine transform).
        eps: added to the variance.

    Returns:
        y (rows, D), mean (rows,), rstd (rows,), all in the dtype of x (float32 or float64).
    """
    x, w, b, y, mean, rstd = rows_forward_arrays(x2d, weight, bias)
    _forward(x, w, b, float(eps), y, mean, rstd)
    return y, mean, rstd


def layer_norm_backward(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad=True):
    """Gradients of layer_norm_forward.

    Args:
        grad_y2d: (rows, D) gradient of the output.
        x2d: (rows, D) input of the forward pass.
        weight: (D,) or None.
        mean, rstd: (rows,) as returned by layer_norm_forward.
        needs_weight_grad: compute grad_weight and grad_bias (skip them when False).

    Returns:
        grad_x (rows, D); grad_weight (D,) and grad_bias (D,), or None, None when needs_weight_grad is False.
        grad_weight = sum(dy * xhat) and grad_bias = sum(dy) are returned whenever asked for, whether or
        not the forward had a weight or bias; the caller keeps the ones it needs.
    """
    grad_y, x, w, statistics, grad_x = rows_backward_arrays(grad_y2d, x2d, weight, mean, rstd)
    rows, size = x.shape
    chunks = fixed_chunk_count(rows, ROWS_PER_CHUNK)
    partial_size = size if needs_weight_grad else 0
    partials = (np.zeros((chunks, partial_size), np.float64), np.zeros((chunks, partial_size), np.float64))
    _backward(grad_y, x, w, statistics, bool(needs_weight_grad), grad_x, partials)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, sum_partials(partials[0], x.dtype), sum_partials(partials[1], x.dtype)
