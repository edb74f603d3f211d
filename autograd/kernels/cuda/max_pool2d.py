"""2-D max pooling on the GPU, NCHW, with the semantics of ``autograd.kernels.cpu.max_pool2d``: each output
keeps the flat index (r * W + c in its plane) of its window's first maximal input, a NaN counting as the
maximum; padding never wins.

* forward: one thread per output.
* backward: one thread per input, which gathers the gradients of the outputs whose windows contain it and
  that it won. Inputs, not outputs, own the threads, so overlapping windows need no atomics and the sum
  has a fixed order.
"""

from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from .source import CudaSource

SOURCE = CudaSource(
    "max_pool2d",
    r"""
extern "C" __global__ void max_pool2d_forward(const scalar_t* x, scalar_t* y, int* winner, long long planes,
                                              long long H, long long W, long long Ho, long long Wo,
                                              long long kh, long long kw, long long sh, long long sw,
                                              long long ph, long long pw) {
    GRID_STRIDE_LOOP(o, planes * Ho * Wo) {
        long long p = o / (Ho * Wo), i = (o / Wo) % Ho, j = o % Wo;
        const scalar_t* plane = x + p * H * W;
        scalar_t best = 0;
        long long index = -1;
        for (long long u = 0; u < kh; ++u) {
            long long r = i * sh - ph + u;
            if (r < 0 || r >= H) continue;
            for (long long v = 0; v < kw; ++v) {
                long long c = j * sw - pw + v;
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

extern "C" __global__ void max_pool2d_backward(const scalar_t* dy, const int* winner, scalar_t* dx,
                                               long long planes, long long H, long long W, long long Ho,
                                               long long Wo, long long kh, long long kw, long long sh,
                                               long long sw, long long ph, long long pw) {
    GRID_STRIDE_LOOP(t, planes * H * W) {
        long long p = t / (H * W), r = (t / W) % H, c = t % W;
        // Outputs i whose window rows i*sh - ph .. i*sh - ph + kh - 1 contain r (and likewise j for c).
        long long i_first = r + ph - kh + 1 > 0 ? (r + ph - kh + 1 + sh - 1) / sh : 0;
        long long i_last = (r + ph) / sh < Ho - 1 ? (r + ph) / sh : Ho - 1;
        long long j_first = c + pw - kw + 1 > 0 ? (c + pw - kw + 1 + sw - 1) / sw : 0;
        long long j_last = (c + pw) / sw < Wo - 1 ? (c + pw) / sw : Wo - 1;
        double total = 0.0;
        for (long long i = i_first; i <= i_last; ++i)
            for (long long j = j_first; j <= j_last; ++j) {
                long long o = (p * Ho + i) * Wo + j;
                if (winner[o] == r * W + c) total += dy[o];
            }
        dx[t] = (scalar_t)total;
    }
}
""",
)


def max_pool2d_forward(x, kernel, stride, padding):
    """y (N, C, Ho, Wo) and winner (N, C, Ho, Wo) int32, as the CPU kernel."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = xp.empty((n, c, ho, wo), x.dtype)
    winner = xp.empty((n, c, ho, wo), np.int32)
    SOURCE.launch(
        "max_pool2d_forward", y.size, (x, y, winner, n * c, h, w, ho, wo, kh, kw, sh, sw, ph, pw), x.dtype
    )
    return y, winner


def max_pool2d_backward(grad_y, winner, x_shape, kernel, stride, padding):
    """dx (x_shape) from dy and the forward's winner."""
    xp = get_array_module(grad_y)
    grad_y = xp.ascontiguousarray(grad_y)
    n, c, h, w = x_shape
    ho, wo = grad_y.shape[2:]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    dx = xp.empty(x_shape, grad_y.dtype)
    SOURCE.launch(
        "max_pool2d_backward",
        dx.size,
        (grad_y, xp.ascontiguousarray(winner), dx, n * c, h, w, ho, wo, kh, kw, sh, sw, ph, pw),
        grad_y.dtype,
    )
    return dx
