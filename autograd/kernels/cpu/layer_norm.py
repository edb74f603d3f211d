"""Layer normalisation: fused Numba CPU kernels beside their plain references (which run on NumPy and
CuPy arrays alike: they take the array module of their inputs).

Math (one normalised group of D values x_1..x_D, weight w, bias b):

    mean = sum_j x_j / D
    var  = sum_j (x_j - mean)^2 / D             (biased, as in PyTorch)
    rstd = 1 / sqrt(var + eps)
    xhat = (x - mean) * rstd
    y    = xhat * w + b

Backward, with dy the incoming gradient and g = dy * w:

    dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))
    dw = sum over groups of dy * xhat
    db = sum over groups of dy

Two layouts:
- rows ("channels last"): x is a 2-D view (rows, D), normalised over the last axis; mean and rstd have
  shape (rows,).
- channels first: x is (N, C, *spatial), e.g. NCHW, normalised over C at every (n, h, w); mean and rstd
  have shape (N, *spatial). No transpose is made: the kernel loops over C outside and the spatial axis
  inside, so the inner loop runs over contiguous memory and is vectorised.

Parallelisation: rows (or blocks of spatial positions) are spread over threads with prange. Statistics
are accumulated in float64 even for float32 input (two passes: mean, then squared deviations). The row
sums are done in small helpers compiled with fastmath={'reassoc'} only: that flag lets LLVM vectorise a
sum (it changes the summation order, nothing else). dw and db are reduced across rows through per-chunk
partial buffers: the rows are cut into a fixed number of chunks (independent of the thread count), each
chunk owns one row of the buffer, and the partials are added in a fixed order, so the result is free of
races and deterministic.
"""

import numpy as np
from numba import njit, prange

from autograd.backend import get_array_module

# Number of row chunks for the weight/bias gradient partials. Fixed, so that results do not depend on the
# number of threads.
_GRAD_CHUNKS = 64
# Spatial positions handled together by one task in the channels-first kernels.
_SPATIAL_BLOCK = 256


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------


def _float_dtype(x):
    return np.float32 if x.dtype == np.float32 else np.float64


def _as_contiguous(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


def _grad_chunks(tasks, tasks_per_chunk):
    """How many partial buffers for dw/db: a function of the shape only (not of the thread count)."""
    return max(1, min(_GRAD_CHUNKS, tasks // tasks_per_chunk))


def _affine_params(weight, bias, size, dtype):
    """Weight and bias as contiguous arrays of `size`; None becomes ones / zeros."""
    w = np.ones(size, dtype) if weight is None else _as_contiguous(weight, dtype).reshape(size)
    b = np.zeros(size, dtype) if bias is None else _as_contiguous(bias, dtype).reshape(size)
    return w, b


@njit(cache=True, fastmath={"reassoc"})
def _row_sum(x, i):
    total = 0.0
    for j in range(x.shape[1]):
        total += np.float64(x[i, j])
    return total


@njit(cache=True, fastmath={"reassoc"})
def _row_squared_deviation(x, i, mean):
    total = 0.0
    for j in range(x.shape[1]):
        d = np.float64(x[i, j]) - mean
        total += d * d
    return total


@njit(cache=True, fastmath={"reassoc"})
def _row_backward_sums(grad_y, x, weight, i, mean, rstd):
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


@njit(cache=True, fastmath={"reassoc"})
def _block_backward_sums(grad_y, x, n, c, start, stop, weight_c, mean, rstd, sum_g, sum_g_xhat):
    """Channels first: add channel c of the spatial block [start, stop) of sample n into the per-position
    sums of dy*w and dy*w*xhat; return this channel's share of dw and db (block sums of dy*xhat, dy).

    Takes whole arrays and makes its views here: views passed from a parallel loop would be reference
    counted on every call, with both threads writing the same counter."""
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


# --------------------------------------------------------------------------------------------------------
# Rows: normalise over the last axis of a (rows, D) array
# --------------------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, fastmath=False)
def _layer_norm_forward(x, weight, bias, eps, y, mean, rstd):
    rows, size = x.shape
    for i in prange(rows):
        row_mean = _row_sum(x, i) / size
        row_var = _row_squared_deviation(x, i, row_mean) / size
        mean[i] = row_mean
        rstd[i] = 1.0 / np.sqrt(row_var + eps)
        # Read back in the input dtype, so the elementwise loop runs in float32 for float32 input.
        m = mean[i]
        r = rstd[i]
        for j in range(size):
            y[i, j] = (x[i, j] - m) * r * weight[j] + bias[j]


@njit(parallel=True, cache=True, fastmath=False)
def _layer_norm_backward(
    grad_y, x, weight, mean, rstd, needs_weight_grad, grad_x, partial_weight, partial_bias
):
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
            sum_g, sum_g_xhat = _row_backward_sums(grad_y, x, weight, i, np.float64(m), np.float64(r))
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


def _sum_partials(partial, dtype):
    """Add the per-chunk partials (rows of `partial`) in a fixed order."""
    return partial.sum(axis=0).astype(dtype)


def layer_norm_forward(x2d, weight, bias, eps):
    """Layer norm over the last axis of a 2-D array.

    Args:
        x2d: (rows, D) float array (any strides).
        weight, bias: (D,) arrays or None (no affine transform).
        eps: added to the variance.

    Returns:
        y (rows, D), mean (rows,), rstd (rows,), all in the dtype of x (float32 or float64).
    """
    dtype = _float_dtype(x2d)
    x = _as_contiguous(x2d, dtype)
    rows, size = x.shape
    w, b = _affine_params(weight, bias, size, dtype)
    y = np.empty_like(x)
    mean = np.empty(rows, dtype)
    rstd = np.empty(rows, dtype)
    _layer_norm_forward(x, w, b, float(eps), y, mean, rstd)
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
    dtype = _float_dtype(x2d)
    x = _as_contiguous(x2d, dtype)
    grad_y = _as_contiguous(grad_y2d, dtype)
    rows, size = x.shape
    w, _ = _affine_params(weight, None, size, dtype)
    mean = _as_contiguous(mean, dtype).reshape(rows)
    rstd = _as_contiguous(rstd, dtype).reshape(rows)
    grad_x = np.empty_like(x)
    chunks = _grad_chunks(rows, 16)
    partial_size = size if needs_weight_grad else 0
    partial_weight = np.zeros((chunks, partial_size), np.float64)
    partial_bias = np.zeros((chunks, partial_size), np.float64)
    _layer_norm_backward(
        grad_y, x, w, mean, rstd, bool(needs_weight_grad), grad_x, partial_weight, partial_bias
    )
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, _sum_partials(partial_weight, dtype), _sum_partials(partial_bias, dtype)


def layer_norm_forward_reference(x2d, weight, bias, eps):
    """Plain twin of layer_norm_forward (computed in float64, returned in the dtype of x), on the array
    module of its inputs (NumPy or CuPy)."""
    xp = get_array_module(x2d, weight, bias)
    dtype = _float_dtype(x2d)
    x = xp.asarray(x2d, xp.float64)
    mean = x.mean(axis=1)
    var = ((x - mean[:, None]) ** 2).mean(axis=1)
    rstd = 1.0 / xp.sqrt(var + eps)
    y = (x - mean[:, None]) * rstd[:, None]
    if weight is not None:
        y = y * xp.asarray(weight, xp.float64)
    if bias is not None:
        y = y + xp.asarray(bias, xp.float64)
    return y.astype(dtype), mean.astype(dtype), rstd.astype(dtype)


def layer_norm_backward_reference(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad=True):
    """Plain twin of layer_norm_backward, on the array module of its inputs."""
    xp = get_array_module(grad_y2d, x2d, weight, mean, rstd)
    dtype = _float_dtype(x2d)
    x = xp.asarray(x2d, xp.float64)
    dy = xp.asarray(grad_y2d, xp.float64)
    mean = xp.asarray(mean, xp.float64).reshape(-1, 1)
    rstd = xp.asarray(rstd, xp.float64).reshape(-1, 1)
    xhat = (x - mean) * rstd
    g = dy if weight is None else dy * xp.asarray(weight, xp.float64)
    grad_x = rstd * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    if not needs_weight_grad:
        return grad_x.astype(dtype), None, None
    return grad_x.astype(dtype), (dy * xhat).sum(axis=0).astype(dtype), dy.sum(axis=0).astype(dtype)


# --------------------------------------------------------------------------------------------------------
# Channels first: normalise over axis 1 of (N, C, *spatial)
# --------------------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, fastmath=False)
def _layer_norm_channels_first_forward(x, weight, bias, eps, y, mean, rstd, block):
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
def _layer_norm_channels_first_backward(
    grad_y, x, weight, mean, rstd, needs_weight_grad, grad_x, partial_weight, partial_bias, block
):
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
                    grad_y, x, n, c, start, stop, weight[c], block_mean, block_rstd, sum_g, sum_g_xhat
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
    dtype = _float_dtype(x)
    shape = x.shape
    batch, channels = shape[0], shape[1]
    x3 = _as_contiguous(x, dtype).reshape(batch, channels, -1)
    w, b = _affine_params(weight, bias, channels, dtype)
    y = np.empty_like(x3)
    mean = np.empty((batch, x3.shape[2]), dtype)
    rstd = np.empty((batch, x3.shape[2]), dtype)
    _layer_norm_channels_first_forward(x3, w, b, float(eps), y, mean, rstd, _SPATIAL_BLOCK)
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
    dtype = _float_dtype(x)
    shape = x.shape
    batch, channels = shape[0], shape[1]
    x3 = _as_contiguous(x, dtype).reshape(batch, channels, -1)
    spatial = x3.shape[2]
    grad_y3 = _as_contiguous(grad_y, dtype).reshape(batch, channels, spatial)
    w, _ = _affine_params(weight, None, channels, dtype)
    mean2 = _as_contiguous(mean, dtype).reshape(batch, spatial)
    rstd2 = _as_contiguous(rstd, dtype).reshape(batch, spatial)
    grad_x = np.empty_like(x3)
    tasks = batch * ((spatial + _SPATIAL_BLOCK - 1) // _SPATIAL_BLOCK)
    chunks = _grad_chunks(tasks, 1)
    partial_weight = np.zeros((chunks, channels), np.float64)
    partial_bias = np.zeros((chunks, channels), np.float64)
    _layer_norm_channels_first_backward(
        grad_y3,
        x3,
        w,
        mean2,
        rstd2,
        bool(needs_weight_grad),
        grad_x,
        partial_weight,
        partial_bias,
        _SPATIAL_BLOCK,
    )
    grad_x = grad_x.reshape(shape)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, _sum_partials(partial_weight, dtype), _sum_partials(partial_bias, dtype)


def layer_norm_channels_first_forward_reference(x, weight, bias, eps):
    """Plain twin of layer_norm_channels_first_forward (float64 inside), on the array module of its
    inputs (NumPy or CuPy)."""
    xp = get_array_module(x, weight, bias)
    dtype = _float_dtype(x)
    x = xp.asarray(x, xp.float64)
    param_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    rstd = 1.0 / xp.sqrt(var + eps)
    y = (x - mean) * rstd
    if weight is not None:
        y = y * xp.asarray(weight, xp.float64).reshape(param_shape)
    if bias is not None:
        y = y + xp.asarray(bias, xp.float64).reshape(param_shape)
    return y.astype(dtype), mean[:, 0].astype(dtype), rstd[:, 0].astype(dtype)


def layer_norm_channels_first_backward_reference(grad_y, x, weight, mean, rstd, needs_weight_grad=True):
    """Plain twin of layer_norm_channels_first_backward, on the array module of its inputs."""
    xp = get_array_module(grad_y, x, weight, mean, rstd)
    dtype = _float_dtype(x)
    x = xp.asarray(x, xp.float64)
    dy = xp.asarray(grad_y, xp.float64)
    param_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    mean = xp.expand_dims(xp.asarray(mean, xp.float64), 1)
    rstd = xp.expand_dims(xp.asarray(rstd, xp.float64), 1)
    xhat = (x - mean) * rstd
    g = dy if weight is None else dy * xp.asarray(weight, xp.float64).reshape(param_shape)
    grad_x = rstd * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    if not needs_weight_grad:
        return grad_x.astype(dtype), None, None
    other_axes = (0,) + tuple(range(2, x.ndim))
    return (
        grad_x.astype(dtype),
        (dy * xhat).sum(axis=other_axes).astype(dtype),
        dy.sum(axis=other_axes).astype(dtype),
    )
