"""Depthwise 2-D convolution on the GPU (one KH x KW filter per channel), NCHW or NHWC, any stride/padding.

    out[n, c, i, j] = bias[c] + sum_{kh, kw} w[c, kh, kw] * x[n, c, i*sh - ph + kh, j*sw - pw + kw]

(x is zero outside the image). Each of the three kernels gives one thread one output value:

* forward: a thread per output element, KH*KW multiply-adds. Threads are numbered in the memory order of
  the output, so in NHWC neighbouring threads read neighbouring channels (coalesced loads).
* grad_x, written as a gather (no atomics): a thread per input element sums w * grad_out over the taps
  whose output position (h + ph - kh) / sh, (w + pw - kw) / sw is a whole number inside the output.
* grad_w, a sum over the batch and all output positions, in two steps: thread (n, tap, c) sums image n
  into a partial buffer (in double), then ``xp.sum`` adds the N partials. grad_bias the same per (n, c).

The layouts differ only in where element (n, c, h, w) lives: ``pixel`` and ``tap`` below.
"""

from __future__ import annotations

from ...backend import get_array_module
from ..cpu.depthwise_conv2d import _check_geometry, _float_dtype
from .source import CudaSource

SOURCE = CudaSource(
    "depthwise_conv2d",
    r"""
__device__ __forceinline__ long long pixel(long long n, long long c, long long h, long long w,
                                           long long C, long long H, long long W, int channels_last) {
    return channels_last ? ((n * H + h) * W + w) * C + c : ((n * C + c) * H + h) * W + w;
}

__device__ __forceinline__ long long tap(long long c, long long kh, long long kw, long long C, long long KH,
                                         long long KW, int channels_last) {
    return channels_last ? (kh * KW + kw) * C + c : (c * KH + kh) * KW + kw;
}

/* Element i of an (N, C, H, W) tensor stored in the given layout, as its four coordinates. */
__device__ __forceinline__ void coordinates(long long i, long long C, long long H, long long W, int channels_last,
                                            long long* n, long long* c, long long* h, long long* w) {
    if (channels_last) {
        *c = i % C; i /= C; *w = i % W; i /= W; *h = i % H; *n = i / H;
    } else {
        *w = i % W; i /= W; *h = i % H; i /= H; *c = i % C; *n = i / C;
    }
}

extern "C" __global__ void depthwise_forward(const scalar_t* x, const scalar_t* weight, const scalar_t* bias,
                                             scalar_t* out, long long N, long long C, long long H, long long W,
                                             long long Ho, long long Wo, long long KH, long long KW,
                                             long long sh, long long sw, long long ph, long long pw,
                                             int channels_last) {
    long long total = N * C * Ho * Wo;
    GRID_STRIDE_LOOP(i, total) {
        long long n, c, oh, ow;
        coordinates(i, C, Ho, Wo, channels_last, &n, &c, &oh, &ow);
        scalar_t acc = bias[c];
        for (long long kh = 0; kh < KH; ++kh) {
            long long h = oh * sh - ph + kh;
            if (h < 0 || h >= H) continue;
            for (long long kw = 0; kw < KW; ++kw) {
                long long w = ow * sw - pw + kw;
                if (w < 0 || w >= W) continue;
                acc += weight[tap(c, kh, kw, C, KH, KW, channels_last)] * x[pixel(n, c, h, w, C, H, W, channels_last)];
            }
        }
        out[i] = acc;
    }
}

extern "C" __global__ void depthwise_backward_input(const scalar_t* grad_out, const scalar_t* weight,
                                                    scalar_t* grad_x, long long N, long long C, long long H,
                                                    long long W, long long Ho, long long Wo, long long KH,
                                                    long long KW, long long sh, long long sw, long long ph,
                                                    long long pw, int channels_last) {
    long long total = N * C * H * W;
    GRID_STRIDE_LOOP(i, total) {
        long long n, c, h, w;
        coordinates(i, C, H, W, channels_last, &n, &c, &h, &w);
        scalar_t acc = 0;
        for (long long kh = 0; kh < KH; ++kh) {
            long long rows = h + ph - kh;           /* = oh * sh for the output row this tap came from */
            if (rows < 0 || rows % sh != 0 || rows / sh >= Ho) continue;
            for (long long kw = 0; kw < KW; ++kw) {
                long long cols = w + pw - kw;
                if (cols < 0 || cols % sw != 0 || cols / sw >= Wo) continue;
                acc += weight[tap(c, kh, kw, C, KH, KW, channels_last)]
                       * grad_out[pixel(n, c, rows / sh, cols / sw, C, Ho, Wo, channels_last)];
            }
        }
        grad_x[i] = acc;
    }
}

/* partial_w[n, kh, kw, c] = sum over output pixels of image n of grad_out * x under tap (kh, kw). */
extern "C" __global__ void depthwise_backward_weight(const scalar_t* x, const scalar_t* grad_out, double* partial_w,
                                                     long long N, long long C, long long H, long long W,
                                                     long long Ho, long long Wo, long long KH, long long KW,
                                                     long long sh, long long sw, long long ph, long long pw,
                                                     int channels_last) {
    long long total = N * KH * KW * C;
    GRID_STRIDE_LOOP(t, total) {
        long long c = t % C, k = (t / C) % (KH * KW), n = t / (C * KH * KW);
        long long kh = k / KW, kw = k % KW;
        double acc = 0.0;
        for (long long oh = 0; oh < Ho; ++oh) {
            long long h = oh * sh - ph + kh;
            if (h < 0 || h >= H) continue;
            for (long long ow = 0; ow < Wo; ++ow) {
                long long w = ow * sw - pw + kw;
                if (w < 0 || w >= W) continue;
                acc += (double)grad_out[pixel(n, c, oh, ow, C, Ho, Wo, channels_last)]
                       * x[pixel(n, c, h, w, C, H, W, channels_last)];
            }
        }
        partial_w[t] = acc;
    }
}

/* partial_b[n, c] = sum over the output pixels of image n of grad_out. */
extern "C" __global__ void depthwise_backward_bias(const scalar_t* grad_out, double* partial_b, long long N,
                                                   long long C, long long Ho, long long Wo, int channels_last) {
    GRID_STRIDE_LOOP(t, N * C) {
        long long n = t / C, c = t % C;
        double acc = 0.0;
        for (long long oh = 0; oh < Ho; ++oh)
            for (long long ow = 0; ow < Wo; ++ow)
                acc += grad_out[pixel(n, c, oh, ow, C, Ho, Wo, channels_last)];
        partial_b[t] = acc;
    }
}
""",
)


def _geometry(x, weight, stride, padding, channels_last):
    """(N, C, H, W, KH, KW) and the stride/padding/output size, checking that weight fits x."""
    if channels_last:
        N, H, W, C = x.shape
        if weight.ndim != 3 or weight.shape[2] != C:
            raise ValueError(f"weight must be (KH, KW, C) with C={C}, got {weight.shape}")
        KH, KW = weight.shape[:2]
    else:
        N, C, H, W = x.shape
        if weight.ndim != 3 or weight.shape[0] != C:
            raise ValueError(f"weight must be (C, KH, KW) with C={C}, got {weight.shape}")
        KH, KW = weight.shape[1:]
    sh, sw, ph, pw, Ho, Wo = _check_geometry(H, W, KH, KW, stride, padding)
    return (N, C, H, W, Ho, Wo, KH, KW, sh, sw, ph, pw)


def _forward(x, weight, bias, stride, padding, channels_last):
    xp = get_array_module(x, weight)
    geometry = _geometry(x, weight, stride, padding, channels_last)
    N, C, H, W, Ho, Wo = geometry[:6]
    dt = _float_dtype(x, weight, bias)
    b = xp.zeros(C, dt) if bias is None else xp.ascontiguousarray(bias, dtype=dt).reshape(C)
    out = xp.empty((N, Ho, Wo, C) if channels_last else (N, C, Ho, Wo), dt)
    SOURCE.launch(
        "depthwise_forward",
        out.size,
        (xp.ascontiguousarray(x, dtype=dt), xp.ascontiguousarray(weight, dtype=dt), b, out)
        + geometry
        + (int(channels_last),),
        dt,
    )
    return out


def _backward(x, weight, grad_out, stride, padding, needs_bias_grad, channels_last):
    xp = get_array_module(x, weight, grad_out)
    geometry = _geometry(x, weight, stride, padding, channels_last)
    N, C, H, W, Ho, Wo, KH, KW = geometry[:8]
    dt = _float_dtype(x, weight, grad_out)
    x = xp.ascontiguousarray(x, dtype=dt)
    g = xp.ascontiguousarray(grad_out, dtype=dt)
    layout = (int(channels_last),)
    grad_x = xp.empty(x.shape, dt)
    SOURCE.launch(
        "depthwise_backward_input",
        grad_x.size,
        (g, xp.ascontiguousarray(weight, dtype=dt), grad_x) + geometry + layout,
        dt,
    )
    partial_w = xp.empty((N, KH, KW, C), xp.float64)
    SOURCE.launch("depthwise_backward_weight", partial_w.size, (x, g, partial_w) + geometry + layout, dt)
    grad_w = partial_w.sum(axis=0).astype(dt)  # (KH, KW, C)
    if not channels_last:
        grad_w = xp.ascontiguousarray(grad_w.transpose(2, 0, 1))  # (C, KH, KW)
    grad_b = None
    if needs_bias_grad:
        partial_b = xp.empty((N, C), xp.float64)
        SOURCE.launch("depthwise_backward_bias", partial_b.size, (g, partial_b, N, C, Ho, Wo) + layout, dt)
        grad_b = partial_b.sum(axis=0).astype(dt)
    return grad_x, grad_w, grad_b


def depthwise_conv2d_nchw_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, C, H, W), weight (C, KH, KW), bias (C,) or None -> out (N, C, Ho, Wo)."""
    return _forward(x, weight, bias, stride, padding, channels_last=False)


def depthwise_conv2d_nchw_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """grad_x (N, C, H, W), grad_w (C, KH, KW), grad_b (C,) or None."""
    return _backward(x, weight, grad_out, stride, padding, needs_bias_grad, channels_last=False)


def depthwise_conv2d_nhwc_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, H, W, C), weight (KH, KW, C), bias (C,) or None -> out (N, Ho, Wo, C)."""
    return _forward(x, weight, bias, stride, padding, channels_last=True)


def depthwise_conv2d_nhwc_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """grad_x (N, H, W, C), grad_w (KH, KW, C), grad_b (C,) or None."""
    return _backward(x, weight, grad_out, stride, padding, needs_bias_grad, channels_last=True)
