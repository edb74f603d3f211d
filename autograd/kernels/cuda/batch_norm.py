"""Batch norm on the GPU, statistics, forward and backward, in both layouts with one set of kernels.

Math as in ``autograd.kernels.cpu.batch_norm``: per channel c over its m values, mean and biased variance
(in double, the variance in a second pass), y = (x - mean) scale + shift with scale = rstd w; backward
from the two sums sum(dy) and sum(dy (x - mean)): dw = rstd sum(dy (x - mean)), db = sum(dy), and
dx = scale (dy - dy_shift - (x - mean) x_coefficient), with per-channel coefficients worked out on the
host: in training dy_shift = mean(dy) and x_coefficient = rstd^2 mean(dy (x - mean)); in evaluation the
statistics are constants and both are 0.

One layout covers both (``common.channel_layout``): x is viewed as (outer, C, inner); value k of channel
c (k < m = outer * inner) lies at (k / inner) * C * inner + c * inner + k % inner. Channels last (rows, C)
is outer = rows, inner = 1; channels first (N, C, H, W) is outer = N, inner = H * W.

Thread mapping:

* per-channel sums (statistics, and the backward's two sums): in two steps. Thread (chunk, c) adds the
  values k of its chunk of channel c (about ``VALUES_PER_CHUNK`` of them) into its own slot of a partial
  buffer, in double; ``xp.sum`` then adds the chunks. No two threads write the same place, so there are
  no atomics and no shared memory, and the emulator can run the threads one after another.
* y and dx: one thread per element (grid-stride), which finds its channel as (i / inner) % C.
"""

from __future__ import annotations

from ...backend import get_array_module
from ..cpu.common import float_dtype
from .common import ChannelLayout, channel_layout
from .source import CudaSource

VALUES_PER_CHUNK = 256  # values of one channel summed by one thread of the sum kernels

SOURCE = CudaSource(
    "batch_norm",
    r"""
/* Index of value k of channel c in x viewed as (outer, C, inner). */
__device__ __forceinline__ long long value_index(long long k, long long c, long long C, long long inner) {
    return (k / inner) * C * inner + c * inner + k % inner;
}

/* partial[chunk, c] = sum over the values of one chunk of channel c of (x - center), or its square. */
extern "C" __global__ void batch_norm_partial_sums(const scalar_t* x,
                                                   const double* center,
                                                   double* partial,
                                                   long long m,
                                                   long long C,
                                                   long long inner,
                                                   long long chunks,
                                                   int squared) {
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

/* partial_dy[chunk, c], partial_dy_centered[chunk, c]: sums of dy and dy (x - mean) over one chunk. */
extern "C" __global__ void batch_norm_backward_partial_sums(const scalar_t* dy,
                                                            const scalar_t* x,
                                                            const scalar_t* mean,
                                                            double* partial_dy,
                                                            double* partial_dy_centered,
                                                            long long m,
                                                            long long C,
                                                            long long inner,
                                                            long long chunks) {
    GRID_STRIDE_LOOP(t, chunks * C) {
        long long chunk = t / C, c = t % C;
        long long first = chunk * m / chunks, last = (chunk + 1) * m / chunks;
        double channel_mean = mean[c], sum_dy = 0.0, sum_dy_centered = 0.0;
        for (long long k = first; k < last; ++k) {
            long long i = value_index(k, c, C, inner);
            double d = dy[i];
            sum_dy += d;
            sum_dy_centered += d * ((double)x[i] - channel_mean);
        }
        partial_dy[t] = sum_dy;
        partial_dy_centered[t] = sum_dy_centered;
    }
}

extern "C" __global__ void batch_norm_normalize(const scalar_t* x,
                                                const scalar_t* mean,
                                                const scalar_t* scale,
                                                const scalar_t* shift,
                                                scalar_t* y,
                                                long long n,
                                                long long C,
                                                long long inner) {
    GRID_STRIDE_LOOP(i, n) {
        long long c = (i / inner) % C;
        y[i] = (x[i] - mean[c]) * scale[c] + shift[c];
    }
}

extern "C" __global__ void batch_norm_grad_input(const scalar_t* dy,
                                                 const scalar_t* x,
                                                 const scalar_t* mean,
                                                 const scalar_t* scale,
                                                 const scalar_t* dy_shift,
                                                 const scalar_t* x_coefficient,
                                                 scalar_t* dx,
                                                 long long n,
                                                 long long C,
                                                 long long inner) {
    GRID_STRIDE_LOOP(i, n) {
        long long c = (i / inner) % C;
        dx[i] = scale[c] * (dy[i] - dy_shift[c] - (x[i] - mean[c]) * x_coefficient[c]);
    }
}
""",
)


def _channel_vector(xp, v, channels, dtype):
    return xp.ascontiguousarray(v, dtype=dtype).reshape(channels)


def _chunks(m):
    """How many chunks of about VALUES_PER_CHUNK values each channel's m values are summed in."""
    return -(-m // VALUES_PER_CHUNK)


def _sums(x, center, squared, layout: ChannelLayout):
    """Per channel, the sum of (x - center) or of its square, in float64."""
    xp = get_array_module(x)
    count = layout.outer * layout.inner
    chunks = _chunks(count)
    partial = xp.empty((chunks, layout.channels), xp.float64)
    SOURCE.launch(
        "batch_norm_partial_sums",
        chunks * layout.channels,
        (x, center, partial, count, layout.channels, layout.inner, chunks, int(squared)),
        x.dtype,
    )
    return partial.sum(axis=0)


def _backward_sums(dy, x, mean, layout: ChannelLayout):
    """Per channel, sum(dy) and sum(dy (x - mean)), in float64."""
    xp = get_array_module(x)
    count = layout.outer * layout.inner
    chunks = _chunks(count)
    partial_dy = xp.empty((chunks, layout.channels), xp.float64)
    partial_dy_centered = xp.empty((chunks, layout.channels), xp.float64)
    SOURCE.launch(
        "batch_norm_backward_partial_sums",
        chunks * layout.channels,
        (dy, x, mean, partial_dy, partial_dy_centered, count, layout.channels, layout.inner, chunks),
        x.dtype,
    )
    return partial_dy.sum(axis=0), partial_dy_centered.sum(axis=0)


def batch_norm_statistics(x, channels_last=False):
    """The batch's per-channel mean and biased variance, (C,) each, in the dtype of x."""
    xp = get_array_module(x)
    dtype = float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    layout = channel_layout(x.shape, channels_last)
    count = layout.outer * layout.inner
    mean = _sums(x, xp.zeros(layout.channels, xp.float64), False, layout) / count
    var = _sums(x, mean, True, layout) / count
    return mean.astype(dtype), var.astype(dtype)


def batch_norm_normalize(x, mean, rstd, weight, bias, channels_last=False):
    """y = (x - mean) * rstd * weight + bias per channel (weight and bias may be None), shaped like x."""
    xp = get_array_module(x)
    dtype = float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    layout = channel_layout(x.shape, channels_last)
    C = layout.channels
    scale = _channel_vector(xp, rstd, C, xp.float64)
    if weight is not None:
        scale = scale * _channel_vector(xp, weight, C, xp.float64)
    shift = xp.zeros(C, dtype) if bias is None else _channel_vector(xp, bias, C, dtype)
    y = xp.empty_like(x)
    SOURCE.launch(
        "batch_norm_normalize",
        x.size,
        (x, _channel_vector(xp, mean, C, dtype), scale.astype(dtype), shift, y, x.size, C, layout.inner),
        dtype,
    )
    return y


def batch_norm_backward(
    grad_y, x, weight, mean, rstd, training=True, channels_last=False, needs_weight_grad=True
):
    """grad_x like x, and grad_weight, grad_bias (C,) (None, None when not needed)."""
    xp = get_array_module(x, grad_y)
    dtype = float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    dy = xp.ascontiguousarray(grad_y, dtype=dtype)
    layout = channel_layout(x.shape, channels_last)
    C, count = layout.channels, layout.outer * layout.inner
    mean_x = _channel_vector(xp, mean, C, dtype)
    rstd64 = _channel_vector(xp, rstd, C, xp.float64)
    weight64 = xp.ones(C) if weight is None else _channel_vector(xp, weight, C, xp.float64)
    sum_dy = sum_dy_xhat = None
    if training or needs_weight_grad:
        sum_dy, sum_dy_centered = _backward_sums(dy, x, mean_x, layout)
        sum_dy_xhat = sum_dy_centered * rstd64
    scale = weight64 * rstd64
    if training:
        dy_shift, x_coefficient = sum_dy / count, rstd64 * sum_dy_xhat / count
    else:
        dy_shift = x_coefficient = xp.zeros(C)
    dx = xp.empty_like(x)
    coefficients = (scale.astype(dtype), dy_shift.astype(dtype), x_coefficient.astype(dtype))
    SOURCE.launch(
        "batch_norm_grad_input",
        x.size,
        (dy, x, mean_x, *coefficients, dx, x.size, C, layout.inner),
        dtype,
    )
    if not needs_weight_grad:
        return dx, None, None
    return dx, sum_dy_xhat.astype(dtype), sum_dy.astype(dtype)
