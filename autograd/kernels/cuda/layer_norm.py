"""Layer norm on the GPU, forward and backward, in both of ConvNeXt's layouts with one set of kernels.

Math as in ``autograd.kernels.cpu.layer_norm``: per group of C values, mean, biased variance,
rstd = 1 / sqrt(var + eps), xhat = (x - mean) rstd, y = w xhat + b; backward with g = dy w:
dx = rstd (g - mean(g) - xhat mean(g xhat)), dw = sum dy xhat, db = sum dy.

One layout covers both (``common.channel_layout``): x is viewed as (outer, C, inner), and group
r = (o, s) holds the C values at o * C * inner + c * inner + s. Channels last (rows, C) is outer = rows,
inner = 1; channels first (N, C, H, W) is outer = N, inner = H * W.

Thread mapping:

* forward and dx: one thread per group (grid-stride), which makes two passes over its own C values
  (statistics in double) and writes its own C outputs. Consecutive threads take consecutive groups, so
  in channels first they read consecutive addresses (coalesced); in channels last each walks its own row.
* dw, db: a sum over all groups for each channel, in two steps. Thread (chunk, c) sums the
  ``GROUPS_PER_CHUNK`` groups of its chunk for channel c into its own slot of a partial buffer (in
  double); ``xp.sum`` then adds the chunks. Threads never write the same place, so the kernels need no
  atomics or shared memory, and the emulator can run them one thread after another.
"""

from __future__ import annotations

from ...backend import get_array_module
from ..cpu.common import float_dtype
from .common import ChannelLayout, channel_layout
from .source import CudaSource

GROUPS_PER_CHUNK = 64  # groups summed by one thread of the dw/db kernel

SOURCE = CudaSource(
    "layer_norm",
    r"""
/* Index of value c = 0 of group r; value c lies at group_start + c * inner. */
__device__ __forceinline__ long long group_start(long long r, long long C, long long inner) {
    return (r / inner) * C * inner + r % inner;
}

extern "C" __global__ void layer_norm_forward(const scalar_t* x,
                                              const scalar_t* w,
                                              const scalar_t* b,
                                              scalar_t* y,
                                              scalar_t* mean_out,
                                              scalar_t* rstd_out,
                                              long long groups,
                                              long long C,
                                              long long inner,
                                              double eps) {
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

extern "C" __global__ void layer_norm_backward_input(const scalar_t* dy,
                                                     const scalar_t* x,
                                                     const scalar_t* w,
                                                     const scalar_t* mean,
                                                     const scalar_t* rstd,
                                                     scalar_t* dx,
                                                     long long groups,
                                                     long long C,
                                                     long long inner) {
    GRID_STRIDE_LOOP(r, groups) {
        long long start = group_start(r, C, inner);
        double group_mean = mean[r], group_rstd = rstd[r];
        double sum_g = 0.0, sum_g_xhat = 0.0;
        for (long long c = 0; c < C; ++c) {
            long long i = start + c * inner;
            double g = (double)dy[i] * w[c];
            sum_g += g;
            sum_g_xhat += g * (x[i] - group_mean) * group_rstd;
        }
        double mean_g = sum_g / C, mean_g_xhat = sum_g_xhat / C;
        for (long long c = 0; c < C; ++c) {
            long long i = start + c * inner;
            double xhat = (x[i] - group_mean) * group_rstd;
            dx[i] = (scalar_t)(group_rstd * ((double)dy[i] * w[c] - mean_g - xhat * mean_g_xhat));
        }
    }
}

/* partial_w[chunk, c] and partial_b[chunk, c]: the sums of dy xhat and dy over the groups of one chunk. */
extern "C" __global__ void layer_norm_backward_affine(const scalar_t* dy,
                                                      const scalar_t* x,
                                                      const scalar_t* mean,
                                                      const scalar_t* rstd,
                                                      double* partial_w,
                                                      double* partial_b,
                                                      long long groups,
                                                      long long C,
                                                      long long inner,
                                                      long long groups_per_chunk,
                                                      long long chunks) {
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


def _affine_params(xp, weight, bias, size, dtype):
    """Weight and bias as contiguous (size,) arrays; None becomes ones / zeros."""
    w = xp.ones(size, dtype) if weight is None else xp.ascontiguousarray(weight, dtype=dtype).reshape(size)
    b = xp.zeros(size, dtype) if bias is None else xp.ascontiguousarray(bias, dtype=dtype).reshape(size)
    return w, b


def _forward(x, weight, bias, eps, layout: ChannelLayout):
    """y like x (contiguous), and mean, rstd (groups,) of x viewed as ``layout``."""
    xp = get_array_module(x)
    dtype = float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    w, b = _affine_params(xp, weight, bias, layout.channels, dtype)
    groups = layout.outer * layout.inner
    y = xp.empty_like(x)
    mean = xp.empty(groups, dtype)
    rstd = xp.empty(groups, dtype)
    SOURCE.launch(
        "layer_norm_forward",
        groups,
        (x, w, b, y, mean, rstd, groups, layout.channels, layout.inner, float(eps)),
        dtype,
    )
    return y, mean, rstd


def _affine_grads(dy, x, mean, rstd, layout: ChannelLayout):
    """(grad_weight, grad_bias), (C,) each: partial sums per chunk of groups, then ``xp.sum`` over chunks."""
    xp = get_array_module(x)
    groups, channels = layout.outer * layout.inner, layout.channels
    chunks = -(-groups // GROUPS_PER_CHUNK)
    partial_w = xp.empty((chunks, channels), xp.float64)
    partial_b = xp.empty((chunks, channels), xp.float64)
    SOURCE.launch(
        "layer_norm_backward_affine",
        chunks * channels,
        (dy, x, mean, rstd, partial_w, partial_b, groups, channels, layout.inner, GROUPS_PER_CHUNK, chunks),
        x.dtype,
    )
    return partial_w.sum(axis=0).astype(x.dtype), partial_b.sum(axis=0).astype(x.dtype)


def _backward(grad_y, x, weight, mean, rstd, needs_weight_grad, layout: ChannelLayout):
    """grad_x like x (contiguous), and grad_weight, grad_bias (None, None when not needed)."""
    xp = get_array_module(x, grad_y)
    dtype = float_dtype(x)
    x = xp.ascontiguousarray(x, dtype=dtype)
    dy = xp.ascontiguousarray(grad_y, dtype=dtype)
    mean = xp.ascontiguousarray(mean, dtype=dtype).reshape(-1)
    rstd = xp.ascontiguousarray(rstd, dtype=dtype).reshape(-1)
    w, _ = _affine_params(xp, weight, None, layout.channels, dtype)
    groups = layout.outer * layout.inner
    dx = xp.empty_like(x)
    SOURCE.launch(
        "layer_norm_backward_input",
        groups,
        (dy, x, w, mean, rstd, dx, groups, layout.channels, layout.inner),
        dtype,
    )
    if not needs_weight_grad:
        return dx, None, None
    return (dx, *_affine_grads(dy, x, mean, rstd, layout))


def layer_norm_forward(x2d, weight, bias, eps):
    """Over the last axis of x2d (rows, C): y (rows, C), mean (rows,), rstd (rows,)."""
    return _forward(x2d, weight, bias, eps, channel_layout(x2d.shape, channels_last=True))


def layer_norm_backward(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad=True):
    """grad_x (rows, C), and grad_weight, grad_bias (C,) (None, None when not needed)."""
    layout = channel_layout(x2d.shape, channels_last=True)
    return _backward(grad_y2d, x2d, weight, mean, rstd, needs_weight_grad, layout)


def layer_norm_channels_first_forward(x, weight, bias, eps):
    """Over axis 1 of x (N, C, *spatial): y like x, mean and rstd (N, *spatial)."""
    y, mean, rstd = _forward(x, weight, bias, eps, channel_layout(x.shape, channels_last=False))
    stats_shape = (x.shape[0],) + tuple(x.shape[2:])
    return y.reshape(x.shape), mean.reshape(stats_shape), rstd.reshape(stats_shape)


def layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd, needs_weight_grad=True):
    """grad_x like x, and grad_weight, grad_bias (C,) (None, None when not needed)."""
    layout = channel_layout(x.shape, channels_last=False)
    dx, dw, db = _backward(grad_y, x, weight, mean, rstd, needs_weight_grad, layout)
    return dx.reshape(x.shape), dw, db
