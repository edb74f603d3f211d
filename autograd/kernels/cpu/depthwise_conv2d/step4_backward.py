"""Depthwise conv, step 4 (backward): 16-channel blocks, the kernels in use for NHWC inputs.

grad_x for stride 1 and padding <= K-1 is the forward kernel of step4_forward run on grad_out with the
flipped kernel (the "full" convolution); other strides and paddings scatter weight * grad_out into a
padded [pixel][16] buffer per (image, channel block), a simpler loop that is correct but not tuned.

grad_w and grad_b: as in step 3, a task (image n, block of output rows) gathers its input rows (padded)
and its grad_out rows (wide: pixel (i, j) at i*row_stride + j, zero gaps), here into [pixel][16] planes
per channel block, and the blocks of step4_lane_loops multiply 8 grad_out pixels by 7 shifted input
pixels at a time. Sums in the input dtype run over at most 64 pixels before being added to the chunk's
float64 partial buffers, which are summed afterwards in a fixed order (deterministic, as in step 2).
"""

import numpy as np
from numba import njit, prange

from .geometry import CONTRACT, Geometry, nhwc_backward_arguments, rows_per_task, zero_weight_grads
from .step4_forward import (
    LANES,
    blocked_forward,
    channel_block_weights,
    gather_input_rows,
    nhwc_element_strides,
)
from .step4_lane_loops import (
    add_one_pixel,
    eight_pixel_block_start,
    gather_lanes,
    scatter_lanes,
    weight_grad_eight_pixels_one_tap,
    weight_grad_eight_pixels_seven_taps,
    weight_grad_eight_pixels_three_taps,
    weight_grad_one_pixel_one_tap,
)


@njit(parallel=True, cache=True, fastmath=CONTRACT)
def blocked_scatter_kernel(g_flat, g_strides, weight_blocks, geometry, grad_x_flat, x_strides):
    """grad_x by scattering weight * g into a padded [pixel][16] buffer (any stride / padding); g_strides
    and x_strides are the (n, c, row, col) element strides of g and grad_x. A task is (image, channel
    block)."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    row_stride = max(W + pw, Wo)
    pixels = (H + 2 * ph + 1) * row_stride + KW + 16
    channel_blocks = weight_blocks.shape[0]
    tasks = N * channel_blocks
    chunks = min(tasks, 64)
    for k in prange(chunks):
        buf = np.empty(pixels * 16, g_flat.dtype)
        g_lanes = np.zeros(16, g_flat.dtype)
        for t in range(k * tasks // chunks, (k + 1) * tasks // chunks):
            n = t // channel_blocks
            cb = t - n * channel_blocks
            c0 = cb * 16
            count = min(16, C - c0)
            weights = weight_blocks[cb]
            buf[:] = 0
            g_start = n * g_strides[0] + c0 * g_strides[1]
            for i in range(Ho):
                for j in range(Wo):
                    gather_lanes(
                        g_lanes, 0, g_flat, g_start + i * g_strides[2] + j * g_strides[3], g_strides[1], count
                    )
                    for kh in range(KH):
                        for kw in range(KW):
                            o = ((i * sh + kh) * row_stride + j * sw + kw) * 16
                            d = buf[o : o + 16]
                            tap = kh * KW + kw
                            for lane in range(16):
                                d[lane] += weights[tap, lane] * g_lanes[lane]
            x_start = n * x_strides[0] + c0 * x_strides[1]
            for r in range(H):
                for col in range(W):
                    x_at = x_start + r * x_strides[2] + col * x_strides[3]
                    scatter_lanes(
                        grad_x_flat, x_at, x_strides[1], buf, ((r + ph) * row_stride + pw + col) * 16, count
                    )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def gather_grad_rows(gb, g_flat, g_strides, geometry, buffer_shape, n, first, count):
    """grad_out rows first .. first + count - 1 of image n into wide [pixel][16] planes per channel
    block (pixel (i, j) at i*row_stride + j); rows past `count`, up to `rows`, are zeroed."""
    C, Wo = geometry.C, geometry.Wo
    row_stride, plane, rows = buffer_shape
    for i in range(rows):
        if i >= count:  # rows past the last row of the task: zero
            for cb in range((C + 15) // 16):
                d0 = (cb * plane + i * row_stride) * 16
                gb[d0 : d0 + Wo * 16] = 0
            continue
        g_row = n * g_strides[0] + (first + i) * g_strides[2]
        for j in range(Wo):
            d = (i * row_stride + j) * 16
            for cb in range((C + 15) // 16):
                gather_lanes(
                    gb,
                    cb * plane * 16 + d,
                    g_flat,
                    g_row + cb * 16 * g_strides[1] + j * g_strides[3],
                    g_strides[1],
                    min(16, C - cb * 16),
                )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def bias_grad_block(grad_b_lanes, g_plane, acc, pixels):
    """grad_b_lanes (float64) += sum of the g pixels (the gaps are zero), 64 pixels at a time."""
    a = acc[:16]
    for q0 in range(0, pixels, 64):
        a[:] = 0
        for q in range(q0, min(pixels, q0 + 64)):
            add_one_pixel(a, g_plane[q * 16 : q * 16 + 16])
        for lane in range(16):
            grad_b_lanes[lane] += a[lane]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def seven_wide_weight_grad(grad_w_lanes, g_plane, x_plane, acc, KH, count, row_stride, Wo):
    """Stride 1, 7-wide kernel: per kernel row, 8 blocks of 8 pixels, then into float64. The 8-pixel
    blocks are row-aligned as in the forward."""
    blocks_per_row = (Wo + 7) // 8
    row_aligned = 10 * blocks_per_row * 8 <= 9 * row_stride
    blocks = count * blocks_per_row if row_aligned else (count * row_stride + 7) // 8
    for kh in range(KH):
        a = acc[kh * 112 : kh * 112 + 112]
        for q0 in range(0, blocks, 8):
            a[:] = 0
            for block in range(q0, min(blocks, q0 + 8)):
                q = eight_pixel_block_start(block, row_aligned, blocks_per_row, row_stride)
                o = q + kh * row_stride
                weight_grad_eight_pixels_seven_taps(
                    a, g_plane[q * 16 : q * 16 + 128], x_plane[o * 16 : o * 16 + 224]
                )
            row = grad_w_lanes[kh * 112 : kh * 112 + 112]
            for e in range(112):
                row[e] += a[e]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def stride1_weight_grad(grad_w_lanes, g_plane, x_plane, acc, KH, KW, count, row_stride):
    """Stride 1, any kernel width: taps in groups of 3, then single taps; 8 blocks of 8 pixels, then
    into float64."""
    blocks = (count * row_stride + 7) // 8
    for kh in range(KH):
        kw = 0
        while kw < KW:
            tap = kh * KW + kw
            taps = 3 if KW - kw >= 3 else 1
            a = acc[: taps * 16]
            for q0 in range(0, blocks, 8):
                a[:] = 0
                for block in range(q0, min(blocks, q0 + 8)):
                    q = block * 8
                    o = (q + kh * row_stride + kw) * 16
                    if taps == 3:
                        weight_grad_eight_pixels_three_taps(
                            a, g_plane[q * 16 : q * 16 + 128], x_plane[o : o + 160]
                        )
                    else:
                        weight_grad_eight_pixels_one_tap(
                            a, g_plane[q * 16 : q * 16 + 128], x_plane[o : o + 128]
                        )
                row = grad_w_lanes[tap * 16 : (tap + taps) * 16]
                for e in range(taps * 16):
                    row[e] += a[e]
            kw += taps


@njit(cache=True, fastmath=CONTRACT, inline="always")
def strided_weight_grad(grad_w_lanes, g_plane, x_plane, acc, geometry, count, row_stride):
    """Other strides: one pixel and one tap at a time; into float64 every 8 output rows."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    for kh in range(KH):
        for kw in range(KW):
            tap = kh * KW + kw
            a = acc[tap * 16 : tap * 16 + 16]
            a[:] = 0
            for i in range(count):
                for j in range(Wo):
                    q = i * row_stride + j
                    o = (i * sh + kh) * row_stride + j * sw + kw
                    weight_grad_one_pixel_one_tap(
                        a, g_plane[q * 16 : q * 16 + 16], x_plane[o * 16 : o * 16 + 16]
                    )
                if i % 8 == 7 or i == count - 1:
                    row = grad_w_lanes[tap * 16 : tap * 16 + 16]
                    for lane in range(16):
                        row[lane] += a[lane]
                    a[:] = 0


@njit(parallel=True, cache=True, fastmath=CONTRACT)
def blocked_weight_grad_kernel(
    x_flat, x_strides, g_flat, g_strides, geometry, rows, grad_w_partial, grad_b_partial
):
    """Partial weight/bias gradients on 16-channel blocks. The (image, block of `rows` output rows) tasks
    are cut into grad_w_partial.shape[0] fixed chunks (from the shapes only); chunk k adds into its own
    float64 buffers grad_w_partial[k] (channel blocks, KH*KW, 16) and grad_b_partial[k]
    (channel blocks, 16)."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    channel_blocks = grad_w_partial.shape[1]
    chunks = grad_w_partial.shape[0]
    row_blocks = (Ho + rows - 1) // rows
    tasks = N * row_blocks
    stride1 = sh == 1 and sw == 1
    row_stride = max(W + pw, Wo)
    x_plane_size = ((rows - 1) * sh + KH + 1) * row_stride + KW + 16  # pixels per channel-block plane
    g_plane_size = (rows * row_stride + 7) // 8 * 8 + 8
    for k in prange(chunks):
        xb = np.zeros(channel_blocks * x_plane_size * 16, x_flat.dtype)
        gb = np.zeros(channel_blocks * g_plane_size * 16, x_flat.dtype)
        acc = np.zeros(KH * KW * 16, x_flat.dtype)  # short-run sums in the input dtype
        for t in range(k * tasks // chunks, (k + 1) * tasks // chunks):
            n = t // row_blocks
            first = (t - n * row_blocks) * rows
            count = min(rows, Ho - first)
            gather_input_rows(
                xb, x_flat, x_strides, geometry, (row_stride, x_plane_size, row_blocks), n, first, count
            )
            gather_grad_rows(
                gb, g_flat, g_strides, geometry, (row_stride, g_plane_size, rows), n, first, count
            )
            for cb in range(channel_blocks):
                g_plane = gb[cb * g_plane_size * 16 : (cb + 1) * g_plane_size * 16]
                x_plane = xb[cb * x_plane_size * 16 : (cb + 1) * x_plane_size * 16]
                grad_w_lanes = grad_w_partial[k, cb].reshape(KH * KW * 16)
                bias_grad_block(grad_b_partial[k, cb], g_plane, acc, (count * row_stride + 7) // 8 * 8)
                if stride1 and KW == 7:
                    seven_wide_weight_grad(grad_w_lanes, g_plane, x_plane, acc, KH, count, row_stride, Wo)
                elif stride1:
                    stride1_weight_grad(grad_w_lanes, g_plane, x_plane, acc, KH, KW, count, row_stride)
                else:
                    strided_weight_grad(grad_w_lanes, g_plane, x_plane, acc, geometry, count, row_stride)


def blocked_grad_x(g_flat, g_strides, weight, geometry, grad_x_flat, x_strides):
    """grad_x (flat, strides x_strides) of a depthwise conv with weight (KH, KW, C)."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    if sh == 1 and sw == 1 and ph <= KH - 1 and pw <= KW - 1:
        # grad_x = correlation of g padded by (K-1-p) with the flipped kernel
        full = Geometry(N, C, Ho, Wo, KH, KW, 1, 1, KH - 1 - ph, KW - 1 - pw, H, W)
        flipped = np.ascontiguousarray(weight[::-1, ::-1, :])
        blocked_forward(g_flat, g_strides, flipped, None, full, grad_x_flat, x_strides)
    else:
        weight_blocks = channel_block_weights(weight, grad_x_flat.dtype)
        blocked_scatter_kernel(g_flat, g_strides, weight_blocks, geometry, grad_x_flat, x_strides)


def blocked_weight_grads(x_flat, x_strides, g_flat, g_strides, geometry, dtype, needs_bias_grad):
    """Returns grad_w (KH, KW, C) and grad_b (C,) or None, in dtype."""
    N, C, KH, KW, Ho = geometry.N, geometry.C, geometry.KH, geometry.KW, geometry.Ho
    channel_blocks = (C + LANES - 1) // LANES
    rows = rows_per_task(N, Ho)
    chunks = min(N * (-(-Ho // rows)), 16)  # from the shapes only: deterministic sums
    grad_w_partial = np.zeros((chunks, channel_blocks, KH * KW, LANES), np.float64)
    grad_b_partial = np.zeros((chunks, channel_blocks, LANES), np.float64)
    blocked_weight_grad_kernel(
        x_flat, x_strides, g_flat, g_strides, geometry, rows, grad_w_partial, grad_b_partial
    )
    grad_w = grad_w_partial.sum(axis=0)  # (channel blocks, KH*KW, 16), fixed order
    grad_w = grad_w.transpose(1, 0, 2).reshape(KH * KW, channel_blocks * LANES)[:, :C]
    grad_w = grad_w.reshape(KH, KW, C).astype(dtype)
    if not needs_bias_grad:
        return grad_w, None
    return grad_w, grad_b_partial.sum(axis=0).reshape(channel_blocks * LANES)[:C].astype(dtype)


def depthwise_conv2d_nhwc_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """Returns (grad_x (N, H, W, C), grad_weight (KH, KW, C), grad_bias (C,) or None)."""
    g, x, weight, grad_out, grad_x = nhwc_backward_arguments(x, weight, grad_out, stride, padding)
    dtype = grad_x.dtype
    if g.N * g.C == 0:
        return (grad_x, *zero_weight_grads(weight.shape, g.C, dtype, needs_bias_grad))
    x_strides = nhwc_element_strides(g.N, g.H, g.W, g.C)
    g_strides = nhwc_element_strides(g.N, g.Ho, g.Wo, g.C)
    x_flat, g_flat = x.reshape(-1), grad_out.reshape(-1)
    blocked_grad_x(g_flat, g_strides, weight, g, grad_x.reshape(-1), x_strides)
    grad_w, grad_b = blocked_weight_grads(x_flat, x_strides, g_flat, g_strides, g, dtype, needs_bias_grad)
    return grad_x, grad_w, grad_b
