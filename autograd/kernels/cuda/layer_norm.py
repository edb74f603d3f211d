"""Layer normalisation on the GPU, in both of ConvNeXt's layouts, with one set of kernels.

Math as in ``autograd.kernels.cpu.layer_norm``: per group of C values, mean, biased variance,
rstd = 1 / sqrt(var + eps), xhat = (x - mean) rstd, y = w xhat + b; backward with g = dy w:
dx = rstd (g - mean(g) - xhat mean(g xhat)), dw = sum dy xhat, db = sum dy.

One layout covers both: x is viewed as (outer, C, inner), and group r = (o, s) holds the C values at
o * C * inner + c * inner + s. Channels last (rows, C) is outer = rows, inner = 1; channels first
(N, C, H, W) is outer = N, inner = H * W. Consecutive threads take consecutive groups, so in channels
first they read consecutive addresses (coalesced); in channels last each thread walks its own row.

* forward and dx: one thread per group, two passes over its C values; statistics in double.
* dw, db: a sum over all groups, done in two steps without atomics: thread (chunk, c) sums the groups of
  its chunk for channel c into a partial buffer (in double); ``xp.sum`` then adds the chunks.
"""

from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from .source import CudaSource

GROUPS_PER_CHUNK = 64  # groups summed by one thread of the dw/db kernel

SOURCE = CudaSource(
    "layer_norm",
    r"""
__device__ __forceinline__ long long group_start(long long r, long long C, long long inner) {
    return (r / inner) * C * inner + r % inner;
}

extern "C" __global__ void layer_norm_forward(const scalar_t* x, const scalar_t* w, const scalar_t* b,
                                              scalar_t* y, scalar_t* mean_out, scalar_t* rstd_out,
                                              long long groups, long long C, long long inner, double eps) {
    GRID_STRIDE_LOOP(r, groups) {
        long long start = group_start(r, C, inner);
        double sum = 0.0;
        for (long long c = 0; c < C; ++c) sum += x[start + c * inner];
        double mean = sum / C;
        double squares = 0.0;
        for (long long c = 0; c < C; ++c) {
            double d = x[start + c * inner] - mean;
            squares += d * d;
        }
        double rstd = 1.0 / sqrt(squares / C + eps);
        for (long long c = 0; c < C; ++c) {
            long long i = start + c * inner;
            y[i] = (scalar_t)((x[i] - mean) * rstd * w[c] + b[c]);
        }
        mean_out[r] = (scalar_t)mean;
        rstd_out[r] = (scalar_t)rstd;
    }
}

extern "C" __global__ void layer_norm_backward_input(const scalar_t* dy, const scalar_t* x, const scalar_t* w,
                                                     const scalar_t* mean, const scalar_t* rstd, scalar_t* dx,
                                                     long long groups, long long C, long long inner) {
    GRID_STRIDE_LOOP(r, groups) {
        long long start = group_start(r, C, inner);
        double mu = mean[r], rs = rstd[r];
        double sum_g = 0.0, sum_g_xhat = 0.0;
        for (long long c = 0; c < C; ++c) {
            long long i = start + c * inner;
            double g = (double)dy[i] * w[c];
            sum_g += g;
            sum_g_xhat += g * (x[i] - mu) * rs;
        }
        double mean_g = sum_g / C, mean_g_xhat = sum_g_xhat / C;
        for (long long c = 0; c < C; ++c) {
            long long i = start + c * inner;
            double xhat = (x[i] - mu) * rs;
            dx[i] = (scalar_t)(rs * ((double)dy[i] * w[c] - mean_g - xhat * mean_g_xhat));
        }
    }
}

extern "C" __global__ void layer_norm_backward_affine(const scalar_t* dy, const scalar_t* x, const scalar_t* mean,
                                                      const scalar_t* rstd, double* partial_w, double* partial_b,
                                                      long long groups, long long C, long long inner,
                                                      long long groups_per_chunk, long long chunks) {
    GRID_STRIDE_LOOP(t, chunks * C) {
        long long chunk = t / C, c = t % C;
        long long first = chunk * groups_per_chunk;
        long long last = first + groups_per_chunk < groups ? first + groups_per_chunk : groups;
        double sum_w = 0.0, sum_b = 0.0;
        for (long long r = first; r < last; ++r) {
            long long i = group_start(r, C, inner) + c * inner;
            double d = dy[i];
            sum_w += d * (x[i] - (double)mean[r]) * rstd[r];
            sum_b += d;
        }
        partial_w[t] = sum_w;
        partial_b[t] = sum_b;
    }
}
""",
)


def _float_dtype(xp, x):
    return x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _affine_params(xp, weight, bias, size, dtype):
    """Weight and bias as contiguous (size,) arrays; None becomes ones / zeros."""
    w = xp.ones(size, dtype) if weight is None else xp.ascontiguousarray(weight, dtype=dtype).reshape(size)
    b = xp.zeros(size, dtype) if bias is None else xp.ascontiguousarray(bias, dtype=dtype).reshape(size)
    return w, b


def _forward(x, weight, bias, eps, outer, C, inner):
    xp = get_array_module(x)
    dtype = _float_dtype(xp, x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    w, b = _affine_params(xp, weight, bias, C, dtype)
    groups = outer * inner
    y = xp.empty_like(x)
    mean = xp.empty(groups, dtype)
    rstd = xp.empty(groups, dtype)
    SOURCE.launch("layer_norm_forward", groups, (x, w, b, y, mean, rstd, groups, C, inner, float(eps)), dtype)
    return y, mean, rstd


def _backward(grad_y, x, weight, mean, rstd, needs_weight_grad, outer, C, inner):
    xp = get_array_module(x, grad_y)
    dtype = _float_dtype(xp, x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    dy = xp.ascontiguousarray(grad_y, dtype=dtype)
    mean = xp.ascontiguousarray(mean, dtype=dtype).reshape(-1)
    rstd = xp.ascontiguousarray(rstd, dtype=dtype).reshape(-1)
    w, _ = _affine_params(xp, weight, None, C, dtype)
    groups = outer * inner
    dx = xp.empty_like(x)
    SOURCE.launch("layer_norm_backward_input", groups, (dy, x, w, mean, rstd, dx, groups, C, inner), dtype)
    if not needs_weight_grad:
        return dx, None, None
    chunks = -(-groups // GROUPS_PER_CHUNK)
    partial_w = xp.empty((chunks, C), xp.float64)
    partial_b = xp.empty((chunks, C), xp.float64)
    SOURCE.launch(
        "layer_norm_backward_affine",
        chunks * C,
        (dy, x, mean, rstd, partial_w, partial_b, groups, C, inner, GROUPS_PER_CHUNK, chunks),
        dtype,
    )
    return dx, partial_w.sum(axis=0).astype(dtype), partial_b.sum(axis=0).astype(dtype)


def layer_norm_forward(x2d, weight, bias, eps):
    """Over the last axis of x2d (rows, C): y (rows, C), mean (rows,), rstd (rows,)."""
    rows, C = x2d.shape
    return _forward(x2d, weight, bias, eps, rows, C, 1)


def layer_norm_backward(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad=True):
    """grad_x (rows, C), and grad_weight, grad_bias (C,) (None, None when not needed)."""
    rows, C = x2d.shape
    return _backward(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad, rows, C, 1)


def layer_norm_channels_first_forward(x, weight, bias, eps):
    """Over axis 1 of x (N, C, *spatial): y like x, mean and rstd (N, *spatial)."""
    N, C = x.shape[:2]
    inner = int(np.prod(x.shape[2:]))  # H * W
    y, mean, rstd = _forward(x, weight, bias, eps, N, C, inner)
    stats_shape = (N,) + tuple(x.shape[2:])
    return y.reshape(x.shape), mean.reshape(stats_shape), rstd.reshape(stats_shape)


def layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd, needs_weight_grad=True):
    """grad_x like x, and grad_weight, grad_bias (C,) (None, None when not needed)."""
    N, C = x.shape[:2]
    inner = int(np.prod(x.shape[2:]))  # H * W
    dx, dw, db = _backward(grad_y, x, weight, mean, rstd, needs_weight_grad, N, C, inner)
    return dx.reshape(x.shape), dw, db
