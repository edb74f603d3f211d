"""Batch normalisation on the GPU, in both layouts, with one set of kernels.

Math as in ``autograd.kernels.cpu.batch_norm``: per channel c over its m values, mean and biased variance
(in double, the variance in a second pass), y = (x - mean) scale + shift with scale = rstd w; backward
from the two sums sum(dy) and sum(dy (x - mean)): dw = rstd sum(dy (x - mean)), db = sum(dy), and
dx = a (dy - k1 - (x - mean) k2) with per-channel coefficients a, k1, k2 worked out on the host side.

One layout covers both: x is viewed as (outer, C, inner); value k of channel c (k < m = outer * inner)
lies at (k / inner) * C * inner + c * inner + k % inner. Channels last (rows, C) is outer = rows,
inner = 1; channels first (N, C, H, W) is outer = N, inner = H * W.

* per-channel sums: without atomics, in two steps: thread (chunk, c) adds the values k of its chunk of
  channel c into a partial buffer (in double), and ``xp.sum`` adds the chunks.
* y and dx: one thread per element.
"""

from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from .source import CudaSource

VALUES_PER_CHUNK = 256  # values of one channel summed by one thread of the sum kernels

SOURCE = CudaSource(
    "batch_norm",
    r"""
__device__ __forceinline__ long long value_index(long long k, long long c, long long C, long long inner) {
    return (k / inner) * C * inner + c * inner + k % inner;
}

extern "C" __global__ void batch_norm_partial_sums(const scalar_t* x, const double* center, double* partial,
                                                   long long m, long long C, long long inner,
                                                   long long chunks, int squared) {
    GRID_STRIDE_LOOP(t, chunks * C) {
        long long chunk = t / C, c = t % C;
        long long first = chunk * m / chunks, last = (chunk + 1) * m / chunks;
        double total = 0.0;
        for (long long k = first; k < last; ++k) {
            double d = (double)x[value_index(k, c, C, inner)] - center[c];
            total += squared ? d * d : d;
        }
        partial[t] = total;
    }
}

extern "C" __global__ void batch_norm_backward_partial_sums(const scalar_t* dy, const scalar_t* x,
                                                            const scalar_t* mean, double* partial_dy,
                                                            double* partial_dy_xmu, long long m, long long C,
                                                            long long inner, long long chunks) {
    GRID_STRIDE_LOOP(t, chunks * C) {
        long long chunk = t / C, c = t % C;
        long long first = chunk * m / chunks, last = (chunk + 1) * m / chunks;
        double mu = mean[c], sum_dy = 0.0, sum_dy_xmu = 0.0;
        for (long long k = first; k < last; ++k) {
            long long i = value_index(k, c, C, inner);
            double d = dy[i];
            sum_dy += d;
            sum_dy_xmu += d * ((double)x[i] - mu);
        }
        partial_dy[t] = sum_dy;
        partial_dy_xmu[t] = sum_dy_xmu;
    }
}

extern "C" __global__ void batch_norm_normalize(const scalar_t* x, const scalar_t* mean, const scalar_t* scale,
                                                const scalar_t* shift, scalar_t* y, long long n, long long C,
                                                long long inner) {
    GRID_STRIDE_LOOP(i, n) {
        long long c = (i / inner) % C;
        y[i] = (x[i] - mean[c]) * scale[c] + shift[c];
    }
}

extern "C" __global__ void batch_norm_grad_input(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                                                 const scalar_t* a, const scalar_t* k1, const scalar_t* k2,
                                                 scalar_t* dx, long long n, long long C, long long inner) {
    GRID_STRIDE_LOOP(i, n) {
        long long c = (i / inner) % C;
        dx[i] = a[c] * (dy[i] - k1[c] - (x[i] - mean[c]) * k2[c]);
    }
}
""",
)


def _float_dtype(x):
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _layout(x, channels_last):
    """(outer, C, inner) of x's view."""
    if channels_last:
        return x.size // x.shape[-1], x.shape[-1], 1
    return x.shape[0], x.shape[1], x.size // (x.shape[0] * x.shape[1])


def _channel_vector(xp, v, channels, dtype):
    return xp.ascontiguousarray(v, dtype=dtype).reshape(channels)


def _chunks(m):
    return -(-m // VALUES_PER_CHUNK)


def _sums(x, center, squared, outer, C, inner):
    xp = get_array_module(x)
    m = outer * inner
    chunks = _chunks(m)
    partial = xp.empty((chunks, C), xp.float64)
    SOURCE.launch(
        "batch_norm_partial_sums",
        chunks * C,
        (x, center, partial, m, C, inner, chunks, int(squared)),
        x.dtype,
    )
    return partial.sum(axis=0)


def batch_norm_statistics(x, channels_last=False):
    """The batch's per-channel mean and biased variance, (C,) each, in the dtype of x."""
    xp = get_array_module(x)
    dtype = _float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    outer, C, inner = _layout(x, channels_last)
    count = outer * inner
    mean = _sums(x, xp.zeros(C, xp.float64), False, outer, C, inner) / count
    var = _sums(x, mean, True, outer, C, inner) / count
    return mean.astype(dtype), var.astype(dtype)


def batch_norm_normalize(x, mean, rstd, weight, bias, channels_last=False):
    """y = (x - mean) * rstd * weight + bias per channel (weight and bias may be None), shaped like x."""
    xp = get_array_module(x)
    dtype = _float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    outer, C, inner = _layout(x, channels_last)
    scale = _channel_vector(xp, rstd, C, xp.float64)
    if weight is not None:
        scale = scale * _channel_vector(xp, weight, C, xp.float64)
    shift = xp.zeros(C, dtype) if bias is None else _channel_vector(xp, bias, C, dtype)
    y = xp.empty_like(x)
    SOURCE.launch(
        "batch_norm_normalize",
        x.size,
        (x, _channel_vector(xp, mean, C, dtype), scale.astype(dtype), shift, y, x.size, C, inner),
        dtype,
    )
    return y


def batch_norm_backward(
    grad_y, x, weight, mean, rstd, training=True, channels_last=False, needs_weight_grad=True
):
    """grad_x like x, and grad_weight, grad_bias (C,) (None, None when not needed)."""
    xp = get_array_module(x, grad_y)
    dtype = _float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    dy = xp.ascontiguousarray(grad_y, dtype=dtype)
    outer, C, inner = _layout(x, channels_last)
    count = outer * inner
    mean_x = _channel_vector(xp, mean, C, dtype)
    rstd64 = _channel_vector(xp, rstd, C, xp.float64)
    w64 = xp.ones(C) if weight is None else _channel_vector(xp, weight, C, xp.float64)
    sum_dy = sum_dy_xhat = None
    if training or needs_weight_grad:
        chunks = _chunks(count)
        partial_dy = xp.empty((chunks, C), xp.float64)
        partial_dy_xmu = xp.empty((chunks, C), xp.float64)
        SOURCE.launch(
            "batch_norm_backward_partial_sums",
            chunks * C,
            (dy, x, mean_x, partial_dy, partial_dy_xmu, count, C, inner, chunks),
            dtype,
        )
        sum_dy = partial_dy.sum(axis=0)
        sum_dy_xhat = partial_dy_xmu.sum(axis=0) * rstd64
    a = w64 * rstd64
    if training:
        k1, k2 = sum_dy / count, rstd64 * sum_dy_xhat / count
    else:
        k1 = k2 = xp.zeros(C)
    dx = xp.empty_like(x)
    SOURCE.launch(
        "batch_norm_grad_input",
        x.size,
        (dy, x, mean_x, a.astype(dtype), k1.astype(dtype), k2.astype(dtype), dx, x.size, C, inner),
        dtype,
    )
    if not needs_weight_grad:
        return dx, None, None
    return dx, sum_dy_xhat.astype(dtype), sum_dy.astype(dtype)
