"""Depthwise conv, step 4 (inner loops): 16 channels in the vector lanes, blocks of 8 output pixels.

Buffers are laid out [pixel][16 channels], so one pixel of a 16-channel block is one vector and every
offset below is a compile-time constant: pixel m of a block is at m*16, lane (channel) `lane` at
m*16 + lane. LLVM turns each `for lane in range(16)` loop into whole-vector loads and fused
multiply-adds. For a 7-wide kernel row, 8 neighbouring output pixels share 14 input pixels, which are
loaded once for the 56 products (register blocking). The weight-gradient loops are the same blocks
turned around: 8 pixels of grad_out times 7 shifted input pixels, added into 7 tap accumulators.
"""

import numpy as np
from numba import njit

from .geometry import CONTRACT

as_unsigned = np.uint64  # cast for array indices known to be >= 0 (see gather_lanes)


@njit(cache=True, fastmath=CONTRACT, inline="always")
def gather_lanes(dst, dst_start, src, src_start, step, count):
    """dst[dst_start + lane] = src[src_start + lane*step] for lane < count (one vector copy when step == 1
    and count == 16).

    Indices are cast to unsigned (they are never negative): this drops Numba's negative-index
    wraparound select, which otherwise stops LLVM from seeing consecutive addresses."""
    if step == 1 and count == 16:
        for lane in range(16):
            dst[as_unsigned(dst_start + lane)] = src[as_unsigned(src_start + lane)]
    else:
        for lane in range(count):
            dst[as_unsigned(dst_start + lane)] = src[as_unsigned(src_start + lane * step)]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def scatter_lanes(dst, dst_start, step, src, src_start, count):
    """dst[dst_start + lane*step] = src[src_start + lane] for lane < count."""
    if step == 1 and count == 16:
        for lane in range(16):
            dst[as_unsigned(dst_start + lane)] = src[as_unsigned(src_start + lane)]
    else:
        for lane in range(count):
            dst[as_unsigned(dst_start + lane * step)] = src[as_unsigned(src_start + lane)]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def eight_pixel_block_start(block, row_aligned, blocks_per_row, row_stride):
    """First wide pixel of an 8-pixel block: blocks_per_row blocks per output row if row-aligned, else
    blocks over the flat wide range."""
    if row_aligned:
        i = block // blocks_per_row
        return i * row_stride + (block - i * blocks_per_row) * 8
    return block * 8


@njit(cache=True, fastmath=CONTRACT, inline="always")
def eight_pixels_seven_taps_from_bias(acc, source, weights, first_tap, bias_lanes):
    """As eight_pixels_seven_taps but starting from the bias:
    acc[m][lane] = bias_lanes[lane] + sum_t weights[first_tap + t, lane] * source[m + t][lane]."""
    for lane in range(16):
        x0 = source[0 + lane]
        x1 = source[16 + lane]
        x2 = source[32 + lane]
        x3 = source[48 + lane]
        x4 = source[64 + lane]
        x5 = source[80 + lane]
        x6 = source[96 + lane]
        x7 = source[112 + lane]
        x8 = source[128 + lane]
        x9 = source[144 + lane]
        x10 = source[160 + lane]
        x11 = source[176 + lane]
        x12 = source[192 + lane]
        x13 = source[208 + lane]
        v0 = weights[first_tap, lane]
        v1 = weights[first_tap + 1, lane]
        v2 = weights[first_tap + 2, lane]
        v3 = weights[first_tap + 3, lane]
        v4 = weights[first_tap + 4, lane]
        v5 = weights[first_tap + 5, lane]
        v6 = weights[first_tap + 6, lane]
        bias = bias_lanes[lane]
        acc[0 + lane] = bias + v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4 + v5 * x5 + v6 * x6
        acc[16 + lane] = bias + v0 * x1 + v1 * x2 + v2 * x3 + v3 * x4 + v4 * x5 + v5 * x6 + v6 * x7
        acc[32 + lane] = bias + v0 * x2 + v1 * x3 + v2 * x4 + v3 * x5 + v4 * x6 + v5 * x7 + v6 * x8
        acc[48 + lane] = bias + v0 * x3 + v1 * x4 + v2 * x5 + v3 * x6 + v4 * x7 + v5 * x8 + v6 * x9
        acc[64 + lane] = bias + v0 * x4 + v1 * x5 + v2 * x6 + v3 * x7 + v4 * x8 + v5 * x9 + v6 * x10
        acc[80 + lane] = bias + v0 * x5 + v1 * x6 + v2 * x7 + v3 * x8 + v4 * x9 + v5 * x10 + v6 * x11
        acc[96 + lane] = bias + v0 * x6 + v1 * x7 + v2 * x8 + v3 * x9 + v4 * x10 + v5 * x11 + v6 * x12
        acc[112 + lane] = bias + v0 * x7 + v1 * x8 + v2 * x9 + v3 * x10 + v4 * x11 + v5 * x12 + v6 * x13


@njit(cache=True, fastmath=CONTRACT, inline="always")
def eight_pixels_seven_taps(acc, source, weights, first_tap):
    """8 consecutive output pixels x 7 taps of one kernel row:
    acc[m][lane] += sum_{t<7} weights[first_tap + t, lane] * source[m + t][lane]. 14 input and 7 weight
    vectors are loaded for 56 fused multiply-adds."""
    for lane in range(16):
        x0 = source[0 + lane]
        x1 = source[16 + lane]
        x2 = source[32 + lane]
        x3 = source[48 + lane]
        x4 = source[64 + lane]
        x5 = source[80 + lane]
        x6 = source[96 + lane]
        x7 = source[112 + lane]
        x8 = source[128 + lane]
        x9 = source[144 + lane]
        x10 = source[160 + lane]
        x11 = source[176 + lane]
        x12 = source[192 + lane]
        x13 = source[208 + lane]
        v0 = weights[first_tap, lane]
        v1 = weights[first_tap + 1, lane]
        v2 = weights[first_tap + 2, lane]
        v3 = weights[first_tap + 3, lane]
        v4 = weights[first_tap + 4, lane]
        v5 = weights[first_tap + 5, lane]
        v6 = weights[first_tap + 6, lane]
        acc[0 + lane] = acc[0 + lane] + v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4 + v5 * x5 + v6 * x6
        acc[16 + lane] = acc[16 + lane] + v0 * x1 + v1 * x2 + v2 * x3 + v3 * x4 + v4 * x5 + v5 * x6 + v6 * x7
        acc[32 + lane] = acc[32 + lane] + v0 * x2 + v1 * x3 + v2 * x4 + v3 * x5 + v4 * x6 + v5 * x7 + v6 * x8
        acc[48 + lane] = acc[48 + lane] + v0 * x3 + v1 * x4 + v2 * x5 + v3 * x6 + v4 * x7 + v5 * x8 + v6 * x9
        acc[64 + lane] = acc[64 + lane] + v0 * x4 + v1 * x5 + v2 * x6 + v3 * x7 + v4 * x8 + v5 * x9 + v6 * x10
        acc[80 + lane] = (
            acc[80 + lane] + v0 * x5 + v1 * x6 + v2 * x7 + v3 * x8 + v4 * x9 + v5 * x10 + v6 * x11
        )
        acc[96 + lane] = (
            acc[96 + lane] + v0 * x6 + v1 * x7 + v2 * x8 + v3 * x9 + v4 * x10 + v5 * x11 + v6 * x12
        )
        acc[112 + lane] = (
            acc[112 + lane] + v0 * x7 + v1 * x8 + v2 * x9 + v3 * x10 + v4 * x11 + v5 * x12 + v6 * x13
        )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def eight_pixels_three_taps(acc, source, weights, first_tap):
    """8 output pixels x 3 taps (other kernel widths):
    acc[m][lane] += sum_{t<3} weights[first_tap + t, lane] * source[m + t][lane]."""
    for lane in range(16):
        x0 = source[0 + lane]
        x1 = source[16 + lane]
        x2 = source[32 + lane]
        x3 = source[48 + lane]
        x4 = source[64 + lane]
        x5 = source[80 + lane]
        x6 = source[96 + lane]
        x7 = source[112 + lane]
        x8 = source[128 + lane]
        x9 = source[144 + lane]
        v0 = weights[first_tap, lane]
        v1 = weights[first_tap + 1, lane]
        v2 = weights[first_tap + 2, lane]
        acc[0 + lane] = acc[0 + lane] + v0 * x0 + v1 * x1 + v2 * x2
        acc[16 + lane] = acc[16 + lane] + v0 * x1 + v1 * x2 + v2 * x3
        acc[32 + lane] = acc[32 + lane] + v0 * x2 + v1 * x3 + v2 * x4
        acc[48 + lane] = acc[48 + lane] + v0 * x3 + v1 * x4 + v2 * x5
        acc[64 + lane] = acc[64 + lane] + v0 * x4 + v1 * x5 + v2 * x6
        acc[80 + lane] = acc[80 + lane] + v0 * x5 + v1 * x6 + v2 * x7
        acc[96 + lane] = acc[96 + lane] + v0 * x6 + v1 * x7 + v2 * x8
        acc[112 + lane] = acc[112 + lane] + v0 * x7 + v1 * x8 + v2 * x9


@njit(cache=True, fastmath=CONTRACT, inline="always")
def eight_pixels_one_tap(acc, source, weights, first_tap):
    """8 output pixels x 1 tap: acc[m][lane] += weights[first_tap, lane] * source[m][lane]."""
    for lane in range(16):
        v0 = weights[first_tap, lane]
        acc[0 + lane] += v0 * source[0 + lane]
        acc[16 + lane] += v0 * source[16 + lane]
        acc[32 + lane] += v0 * source[32 + lane]
        acc[48 + lane] += v0 * source[48 + lane]
        acc[64 + lane] += v0 * source[64 + lane]
        acc[80 + lane] += v0 * source[80 + lane]
        acc[96 + lane] += v0 * source[96 + lane]
        acc[112 + lane] += v0 * source[112 + lane]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def one_pixel_one_tap(acc, source, weights, first_tap):
    """One output pixel x 1 tap (strides other than 1)."""
    for lane in range(16):
        acc[lane] += weights[first_tap, lane] * source[lane]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def add_one_pixel(acc, g):
    """acc[lane] += g[lane] (the bias gradient)."""
    for lane in range(16):
        acc[lane] += g[lane]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def weight_grad_one_pixel_one_tap(acc, g, source):
    """acc[lane] += g[lane] * source[lane] (strides other than 1)."""
    for lane in range(16):
        acc[lane] += g[lane] * source[lane]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def weight_grad_eight_pixels_seven_taps(acc, g, source):
    """Weight-gradient block, the 7 taps t of a kernel row:
    acc[t][lane] += sum_{m<8} g[m][lane] * source[m + t][lane]."""
    for lane in range(16):
        g0 = g[lane]
        g1 = g[16 + lane]
        g2 = g[32 + lane]
        g3 = g[48 + lane]
        g4 = g[64 + lane]
        g5 = g[80 + lane]
        g6 = g[96 + lane]
        g7 = g[112 + lane]
        x0 = source[lane]
        x1 = source[16 + lane]
        x2 = source[32 + lane]
        x3 = source[48 + lane]
        x4 = source[64 + lane]
        x5 = source[80 + lane]
        x6 = source[96 + lane]
        x7 = source[112 + lane]
        x8 = source[128 + lane]
        x9 = source[144 + lane]
        x10 = source[160 + lane]
        x11 = source[176 + lane]
        x12 = source[192 + lane]
        x13 = source[208 + lane]
        acc[0 + lane] = acc[0 + lane] + (
            (g0 * x0 + g1 * x1 + g2 * x2 + g3 * x3) + (g4 * x4 + g5 * x5 + g6 * x6 + g7 * x7)
        )
        acc[16 + lane] = acc[16 + lane] + (
            (g0 * x1 + g1 * x2 + g2 * x3 + g3 * x4) + (g4 * x5 + g5 * x6 + g6 * x7 + g7 * x8)
        )
        acc[32 + lane] = acc[32 + lane] + (
            (g0 * x2 + g1 * x3 + g2 * x4 + g3 * x5) + (g4 * x6 + g5 * x7 + g6 * x8 + g7 * x9)
        )
        acc[48 + lane] = acc[48 + lane] + (
            (g0 * x3 + g1 * x4 + g2 * x5 + g3 * x6) + (g4 * x7 + g5 * x8 + g6 * x9 + g7 * x10)
        )
        acc[64 + lane] = acc[64 + lane] + (
            (g0 * x4 + g1 * x5 + g2 * x6 + g3 * x7) + (g4 * x8 + g5 * x9 + g6 * x10 + g7 * x11)
        )
        acc[80 + lane] = acc[80 + lane] + (
            (g0 * x5 + g1 * x6 + g2 * x7 + g3 * x8) + (g4 * x9 + g5 * x10 + g6 * x11 + g7 * x12)
        )
        acc[96 + lane] = acc[96 + lane] + (
            (g0 * x6 + g1 * x7 + g2 * x8 + g3 * x9) + (g4 * x10 + g5 * x11 + g6 * x12 + g7 * x13)
        )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def weight_grad_eight_pixels_three_taps(acc, g, source):
    """Weight-gradient block, 3 taps: acc[t][lane] += sum_{m<8} g[m][lane] * source[m + t][lane]."""
    for lane in range(16):
        g0 = g[lane]
        g1 = g[16 + lane]
        g2 = g[32 + lane]
        g3 = g[48 + lane]
        g4 = g[64 + lane]
        g5 = g[80 + lane]
        g6 = g[96 + lane]
        g7 = g[112 + lane]
        x0 = source[0 + lane]
        x1 = source[16 + lane]
        x2 = source[32 + lane]
        x3 = source[48 + lane]
        x4 = source[64 + lane]
        x5 = source[80 + lane]
        x6 = source[96 + lane]
        x7 = source[112 + lane]
        x8 = source[128 + lane]
        x9 = source[144 + lane]
        acc[0 + lane] = acc[0 + lane] + (
            (g0 * x0 + g1 * x1 + g2 * x2 + g3 * x3) + (g4 * x4 + g5 * x5 + g6 * x6 + g7 * x7)
        )
        acc[16 + lane] = acc[16 + lane] + (
            (g0 * x1 + g1 * x2 + g2 * x3 + g3 * x4) + (g4 * x5 + g5 * x6 + g6 * x7 + g7 * x8)
        )
        acc[32 + lane] = acc[32 + lane] + (
            (g0 * x2 + g1 * x3 + g2 * x4 + g3 * x5) + (g4 * x6 + g5 * x7 + g6 * x8 + g7 * x9)
        )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def weight_grad_eight_pixels_one_tap(acc, g, source):
    """Weight-gradient block, 1 tap: acc[lane] += sum_{m<8} g[m][lane] * source[m][lane]."""
    for lane in range(16):
        acc[lane] = acc[lane] + (
            (
                g[lane] * source[lane]
                + g[16 + lane] * source[16 + lane]
                + g[32 + lane] * source[32 + lane]
                + g[48 + lane] * source[48 + lane]
            )
            + (
                g[64 + lane] * source[64 + lane]
                + g[80 + lane] * source[80 + lane]
                + g[96 + lane] * source[96 + lane]
                + g[112 + lane] * source[112 + lane]
            )
        )
