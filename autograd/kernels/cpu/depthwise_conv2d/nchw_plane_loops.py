"""Depthwise conv, the NCHW layout (inner loops): one plane at a time, the taps of a kernel row fused.

These loops work on one (n, c) plane copied into a flat "wide row" buffer (see nchw_planes), with scalar
weights. The taps of one or two kernel rows (up to 14) are fused into one unit-stride loop over the wide
pixels, so LLVM emits long FMA-vectorised loops with one accumulator load/store per group of taps.
The weight-gradient loops compute 7 dot products at once ('reassoc' lets LLVM keep vector partial
sums); each plane's sums are then added to float64 totals.
"""

from numba import njit

from .geometry import CONTRACT, CONTRACT_REASSOC


@njit(cache=True, fastmath=CONTRACT, inline="always")
def copy_run(dst, dst_start, src, src_start, count):
    """dst[dst_start + p] = src[src_start + p] for p < count."""
    dst_run = dst[dst_start : dst_start + count]
    src_row = src[src_start : src_start + count]
    for p in range(count):
        dst_run[p] = src_row[p]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def two_rows_of_seven_taps_from_bias(acc, src, offset, row_stride, length, weight_row, next_weight_row, bias):
    """As two_rows_of_seven_taps but starting from bias instead of the accumulator's content."""
    a = acc[:length]
    src_row = src[offset : offset + length + 6]
    src_next_row = src[offset + row_stride : offset + row_stride + length + 6]
    w0 = weight_row[0]
    w1 = weight_row[1]
    plane_weight = weight_row[2]
    w3 = weight_row[3]
    w4 = weight_row[4]
    w5 = weight_row[5]
    w6 = weight_row[6]
    v0 = next_weight_row[0]
    v1 = next_weight_row[1]
    v2 = next_weight_row[2]
    v3 = next_weight_row[3]
    v4 = next_weight_row[4]
    v5 = next_weight_row[5]
    v6 = next_weight_row[6]
    for p in range(length):
        a[p] = (
            (bias + w0 * src_row[p] + w1 * src_row[p + 1] + plane_weight * src_row[p + 2])
            + (w3 * src_row[p + 3] + w4 * src_row[p + 4] + w5 * src_row[p + 5] + w6 * src_row[p + 6])
        ) + (
            (
                v0 * src_next_row[p]
                + v1 * src_next_row[p + 1]
                + v2 * src_next_row[p + 2]
                + v3 * src_next_row[p + 3]
            )
            + (v4 * src_next_row[p + 4] + v5 * src_next_row[p + 5] + v6 * src_next_row[p + 6])
        )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def two_rows_of_seven_taps(acc, src, offset, row_stride, length, weight_row, next_weight_row):
    """Two kernel rows of 7 taps at once: rows at offsets offset and offset + row_stride."""
    a = acc[:length]
    src_row = src[offset : offset + length + 6]
    src_next_row = src[offset + row_stride : offset + row_stride + length + 6]
    w0 = weight_row[0]
    w1 = weight_row[1]
    plane_weight = weight_row[2]
    w3 = weight_row[3]
    w4 = weight_row[4]
    w5 = weight_row[5]
    w6 = weight_row[6]
    v0 = next_weight_row[0]
    v1 = next_weight_row[1]
    v2 = next_weight_row[2]
    v3 = next_weight_row[3]
    v4 = next_weight_row[4]
    v5 = next_weight_row[5]
    v6 = next_weight_row[6]
    for p in range(length):
        a[p] = (
            (a[p] + w0 * src_row[p] + w1 * src_row[p + 1] + plane_weight * src_row[p + 2])
            + (w3 * src_row[p + 3] + w4 * src_row[p + 4] + w5 * src_row[p + 5] + w6 * src_row[p + 6])
        ) + (
            (
                v0 * src_next_row[p]
                + v1 * src_next_row[p + 1]
                + v2 * src_next_row[p + 2]
                + v3 * src_next_row[p + 3]
            )
            + (v4 * src_next_row[p + 4] + v5 * src_next_row[p + 5] + v6 * src_next_row[p + 6])
        )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def seven_taps(acc, src, offset, length, weight_row, first_tap):
    """One kernel row of 7 taps: acc[p] += sum_{t<7} weight_row[first_tap + t] * src[offset + p + t]."""
    a = acc[:length]
    src_row = src[offset : offset + length + 6]
    w0 = weight_row[first_tap]
    w1 = weight_row[first_tap + 1]
    plane_weight = weight_row[first_tap + 2]
    w3 = weight_row[first_tap + 3]
    w4 = weight_row[first_tap + 4]
    w5 = weight_row[first_tap + 5]
    w6 = weight_row[first_tap + 6]
    for p in range(length):
        a[p] = (a[p] + w0 * src_row[p] + w1 * src_row[p + 1] + plane_weight * src_row[p + 2]) + (
            w3 * src_row[p + 3] + w4 * src_row[p + 4] + w5 * src_row[p + 5] + w6 * src_row[p + 6]
        )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def four_taps(acc, src, offset, length, weight_row, first_tap):
    """4 taps of a kernel row (as seven_taps)."""
    a = acc[:length]
    src_row = src[offset : offset + length + 3]
    w0 = weight_row[first_tap]
    w1 = weight_row[first_tap + 1]
    plane_weight = weight_row[first_tap + 2]
    w3 = weight_row[first_tap + 3]
    for p in range(length):
        a[p] = (a[p] + w0 * src_row[p] + w1 * src_row[p + 1]) + (
            plane_weight * src_row[p + 2] + w3 * src_row[p + 3]
        )


@njit(cache=True, fastmath=CONTRACT, inline="always")
def three_taps(acc, src, offset, length, weight_row, first_tap):
    """3 taps of a kernel row (as seven_taps)."""
    a = acc[:length]
    src_row = src[offset : offset + length + 2]
    w0 = weight_row[first_tap]
    w1 = weight_row[first_tap + 1]
    plane_weight = weight_row[first_tap + 2]
    for p in range(length):
        a[p] = (a[p] + w0 * src_row[p]) + (w1 * src_row[p + 1] + plane_weight * src_row[p + 2])


@njit(cache=True, fastmath=CONTRACT, inline="always")
def two_taps(acc, src, offset, length, weight_row, first_tap):
    """2 taps of a kernel row (as seven_taps)."""
    a = acc[:length]
    src_row = src[offset : offset + length + 1]
    w0 = weight_row[first_tap]
    w1 = weight_row[first_tap + 1]
    for p in range(length):
        a[p] = a[p] + w0 * src_row[p] + w1 * src_row[p + 1]


@njit(cache=True, fastmath=CONTRACT, inline="always")
def one_tap(acc, src, offset, length, weight_row, first_tap):
    """1 tap (as seven_taps)."""
    a = acc[:length]
    src_row = src[offset : offset + length]
    w0 = weight_row[first_tap]
    for p in range(length):
        a[p] = a[p] + w0 * src_row[p]


@njit(cache=True, fastmath=CONTRACT)
def wide_correlation(acc, src, plane_weight, row_stride, length, bias):
    """acc[p] = bias + sum_{kh, kw} plane_weight[kh, kw] * src[p + kh*row_stride + kw] for p < length
    (stride-1 'wide' correlation).

    The taps of a kernel row are applied in fused groups of 7, 4, 3, 2, 1 (two rows at once for 7-wide
    kernels), so the accumulator is loaded and stored once per group instead of once per tap."""
    KH, KW = plane_weight.shape
    kh = 0
    if KW == 7 and KH >= 2:
        two_rows_of_seven_taps_from_bias(
            acc, src, 0, row_stride, length, plane_weight[0], plane_weight[1], bias
        )
        kh = 2
    else:
        acc[:length] = bias
    if KW == 7:
        while kh + 2 <= KH:
            two_rows_of_seven_taps(
                acc, src, kh * row_stride, row_stride, length, plane_weight[kh], plane_weight[kh + 1]
            )
            kh += 2
    while kh < KH:
        weight_row = plane_weight[kh]
        offset = kh * row_stride
        kw = 0
        while KW - kw >= 7:
            seven_taps(acc, src, offset + kw, length, weight_row, kw)
            kw += 7
        if KW - kw >= 4:
            four_taps(acc, src, offset + kw, length, weight_row, kw)
            kw += 4
        left = KW - kw
        if left == 3:
            three_taps(acc, src, offset + kw, length, weight_row, kw)
        elif left == 2:
            two_taps(acc, src, offset + kw, length, weight_row, kw)
        elif left == 1:
            one_tap(acc, src, offset + kw, length, weight_row, kw)
        kh += 1


@njit(cache=True, fastmath=CONTRACT)
def strided_correlation(acc, src, plane_weight, row_stride, sh, sw, Ho, Wo):
    """acc[i*Wo + j] += sum_{kh, kw} plane_weight[kh, kw] * src[(i*sh + kh)*row_stride + j*sw + kw]
    (any stride)."""
    KH, KW = plane_weight.shape
    for i in range(Ho):
        a = acc[i * Wo : (i + 1) * Wo]
        for kh in range(KH):
            for kw in range(KW):
                wv = plane_weight[kh, kw]
                src_row = src[(i * sh + kh) * row_stride + kw :]
                for j in range(Wo):
                    a[j] += wv * src_row[j * sw]


@njit(cache=True, fastmath=CONTRACT_REASSOC, inline="always")
def seven_dot_products(g, src, offset, length, zero):
    """The 7 dot products sum_p g[p] * src[offset + p + t], t < 7, started from zero (input dtype)."""
    src_row = src[offset : offset + length + 6]
    t0 = zero
    t1 = zero
    t2 = zero
    t3 = zero
    t4 = zero
    t5 = zero
    t6 = zero
    for p in range(length):
        gv = g[p]
        t0 += gv * src_row[p]
        t1 += gv * src_row[p + 1]
        t2 += gv * src_row[p + 2]
        t3 += gv * src_row[p + 3]
        t4 += gv * src_row[p + 4]
        t5 += gv * src_row[p + 5]
        t6 += gv * src_row[p + 6]
    return t0, t1, t2, t3, t4, t5, t6


@njit(cache=True, fastmath=CONTRACT_REASSOC, inline="always")
def four_dot_products(g, src, offset, length, zero):
    """As seven_dot_products, 4 taps."""
    src_row = src[offset : offset + length + 3]
    t0 = zero
    t1 = zero
    t2 = zero
    t3 = zero
    for p in range(length):
        gv = g[p]
        t0 += gv * src_row[p]
        t1 += gv * src_row[p + 1]
        t2 += gv * src_row[p + 2]
        t3 += gv * src_row[p + 3]
    return t0, t1, t2, t3


@njit(cache=True, fastmath=CONTRACT_REASSOC, inline="always")
def one_dot_product(g, src, offset, length, zero):
    """As seven_dot_products, 1 tap."""
    src_row = src[offset : offset + length]
    t0 = zero
    for p in range(length):
        t0 += g[p] * src_row[p]
    return t0


@njit(cache=True, fastmath=CONTRACT_REASSOC)
def wide_weight_grad(grad_w, g, src, row_stride, length, zero):
    """grad_w[kh, kw] += sum_{p < length} g[p] * src[p + kh*row_stride + kw]   (grad_w float64, (KH, KW))."""
    KH, KW = grad_w.shape
    for kh in range(KH):
        offset = kh * row_stride
        kw = 0
        while KW - kw >= 7:
            t0, t1, t2, t3, t4, t5, t6 = seven_dot_products(g, src, offset + kw, length, zero)
            grad_w[kh, kw] += t0
            grad_w[kh, kw + 1] += t1
            grad_w[kh, kw + 2] += t2
            grad_w[kh, kw + 3] += t3
            grad_w[kh, kw + 4] += t4
            grad_w[kh, kw + 5] += t5
            grad_w[kh, kw + 6] += t6
            kw += 7
        while KW - kw >= 4:
            t0, t1, t2, t3 = four_dot_products(g, src, offset + kw, length, zero)
            grad_w[kh, kw] += t0
            grad_w[kh, kw + 1] += t1
            grad_w[kh, kw + 2] += t2
            grad_w[kh, kw + 3] += t3
            kw += 4
        while kw < KW:
            grad_w[kh, kw] += one_dot_product(g, src, offset + kw, length, zero)
            kw += 1


@njit(cache=True, fastmath=CONTRACT_REASSOC)
def sum_float64(a, count):
    """sum_{p < count} a[p], in float64."""
    src_row = 0.0
    for p in range(count):
        src_row += a[p]
    return src_row
