"""Batch normalisation (Ioffe & Szegedy, 2015): fused Numba CPU kernels beside their plain references
(which run on NumPy and CuPy arrays alike: they take the array module of their inputs).

Math, per channel c over its m values (every sample and position of the batch):

    mean = sum x / m,   var = sum (x - mean)^2 / m        (biased; training uses the batch's, evaluation
    rstd = 1 / sqrt(var + eps)                             the running statistics)
    y    = (x - mean) * rstd * w + b

Backward, with dy the incoming gradient and xhat = (x - mean) * rstd:

    dw = sum dy * xhat,   db = sum dy
    training:    dx = w * rstd * (dy - db / m - xhat * dw / m)   (the statistics depend on x)
    evaluation:  dx = w * rstd * dy                              (they are constants)

So one pair of per-channel sums (of dy and of dy * (x - mean)) gives dw, db and dx's coefficients, and
both dx and y are one elementwise pass: y = (x - mean[c]) * scale[c] + b[c] and
dx = a[c] * (dy - k1[c] - (x - mean[c]) * k2[c]).

Two layouts, neither transposed:
- channels last, (N, ..., C) viewed as (rows, C): ``ConvNeXt(norm_layer="batch")``'s blocks. A channel's
  values are strided, so the rows are cut into chunks; each chunk adds its rows into its own row of a
  float64 partial buffer (the inner loop runs over contiguous channels and is vectorised), and the
  partials are added in a fixed order: the result does not depend on the number of threads.
- channels first, (N, C, *spatial) viewed as (N, C, S): the stem and downsampling layers, ResNets. Each
  channel is summed by one task over its N contiguous planes (helpers compiled with fastmath={'reassoc'}
  only, which lets LLVM vectorise a sum: it changes the summation order, nothing else).

Sums are taken in float64 even for float32 input, the variance in a second pass over (x - mean)^2.
"""

import numpy as np
from numba import njit, prange

from autograd.backend import get_array_module

# Row chunks of the channels-last partial buffers: fixed, so results do not depend on the thread count.
_ROW_CHUNKS = 64
_ROWS_PER_CHUNK = 16  # at least this many rows per chunk


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------


def _float_dtype(x):
    return np.float32 if x.dtype == np.float32 else np.float64


def _view3(x, channels_last):
    """x as a contiguous (outer, C, inner) array: (rows, C, 1) channels last, (N, C, S) channels first."""
    dtype = _float_dtype(x)
    x = np.ascontiguousarray(x, dtype=dtype)
    if channels_last:
        return x.reshape(-1, x.shape[-1], 1)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _row_chunks(rows):
    return max(1, min(_ROW_CHUNKS, rows // _ROWS_PER_CHUNK))


def _channel_vector(a, channels, dtype):
    return np.ascontiguousarray(a, dtype=dtype).reshape(channels)


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
    sum_dy_xmu = 0.0
    for s in range(x_plane.shape[0]):
        dy = np.float64(dy_plane[s])
        sum_dy += dy
        sum_dy_xmu += dy * (np.float64(x_plane[s]) - mean)
    return sum_dy, sum_dy_xmu


# --------------------------------------------------------------------------------------------------------
# Channels last: (rows, C)
# --------------------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, fastmath=False)
def _rows_sums(x, center, squared, partial):
    """partial[chunk, c] = sum over the chunk's rows of (x - center[c]), or of its square."""
    rows, channels = x.shape
    chunks = partial.shape[0]
    for chunk in prange(chunks):
        first = chunk * rows // chunks
        last = (chunk + 1) * rows // chunks
        acc = partial[chunk]
        if squared:
            for i in range(first, last):
                for c in range(channels):
                    d = np.float64(x[i, c]) - center[c]
                    acc[c] += d * d
        else:
            for i in range(first, last):
                for c in range(channels):
                    acc[c] += np.float64(x[i, c]) - center[c]


@njit(parallel=True, cache=True, fastmath=False)
def _rows_backward_sums(grad_y, x, mean, partial_dy, partial_dy_xmu):
    rows, channels = x.shape
    chunks = partial_dy.shape[0]
    for chunk in prange(chunks):
        first = chunk * rows // chunks
        last = (chunk + 1) * rows // chunks
        acc_dy = partial_dy[chunk]
        acc_dy_xmu = partial_dy_xmu[chunk]
        for i in range(first, last):
            for c in range(channels):
                dy = np.float64(grad_y[i, c])
                acc_dy[c] += dy
                acc_dy_xmu[c] += dy * (np.float64(x[i, c]) - mean[c])


@njit(parallel=True, cache=True, fastmath=False)
def _rows_normalize(x, mean, scale, shift, y):
    """y = (x - mean[c]) * scale[c] + shift[c]."""
    rows, channels = x.shape
    for i in prange(rows):
        for c in range(channels):
            y[i, c] = (x[i, c] - mean[c]) * scale[c] + shift[c]


@njit(parallel=True, cache=True, fastmath=False)
def _rows_grad_input(grad_y, x, mean, a, k1, k2, grad_x):
    """dx = a[c] * (dy - k1[c] - (x - mean[c]) * k2[c])."""
    rows, channels = x.shape
    for i in prange(rows):
        for c in range(channels):
            grad_x[i, c] = a[c] * (grad_y[i, c] - k1[c] - (x[i, c] - mean[c]) * k2[c])


# --------------------------------------------------------------------------------------------------------
# Channels first: (N, C, S)
# --------------------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, fastmath=False)
def _planes_sums(x, center, squared, out):
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
def _planes_backward_sums(grad_y, x, mean, sum_dy, sum_dy_xmu):
    batch, channels, _ = x.shape
    for c in prange(channels):
        total_dy = 0.0
        total_dy_xmu = 0.0
        for n in range(batch):
            dy, dy_xmu = _plane_backward_sums(grad_y, x, n, c, mean[c])
            total_dy += dy
            total_dy_xmu += dy_xmu
        sum_dy[c] = total_dy
        sum_dy_xmu[c] = total_dy_xmu


@njit(parallel=True, cache=True, fastmath=False)
def _planes_normalize(x, mean, scale, shift, y):
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
def _planes_grad_input(grad_y, x, mean, a, k1, k2, grad_x):
    batch, channels, spatial = x.shape
    for plane in prange(batch * channels):
        n = plane // channels
        c = plane % channels
        dy_plane = grad_y[n, c]
        x_plane = x[n, c]
        dx_plane = grad_x[n, c]
        m, ac, k1c, k2c = mean[c], a[c], k1[c], k2[c]
        for s in range(spatial):
            dx_plane[s] = ac * (dy_plane[s] - k1c - (x_plane[s] - m) * k2c)


# --------------------------------------------------------------------------------------------------------
# The kernels an op calls
# --------------------------------------------------------------------------------------------------------


def _sums(x3, center, squared):
    """Per-channel float64 sums of (x - center), or of its square, over a (outer, C, inner) view."""
    channels = x3.shape[1]
    if x3.shape[2] == 1:  # channels last
        x2 = x3.reshape(x3.shape[0], channels)
        partial = np.zeros((_row_chunks(x2.shape[0]), channels), np.float64)
        _rows_sums(x2, center, squared, partial)
        return partial.sum(axis=0)
    out = np.empty(channels, np.float64)
    _planes_sums(x3, center, squared, out)
    return out


def batch_norm_statistics(x, channels_last=False):
    """The batch's per-channel mean and biased variance.

    Args:
        x: (N, C, *spatial), or (N, ..., C) with ``channels_last``; float32 or float64, any strides.

    Returns:
        mean (C,), var (C,), in the dtype of x (computed in float64, the variance in a second pass).
    """
    dtype = _float_dtype(x)
    x3 = _view3(x, channels_last)
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
    dtype = _float_dtype(x)
    x3 = _view3(x, channels_last)
    channels = x3.shape[1]
    scale = _channel_vector(rstd, channels, np.float64)
    if weight is not None:
        scale = scale * _channel_vector(weight, channels, np.float64)
    shift = np.zeros(channels, dtype) if bias is None else _channel_vector(bias, channels, dtype)
    mean = _channel_vector(mean, channels, dtype)
    y = np.empty_like(x3)
    if channels_last:
        _rows_normalize(x3.reshape(-1, channels), mean, scale.astype(dtype), shift, y.reshape(-1, channels))
    else:
        _planes_normalize(x3, mean, scale.astype(dtype), shift, y)
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
    dtype = _float_dtype(x)
    x3 = _view3(x, channels_last)
    grad_y3 = _view3(grad_y, channels_last)
    outer, channels, inner = x3.shape
    count = outer * inner
    mean_x = _channel_vector(mean, channels, dtype)
    rstd64 = _channel_vector(rstd, channels, np.float64)
    w64 = np.ones(channels) if weight is None else _channel_vector(weight, channels, np.float64)
    sum_dy = sum_dy_xhat = None
    if training or needs_weight_grad:
        if channels_last:
            chunks = _row_chunks(outer)
            partial_dy = np.zeros((chunks, channels), np.float64)
            partial_dy_xmu = np.zeros((chunks, channels), np.float64)
            _rows_backward_sums(
                grad_y3.reshape(outer, channels),
                x3.reshape(outer, channels),
                mean_x,
                partial_dy,
                partial_dy_xmu,
            )
            sum_dy, sum_dy_xmu = partial_dy.sum(axis=0), partial_dy_xmu.sum(axis=0)
        else:
            sum_dy = np.empty(channels, np.float64)
            sum_dy_xmu = np.empty(channels, np.float64)
            _planes_backward_sums(grad_y3, x3, mean_x, sum_dy, sum_dy_xmu)
        sum_dy_xhat = sum_dy_xmu * rstd64
    a = w64 * rstd64
    if training:  # dx = w rstd (dy - mean(dy) - (x - mean) rstd * mean(dy xhat))
        k1 = sum_dy / count
        k2 = rstd64 * sum_dy_xhat / count
    else:
        k1 = k2 = np.zeros(channels)
    grad_x = np.empty_like(x3)
    coefficients = [v.astype(dtype) for v in (a, k1, k2)]
    if channels_last:
        _rows_grad_input(
            grad_y3.reshape(outer, channels),
            x3.reshape(outer, channels),
            mean_x,
            *coefficients,
            grad_x.reshape(outer, channels),
        )
    else:
        _planes_grad_input(grad_y3, x3, mean_x, *coefficients, grad_x)
    grad_x = grad_x.reshape(x.shape)
    if not needs_weight_grad:
        return grad_x, None, None
    return grad_x, sum_dy_xhat.astype(dtype), sum_dy.astype(dtype)


# --------------------------------------------------------------------------------------------------------
# Plain references (float64 inside; NumPy or CuPy)
# --------------------------------------------------------------------------------------------------------


def _reference_layout(x, channels_last):
    """The axes a channel is reduced over, and the shape that broadcasts a (C,) vector against x."""
    channel_axis = x.ndim - 1 if channels_last else 1
    axes = tuple(a for a in range(x.ndim) if a != channel_axis)
    shape = tuple(x.shape[a] if a == channel_axis else 1 for a in range(x.ndim))
    return axes, shape


def batch_norm_statistics_reference(x, channels_last=False):
    """Plain twin of batch_norm_statistics, on the array module of its input."""
    xp = get_array_module(x)
    axes, _ = _reference_layout(x, channels_last)
    x64 = xp.asarray(x, xp.float64)
    dtype = _float_dtype(x)
    return x64.mean(axis=axes).astype(dtype), x64.var(axis=axes).astype(dtype)


def batch_norm_normalize_reference(x, mean, rstd, weight, bias, channels_last=False):
    """Plain twin of batch_norm_normalize."""
    xp = get_array_module(x, mean, rstd, weight, bias)
    _, shape = _reference_layout(x, channels_last)

    def per_channel(v):
        return xp.asarray(v, xp.float64).reshape(shape)

    y = (xp.asarray(x, xp.float64) - per_channel(mean)) * per_channel(rstd)
    if weight is not None:
        y = y * per_channel(weight) + per_channel(bias)
    return y.astype(_float_dtype(x))


def batch_norm_backward_reference(
    grad_y, x, weight, mean, rstd, training=True, channels_last=False, needs_weight_grad=True
):
    """Plain twin of batch_norm_backward."""
    xp = get_array_module(grad_y, x, weight, mean, rstd)
    axes, shape = _reference_layout(x, channels_last)
    dtype = _float_dtype(x)
    dy = xp.asarray(grad_y, xp.float64)
    rstd = xp.asarray(rstd, xp.float64).reshape(shape)
    xhat = (xp.asarray(x, xp.float64) - xp.asarray(mean, xp.float64).reshape(shape)) * rstd
    dxhat = dy if weight is None else dy * xp.asarray(weight, xp.float64).reshape(shape)
    if training:
        grad_x = rstd * (
            dxhat
            - dxhat.mean(axis=axes, keepdims=True)
            - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        )
    else:
        grad_x = dxhat * rstd
    if not needs_weight_grad:
        return grad_x.astype(dtype), None, None
    return grad_x.astype(dtype), (dy * xhat).sum(axis=axes).astype(dtype), dy.sum(axis=axes).astype(dtype)
