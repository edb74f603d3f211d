"""Layer norm, channels first: normalise over C at every position of (N, C, *spatial), without transposing.

x is viewed as (N, C, S). mean and rstd have shape (N, S). The kernels loop over C outside and over a
block of spatial positions inside, so the inner loop runs over contiguous memory and is vectorised; each
task (one sample, one block of positions) keeps per-position float64 sums in small buffers. The weight and
bias gradients are summed per chunk of tasks into float64 partial buffers, added in a fixed order as in
the rows kernels (step 3), so they are free of races and the same on any number of threads.
"""

import numpy as np
from numba import njit, prange

from autograd.kernels.cpu.common import fixed_chunk_count, float_dtype
from autograd.kernels.cpu.layer_norm._arrays import affine_params, sum_partials

SPATIAL_BLOCK = 256  # spatial positions handled together by one task


@njit(cache=True, fastmath={"reassoc"})
def _block_backward_sums(grad_y, x, where, weight_c, mean, rstd, sum_g, sum_g_xhat):
    """Add channel c of the spatial block [start, stop) of sample n (``where`` = (n, c, start, stop)) into
    the per-position sums of dy*w and dy*w*xhat; return this channel's share of dw and db (block sums of
    dy*xhat, dy).

    Takes whole arrays and makes its views here: views passed from a parallel loop would be reference
    counted on every call, with both threads writing the same counter."""
    n, c, start, stop = where
    grad_y_block = grad_y[n, c, start:stop]
    x_block = x[n, c, start:stop]
    dw = 0.0
    db = 0.0
    for k in range(stop - start):
        dy = np.float64(grad_y_block[k])
        xhat = (np.float64(x_block[k]) - mean[k]) * rstd[k]
        g = np.float64(grad_y_block[k] * weight_c)  # in the input dtype, as in the elementwise loop
        sum_g[k] += g
        sum_g_xhat[k] += g * xhat
        dw += dy * xhat
        db += dy
    return dw, db


@njit(parallel=True, cache=True, fastmath=False)
def _forward(x, weight, bias, eps, y, mean, rstd, block):
    # Work on 1-D slices of contiguous memory: LLVM vectorises those loops, not 3-D indexing.
    batch, channels, spatial = x.shape
    blocks = (spatial + block - 1) // block
    for task in prange(batch * blocks):
        n = task // blocks
        start = (task % blocks) * block
        stop = min(start + block, spatial)
        width = stop - start
        total = np.zeros(width, np.float64)
        for c in range(channels):
            x_block = x[n, c, start:stop]
            for k in range(width):
                total[k] += x_block[k]
        block_mean = np.empty(width, np.float64)
        for k in range(width):
            block_mean[k] = total[k] / channels
            total[k] = 0.0
        for c in range(channels):
            x_block = x[n, c, start:stop]
            for k in range(width):
                d = np.float64(x_block[k]) - block_mean[k]
                total[k] += d * d
        mean_block = mean[n, start:stop]
        rstd_block = rstd[n, start:stop]
        for k in range(width):
            mean_block[k] = block_mean[k]
            rstd_block[k] = 1.0 / np.sqrt(total[k] / channels + eps)
        for c in range(channels):
            w = weight[c]
            b = bias[c]
            x_block = x[n, c, start:stop]
            y_block = y[n, c, start:stop]
            for k in range(width):
                y_block[k] = (x_block[k] - mean_block[k]) * rstd_block[k] * w + b


@njit(parallel=True, cache=True, fastmath=False)
def _backward(grad_y, x, weight, statistics, needs_weight_grad, grad_x, partials, block):
    mean, rstd = statistics
    partial_weight, partial_bias = partials
    batch, channels, spatial = x.shape
    blocks = (spatial + block - 1) // block
    tasks = batch * blocks
    chunks = partial_weight.shape[0]
    for chunk in prange(chunks):
        first = chunk * tasks // chunks
        last = (chunk + 1) * tasks // chunks
        for task in range(first, last):
            n = task // blocks
            start = (task % blocks) * block
            stop = min(start + block, spatial)
            width = stop - start
            mean_block = mean[n, start:stop]
            rstd_block = rstd[n, start:stop]
            block_mean = np.empty(width, np.float64)
            block_rstd = np.empty(width, np.float64)
            for k in range(width):
                block_mean[k] = mean_block[k]
                block_rstd[k] = rstd_block[k]
            sum_g = np.zeros(width, np.float64)
            sum_g_xhat = np.zeros(width, np.float64)
            for c in range(channels):
                dw, db = _block_backward_sums(
                    grad_y, x, (n, c, start, stop), weight[c], block_mean, block_rstd, sum_g, sum_g_xhat
                )
                if needs_weight_grad:
                    partial_weight[chunk, c] += dw
                    partial_bias[chunk, c] += db
            for k in range(width):
                sum_g[k] /= channels
                sum_g_xhat[k] /= channels
            for c in range(channels):
                w = weight[c]
                x_block = x[n, c, start:stop]
                grad_y_block = grad_y[n, c, start:stop]
                grad_x_block = grad_x[n, c, start:stop]
                for k in range(width):
                    r = rstd_block[k]
                    xhat = (x_block[k] - mean_block[k]) * r
                    grad_x_block[k] = r * (grad_y_block[k] * w - sum_g[k] - xhat * sum_g_xhat[k])


def layer_norm_channels_first_forward(x, weight, bias, eps):
    """Layer norm over the channel axis of (N, C, *spatial), e.g. NCHW, without transposing.

    Args:
        x: (N, C, H, W) float array (any number of trailing spatial axes, any strides).
        weight, bias: (C,) arrays or None.
        eps: added to the variance.

    Returns:
        y (N, C, H, W), mean (N, H, W), rstd (N, H, W), in the dtype of x.
    """
    dtype = float_dtype(x)
    shape = x.shape
    batch, channels = shape[0], shape[1]
    x3 = np.ascontiguousarray(x, dtype=dtype).reshape(batch, channels, -1)
    w, b = affine_params(weight, bias, channels, dtype)
    y = np.empty_like(x3)
    mean = np.empty((batch, x3.shape[2]), dtype)
    rstd = np.empty((batch, x3.shape[2]), dtype)
    _forward(x3, w, b, float(eps), y, mean, rstd, SPATIAL_BLOCK)
    stats_shape = (batch,) + tuple(shape[2:])
    return y.reshape(shape), mean.reshape(stats_shape), rstd.reshape(stats_shape)


def layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd, needs_weight_grad=True):
    """Gradients of layer_norm_channels_first_forward.

    Args:
        grad_y, x: (N, C, *spatial).
        weight: (C,) or None.
        mean, rstd: (N, *spatial) as returned by the forward.
        needs_weight_grad: compute grad_weight and grad_bias (skip them when False).

    Returns:
        grad_x (N, C, *spatial); grad_weight (C,) and grad_bias (C,), or None, None.
    """
    dtype = float_dtype(x)
    shape = x.shape
    batch, channels = shape[0], shape[1]
    x3 = np.ascontiguousarray(x, dtype=dtype).reshape(batch, channels, -1)
    spatial = x3.shape[2]
    grad_y3 = np.ascontiguousarray(grad_y, dtype=dtype).reshape(batch, channels, spatial)
    w, _ = affine_params(weight, None, channels, dtype)
    statistics = tuple(np.ascontiguousarray(s, dtype=dtype).reshape(batch, spatial) for s in (mean, rstd))
    grad_x = np.empty_like(x3)
    chunks = fixed_chunk_count(batch * ((spatial + SPATIAL_BLOCK - 1) // SPATIAL_BLOCK), 1)
    partials = (np.zeros((chunks, channels), np.float64), np.zeros((chunks, channels), np.float64))
    _backward(grad_y3, x3, w, statistics, bool(needs_weight_grad), grad_x, partials, SPATIAL_BLOCK)
    grad_x = grad_x.reshape(shape)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, sum_partials(partials[0], dtype), sum_partials(partials[1], dtype)
