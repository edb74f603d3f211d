"""Depthwise conv, step 4 (forward): 16-channel blocks, the kernel in use for NHWC inputs.

Step 3's task (image n, block of output rows) and its wide rows stay; what changes is the layout of the
buffer. A task gathers its input rows for all channels, but into one plane per block of 16 channels,
laid out [pixel][16 channels] (lanes past C in the last block hold zeros or junk that is never written
out). The vector lanes are then 16 channels and the inner loops of step4_lane_loops work on 8 output
pixels at a time with compile-time offsets; a 7-wide kernel row is 8 pixels x 7 taps per step. The
accumulators of 16 blocks of 8 pixels stay in L1 across all the kernel rows. Other kernel widths use
3-tap and 1-tap groups, other strides one pixel and one tap at a time.

Arrays are passed flat with the element strides (n, c, row, col) of their layout, so the same kernel also
serves NCHW inputs with tiny planes (see nchw_planes), and the grad_x of the backward.
"""

import numpy as np
from numba import njit, prange

from .geometry import CONTRACT, nhwc_forward_arguments, rows_per_task
from .step4_lane_loops import (
    eight_pixel_block_start,
    eight_pixels_one_tap,
    eight_pixels_seven_taps,
    eight_pixels_seven_taps_from_bias,
    eight_pixels_three_taps,
    gather_lanes,
    one_pixel_one_tap,
    scatter_lanes,
)

LANES = 16  # channels per block


def nhwc_element_strides(N, H, W, C):
    """Element strides (n, c, row, col) of a contiguous (N, H, W, C) array."""
    return (H * W * C, 1, W * C, C)


def nchw_element_strides(N, C, H, W):
    """Element strides (n, c, row, col) of a contiguous (N, C, H, W) array."""
    return (C * H * W, H * W, W, 1)


def channel_block_weights(weight, dtype):
    """(KH, KW, C) -> (channel blocks, KH*KW, 16), the lanes past C zero."""
    KH, KW, C = weight.shape
    blocks = (C + LANES - 1) // LANES
    padded = np.zeros((KH * KW, blocks * LANES), dtype)
    padded[:, :C] = weight.reshape(KH * KW, C)
    return np.ascontiguousarray(padded.reshape(KH * KW, blocks, LANES).transpose(1, 0, 2))


@njit(cache=True, fastmath=CONTRACT, inline="always")
def gather_input_rows(buf, x_flat, x_strides, geometry, buffer_shape, n, first, count):
    """The padded input rows that output rows first .. first + count - 1 of image n need, into one
    [pixel][16] plane per channel block (zero rows above/below the image)."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    row_stride, plane, row_blocks = buffer_shape
    channel_blocks = (C + 15) // 16
    for rr in range((count - 1) * sh + KH):
        r = first * sh - ph + rr
        if r < 0 or r >= H:
            if row_blocks > 1:  # (whole-image tasks: padding rows are never written)
                for cb in range(channel_blocks):
                    d0 = (cb * plane + rr * row_stride + pw) * 16
                    buf[d0 : d0 + W * 16] = 0
            continue
        x_row = n * x_strides[0] + r * x_strides[2]
        for col in range(W):
            d = (rr * row_stride + pw + col) * 16
            for cb in range(channel_blocks):
                gather_lanes(
                    buf,
                    cb * plane * 16 + d,
                    x_flat,
                    x_row + cb * 16 * x_strides[1] + col * x_strides[3],
                    x_strides[1],
                    min(16, C - cb * 16),
                )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def seven_wide_rows(acc, source, weights, bias_lanes, KH, count, row_stride, Wo):
    """Stride 1, 7-wide kernel, one channel block: blocks of 8 output pixels, row-aligned when that
    saves >= 10% junk pixels, else over the flat wide range. Chunks of 16 blocks, all kernel rows per
    chunk, so the chunk's accumulators stay in L1 across the KH passes."""
    blocks_per_row = (Wo + 7) // 8
    row_aligned = 10 * blocks_per_row * 8 <= 9 * row_stride
    blocks = count * blocks_per_row if row_aligned else (count * row_stride + 7) // 8
    for chunk in range(0, blocks, 16):
        chunk_end = min(blocks, chunk + 16)
        for block in range(chunk, chunk_end):  # the first kernel row starts from the bias
            q = eight_pixel_block_start(block, row_aligned, blocks_per_row, row_stride)
            eight_pixels_seven_taps_from_bias(
                acc[q * 16 : q * 16 + 128], source[q * 16 : q * 16 + 224], weights, 0, bias_lanes
            )
        for kh in range(1, KH):
            for block in range(chunk, chunk_end):
                q = eight_pixel_block_start(block, row_aligned, blocks_per_row, row_stride)
                o = q + kh * row_stride
                eight_pixels_seven_taps(
                    acc[q * 16 : q * 16 + 128], source[o * 16 : o * 16 + 224], weights, kh * 7
                )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def fill_bias(acc, bias_lanes, pixels):
    for q in range(pixels):
        a = acc[q * 16 : q * 16 + 16]
        for lane in range(16):
            a[lane] = bias_lanes[lane]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def stride1_rows(acc, source, weights, KH, KW, count, row_stride):
    """Stride 1, any kernel width, one channel block: blocks of 8 wide pixels; taps in groups of 3,
    then single taps."""
    blocks = (count * row_stride + 7) // 8
    for chunk in range(0, blocks, 16):
        for kh in range(KH):
            kw = 0
            while kw < KW:
                tap = kh * KW + kw
                if KW - kw >= 3:
                    for block in range(chunk, min(blocks, chunk + 16)):
                        q = block * 8
                        o = (q + kh * row_stride + kw) * 16
                        eight_pixels_three_taps(acc[q * 16 : q * 16 + 128], source[o : o + 160], weights, tap)
                    kw += 3
                else:
                    for block in range(chunk, min(blocks, chunk + 16)):
                        q = block * 8
                        o = (q + kh * row_stride + kw) * 16
                        eight_pixels_one_tap(acc[q * 16 : q * 16 + 128], source[o : o + 128], weights, tap)
                    kw += 1


@njit(cache=True, fastmath=CONTRACT, inline="always")
def strided_rows(acc, source, weights, geometry, count, row_stride):
    """Other strides, one channel block: one output pixel and one tap at a time."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    for i in range(count):
        for j in range(Wo):
            q = i * Wo + j
            for kh in range(KH):
                for kw in range(KW):
                    o = (i * sh + kh) * row_stride + j * sw + kw
                    one_pixel_one_tap(
                        acc[q * 16 : q * 16 + 16], source[o * 16 : o * 16 + 16], weights, kh * KW + kw
                    )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def scatter_output_rows(out_flat, out_strides, acc, geometry, acc_shape, n, first, count):
    """Output rows first .. first + count - 1 of image n from the accumulator planes, all channels."""
    C, Wo = geometry.C, geometry.Wo
    acc_row_stride, acc_plane = acc_shape
    for i in range(count):
        out_row = n * out_strides[0] + (first + i) * out_strides[2]
        for j in range(Wo):
            s0 = (i * acc_row_stride + j) * 16
            for cb in range((C + 15) // 16):
                scatter_lanes(
                    out_flat,
                    out_row + j * out_strides[3] + cb * 16 * out_strides[1],
                    out_strides[1],
                    acc,
                    cb * acc_plane * 16 + s0,
                    min(16, C - cb * 16),
                )


@njit(parallel=True, cache=True, fastmath=CONTRACT)
def blocked_forward_kernel(
    x_flat, x_strides, weight_blocks, bias_blocks, geometry, rows, out_flat, out_strides
):
    """Forward on 16-channel blocks: element (n, c, r, col) of x is
    x_flat[n*x_strides[0] + c*x_strides[1] + r*x_strides[2] + col*x_strides[3]]; likewise out.

    A task is (image n, block of `rows` output rows), all channel blocks; the tasks are cut into at most
    16 chunks. buf holds, per channel block, the padded input rows the task needs ([pixel][16], row
    stride row_stride); acc the block's outputs ([pixel][16], row stride acc_row_stride)."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    channel_blocks = weight_blocks.shape[0]
    row_blocks = (Ho + rows - 1) // rows
    tasks = N * row_blocks
    stride1 = sh == 1 and sw == 1
    row_stride = max(W + pw, Wo)
    plane = ((rows - 1) * sh + KH + 1) * row_stride + KW + 16  # pixels per channel-block plane of buf
    acc_row_stride = row_stride if stride1 else Wo
    acc_plane = (rows * acc_row_stride + 7) // 8 * 8  # accumulator pixels per channel block
    chunks = min(tasks, 16)
    for k in prange(chunks):
        buf = np.zeros(channel_blocks * plane * 16, x_flat.dtype)  # gap columns stay zero
        acc = np.empty(channel_blocks * acc_plane * 16, x_flat.dtype)
        for t in range(k * tasks // chunks, (k + 1) * tasks // chunks):
            n = t // row_blocks
            first = (t - n * row_blocks) * rows
            count = min(rows, Ho - first)  # output rows in this task
            gather_input_rows(
                buf, x_flat, x_strides, geometry, (row_stride, plane, row_blocks), n, first, count
            )
            for cb in range(channel_blocks):
                weights = weight_blocks[cb]
                source = buf[cb * plane * 16 : (cb + 1) * plane * 16]
                block_acc = acc[cb * acc_plane * 16 : (cb + 1) * acc_plane * 16]
                if stride1 and KW == 7:
                    seven_wide_rows(block_acc, source, weights, bias_blocks[cb], KH, count, row_stride, Wo)
                else:
                    fill_bias(block_acc, bias_blocks[cb], acc_plane)
                    if stride1:
                        stride1_rows(block_acc, source, weights, KH, KW, count, row_stride)
                    else:
                        strided_rows(block_acc, source, weights, geometry, count, row_stride)
            scatter_output_rows(
                out_flat, out_strides, acc, geometry, (acc_row_stride, acc_plane), n, first, count
            )


def blocked_forward(x_flat, x_strides, weight, bias, geometry, out_flat, out_strides):
    """out (flat, strides out_strides) = depthwise conv of x (flat, strides x_strides) with weight
    (KH, KW, C) and bias (C,) or None."""
    dtype = out_flat.dtype
    weight_blocks = channel_block_weights(weight, dtype)
    bias_blocks = np.zeros(weight_blocks.shape[0] * LANES, dtype)
    if bias is not None:
        bias_blocks[: geometry.C] = bias
    rows = rows_per_task(geometry.N, geometry.Ho)
    bias_blocks = bias_blocks.reshape(-1, LANES)
    blocked_forward_kernel(
        x_flat, x_strides, weight_blocks, bias_blocks, geometry, rows, out_flat, out_strides
    )


def depthwise_conv2d_nhwc_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, H, W, C), weight (KH, KW, C), bias (C,) or None -> out (N, Ho, Wo, C)."""
    g, x, weight, bias, out = nhwc_forward_arguments(x, weight, bias, stride, padding)
    if out.size == 0:
        return out
    x_strides = nhwc_element_strides(g.N, g.H, g.W, g.C)
    out_strides = nhwc_element_strides(g.N, g.Ho, g.Wo, g.C)
    blocked_forward(x.reshape(-1), x_strides, weight, bias, g, out.reshape(-1), out_strides)
    return out
