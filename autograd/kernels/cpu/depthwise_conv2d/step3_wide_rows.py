"""Depthwise conv, step 3: "wide rows", shared zero padding so that each tap is one unit-stride loop.

A task (image n, block of output rows) first copies the input rows it needs into a zeroed buffer whose
rows are S = max(W + pw, Wo) pixels apart: the zero columns between two image rows serve as the right
padding of one row and the left padding of the next, and zero rows stand for the padding above and
below. The bounds tests are gone. For stride 1, output pixel (i, j) reads buffer pixel
(i + kh)*S + j + kw, so with q = i*S + j every tap (kh, kw) is a constant shift of ONE long loop over q
(the pixels j >= Wo of each row are junk, dropped when the row is copied out):

    acc[q, c] += weight[kh, kw, c] * buffer[q + kh*S + kw, c]

grad_x for stride 1 and padding <= K-1 is itself such a correlation (the "full" convolution of grad_out
with the flipped kernel, see the package docstring), so it runs the forward tasks; other strides keep
step 2's gather. grad_w is the same shifted loop, a dot product of the wide grad_out rows with the
shifted input buffer, per chunk into float64 partials as in step 2. Other strides read the buffer at
(i*sh + kh)*S + j*sw + kw, pixel by pixel.
"""

import numpy as np
from numba import njit, prange

from .geometry import (
    Geometry,
    nhwc_backward_arguments,
    nhwc_forward_arguments,
    rows_per_task,
    zero_weight_grads,
)
from .step2_threads import grad_x_gather, weight_grads


@njit(cache=True)
def gather_rows(x, n, first_row, geometry, row_stride, buffer):
    """Input rows first_row, first_row + 1, ... of image n into the zeroed wide buffer (pixels, C);
    rows outside the image stay zero. After the last row, a zero tail of max(KW, pw) pixels: the shifted
    stride-1 loops read KW - 1 past it, and with sw > 1 the last output column reads up to pw past it."""
    rows = (buffer.shape[0] - geometry.KW) // row_stride
    for rr in range(rows):
        r = first_row + rr
        if 0 <= r < geometry.H:
            start = rr * row_stride + geometry.pw
            buffer[start : start + geometry.W] = x[n, r]


@njit(cache=True)
def wide_taps(buffer, weight, row_stride, acc):
    """acc[q, c] += sum_{kh, kw} weight[kh, kw, c] * buffer[q + kh*row_stride + kw, c] (stride 1)."""
    KH, KW = weight.shape[0], weight.shape[1]
    pixels, C = acc.shape
    for kh in range(KH):
        for kw in range(KW):
            shift = kh * row_stride + kw
            for q in range(pixels):
                for c in range(C):
                    acc[q, c] += weight[kh, kw, c] * buffer[q + shift, c]


@njit(cache=True)
def strided_taps(buffer, weight, geometry, row_stride, acc):
    """Other strides, pixel by pixel:
    acc[i*S + j, c] += sum_{kh, kw} weight[kh, kw, c] * buffer[(i*sh + kh)*S + j*sw + kw, c]
    with S = row_stride."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    for i in range(acc.shape[0] // row_stride):
        for j in range(Wo):
            for kh in range(KH):
                for kw in range(KW):
                    source = (i * sh + kh) * row_stride + j * sw + kw
                    for c in range(C):
                        acc[i * row_stride + j, c] += weight[kh, kw, c] * buffer[source, c]


@njit(cache=True)
def forward_task(x, weight, bias, geometry, n, first, count, out):
    """Output rows first .. first + count - 1 of image n."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    row_stride = max(W + pw, Wo)
    tail = max(KW, pw)  # zero pixels after the last row: see gather_rows
    buffer = np.zeros((((count - 1) * sh + KH) * row_stride + tail, C), x.dtype)
    gather_rows(x, n, first * sh - ph, geometry, row_stride, buffer)
    acc = np.empty((count * row_stride, C), x.dtype)
    for q in range(count * row_stride):
        acc[q] = bias
    if sh == 1 and sw == 1:
        wide_taps(buffer, weight, row_stride, acc)
    else:
        strided_taps(buffer, weight, geometry, row_stride, acc)
    for i in range(count):
        out[n, first + i] = acc[i * row_stride : i * row_stride + Wo]


@njit(parallel=True, cache=True)
def forward_tasks(x, weight, bias, geometry, rows, out):
    blocks = (geometry.Ho + rows - 1) // rows
    for t in prange(geometry.N * blocks):
        n = t // blocks
        first = (t - n * blocks) * rows
        forward_task(x, weight, bias, geometry, n, first, min(rows, geometry.Ho - first), out)


@njit(cache=True)
def weight_grad_task(x, grad_out, geometry, n, first, count, grad_w, grad_b):
    """grad_w, grad_b (float64) += the sums over output rows first .. first + count - 1 of image n."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    row_stride = max(W + pw, Wo)
    tail = max(KW, pw)  # zero pixels after the last row: see gather_rows
    buffer = np.zeros((((count - 1) * sh + KH) * row_stride + tail, C), x.dtype)
    gather_rows(x, n, first * sh - ph, geometry, row_stride, buffer)
    wide_g = np.zeros((count * row_stride, C), x.dtype)  # grad_out rows, zero junk columns
    for i in range(count):
        wide_g[i * row_stride : i * row_stride + Wo] = grad_out[n, first + i]
    for q in range(count * row_stride):
        for c in range(C):
            grad_b[c] += wide_g[q, c]
    for kh in range(KH):
        for kw in range(KW):
            if sh == 1 and sw == 1:
                shift = kh * row_stride + kw
                for q in range(count * row_stride):
                    for c in range(C):
                        grad_w[kh, kw, c] += wide_g[q, c] * buffer[q + shift, c]
            else:
                for i in range(count):
                    for j in range(Wo):
                        source = (i * sh + kh) * row_stride + j * sw + kw
                        for c in range(C):
                            grad_w[kh, kw, c] += wide_g[i * row_stride + j, c] * buffer[source, c]


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
            count = min(rows, geometry.Ho - first)
            weight_grad_task(x, grad_out, geometry, n, first, count, grad_w_partial[k], grad_b_partial[k])


def depthwise_conv2d_nhwc_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, H, W, C), weight (KH, KW, C), bias (C,) or None -> out (N, Ho, Wo, C)."""
    geometry, x, weight, bias, out = nhwc_forward_arguments(x, weight, bias, stride, padding)
    if out.size:
        bias = np.zeros(geometry.C, out.dtype) if bias is None else bias
        forward_tasks(x, weight, bias, geometry, rows_per_task(geometry.N, geometry.Ho), out)
    return out


def depthwise_conv2d_nhwc_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """Returns (grad_x (N, H, W, C), grad_weight (KH, KW, C), grad_bias (C,) or None)."""
    g, x, weight, grad_out, grad_x = nhwc_backward_arguments(x, weight, grad_out, stride, padding)
    dtype = grad_x.dtype
    if g.N * g.C == 0:
        return (grad_x, *zero_weight_grads(weight.shape, g.C, dtype, needs_bias_grad))
    if g.sh == 1 and g.sw == 1 and g.ph <= g.KH - 1 and g.pw <= g.KW - 1:
        # grad_x = correlation of grad_out, padded by K-1-p, with the flipped kernel
        full = Geometry(g.N, g.C, g.Ho, g.Wo, g.KH, g.KW, 1, 1, g.KH - 1 - g.ph, g.KW - 1 - g.pw, g.H, g.W)
        flipped = np.ascontiguousarray(weight[::-1, ::-1, :])
        forward_tasks(grad_out, flipped, np.zeros(g.C, dtype), full, rows_per_task(g.N, g.H), grad_x)
    else:
        grad_x_gather(weight, grad_out, g, grad_x)
    grad_w, grad_b = weight_grads(x, grad_out, g, weight.shape, dtype, needs_bias_grad, weight_grad_chunks)
    return grad_x, grad_w, grad_b
