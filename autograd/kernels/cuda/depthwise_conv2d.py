"""Depthwise 2-D convolution on the GPU, forward and backward, NCHW or NHWC, any stride and padding.

One KH x KW filter per channel:

    out[n, c, i, j] = bias[c] + sum_{kh, kw} w[c, kh, kw] * x[n, c, h, w],
    h = i * stride_h - pad_h + kh,  w = j * stride_w - pad_w + kw

(x is zero outside the image). Thread mapping, one thread per value it writes:

* forward: one thread per output element, KH*KW multiply-adds. Threads are numbered in the memory order
  of the output, so in NHWC neighbouring threads read neighbouring channels (coalesced loads).
* grad_x, written as a gather: one thread per input element sums w * grad_out over the taps whose output
  position (h + pad_h - kh) / stride_h, (w + pad_w - kw) / stride_w is a whole number inside the output.
  A scatter from each output would make threads add into the same inputs; the gather needs no atomics.
* grad_w, a sum over the batch and all output positions, in two steps: thread (n, tap, c) sums image n
  into its own slot of a partial buffer (in double), then ``xp.sum`` adds the N partials. grad_bias the
  same per (n, c). No atomics and no shared memory, so the emulator can run the threads one by one.

The layouts differ only in where element (n, c, h, w) and tap (c, kh, kw) live: ``element_index`` and
``weight_index`` below.
"""

from __future__ import annotations

from collections import namedtuple

from ...backend import get_array_module
from ..cpu.common import check_window_geometry, float_dtype
from .source import CudaSource

# The sizes every kernel but the bias one takes after its arrays, in this order.
ConvGeometry = namedtuple(
    "ConvGeometry",
    ["N", "C", "H", "W", "H_out", "W_out", "KH", "KW", "stride_h", "stride_w", "pad_h", "pad_w"],
)

SOURCE = CudaSource(
    "depthwise_conv2d",
    r"""
/* Index of element (n, c, h, w) of an (N, C, H, W) tensor stored NHWC (channels_last) or NCHW. */
__device__ __forceinline__ long long element_index(long long n, long long c, long long h, long long w,
                                                   long long C, long long H, long long W, int channels_last) {
    return channels_last ? ((n * H + h) * W + w) * C + c : ((n * C + c) * H + h) * W + w;
}

/* Index of tap (kh, kw) of channel c's filter: weight is (KH, KW, C) channels last, else (C, KH, KW). */
__device__ __forceinline__ long long weight_index(long long c, long long kh, long long kw, long long C,
                                                  long long KH, long long KW, int channels_last) {
    return channels_last ? (kh * KW + kw) * C + c : (c * KH + kh) * KW + kw;
}

/* Element i of an (N, C, H, W) tensor stored in the given layout, as its four coordinates. */
__device__ __forceinline__ void coordinates(long long i, long long C, long long H, long long W,
                                            int channels_last,
                                            long long* n, long long* c, long long* h, long long* w) {
    if (channels_last) {
        *c = i % C; i /= C; *w = i % W; i /= W; *h = i % H; *n = i / H;
    } else {
        *w = i % W; i /= W; *h = i % H; i /= H; *c = i % C; *n = i / C;
    }
}

extern "C" __global__ void depthwise_conv2d_forward(const scalar_t* x,
                                                    const scalar_t* weight,
                                                    const scalar_t* bias,
                                                    scalar_t* out,
                                                    long long N,
                                                    long long C,
                                                    long long H,
                                                    long long W,
                                                    long long H_out,
                                                    long long W_out,
                                                    long long KH,
                                                    long long KW,
                                                    long long stride_h,
                                                    long long stride_w,
                                                    long long pad_h,
                                                    long long pad_w,
                                                    int channels_last) {
    long long total = N * C * H_out * W_out;
    GRID_STRIDE_LOOP(i, total) {
        long long n, c, oh, ow;
        coordinates(i, C, H_out, W_out, channels_last, &n, &c, &oh, &ow);
        scalar_t acc = bias[c];
        for (long long kh = 0; kh < KH; ++kh) {
            long long h = oh * stride_h - pad_h + kh;
            if (h < 0 || h >= H) continue;
            for (long long kw = 0; kw < KW; ++kw) {
                long long w = ow * stride_w - pad_w + kw;
                if (w < 0 || w >= W) continue;
                acc += weight[weight_index(c, kh, kw, C, KH, KW, channels_last)]
                       * x[element_index(n, c, h, w, C, H, W, channels_last)];
            }
        }
        out[i] = acc;
    }
}

extern "C" __global__ void depthwise_conv2d_backward_input(const scalar_t* grad_out,
                                                           const scalar_t* weight,
                                                           scalar_t* grad_x,
                                                           long long N,
                                                           long long C,
                                                           long long H,
                                                           long long W,
                                                           long long H_out,
                                                           long long W_out,
                                                           long long KH,
                                                           long long KW,
                                                           long long stride_h,
                                                           long long stride_w,
                                                           long long pad_h,
                                                           long long pad_w,
                                                           int channels_last) {
    long long total = N * C * H * W;
    GRID_STRIDE_LOOP(i, total) {
        long long n, c, h, w;
        coordinates(i, C, H, W, channels_last, &n, &c, &h, &w);
        scalar_t acc = 0;
        for (long long kh = 0; kh < KH; ++kh) {
            long long rows = h + pad_h - kh;  /* = oh * stride_h for the output row oh this tap came from */
            if (rows < 0 || rows % stride_h != 0 || rows / stride_h >= H_out) continue;
            for (long long kw = 0; kw < KW; ++kw) {
                long long cols = w + pad_w - kw;
                if (cols < 0 || cols % stride_w != 0 || cols / stride_w >= W_out) continue;
                acc += weight[weight_index(c, kh, kw, C, KH, KW, channels_last)]
                       * grad_out[element_index(n, c, rows / stride_h, cols / stride_w, C, H_out, W_out,
                                                channels_last)];
            }
        }
        grad_x[i] = acc;
    }
}

/* partial_w[n, kh, kw, c] = sum over output pixels of image n of grad_out * x under tap (kh, kw). */
extern "C" __global__ void depthwise_conv2d_backward_weight(const scalar_t* x,
                                                            const scalar_t* grad_out,
                                                            double* partial_w,
                                                            long long N,
                                                            long long C,
                                                            long long H,
                                                            long long W,
                                                            long long H_out,
                                                            long long W_out,
                                                            long long KH,
                                                            long long KW,
                                                            long long stride_h,
                                                            long long stride_w,
                                                            long long pad_h,
                                                            long long pad_w,
                                                            int channels_last) {
    long long total = N * KH * KW * C;
    GRID_STRIDE_LOOP(t, total) {
        long long c = t % C, k = (t / C) % (KH * KW), n = t / (C * KH * KW);
        long long kh = k / KW, kw = k % KW;
        double acc = 0.0;
        for (long long oh = 0; oh < H_out; ++oh) {
            long long h = oh * stride_h - pad_h + kh;
            if (h < 0 || h >= H) continue;
            for (long long ow = 0; ow < W_out; ++ow) {
                long long w = ow * stride_w - pad_w + kw;
                if (w < 0 || w >= W) continue;
                acc += (double)grad_out[element_index(n, c, oh, ow, C, H_out, W_out, channels_last)]
                       * x[element_index(n, c, h, w, C, H, W, channels_last)];
            }
        }
        partial_w[t] = acc;
    }
}

/* partial_b[n, c] = sum over the output pixels of image n of grad_out. */
extern "C" __global__ void depthwise_conv2d_backward_bias(const scalar_t* grad_out,
                                                          double* partial_b,
                                                          long long N,
                                                          long long C,
                                                          long long H_out,
                                                          long long W_out,
                                                          int channels_last) {
    GRID_STRIDE_LOOP(t, N * C) {
        long long n = t / C, c = t % C;
        double acc = 0.0;
        for (long long oh = 0; oh < H_out; ++oh)
            for (long long ow = 0; ow < W_out; ++ow)
                acc += grad_out[element_index(n, c, oh, ow, C, H_out, W_out, channels_last)];
        partial_b[t] = acc;
    }
}
""",
)


def _geometry(x, weight, stride, padding, channels_last) -> ConvGeometry:
    """The sizes of x, weight and the output, checking that weight fits x and the stride and padding."""
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
    stride_h, stride_w, pad_h, pad_w, H_out, W_out = check_window_geometry(H, W, KH, KW, stride, padding)
    return ConvGeometry(N, C, H, W, H_out, W_out, KH, KW, stride_h, stride_w, pad_h, pad_w)


def _forward(x, weight, bias, stride, padding, channels_last):
    """The output, in the layout of x: one thread per output element."""
    xp = get_array_module(x, weight)
    geometry = _geometry(x, weight, stride, padding, channels_last)
    N, C, H_out, W_out = geometry.N, geometry.C, geometry.H_out, geometry.W_out
    dtype = float_dtype(x, weight, bias)
    bias = xp.zeros(C, dtype) if bias is None else xp.ascontiguousarray(bias, dtype=dtype).reshape(C)
    out = xp.empty((N, H_out, W_out, C) if channels_last else (N, C, H_out, W_out), dtype)
    x = xp.ascontiguousarray(x, dtype=dtype)
    weight = xp.ascontiguousarray(weight, dtype=dtype)
    SOURCE.launch(
        "depthwise_conv2d_forward", out.size, (x, weight, bias, out, *geometry, int(channels_last)), dtype
    )
    return out


def _weight_and_bias_grads(x, grad_out, geometry: ConvGeometry, needs_bias_grad, channels_last):
    """grad_w in the layout of the weight, and grad_b (or None): per-image partial sums, then ``xp.sum``."""
    xp = get_array_module(x, grad_out)
    N, C, KH, KW = geometry.N, geometry.C, geometry.KH, geometry.KW
    layout = int(channels_last)
    partial_w = xp.empty((N, KH, KW, C), xp.float64)
    SOURCE.launch(
        "depthwise_conv2d_backward_weight",
        partial_w.size,
        (x, grad_out, partial_w, *geometry, layout),
        x.dtype,
    )
    grad_w = partial_w.sum(axis=0).astype(x.dtype)  # (KH, KW, C)
    if not channels_last:
        grad_w = xp.ascontiguousarray(grad_w.transpose(2, 0, 1))  # (C, KH, KW)
    if not needs_bias_grad:
        return grad_w, None
    partial_b = xp.empty((N, C), xp.float64)
    SOURCE.launch(
        "depthwise_conv2d_backward_bias",
        partial_b.size,
        (grad_out, partial_b, N, C, geometry.H_out, geometry.W_out, layout),
        x.dtype,
    )
    return grad_w, partial_b.sum(axis=0).astype(x.dtype)


def _backward(x, weight, grad_out, stride, padding, needs_bias_grad, channels_last):
    """grad_x (a gather, one thread per input element), grad_w and grad_b (or None)."""
    xp = get_array_module(x, weight, grad_out)
    geometry = _geometry(x, weight, stride, padding, channels_last)
    dtype = float_dtype(x, weight, grad_out)
    x = xp.ascontiguousarray(x, dtype=dtype)
    grad_out = xp.ascontiguousarray(grad_out, dtype=dtype)
    weight = xp.ascontiguousarray(weight, dtype=dtype)
    grad_x = xp.empty(x.shape, dtype)
    SOURCE.launch(
        "depthwise_conv2d_backward_input",
        grad_x.size,
        (grad_out, weight, grad_x, *geometry, int(channels_last)),
        dtype,
    )
    grad_w, grad_b = _weight_and_bias_grads(x, grad_out, geometry, needs_bias_grad, channels_last)
    return grad_x, grad_w, grad_b


def depthwise_conv2d_nchw_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, C, H, W), weight (C, KH, KW), bias (C,) or None -> out (N, C, H_out, W_out)."""
    return _forward(x, weight, bias, stride, padding, channels_last=False)


def depthwise_conv2d_nchw_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """grad_x (N, C, H, W), grad_w (C, KH, KW), grad_b (C,) or None."""
    return _backward(x, weight, grad_out, stride, padding, needs_bias_grad, channels_last=False)


def depthwise_conv2d_nhwc_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, H, W, C), weight (KH, KW, C), bias (C,) or None -> out (N, H_out, W_out, C)."""
    return _forward(x, weight, bias, stride, padding, channels_last=True)


def depthwise_conv2d_nhwc_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """grad_x (N, H, W, C), grad_w (KH, KW, C), grad_b (C,) or None."""
    return _backward(x, weight, grad_out, stride, padding, needs_bias_grad, channels_last=True)
