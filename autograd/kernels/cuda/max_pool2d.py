"""2-D max pooling on the GPU, forward and backward, NCHW.

The semantics are those of ``autograd.kernels.cpu.max_pool2d``: each output keeps the flat index
(r * W + c in its plane) of its window's first maximal input, a NaN counting as the maximum; padding never
wins.

Thread mapping:

* forward: one thread per output (grid-stride), which scans its KH x KW window.
* backward: one thread per input, which gathers the gradients of the outputs whose windows contain it and
  that it won. Inputs, not outputs, own the threads, so overlapping windows never make two threads add
  to one place: no atomics (which the emulator could not run), and the sum has a fixed order.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...backend import get_array_module
from .source import CudaSource

# The sizes every kernel takes after its arrays, in this order: N * C planes of H x W inputs and
# H_out x W_out outputs, a KH x KW window, its stride and its zero padding.
PoolGeometry = namedtuple(
    "PoolGeometry",
    ["planes", "H", "W", "H_out", "W_out", "KH", "KW", "stride_h", "stride_w", "pad_h", "pad_w"],
)

SOURCE = CudaSource(
    "max_pool2d",
    r"""
extern "C" __global__ void max_pool2d_forward(const scalar_t* x,
                                              scalar_t* y,
                                              int* winner,
                                              long long planes,
                                              long long H,
                                              long long W,
                                              long long H_out,
                                              long long W_out,
                                              long long KH,
                                              long long KW,
                                              long long stride_h,
                                              long long stride_w,
                                              long long pad_h,
                                              long long pad_w) {
    GRID_STRIDE_LOOP(o, planes * H_out * W_out) {
        long long p = o / (H_out * W_out), i = (o / W_out) % H_out, j = o % W_out;
        const scalar_t* plane = x + p * H * W;
        scalar_t best = 0;
        long long index = -1;
        for (long long u = 0; u < KH; ++u) {
            long long r = i * stride_h - pad_h + u;
            if (r < 0 || r >= H) continue;
            for (long long v = 0; v < KW; ++v) {
                long long c = j * stride_w - pad_w + v;
                if (c < 0 || c >= W) continue;
                scalar_t value = plane[r * W + c];
                if (index < 0 || (!isnan(best) && (value > best || isnan(value)))) {
                    best = value;
                    index = r * W + c;
                }
            }
        }
        y[o] = best;
        winner[o] = (int)index;
    }
}

extern "C" __global__ void max_pool2d_backward(const scalar_t* dy,
                                               const int* winner,
                                               scalar_t* dx,
                                               long long planes,
                                               long long H,
                                               long long W,
                                               long long H_out,
                                               long long W_out,
                                               long long KH,
                                               long long KW,
                                               long long stride_h,
                                               long long stride_w,
                                               long long pad_h,
                                               long long pad_w) {
    GRID_STRIDE_LOOP(t, planes * H * W) {
        long long p = t / (H * W), r = (t / W) % H, c = t % W;
        // Outputs i whose window rows i * stride_h - pad_h .. i * stride_h - pad_h + KH - 1 contain r
        // (and likewise j for c).
        long long i_first = r + pad_h - KH + 1 > 0 ? (r + pad_h - KH + 1 + stride_h - 1) / stride_h : 0;
        long long i_last = (r + pad_h) / stride_h < H_out - 1 ? (r + pad_h) / stride_h : H_out - 1;
        long long j_first = c + pad_w - KW + 1 > 0 ? (c + pad_w - KW + 1 + stride_w - 1) / stride_w : 0;
        long long j_last = (c + pad_w) / stride_w < W_out - 1 ? (c + pad_w) / stride_w : W_out - 1;
        double total = 0.0;
        for (long long i = i_first; i <= i_last; ++i)
            for (long long j = j_first; j <= j_last; ++j) {
                long long o = (p * H_out + i) * W_out + j;
                if (winner[o] == r * W + c) total += dy[o];
            }
        dx[t] = (scalar_t)total;
    }
}
""",
)


def _geometry(x_shape, kernel, stride, padding, out_size=None) -> PoolGeometry:
    """The kernels' sizes for input shape (N, C, H, W); the output size is worked out unless given."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if out_size is None:
        out_size = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
    h_out, w_out = out_size
    return PoolGeometry(n * c, h, w, h_out, w_out, kh, kw, sh, sw, ph, pw)


def max_pool2d_forward(x, kernel, stride, padding):
    """y (N, C, H_out, W_out) and winner (N, C, H_out, W_out) int32, as the CPU kernel."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    geometry = _geometry(x.shape, kernel, stride, padding)
    out_shape = (*x.shape[:2], geometry.H_out, geometry.W_out)
    y = xp.empty(out_shape, x.dtype)
    winner = xp.empty(out_shape, np.int32)
    SOURCE.launch("max_pool2d_forward", y.size, (x, y, winner, *geometry), x.dtype)
    return y, winner


def max_pool2d_backward(grad_y, winner, x_shape, kernel, stride, padding):
    """dx (x_shape) from dy and the forward's winner."""
    xp = get_array_module(grad_y)
    grad_y = xp.ascontiguousarray(grad_y)
    geometry = _geometry(x_shape, kernel, stride, padding, out_size=grad_y.shape[2:])
    dx = xp.empty(x_shape, grad_y.dtype)
    SOURCE.launch(
        "max_pool2d_backward", dx.size, (grad_y, xp.ascontiguousarray(winner), dx, *geometry), grad_y.dtype
    )
    return dx
