"""Depthwise 2-D convolution (groups == channels): fast Numba kernels and plain references (NumPy or
CuPy: they take the array module of their inputs).

Math (cross-correlation, as in PyTorch). One KH x KW filter per channel c, stride (sh, sw), zero padding
(ph, pw), output size Ho = (H + 2*ph - KH)//sh + 1, Wo = (W + 2*pw - KW)//sw + 1:

    out[n, c, i, j] = b[c] + sum_{kh, kw} w[c, kh, kw] * xpad[n, c, i*sh + kh, j*sw + kw]

where xpad is x with ph zero rows above/below and pw zero columns left/right. Backward, for g = dL/dout:

    grad_w[c, kh, kw] = sum_{n, i, j} g[n, c, i, j] * xpad[n, c, i*sh + kh, j*sw + kw]
    grad_b[c]         = sum_{n, i, j} g[n, c, i, j]
    grad_xpad[n, c, i*sh + kh, j*sw + kw] += w[c, kh, kw] * g[n, c, i, j]      (then crop the padding)

For stride 1 and ph <= KH-1, pw <= KW-1 the last line is itself a correlation ("full" convolution):
grad_x = corr(pad(g, KH-1-ph, KW-1-pw), flip(w)), so it reuses the forward kernel.

Layouts and shapes:
    NCHW (PyTorch):       x (N, C, H, W), weight (C, KH, KW), bias (C,), out (N, C, Ho, Wo)
    NHWC (channels-last): x (N, H, W, C), weight (KH, KW, C), bias (C,), out (N, Ho, Wo, C)
float32 and float64 both work (Numba compiles one specialisation per dtype). Any kernel size, padding >= 0
(per axis) and stride >= 1 are accepted; the tuned paths are stride 1 (7-wide kernels fastest).

Shared-padding "wide row" trick. An image is copied into a zeroed buffer with row stride Ws = W + pw:
the pw zero columns between two rows serve as right padding of one row and left padding of the next.
For stride 1, output pixel (i, j) then reads buffer pixel (i + kh)*Ws + j + kw: every tap is a constant
shift of ONE long flat loop over q = i*Ws + j (columns j >= Wo are junk, dropped on copy-out).

NCHW planes (H*W > 64): one (n, c) plane at a time, scalar weights; the taps of one or two kernel rows
(up to 14) are fused into one unit-stride loop, so LLVM emits long FMA-vectorised loops with one
accumulator load/store per group. Weight gradients: per plane, 7 dot products at once ('reassoc' lets
LLVM keep vector partial sums), added to float64.

16-channel blocks (NHWC always; NCHW when planes are tiny, H*W <= 64): a task (image, block of output
rows) gathers all channels of its input rows into per-block buffers laid out [pixel][16 channels], so
the vector lanes are 16 channels and every offset in the inner loops is a compile-time constant. The
7-wide kernel loop computes 8 output pixels x 7 taps per step (14 input + 7 weight vector loads for 56
FMAs). Weight-gradient float32 sums run over at most 64 pixels before being flushed to float64.

Stride 2 and paddings > K-1 use simpler strided / scatter loops (correct, not tuned).

Parallelisation (numba prange): NCHW over chunks of (n, c) planes; channel blocks over (n, row block)
units. Weight/bias gradients are reductions: each parallel chunk owns a float64 partial buffer and the
partials are summed afterwards in a fixed order. Chunk counts depend only on the shapes, never on the
number of threads, so results are bit-for-bit deterministic whatever the thread count.
fastmath: only 'contract' (fused multiply-add: removes a rounding) and, in the NCHW gradient dot
products, 'reassoc' (several vector partial sums: a different, not worse, summation order, fixed for
a given build). No 'nnan'/'ninf': NaN and inf propagate as in IEEE arithmetic.
"""

import numpy as np
from numba import njit, prange

from autograd.backend import get_array_module

_FM = {"contract"}
_FM_RED = {"contract", "reassoc"}
_U = np.uint64  # cast for array indices known to be >= 0 (see _gather_lanes)
_LANES = 16  # channels per block in the blocked kernels


# ----------------------------------------------------------------------------------------------------
# Argument handling
# ----------------------------------------------------------------------------------------------------


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        a, b = int(v[0]), int(v[1])
    else:
        a = b = int(v)
    return a, b


def _check_geometry(H, W, KH, KW, stride, padding):
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be >= 1, got {stride!r}")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if KH < 1 or KW < 1:
        raise ValueError("kernel size must be >= 1")
    Ho = (H + 2 * ph - KH) // sh + 1
    Wo = (W + 2 * pw - KW) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"kernel {KH}x{KW} larger than padded input {(H + 2 * ph, W + 2 * pw)}")
    return sh, sw, ph, pw, Ho, Wo


def _float_dtype(*arrays):
    dt = np.result_type(*[a.dtype for a in arrays if a is not None])
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def _as(a, dt):
    return np.ascontiguousarray(a, dtype=dt)


# ----------------------------------------------------------------------------------------------------
# Inner loops shared by all kernels (flat 1-D arrays; range loops + slices so LLVM sees unit stride
# and non-negative indices and vectorises)
# ----------------------------------------------------------------------------------------------------


@njit(cache=True, fastmath=_FM, inline="always")
def _copy(dst, d0, src, s0, n):
    d = dst[d0 : d0 + n]
    s = src[s0 : s0 + n]
    for p in range(n):
        d[p] = s[p]


@njit(cache=True, fastmath=_FM, inline="always")
def _taps7(acc, src, o, L, wr, k):
    a = acc[:L]
    s = src[o : o + L + 6]
    w0 = wr[k]
    w1 = wr[k + 1]
    w2 = wr[k + 2]
    w3 = wr[k + 3]
    w4 = wr[k + 4]
    w5 = wr[k + 5]
    w6 = wr[k + 6]
    for p in range(L):
        a[p] = (a[p] + w0 * s[p] + w1 * s[p + 1] + w2 * s[p + 2]) + (
            w3 * s[p + 3] + w4 * s[p + 4] + w5 * s[p + 5] + w6 * s[p + 6]
        )


@njit(cache=True, fastmath=_FM, inline="always")
def _taps14(acc, src, o, Ws, L, wr, vr):
    """Two kernel rows of 7 taps at once: rows at offsets o and o + Ws."""
    a = acc[:L]
    s = src[o : o + L + 6]
    t = src[o + Ws : o + Ws + L + 6]
    w0 = wr[0]
    w1 = wr[1]
    w2 = wr[2]
    w3 = wr[3]
    w4 = wr[4]
    w5 = wr[5]
    w6 = wr[6]
    v0 = vr[0]
    v1 = vr[1]
    v2 = vr[2]
    v3 = vr[3]
    v4 = vr[4]
    v5 = vr[5]
    v6 = vr[6]
    for p in range(L):
        a[p] = (
            (a[p] + w0 * s[p] + w1 * s[p + 1] + w2 * s[p + 2])
            + (w3 * s[p + 3] + w4 * s[p + 4] + w5 * s[p + 5] + w6 * s[p + 6])
        ) + (
            (v0 * t[p] + v1 * t[p + 1] + v2 * t[p + 2] + v3 * t[p + 3])
            + (v4 * t[p + 4] + v5 * t[p + 5] + v6 * t[p + 6])
        )


@njit(cache=True, fastmath=_FM, inline="always")
def _taps4(acc, src, o, L, wr, k):
    a = acc[:L]
    s = src[o : o + L + 3]
    w0 = wr[k]
    w1 = wr[k + 1]
    w2 = wr[k + 2]
    w3 = wr[k + 3]
    for p in range(L):
        a[p] = (a[p] + w0 * s[p] + w1 * s[p + 1]) + (w2 * s[p + 2] + w3 * s[p + 3])


@njit(cache=True, fastmath=_FM, inline="always")
def _taps3(acc, src, o, L, wr, k):
    a = acc[:L]
    s = src[o : o + L + 2]
    w0 = wr[k]
    w1 = wr[k + 1]
    w2 = wr[k + 2]
    for p in range(L):
        a[p] = (a[p] + w0 * s[p]) + (w1 * s[p + 1] + w2 * s[p + 2])


@njit(cache=True, fastmath=_FM, inline="always")
def _taps2(acc, src, o, L, wr, k):
    a = acc[:L]
    s = src[o : o + L + 1]
    w0 = wr[k]
    w1 = wr[k + 1]
    for p in range(L):
        a[p] = a[p] + w0 * s[p] + w1 * s[p + 1]


@njit(cache=True, fastmath=_FM, inline="always")
def _taps1(acc, src, o, L, wr, k):
    a = acc[:L]
    s = src[o : o + L]
    w0 = wr[k]
    for p in range(L):
        a[p] = a[p] + w0 * s[p]


@njit(cache=True, fastmath=_FM, inline="always")
def _taps14_init(acc, src, o, Ws, L, wr, vr, b0):
    """As _taps14 but starting from b0 instead of the accumulator's content."""
    a = acc[:L]
    s = src[o : o + L + 6]
    t = src[o + Ws : o + Ws + L + 6]
    w0 = wr[0]
    w1 = wr[1]
    w2 = wr[2]
    w3 = wr[3]
    w4 = wr[4]
    w5 = wr[5]
    w6 = wr[6]
    v0 = vr[0]
    v1 = vr[1]
    v2 = vr[2]
    v3 = vr[3]
    v4 = vr[4]
    v5 = vr[5]
    v6 = vr[6]
    for p in range(L):
        a[p] = (
            (b0 + w0 * s[p] + w1 * s[p + 1] + w2 * s[p + 2])
            + (w3 * s[p + 3] + w4 * s[p + 4] + w5 * s[p + 5] + w6 * s[p + 6])
        ) + (
            (v0 * t[p] + v1 * t[p + 1] + v2 * t[p + 2] + v3 * t[p + 3])
            + (v4 * t[p + 4] + v5 * t[p + 5] + v6 * t[p + 6])
        )


@njit(cache=True, fastmath=_FM)
def _wide_corr(acc, src, w2, Ws, L, b0):
    """acc[p] = b0 + sum_{kh, kw} w2[kh, kw] * src[p + kh*Ws + kw] for p < L (stride-1 'wide'
    correlation).

    The taps of a kernel row are applied in fused groups of 7, 4, 3, 2, 1 (two rows at once for 7-wide
    kernels), so the accumulator is loaded and stored once per group instead of once per tap."""
    KH, KW = w2.shape
    kh = 0
    if KW == 7 and KH >= 2:
        _taps14_init(acc, src, 0, Ws, L, w2[0], w2[1], b0)
        kh = 2
    else:
        acc[:L] = b0
    if KW == 7:
        while kh + 2 <= KH:
            _taps14(acc, src, kh * Ws, Ws, L, w2[kh], w2[kh + 1])
            kh += 2
    while kh < KH:
        wr = w2[kh]
        o = kh * Ws
        kw = 0
        while KW - kw >= 7:
            _taps7(acc, src, o + kw, L, wr, kw)
            kw += 7
        if KW - kw >= 4:
            _taps4(acc, src, o + kw, L, wr, kw)
            kw += 4
        r = KW - kw
        if r == 3:
            _taps3(acc, src, o + kw, L, wr, kw)
        elif r == 2:
            _taps2(acc, src, o + kw, L, wr, kw)
        elif r == 1:
            _taps1(acc, src, o + kw, L, wr, kw)
        kh += 1


@njit(cache=True, fastmath=_FM)
def _strided_corr(acc, src, w2, Ws, sh, sw, Ho, Wo):
    """acc[i*Wo + j] += sum_{kh, kw} w2[kh, kw] * src[(i*sh + kh)*Ws + j*sw + kw] (any stride)."""
    KH, KW = w2.shape
    for i in range(Ho):
        a = acc[i * Wo : (i + 1) * Wo]
        for kh in range(KH):
            for kw in range(KW):
                wv = w2[kh, kw]
                s = src[(i * sh + kh) * Ws + kw :]
                for j in range(Wo):
                    a[j] += wv * s[j * sw]


# ----------------------------------------------------------------------------------------------------
# Weight-gradient inner loops (dot products of the wide g plane with shifted x planes). 'reassoc' lets
# LLVM split each sum over vector lanes; the per-plane partial sum is then added to a float64 total.
# ----------------------------------------------------------------------------------------------------


@njit(cache=True, fastmath=_FM_RED, inline="always")
def _dots7(g, src, o, L, z):
    s = src[o : o + L + 6]
    t0 = z
    t1 = z
    t2 = z
    t3 = z
    t4 = z
    t5 = z
    t6 = z
    for p in range(L):
        gv = g[p]
        t0 += gv * s[p]
        t1 += gv * s[p + 1]
        t2 += gv * s[p + 2]
        t3 += gv * s[p + 3]
        t4 += gv * s[p + 4]
        t5 += gv * s[p + 5]
        t6 += gv * s[p + 6]
    return t0, t1, t2, t3, t4, t5, t6


@njit(cache=True, fastmath=_FM_RED, inline="always")
def _dots4(g, src, o, L, z):
    s = src[o : o + L + 3]
    t0 = z
    t1 = z
    t2 = z
    t3 = z
    for p in range(L):
        gv = g[p]
        t0 += gv * s[p]
        t1 += gv * s[p + 1]
        t2 += gv * s[p + 2]
        t3 += gv * s[p + 3]
    return t0, t1, t2, t3


@njit(cache=True, fastmath=_FM_RED, inline="always")
def _dots1(g, src, o, L, z):
    s = src[o : o + L]
    t0 = z
    for p in range(L):
        t0 += g[p] * s[p]
    return t0


@njit(cache=True, fastmath=_FM_RED)
def _wide_wgrad(gw, g, src, Ws, L, z):
    """gw[kh, kw] += sum_{p < L} g[p] * src[p + kh*Ws + kw]   (gw float64, (KH, KW))."""
    KH, KW = gw.shape
    for kh in range(KH):
        o = kh * Ws
        kw = 0
        while KW - kw >= 7:
            t0, t1, t2, t3, t4, t5, t6 = _dots7(g, src, o + kw, L, z)
            gw[kh, kw] += t0
            gw[kh, kw + 1] += t1
            gw[kh, kw + 2] += t2
            gw[kh, kw + 3] += t3
            gw[kh, kw + 4] += t4
            gw[kh, kw + 5] += t5
            gw[kh, kw + 6] += t6
            kw += 7
        while KW - kw >= 4:
            t0, t1, t2, t3 = _dots4(g, src, o + kw, L, z)
            gw[kh, kw] += t0
            gw[kh, kw + 1] += t1
            gw[kh, kw + 2] += t2
            gw[kh, kw + 3] += t3
            kw += 4
        while kw < KW:
            gw[kh, kw] += _dots1(g, src, o + kw, L, z)
            kw += 1


@njit(cache=True, fastmath=_FM_RED)
def _sum64(a, n):
    s = 0.0
    for p in range(n):
        s += a[p]
    return s


# ----------------------------------------------------------------------------------------------------
# NCHW plane kernels: one task = a chunk of (n, c) planes
# ----------------------------------------------------------------------------------------------------


def _nchw_layout(H, W, ph, pw, KH, KW, Wo):
    """Row stride Ws and size of the flat padded plane buffer (pw shared zero columns between rows)."""
    Ws = max(W + pw, Wo)
    return Ws, (H + 2 * ph + 1) * Ws + KW + Wo + 16


@njit(parallel=True, cache=True, fastmath=_FM)
def _nchw_forward_kernel(x2, H, W, w, b, sh, sw, ph, pw, Ho, Wo, Ws, bufsize, out2):
    P = x2.shape[0]
    C = w.shape[0]
    nchunk = min(P, 64)
    stride1 = sh == 1 and sw == 1
    L = Ho * Ws if stride1 else Ho * Wo
    for k in prange(nchunk):
        xp = np.zeros(bufsize, x2.dtype)
        acc = np.empty(L, x2.dtype)
        for pl in range(k * P // nchunk, (k + 1) * P // nchunk):
            c = pl % C
            xs = x2[pl]
            for r in range(H):
                _copy(xp, (r + ph) * Ws + pw, xs, r * W, W)
            os_ = out2[pl]
            if stride1:
                _wide_corr(acc, xp, w[c], Ws, L, b[c])
                for i in range(Ho):
                    _copy(os_, i * Wo, acc, i * Ws, Wo)
            else:
                acc[:] = b[c]
                _strided_corr(acc, xp, w[c], Ws, sh, sw, Ho, Wo)
                _copy(os_, 0, acc, 0, L)


@njit(parallel=True, cache=True, fastmath=_FM)
def _nchw_scatter_kernel(g2, Ho, Wo, w, sh, sw, ph, pw, H, W, Ws, bufsize, gx2):
    """grad_x by scattering w * g into a padded plane (any stride / padding)."""
    P = g2.shape[0]
    C = w.shape[0]
    KH, KW = w.shape[1], w.shape[2]
    nchunk = min(P, 64)
    for k in prange(nchunk):
        gp = np.empty(bufsize, g2.dtype)
        for pl in range(k * P // nchunk, (k + 1) * P // nchunk):
            c = pl % C
            gs = g2[pl]
            gp[:] = 0
            for i in range(Ho):
                gr = gs[i * Wo : (i + 1) * Wo]
                for kh in range(KH):
                    for kw in range(KW):
                        wv = w[c, kh, kw]
                        d = gp[(i * sh + kh) * Ws + kw :]
                        for j in range(Wo):
                            d[j * sw] += wv * gr[j]
            out = gx2[pl]
            for r in range(H):
                _copy(out, r * W, gp, (r + ph) * Ws + pw, W)


@njit(parallel=True, cache=True, fastmath=_FM_RED)
def _nchw_wgrad_kernel(x2, g2, H, W, Ho, Wo, C, sh, sw, ph, pw, Ws, bufsize, z, gwp, gbp):
    """Partial weight/bias gradients. The (n, c) planes, in memory order, are split into gwp.shape[0]
    fixed chunks; chunk k adds into its own float64 buffers gwp[k] (C, KH, KW) and gbp[k] (C,)."""
    P = x2.shape[0]
    nchunk = gwp.shape[0]
    KH, KW = gwp.shape[2], gwp.shape[3]
    stride1 = sh == 1 and sw == 1
    L = Ho * Ws
    for k in prange(nchunk):
        xp = np.zeros(bufsize, x2.dtype)
        gwide = np.zeros(L + 8, x2.dtype)
        for pl in range(k * P // nchunk, (k + 1) * P // nchunk):
            c = pl % C
            gw = gwp[k, c]
            xs = x2[pl]
            gs = g2[pl]
            for r in range(H):
                _copy(xp, (r + ph) * Ws + pw, xs, r * W, W)
            gbp[k, c] += _sum64(gs, Ho * Wo)
            if stride1:
                for i in range(Ho):
                    _copy(gwide, i * Ws, gs, i * Wo, Wo)
                _wide_wgrad(gw, gwide, xp, Ws, L, z)
            else:
                for kh in range(KH):
                    for kw in range(KW):
                        s = 0.0
                        for i in range(Ho):
                            gr = gs[i * Wo : (i + 1) * Wo]
                            xr = xp[(i * sh + kh) * Ws + kw :]
                            for j in range(Wo):
                                s += gr[j] * xr[j * sw]
                        gw[kh, kw] += s


# ----------------------------------------------------------------------------------------------------
# 16-channel-block kernels (NHWC, and NCHW with tiny planes). Arrays are passed flat with the element
# strides (n, c, row, col) of their layout. Buffers are [pixel][16]; lanes past C in the last block hold
# zeros or junk that is never written out.
# ----------------------------------------------------------------------------------------------------


@njit(cache=True, fastmath=_FM, inline="always")
def _gather_lanes(dst, d0, src, s0, step, nc):
    """dst[d0 + l] = src[s0 + l*step] for l < nc (one vector copy when step == 1 and nc == 16).

    Indices are cast to unsigned (they are never negative): this drops Numba's negative-index
    wraparound select, which otherwise stops LLVM from seeing consecutive addresses."""
    if step == 1 and nc == 16:
        for l in range(16):
            dst[_U(d0 + l)] = src[_U(s0 + l)]
    else:
        for l in range(nc):
            dst[_U(d0 + l)] = src[_U(s0 + l * step)]


@njit(cache=True, fastmath=_FM, inline="always")
def _scatter_lanes(dst, d0, step, src, s0, nc):
    """dst[d0 + l*step] = src[s0 + l] for l < nc."""
    if step == 1 and nc == 16:
        for l in range(16):
            dst[_U(d0 + l)] = src[_U(s0 + l)]
    else:
        for l in range(nc):
            dst[_U(d0 + l * step)] = src[_U(s0 + l)]


@njit(cache=True, fastmath=_FM, inline="always")
def _px8_taps7(a, s, w, k):
    """8 consecutive output pixels x 7 taps of one kernel row: a[m][l] += sum_t w[k+t][l] * s[m+t][l]."""
    for l in range(16):
        x0 = s[0 + l]
        x1 = s[16 + l]
        x2 = s[32 + l]
        x3 = s[48 + l]
        x4 = s[64 + l]
        x5 = s[80 + l]
        x6 = s[96 + l]
        x7 = s[112 + l]
        x8 = s[128 + l]
        x9 = s[144 + l]
        x10 = s[160 + l]
        x11 = s[176 + l]
        x12 = s[192 + l]
        x13 = s[208 + l]
        v0 = w[k, l]
        v1 = w[k + 1, l]
        v2 = w[k + 2, l]
        v3 = w[k + 3, l]
        v4 = w[k + 4, l]
        v5 = w[k + 5, l]
        v6 = w[k + 6, l]
        a[0 + l] = a[0 + l] + v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4 + v5 * x5 + v6 * x6
        a[16 + l] = a[16 + l] + v0 * x1 + v1 * x2 + v2 * x3 + v3 * x4 + v4 * x5 + v5 * x6 + v6 * x7
        a[32 + l] = a[32 + l] + v0 * x2 + v1 * x3 + v2 * x4 + v3 * x5 + v4 * x6 + v5 * x7 + v6 * x8
        a[48 + l] = a[48 + l] + v0 * x3 + v1 * x4 + v2 * x5 + v3 * x6 + v4 * x7 + v5 * x8 + v6 * x9
        a[64 + l] = a[64 + l] + v0 * x4 + v1 * x5 + v2 * x6 + v3 * x7 + v4 * x8 + v5 * x9 + v6 * x10
        a[80 + l] = a[80 + l] + v0 * x5 + v1 * x6 + v2 * x7 + v3 * x8 + v4 * x9 + v5 * x10 + v6 * x11
        a[96 + l] = a[96 + l] + v0 * x6 + v1 * x7 + v2 * x8 + v3 * x9 + v4 * x10 + v5 * x11 + v6 * x12
        a[112 + l] = a[112 + l] + v0 * x7 + v1 * x8 + v2 * x9 + v3 * x10 + v4 * x11 + v5 * x12 + v6 * x13


@njit(cache=True, fastmath=_FM, inline="always")
def _px8_taps7_init(a, s, w, k, bb):
    """As _px8_taps7 but starts from the bias: a[m][l] = bb[l] + sum_t w[k+t][l] * s[m+t][l]."""
    for l in range(16):
        x0 = s[0 + l]
        x1 = s[16 + l]
        x2 = s[32 + l]
        x3 = s[48 + l]
        x4 = s[64 + l]
        x5 = s[80 + l]
        x6 = s[96 + l]
        x7 = s[112 + l]
        x8 = s[128 + l]
        x9 = s[144 + l]
        x10 = s[160 + l]
        x11 = s[176 + l]
        x12 = s[192 + l]
        x13 = s[208 + l]
        v0 = w[k, l]
        v1 = w[k + 1, l]
        v2 = w[k + 2, l]
        v3 = w[k + 3, l]
        v4 = w[k + 4, l]
        v5 = w[k + 5, l]
        v6 = w[k + 6, l]
        b0 = bb[l]
        a[0 + l] = b0 + v0 * x0 + v1 * x1 + v2 * x2 + v3 * x3 + v4 * x4 + v5 * x5 + v6 * x6
        a[16 + l] = b0 + v0 * x1 + v1 * x2 + v2 * x3 + v3 * x4 + v4 * x5 + v5 * x6 + v6 * x7
        a[32 + l] = b0 + v0 * x2 + v1 * x3 + v2 * x4 + v3 * x5 + v4 * x6 + v5 * x7 + v6 * x8
        a[48 + l] = b0 + v0 * x3 + v1 * x4 + v2 * x5 + v3 * x6 + v4 * x7 + v5 * x8 + v6 * x9
        a[64 + l] = b0 + v0 * x4 + v1 * x5 + v2 * x6 + v3 * x7 + v4 * x8 + v5 * x9 + v6 * x10
        a[80 + l] = b0 + v0 * x5 + v1 * x6 + v2 * x7 + v3 * x8 + v4 * x9 + v5 * x10 + v6 * x11
        a[96 + l] = b0 + v0 * x6 + v1 * x7 + v2 * x8 + v3 * x9 + v4 * x10 + v5 * x11 + v6 * x12
        a[112 + l] = b0 + v0 * x7 + v1 * x8 + v2 * x9 + v3 * x10 + v4 * x11 + v5 * x12 + v6 * x13


@njit(cache=True, fastmath=_FM, inline="always")
def _px8_taps3(a, s, w, k):
    """8 output pixels x 3 taps (generic kernel widths): a[m][l] += sum_{t<3} w[k+t][l] * s[m+t][l]."""
    for l in range(16):
        x0 = s[0 + l]
        x1 = s[16 + l]
        x2 = s[32 + l]
        x3 = s[48 + l]
        x4 = s[64 + l]
        x5 = s[80 + l]
        x6 = s[96 + l]
        x7 = s[112 + l]
        x8 = s[128 + l]
        x9 = s[144 + l]
        v0 = w[k, l]
        v1 = w[k + 1, l]
        v2 = w[k + 2, l]
        a[0 + l] = a[0 + l] + v0 * x0 + v1 * x1 + v2 * x2
        a[16 + l] = a[16 + l] + v0 * x1 + v1 * x2 + v2 * x3
        a[32 + l] = a[32 + l] + v0 * x2 + v1 * x3 + v2 * x4
        a[48 + l] = a[48 + l] + v0 * x3 + v1 * x4 + v2 * x5
        a[64 + l] = a[64 + l] + v0 * x4 + v1 * x5 + v2 * x6
        a[80 + l] = a[80 + l] + v0 * x5 + v1 * x6 + v2 * x7
        a[96 + l] = a[96 + l] + v0 * x6 + v1 * x7 + v2 * x8
        a[112 + l] = a[112 + l] + v0 * x7 + v1 * x8 + v2 * x9


@njit(cache=True, fastmath=_FM, inline="always")
def _px8_tap1(a, s, w, k):
    for l in range(16):
        v0 = w[k, l]
        a[0 + l] += v0 * s[0 + l]
        a[16 + l] += v0 * s[16 + l]
        a[32 + l] += v0 * s[32 + l]
        a[48 + l] += v0 * s[48 + l]
        a[64 + l] += v0 * s[64 + l]
        a[80 + l] += v0 * s[80 + l]
        a[96 + l] += v0 * s[96 + l]
        a[112 + l] += v0 * s[112 + l]


@njit(cache=True, fastmath=_FM, inline="always")
def _dpx8_taps3(acc, g, s):
    """Weight-gradient block, 3 taps: acc[t][l] += sum_{m<8} g[m][l] * s[m+t][l]."""
    for l in range(16):
        g0 = g[l]
        g1 = g[16 + l]
        g2 = g[32 + l]
        g3 = g[48 + l]
        g4 = g[64 + l]
        g5 = g[80 + l]
        g6 = g[96 + l]
        g7 = g[112 + l]
        x0 = s[0 + l]
        x1 = s[16 + l]
        x2 = s[32 + l]
        x3 = s[48 + l]
        x4 = s[64 + l]
        x5 = s[80 + l]
        x6 = s[96 + l]
        x7 = s[112 + l]
        x8 = s[128 + l]
        x9 = s[144 + l]
        acc[0 + l] = acc[0 + l] + (
            (g0 * x0 + g1 * x1 + g2 * x2 + g3 * x3) + (g4 * x4 + g5 * x5 + g6 * x6 + g7 * x7)
        )
        acc[16 + l] = acc[16 + l] + (
            (g0 * x1 + g1 * x2 + g2 * x3 + g3 * x4) + (g4 * x5 + g5 * x6 + g6 * x7 + g7 * x8)
        )
        acc[32 + l] = acc[32 + l] + (
            (g0 * x2 + g1 * x3 + g2 * x4 + g3 * x5) + (g4 * x6 + g5 * x7 + g6 * x8 + g7 * x9)
        )


@njit(cache=True, fastmath=_FM, inline="always")
def _dpx8_tap1(acc, g, s):
    for l in range(16):
        acc[l] = acc[l] + (
            (g[l] * s[l] + g[16 + l] * s[16 + l] + g[32 + l] * s[32 + l] + g[48 + l] * s[48 + l])
            + (
                g[64 + l] * s[64 + l]
                + g[80 + l] * s[80 + l]
                + g[96 + l] * s[96 + l]
                + g[112 + l] * s[112 + l]
            )
        )


@njit(cache=True, fastmath=_FM, inline="always")
def _block_start(qb, rowal, nbr, Ws):
    """First wide pixel of 8-pixel block qb: nbr blocks per output row if row-aligned, else flat."""
    if rowal:
        i = qb // nbr
        return i * Ws + (qb - i * nbr) * 8
    return qb * 8


@njit(cache=True, fastmath=_FM, inline="always")
def _px1_tap(a, s, w, k):
    for l in range(16):
        a[l] += w[k, l] * s[l]


@njit(cache=True, fastmath=_FM, inline="always")
def _dpx8_taps7(acc, g, s):
    """Weight-gradient block: acc[t][l] += sum_{m<8} g[m][l] * s[m+t][l] for the 7 taps t of a row."""
    for l in range(16):
        g0 = g[l]
        g1 = g[16 + l]
        g2 = g[32 + l]
        g3 = g[48 + l]
        g4 = g[64 + l]
        g5 = g[80 + l]
        g6 = g[96 + l]
        g7 = g[112 + l]
        x0 = s[l]
        x1 = s[16 + l]
        x2 = s[32 + l]
        x3 = s[48 + l]
        x4 = s[64 + l]
        x5 = s[80 + l]
        x6 = s[96 + l]
        x7 = s[112 + l]
        x8 = s[128 + l]
        x9 = s[144 + l]
        x10 = s[160 + l]
        x11 = s[176 + l]
        x12 = s[192 + l]
        x13 = s[208 + l]
        acc[0 + l] = acc[0 + l] + (
            (g0 * x0 + g1 * x1 + g2 * x2 + g3 * x3) + (g4 * x4 + g5 * x5 + g6 * x6 + g7 * x7)
        )
        acc[16 + l] = acc[16 + l] + (
            (g0 * x1 + g1 * x2 + g2 * x3 + g3 * x4) + (g4 * x5 + g5 * x6 + g6 * x7 + g7 * x8)
        )
        acc[32 + l] = acc[32 + l] + (
            (g0 * x2 + g1 * x3 + g2 * x4 + g3 * x5) + (g4 * x6 + g5 * x7 + g6 * x8 + g7 * x9)
        )
        acc[48 + l] = acc[48 + l] + (
            (g0 * x3 + g1 * x4 + g2 * x5 + g3 * x6) + (g4 * x7 + g5 * x8 + g6 * x9 + g7 * x10)
        )
        acc[64 + l] = acc[64 + l] + (
            (g0 * x4 + g1 * x5 + g2 * x6 + g3 * x7) + (g4 * x8 + g5 * x9 + g6 * x10 + g7 * x11)
        )
        acc[80 + l] = acc[80 + l] + (
            (g0 * x5 + g1 * x6 + g2 * x7 + g3 * x8) + (g4 * x9 + g5 * x10 + g6 * x11 + g7 * x12)
        )
        acc[96 + l] = acc[96 + l] + (
            (g0 * x6 + g1 * x7 + g2 * x8 + g3 * x9) + (g4 * x10 + g5 * x11 + g6 * x12 + g7 * x13)
        )


@njit(cache=True, fastmath=_FM, inline="always")
def _px1_sum(acc, g):
    for l in range(16):
        acc[l] += g[l]


@njit(cache=True, fastmath=_FM, inline="always")
def _dpx1_tap(acc, g, s):
    for l in range(16):
        acc[l] += g[l] * s[l]


def _nhwc_strides(N, H, W, C):
    return (H * W * C, 1, W * C, C)


def _nchw_strides(N, C, H, W):
    return (C * H * W, H * W, W, 1)


def _nhwc_blocked_weight(weight, dt):
    """(KH, KW, C) -> (nCB, KH*KW, 16), zero-padded lanes."""
    KH, KW, C = weight.shape
    nCB = (C + _LANES - 1) // _LANES
    wp = np.zeros((KH * KW, nCB * _LANES), dt)
    wp[:, :C] = weight.reshape(KH * KW, C)
    return np.ascontiguousarray(wp.reshape(KH * KW, nCB, _LANES).transpose(1, 0, 2))


def _row_block(N, Ho):
    """Output rows per forward task: whole images when small, else 8 rows; at least ~8 tasks."""
    RB = Ho if Ho <= 16 else 8
    want = -(-8 // N)  # blocks per image needed for >= 8 tasks
    if -(-Ho // RB) < want:
        RB = max(1, -(-Ho // want))
    return RB


@njit(parallel=True, cache=True, fastmath=_FM)
def _blocked_forward_kernel(xf, xs, N, H, W, C, wt, bt, KH, KW, sh, sw, ph, pw, Ho, Wo, Ws, RB, outf, os_):
    """Forward on 16-channel blocks. Element (n, c, r, col) of x is
    xf[n*xs[0] + c*xs[1] + r*xs[2] + col*xs[3]] (so NHWC and NCHW both work); likewise out with os_.

    Task = (image n, block of RB output rows), all channel blocks: x is read and out written a whole
    pixel (all channels) at a time. buf holds, per channel block, the R padded input rows the block
    needs ([pixel][16], row stride Ws); acc the block's outputs ([pixel][16], row stride As)."""
    nCB = wt.shape[0]
    nRB = (Ho + RB - 1) // RB
    T = N * nRB
    stride1 = sh == 1 and sw == 1
    R = (RB - 1) * sh + KH  # padded input rows per block
    P = (R + 1) * Ws + KW + 16  # pixels per channel-block plane of buf
    As = Ws if stride1 else Wo  # accumulator row stride (pixels)
    La = (RB * As + 7) // 8 * 8  # accumulator pixels per channel block
    nchunk = min(T, 16)
    for k in prange(nchunk):
        buf = np.zeros(nCB * P * 16, xf.dtype)  # gap columns stay zero; rows are rewritten per task
        acc = np.empty(nCB * La * 16, xf.dtype)
        for t in range(k * T // nchunk, (k + 1) * T // nchunk):
            n = t // nRB
            i0 = (t - n * nRB) * RB
            nr = min(RB, Ho - i0)  # output rows in this block
            # ---- gather the needed input rows (zero rows above/below the image) ----
            for rr in range((nr - 1) * sh + KH):
                r = i0 * sh - ph + rr
                if r < 0 or r >= H:
                    if nRB > 1:  # (whole-image tasks: padding rows are never written)
                        for cb in range(nCB):
                            d0 = (cb * P + rr * Ws + pw) * 16
                            buf[d0 : d0 + W * 16] = 0
                    continue
                xr = n * xs[0] + r * xs[2]
                for col in range(W):
                    d = (rr * Ws + pw + col) * 16
                    for cb in range(nCB):
                        _gather_lanes(
                            buf,
                            cb * P * 16 + d,
                            xf,
                            xr + cb * 16 * xs[1] + col * xs[3],
                            xs[1],
                            min(16, C - cb * 16),
                        )
            # ---- compute, one channel block at a time ----
            for cb in range(nCB):
                wb = wt[cb]
                bb = bt[cb]
                bp = buf[cb * P * 16 : (cb + 1) * P * 16]
                ap = acc[cb * La * 16 : (cb + 1) * La * 16]
                if stride1 and KW == 7:
                    # blocks of 8 output pixels: row-aligned when that saves >= 10% junk pixels, else
                    # over the flat wide range. Chunks of 16 blocks, all kernel rows per chunk,
                    # so the chunk's accumulators stay in L1 across the KH passes.
                    nbr = (Wo + 7) // 8
                    rowal = 10 * nbr * 8 <= 9 * Ws
                    nq = nr * nbr if rowal else (nr * Ws + 7) // 8
                    for qc in range(0, nq, 16):
                        qe = min(nq, qc + 16)
                        for qb in range(qc, qe):  # first kernel row starts from the bias
                            q = _block_start(qb, rowal, nbr, Ws)
                            _px8_taps7_init(ap[q * 16 : q * 16 + 128], bp[q * 16 : q * 16 + 224], wb, 0, bb)
                        for kh in range(1, KH):
                            for qb in range(qc, qe):
                                q = _block_start(qb, rowal, nbr, Ws)
                                o = q + kh * Ws
                                _px8_taps7(ap[q * 16 : q * 16 + 128], bp[o * 16 : o * 16 + 224], wb, kh * 7)
                else:
                    for q in range(La):
                        a = ap[q * 16 : q * 16 + 16]
                        for l in range(16):
                            a[l] = bb[l]
                    if stride1:
                        # blocks of 8 wide pixels; taps in groups of 3, then single taps
                        nq = (nr * Ws + 7) // 8
                        for qc in range(0, nq, 16):
                            for kh in range(KH):
                                kw = 0
                                while kw < KW:
                                    k2 = kh * KW + kw
                                    if KW - kw >= 3:
                                        for qb in range(qc, min(nq, qc + 16)):
                                            q = qb * 8
                                            o = (q + kh * Ws + kw) * 16
                                            _px8_taps3(ap[q * 16 : q * 16 + 128], bp[o : o + 160], wb, k2)
                                        kw += 3
                                    else:
                                        for qb in range(qc, min(nq, qc + 16)):
                                            q = qb * 8
                                            o = (q + kh * Ws + kw) * 16
                                            _px8_tap1(ap[q * 16 : q * 16 + 128], bp[o : o + 128], wb, k2)
                                        kw += 1
                    else:
                        for i in range(nr):
                            for j in range(Wo):
                                q = i * Wo + j
                                for kh in range(KH):
                                    for kw in range(KW):
                                        o = (i * sh + kh) * Ws + j * sw + kw
                                        _px1_tap(
                                            ap[q * 16 : q * 16 + 16],
                                            bp[o * 16 : o * 16 + 16],
                                            wb,
                                            kh * KW + kw,
                                        )
            # ---- write the block's output pixels, all channels ----
            for i in range(nr):
                orow = n * os_[0] + (i0 + i) * os_[2]
                for j in range(Wo):
                    s0 = (i * As + j) * 16
                    for cb in range(nCB):
                        _scatter_lanes(
                            outf,
                            orow + j * os_[3] + cb * 16 * os_[1],
                            os_[1],
                            acc,
                            cb * La * 16 + s0,
                            min(16, C - cb * 16),
                        )


@njit(parallel=True, cache=True, fastmath=_FM)
def _blocked_scatter_kernel(gf, gs, N, Ho, Wo, C, wt, KH, KW, sh, sw, ph, pw, H, W, Ws, bufpix, gxf, xs):
    """grad_x by scattering w * g into a padded [pixel][16] buffer (any stride / padding); gs, xs are the
    (n, c, row, col) element strides of g and grad_x."""
    nCB = wt.shape[0]
    T = N * nCB
    nchunk = min(T, 64)
    for k in prange(nchunk):
        buf = np.empty(bufpix * 16, gf.dtype)
        gl = np.zeros(16, gf.dtype)
        for t in range(k * T // nchunk, (k + 1) * T // nchunk):
            n = t // nCB
            cb = t - n * nCB
            c0 = cb * 16
            nc = min(16, C - c0)
            wb = wt[cb]
            buf[:] = 0
            gb0 = n * gs[0] + c0 * gs[1]
            for i in range(Ho):
                for j in range(Wo):
                    _gather_lanes(gl, 0, gf, gb0 + i * gs[2] + j * gs[3], gs[1], nc)
                    for kh in range(KH):
                        for kw in range(KW):
                            o = ((i * sh + kh) * Ws + j * sw + kw) * 16
                            d = buf[o : o + 16]
                            k2 = kh * KW + kw
                            for l in range(16):
                                d[l] += wb[k2, l] * gl[l]
            xb0 = n * xs[0] + c0 * xs[1]
            for r in range(H):
                for col in range(W):
                    _scatter_lanes(
                        gxf, xb0 + r * xs[2] + col * xs[3], xs[1], buf, ((r + ph) * Ws + pw + col) * 16, nc
                    )


@njit(parallel=True, cache=True, fastmath=_FM)
def _blocked_wgrad_kernel(xf, xs, gf, gs, N, H, W, C, KH, KW, sh, sw, ph, pw, Ho, Wo, Ws, RB, gwp, gbp):
    """Partial weight/bias gradients on 16-channel blocks.

    Units of work are (image n, block of RB output rows); the units are split into gwp.shape[0] fixed
    chunks (from the shapes only) and chunk k accumulates into its own float64 buffers gwp[k]
    (nCB, KH*KW, 16) and gbp[k] (nCB, 16), summed afterwards in a fixed order. Inside a unit, x rows
    (padded) and g rows (wide: pixel (i, j) at i*Ws + j, zero gaps) are gathered for all channel
    blocks; float32 sums run over at most 64 pixels before being flushed to float64."""
    nCB = gwp.shape[1]
    nchunk = gwp.shape[0]
    nRB = (Ho + RB - 1) // RB
    T = N * nRB
    stride1 = sh == 1 and sw == 1
    R = (RB - 1) * sh + KH  # padded input rows per block
    P = (R + 1) * Ws + KW + 16  # pixels per channel-block plane of xb
    Lg = (RB * Ws + 7) // 8 * 8 + 8  # pixels per channel-block plane of gb
    for k in prange(nchunk):
        xb = np.zeros(nCB * P * 16, xf.dtype)
        gb = np.zeros(nCB * Lg * 16, xf.dtype)
        acc = np.zeros(KH * KW * 16, xf.dtype)  # short-run sums in the input dtype
        for t in range(k * T // nchunk, (k + 1) * T // nchunk):
            n = t // nRB
            i0 = (t - n * nRB) * RB
            nr = min(RB, Ho - i0)
            # ---- gather x rows (zero rows outside the image) and g rows ----
            for rr in range((nr - 1) * sh + KH):
                r = i0 * sh - ph + rr
                if r < 0 or r >= H:
                    if nRB > 1:  # (whole-image tasks: padding rows are never written)
                        for cb in range(nCB):
                            d0 = (cb * P + rr * Ws + pw) * 16
                            xb[d0 : d0 + W * 16] = 0
                    continue
                xr = n * xs[0] + r * xs[2]
                for col in range(W):
                    d = (rr * Ws + pw + col) * 16
                    for cb in range(nCB):
                        _gather_lanes(
                            xb,
                            cb * P * 16 + d,
                            xf,
                            xr + cb * 16 * xs[1] + col * xs[3],
                            xs[1],
                            min(16, C - cb * 16),
                        )
            for i in range(RB):
                if i >= nr:  # rows past the last block row: zero
                    for cb in range(nCB):
                        d0 = (cb * Lg + i * Ws) * 16
                        gb[d0 : d0 + Wo * 16] = 0
                    continue
                gr = n * gs[0] + (i0 + i) * gs[2]
                for j in range(Wo):
                    d = (i * Ws + j) * 16
                    for cb in range(nCB):
                        _gather_lanes(
                            gb,
                            cb * Lg * 16 + d,
                            gf,
                            gr + cb * 16 * gs[1] + j * gs[3],
                            gs[1],
                            min(16, C - cb * 16),
                        )
            # ---- accumulate, one channel block at a time ----
            nq = (nr * Ws + 7) // 8  # blocks of 8 wide output pixels
            nbr = (Wo + 7) // 8
            rowal = 10 * nbr * 8 <= 9 * Ws  # row-aligned blocks (see the forward kernel)
            nqk = nr * nbr if rowal else nq
            for cb in range(nCB):
                gp = gb[cb * Lg * 16 : (cb + 1) * Lg * 16]
                xp = xb[cb * P * 16 : (cb + 1) * P * 16]
                gwf = gwp[k, cb].reshape(KH * KW * 16)
                bs = gbp[k, cb]
                a = acc[:16]
                for q0 in range(0, nq * 8, 64):  # bias: sum of g (gaps are zero)
                    a[:] = 0
                    for q in range(q0, min(nq * 8, q0 + 64)):
                        _px1_sum(a, gp[q * 16 : q * 16 + 16])
                    for l in range(16):
                        bs[l] += a[l]
                if stride1 and KW == 7:
                    for kh in range(KH):
                        a = acc[kh * 112 : kh * 112 + 112]
                        for q0 in range(0, nqk, 8):
                            a[:] = 0
                            for qb in range(q0, min(nqk, q0 + 8)):
                                q = _block_start(qb, rowal, nbr, Ws)
                                o = q + kh * Ws
                                _dpx8_taps7(a, gp[q * 16 : q * 16 + 128], xp[o * 16 : o * 16 + 224])
                            gr_ = gwf[kh * 112 : kh * 112 + 112]
                            for e in range(112):
                                gr_[e] += a[e]
                elif stride1:
                    for kh in range(KH):
                        kw = 0
                        while kw < KW:
                            k2 = kh * KW + kw
                            nt = 3 if KW - kw >= 3 else 1
                            a = acc[: nt * 16]
                            for q0 in range(0, nq, 8):
                                a[:] = 0
                                for qb in range(q0, min(nq, q0 + 8)):
                                    q = qb * 8
                                    o = (q + kh * Ws + kw) * 16
                                    if nt == 3:
                                        _dpx8_taps3(a, gp[q * 16 : q * 16 + 128], xp[o : o + 160])
                                    else:
                                        _dpx8_tap1(a, gp[q * 16 : q * 16 + 128], xp[o : o + 128])
                                gr_ = gwf[k2 * 16 : (k2 + nt) * 16]
                                for e in range(nt * 16):
                                    gr_[e] += a[e]
                            kw += nt
                else:
                    for kh in range(KH):
                        for kw in range(KW):
                            k2 = kh * KW + kw
                            a = acc[k2 * 16 : k2 * 16 + 16]
                            a[:] = 0
                            for i in range(nr):
                                for j in range(Wo):
                                    q = i * Ws + j
                                    o = (i * sh + kh) * Ws + j * sw + kw
                                    _dpx1_tap(a, gp[q * 16 : q * 16 + 16], xp[o * 16 : o * 16 + 16])
                                if i % 8 == 7 or i == nr - 1:
                                    gr_ = gwf[k2 * 16 : k2 * 16 + 16]
                                    for l in range(16):
                                        gr_[l] += a[l]
                                    a[:] = 0


# ----------------------------------------------------------------------------------------------------
# Public wrappers
# ----------------------------------------------------------------------------------------------------

# NCHW inputs whose planes have at most this many pixels use the 16-channel-block kernels (below).
_NCHW_BLOCKED_MAX_PLANE = 64


def depthwise_conv2d_nchw_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, C, H, W), weight (C, KH, KW), bias (C,) or None -> out (N, C, Ho, Wo)."""
    N, C, H, W = x.shape
    if weight.ndim != 3 or weight.shape[0] != C:
        raise ValueError(f"weight must be (C, KH, KW) with C={C}, got {weight.shape}")
    KH, KW = weight.shape[1], weight.shape[2]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    dt = _float_dtype(x, weight, bias)
    x = _as(x, dt)
    w = _as(weight, dt)
    b = np.zeros(C, dt) if bias is None else _as(bias, dt).reshape(C)
    out = np.empty((N, C, Ho, Wo), dt)
    if out.size == 0:
        return out
    if H * W <= _NCHW_BLOCKED_MAX_PLANE:
        # tiny planes: per-plane loops are too short; gather 16 channels into vector lanes instead
        _blocked_forward(
            x.reshape(-1),
            _nchw_strides(N, C, H, W),
            np.ascontiguousarray(w.transpose(1, 2, 0)),
            None if bias is None else b,
            N,
            C,
            H,
            W,
            sh,
            sw,
            ph,
            pw,
            Ho,
            Wo,
            out.reshape(-1),
            _nchw_strides(N, C, Ho, Wo),
        )
        return out
    Ws, size = _nchw_layout(H, W, ph, pw, KH, KW, Wo)
    _nchw_forward_kernel(
        x.reshape(N * C, H * W), H, W, w, b, sh, sw, ph, pw, Ho, Wo, Ws, size, out.reshape(N * C, Ho * Wo)
    )
    return out


def depthwise_conv2d_nchw_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """Returns (grad_x (N, C, H, W), grad_weight (C, KH, KW), grad_bias (C,) or None)."""
    N, C, H, W = x.shape
    if weight.ndim != 3 or weight.shape[0] != C:
        raise ValueError(f"weight must be (C, KH, KW) with C={C}, got {weight.shape}")
    KH, KW = weight.shape[1], weight.shape[2]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    if grad_out.shape != (N, C, Ho, Wo):
        raise ValueError(f"grad_out must be {(N, C, Ho, Wo)}, got {grad_out.shape}")
    dt = _float_dtype(x, weight, grad_out)
    x = _as(x, dt)
    w = _as(weight, dt)
    g = _as(grad_out, dt)
    gx = np.empty((N, C, H, W), dt)
    if N * C == 0:
        gw = np.zeros((C, KH, KW), dt)
        return gx, gw, (np.zeros(C, dt) if needs_bias_grad else None)
    if H * W <= _NCHW_BLOCKED_MAX_PLANE:
        gw, gb = _blocked_backward(
            x.reshape(-1),
            _nchw_strides(N, C, H, W),
            np.ascontiguousarray(w.transpose(1, 2, 0)),
            g.reshape(-1),
            _nchw_strides(N, C, Ho, Wo),
            N,
            C,
            H,
            W,
            sh,
            sw,
            ph,
            pw,
            Ho,
            Wo,
            gx.reshape(-1),
            needs_bias_grad,
        )
        return gx, np.ascontiguousarray(gw.transpose(2, 0, 1)), gb
    g2 = g.reshape(N * C, Ho * Wo)
    gx2 = gx.reshape(N * C, H * W)
    if sh == 1 and sw == 1 and ph <= KH - 1 and pw <= KW - 1:
        # grad_x = correlation of g padded by (K-1-p) with the flipped kernel
        qh, qw = KH - 1 - ph, KW - 1 - pw
        wflip = np.ascontiguousarray(w[:, ::-1, ::-1])
        Wsg, sizeg = _nchw_layout(Ho, Wo, qh, qw, KH, KW, W)
        _nchw_forward_kernel(g2, Ho, Wo, wflip, np.zeros(C, dt), 1, 1, qh, qw, H, W, Wsg, sizeg, gx2)
    else:
        Ws, size = _nchw_layout(H, W, ph, pw, KH, KW, Wo)
        _nchw_scatter_kernel(g2, Ho, Wo, w, sh, sw, ph, pw, H, W, Ws, size, gx2)
    Ws, size = _nchw_layout(H, W, ph, pw, KH, KW, Wo)
    # fixed number of plane chunks (shapes only -> deterministic), partial buffers kept under ~2 MB
    nchunk = min(N * C, 16, max(2, (1 << 21) // (8 * C * KH * KW)))
    gwp = np.zeros((nchunk, C, KH, KW), np.float64)
    gbp = np.zeros((nchunk, C), np.float64)
    _nchw_wgrad_kernel(
        x.reshape(N * C, H * W), g2, H, W, Ho, Wo, C, sh, sw, ph, pw, Ws, size, dt.type(0), gwp, gbp
    )
    gw = gwp.sum(axis=0).astype(dt)
    gb = gbp.sum(axis=0).astype(dt) if needs_bias_grad else None
    return gx, gw, gb


def _blocked_forward(x, xs, w_hwc, bias, N, C, H, W, sh, sw, ph, pw, Ho, Wo, out, os_):
    """out (flat, strides os_) = depthwise conv of x (flat, strides xs) with weight (KH, KW, C)."""
    dt = out.dtype
    KH, KW = w_hwc.shape[0], w_hwc.shape[1]
    wt = _nhwc_blocked_weight(w_hwc, dt)
    bt = np.zeros(wt.shape[0] * _LANES, dt)
    if bias is not None:
        bt[:C] = bias
    Ws = max(W + pw, Wo)
    _blocked_forward_kernel(
        x,
        xs,
        N,
        H,
        W,
        C,
        wt,
        bt.reshape(-1, _LANES),
        KH,
        KW,
        sh,
        sw,
        ph,
        pw,
        Ho,
        Wo,
        Ws,
        _row_block(N, Ho),
        out,
        os_,
    )


def _blocked_backward(x, xs, w_hwc, g, gs, N, C, H, W, sh, sw, ph, pw, Ho, Wo, gx, needs_bias_grad):
    """grad_x into gx (flat, strides xs); returns grad_w (KH, KW, C) and grad_b (C,) or None."""
    dt = gx.dtype
    KH, KW = w_hwc.shape[0], w_hwc.shape[1]
    nCB = (C + _LANES - 1) // _LANES
    if sh == 1 and sw == 1 and ph <= KH - 1 and pw <= KW - 1:
        # grad_x = correlation of g padded by (K-1-p) with the flipped kernel
        _blocked_forward(
            g,
            gs,
            np.ascontiguousarray(w_hwc[::-1, ::-1, :]),
            None,
            N,
            C,
            Ho,
            Wo,
            1,
            1,
            KH - 1 - ph,
            KW - 1 - pw,
            H,
            W,
            gx,
            xs,
        )
    else:
        wt = _nhwc_blocked_weight(w_hwc, dt)
        Ws = max(W + pw, Wo)
        bufpix = (H + 2 * ph + 1) * Ws + KW + 16
        _blocked_scatter_kernel(g, gs, N, Ho, Wo, C, wt, KH, KW, sh, sw, ph, pw, H, W, Ws, bufpix, gx, xs)
    Ws = max(W + pw, Wo)
    RB = _row_block(N, Ho)
    nchunk = min(N * (-(-Ho // RB)), 16)  # from the shapes only: deterministic sums
    gwp = np.zeros((nchunk, nCB, KH * KW, _LANES), np.float64)
    gbp = np.zeros((nchunk, nCB, _LANES), np.float64)
    _blocked_wgrad_kernel(x, xs, g, gs, N, H, W, C, KH, KW, sh, sw, ph, pw, Ho, Wo, Ws, RB, gwp, gbp)
    gw = gwp.sum(axis=0)  # (nCB, KH*KW, 16), fixed order
    gw = gw.transpose(1, 0, 2).reshape(KH * KW, nCB * _LANES)[:, :C].reshape(KH, KW, C).astype(dt)
    gb = gbp.sum(axis=0).reshape(nCB * _LANES)[:C].astype(dt) if needs_bias_grad else None
    return gw, gb


def depthwise_conv2d_nhwc_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, H, W, C), weight (KH, KW, C), bias (C,) or None -> out (N, Ho, Wo, C)."""
    N, H, W, C = x.shape
    if weight.ndim != 3 or weight.shape[2] != C:
        raise ValueError(f"weight must be (KH, KW, C) with C={C}, got {weight.shape}")
    KH, KW = weight.shape[0], weight.shape[1]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    dt = _float_dtype(x, weight, bias)
    out = np.empty((N, Ho, Wo, C), dt)
    if out.size == 0:
        return out
    b = None if bias is None else _as(bias, dt).reshape(C)
    _blocked_forward(
        _as(x, dt).reshape(-1),
        _nhwc_strides(N, H, W, C),
        _as(weight, dt),
        b,
        N,
        C,
        H,
        W,
        sh,
        sw,
        ph,
        pw,
        Ho,
        Wo,
        out.reshape(-1),
        _nhwc_strides(N, Ho, Wo, C),
    )
    return out


def depthwise_conv2d_nhwc_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """Returns (grad_x (N, H, W, C), grad_weight (KH, KW, C), grad_bias (C,) or None)."""
    N, H, W, C = x.shape
    if weight.ndim != 3 or weight.shape[2] != C:
        raise ValueError(f"weight must be (KH, KW, C) with C={C}, got {weight.shape}")
    KH, KW = weight.shape[0], weight.shape[1]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    if grad_out.shape != (N, Ho, Wo, C):
        raise ValueError(f"grad_out must be {(N, Ho, Wo, C)}, got {grad_out.shape}")
    dt = _float_dtype(x, weight, grad_out)
    gx = np.empty((N, H, W, C), dt)
    if N * C == 0:
        return gx, np.zeros((KH, KW, C), dt), (np.zeros(C, dt) if needs_bias_grad else None)
    gw, gb = _blocked_backward(
        _as(x, dt).reshape(-1),
        _nhwc_strides(N, H, W, C),
        _as(weight, dt),
        _as(grad_out, dt).reshape(-1),
        _nhwc_strides(N, Ho, Wo, C),
        N,
        C,
        H,
        W,
        sh,
        sw,
        ph,
        pw,
        Ho,
        Wo,
        gx.reshape(-1),
        needs_bias_grad,
    )
    return gx, gw, gb


# ----------------------------------------------------------------------------------------------------
# Plain references (clarity first): KH*KW shifted multiply-adds over a zero-padded array. Written against
# the array module of the input (xp: NumPy or CuPy), so they run unchanged on the GPU.
# ----------------------------------------------------------------------------------------------------


def _tap_slices(kh, kw, sh, sw, Ho, Wo):
    """Rows/cols of the padded input that tap (kh, kw) meets for every output pixel."""
    return slice(kh, kh + sh * (Ho - 1) + 1, sh), slice(kw, kw + sw * (Wo - 1) + 1, sw)


def depthwise_conv2d_nchw_forward_reference(x, weight, bias=None, stride=1, padding=0):
    N, C, H, W = x.shape
    KH, KW = weight.shape[1], weight.shape[2]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    dt = _float_dtype(x, weight, bias)
    xp = get_array_module(x, weight, bias)
    x_pad = xp.pad(xp.asarray(x, dt), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    weight = xp.asarray(weight, dt)
    out = xp.zeros((N, C, Ho, Wo), dt)
    for kh in range(KH):
        for kw in range(KW):
            rows, cols = _tap_slices(kh, kw, sh, sw, Ho, Wo)
            out += weight[:, kh, kw][None, :, None, None] * x_pad[:, :, rows, cols]
    if bias is not None:
        out += xp.asarray(bias, dt)[None, :, None, None]
    return out


def depthwise_conv2d_nchw_backward_reference(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    N, C, H, W = x.shape
    KH, KW = weight.shape[1], weight.shape[2]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    dt = _float_dtype(x, weight, grad_out)
    xp = get_array_module(x, weight, grad_out)
    x_pad = xp.pad(xp.asarray(x, dt), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    weight = xp.asarray(weight, dt)
    g = xp.asarray(grad_out, dt)
    gx_pad = xp.zeros_like(x_pad)
    gw = xp.zeros((C, KH, KW), dt)
    for kh in range(KH):
        for kw in range(KW):
            rows, cols = _tap_slices(kh, kw, sh, sw, Ho, Wo)
            gx_pad[:, :, rows, cols] += weight[:, kh, kw][None, :, None, None] * g
            gw[:, kh, kw] = (g * x_pad[:, :, rows, cols]).sum(axis=(0, 2, 3))
    gx = gx_pad[:, :, ph : ph + H, pw : pw + W].copy()
    gb = g.sum(axis=(0, 2, 3)) if needs_bias_grad else None
    return gx, gw, gb


def depthwise_conv2d_nhwc_forward_reference(x, weight, bias=None, stride=1, padding=0):
    N, H, W, C = x.shape
    KH, KW = weight.shape[0], weight.shape[1]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    dt = _float_dtype(x, weight, bias)
    xp = get_array_module(x, weight, bias)
    x_pad = xp.pad(xp.asarray(x, dt), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    weight = xp.asarray(weight, dt)
    out = xp.zeros((N, Ho, Wo, C), dt)
    for kh in range(KH):
        for kw in range(KW):
            rows, cols = _tap_slices(kh, kw, sh, sw, Ho, Wo)
            out += weight[kh, kw] * x_pad[:, rows, cols, :]
    if bias is not None:
        out += xp.asarray(bias, dt)
    return out


def depthwise_conv2d_nhwc_backward_reference(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    N, H, W, C = x.shape
    KH, KW = weight.shape[0], weight.shape[1]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    dt = _float_dtype(x, weight, grad_out)
    xp = get_array_module(x, weight, grad_out)
    x_pad = xp.pad(xp.asarray(x, dt), ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    weight = xp.asarray(weight, dt)
    g = xp.asarray(grad_out, dt)
    gx_pad = xp.zeros_like(x_pad)
    gw = xp.zeros((KH, KW, C), dt)
    for kh in range(KH):
        for kw in range(KW):
            rows, cols = _tap_slices(kh, kw, sh, sw, Ho, Wo)
            gx_pad[:, rows, cols, :] += weight[kh, kw] * g
            gw[kh, kw] = (g * x_pad[:, rows, cols, :]).sum(axis=(0, 1, 2))
    gx = gx_pad[:, ph : ph + H, pw : pw + W, :].copy()
    gb = g.sum(axis=(0, 1, 2)) if needs_bias_grad else None
    return gx, gw, gb
