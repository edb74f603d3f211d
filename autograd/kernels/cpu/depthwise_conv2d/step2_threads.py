"""Depthwise conv, step 2: the work split across threads (numba prange), deterministic sums.

Forward: a task is (image n, block of output rows); tasks write disjoint outputs, so they run in any
order. grad_x becomes a gather: each input pixel sums weight * grad_out over the taps whose output
position (r + ph - kh)/sh, (col + pw - kw)/sw is a whole number inside the output, so threads own their
input rows and never write the same element. grad_w and grad_b are reductions: the tasks are cut into a
fixed number of chunks (from the shapes only, never from the thread count), chunk k adds into its own
float64 partial buffers, and the partials are summed afterwards in a fixed order. The result is then the
same bits whatever the number of threads.
"""

import numpy as np
from numba import njit, prange

from .geometry import nhwc_backward_arguments, nhwc_forward_arguments, rows_per_task, zero_weight_grads
from .step1_plain_loops import forward_row


@njit(parallel=True, cache=True)
def forward_tasks(x, weight, bias, geometry, rows, out):
    blocks = (geometry.Ho + rows - 1) // rows
    for t in prange(geometry.N * blocks):
        n = t // blocks
        first = (t - n * blocks) * rows
        for i in range(first, min(geometry.Ho, first + rows)):
            forward_row(x, weight, bias, geometry, n, i, out)


@njit(cache=True)
def grad_x_row(weight, grad_out, geometry, n, r, grad_x):
    """grad_x[n, r, col, c] = sum of weight[kh, kw, c] * grad_out[n, i, j, c] over i*sh + kh = r + ph,
    j*sw + kw = col + pw."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    for col in range(W):
        for c in range(C):
            total = 0.0
            for kh in range(KH):
                u = r + ph - kh
                if u < 0 or u % sh != 0 or u // sh >= Ho:
                    continue
                for kw in range(KW):
                    v = col + pw - kw
                    if v >= 0 and v % sw == 0 and v // sw < Wo:
                        total += weight[kh, kw, c] * grad_out[n, u // sh, v // sw, c]
            grad_x[n, r, col, c] = total


@njit(parallel=True, cache=True)
def grad_x_gather(weight, grad_out, geometry, grad_x):
    for t in prange(geometry.N * geometry.H):
        n = t // geometry.H
        grad_x_row(weight, grad_out, geometry, n, t - n * geometry.H, grad_x)


@njit(cache=True)
def weight_grad_row(x, grad_out, geometry, n, i, grad_w, grad_b):
    """grad_w[kh, kw, c] += sum_j g[n, i, j, c] * x[n, i*sh - ph + kh, j*sw - pw + kw, c]; grad_b too."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    for j in range(Wo):
        for c in range(C):
            g = grad_out[n, i, j, c]
            grad_b[c] += g
            for kh in range(KH):
                r = i * sh - ph + kh
                if r < 0 or r >= H:
                    continue
                for kw in range(KW):
                    col = j * sw - pw + kw
                    if 0 <= col < W:
                        grad_w[kh, kw, c] += g * x[n, r, col, c]


@njit(parallel=True, cache=True)
def weight_grad_chunks(x, grad_out, geometry, rows, grad_w_partial, grad_b_partial):
    """Chunk k of the (image, row block) tasks adds into grad_w_partial[k], grad_b_partial[k] (float64)."""
    blocks = (geometry.Ho + rows - 1) // rows
    tasks = geometry.N * blocks
    chunks = grad_w_partial.shape[0]
    for k in prange(chunks):
        for t in range(k * tasks // chunks, (k + 1) * tasks // chunks):
            n = t // blocks
            first = (t - n * blocks) * rows
            for i in range(first, min(geometry.Ho, first + rows)):
                weight_grad_row(x, grad_out, geometry, n, i, grad_w_partial[k], grad_b_partial[k])


def weight_grads(x, grad_out, geometry, weight_shape, dtype, needs_bias_grad, chunk_kernel):
    """Runs chunk_kernel over a fixed number of chunks of (image, row block) tasks and sums the
    float64 partials in a fixed order; returns (grad_w, grad_b or None) in dtype."""
    rows = rows_per_task(geometry.N, geometry.Ho)
    chunks = min(geometry.N * (-(-geometry.Ho // rows)), 16)
    grad_w_partial = np.zeros((chunks, *weight_shape), np.float64)
    grad_b_partial = np.zeros((chunks, geometry.C), np.float64)
    chunk_kernel(x, grad_out, geometry, rows, grad_w_partial, grad_b_partial)
    grad_b = grad_b_partial.sum(axis=0).astype(dtype) if needs_bias_grad else None
    return grad_w_partial.sum(axis=0).astype(dtype), grad_b


def depthwise_conv2d_nhwc_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, H, W, C), weight (KH, KW, C), bias (C,) or None -> out (N, Ho, Wo, C)."""
    geometry, x, weight, bias, out = nhwc_forward_arguments(x, weight, bias, stride, padding)
    if out.size:
        bias = np.zeros(geometry.C, out.dtype) if bias is None else bias
        forward_tasks(x, weight, bias, geometry, rows_per_task(geometry.N, geometry.Ho), out)
    return out


def depthwise_conv2d_nhwc_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """Returns (grad_x (N, H, W, C), grad_weight (KH, KW, C), grad_bias (C,) or None)."""
    geometry, x, weight, grad_out, grad_x = nhwc_backward_arguments(x, weight, grad_out, stride, padding)
    dtype = grad_x.dtype
    if geometry.N * geometry.C == 0:
        return (grad_x, *zero_weight_grads(weight.shape, geometry.C, dtype, needs_bias_grad))
    grad_x_gather(weight, grad_out, geometry, grad_x)
    grad_w, grad_b = weight_grads(
        x, grad_out, geometry, weight.shape, dtype, needs_bias_grad, weight_grad_chunks
    )
    return grad_x, grad_w, grad_b
