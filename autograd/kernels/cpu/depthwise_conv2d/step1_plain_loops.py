"""Depthwise conv, step 1: plain loops, the formula as written (Numba, one thread, no tricks).

Every output pixel is a sum over the KH x KW taps that fall inside the image (the zero padding is a
bounds test). The backward runs the same loops once and pushes each grad_out value to the inputs it came
from (grad_x), to the weights it met (grad_w) and to the bias (grad_b). grad_w and grad_b are summed in
float64, then rounded to the input's dtype.
"""

import numpy as np
from numba import njit

from .geometry import nhwc_backward_arguments, nhwc_forward_arguments, zero_weight_grads


@njit(cache=True)
def forward_row(x, weight, bias, geometry, n, i, out):
    """Output row i of image n:
    out[n, i, j, c] = bias[c] + sum_{kh, kw} weight[kh, kw, c] * x[n, i*sh - ph + kh, j*sw - pw + kw, c]."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    for j in range(Wo):
        for c in range(C):
            total = bias[c]
            for kh in range(KH):
                r = i * sh - ph + kh
                if r < 0 or r >= H:
                    continue
                for kw in range(KW):
                    col = j * sw - pw + kw
                    if 0 <= col < W:
                        total += weight[kh, kw, c] * x[n, r, col, c]
            out[n, i, j, c] = total


@njit(cache=True)
def forward_loops(x, weight, bias, geometry, out):
    for n in range(geometry.N):
        for i in range(geometry.Ho):
            forward_row(x, weight, bias, geometry, n, i, out)


@njit(cache=True)
def backward_loops(x, weight, grad_out, geometry, grad_x, grad_w, grad_b):
    """grad_x (zeroed) += weight * g at every tap; grad_w, grad_b (float64, zeroed) += the sums."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    for n in range(N):
        for i in range(Ho):
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
                                grad_x[n, r, col, c] += weight[kh, kw, c] * g
                                grad_w[kh, kw, c] += g * x[n, r, col, c]


def depthwise_conv2d_nhwc_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, H, W, C), weight (KH, KW, C), bias (C,) or None -> out (N, Ho, Wo, C)."""
    geometry, x, weight, bias, out = nhwc_forward_arguments(x, weight, bias, stride, padding)
    if out.size:
        bias = np.zeros(geometry.C, out.dtype) if bias is None else bias
        forward_loops(x, weight, bias, geometry, out)
    return out


def depthwise_conv2d_nhwc_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """Returns (grad_x (N, H, W, C), grad_weight (KH, KW, C), grad_bias (C,) or None)."""
    geometry, x, weight, grad_out, grad_x = nhwc_backward_arguments(x, weight, grad_out, stride, padding)
    if geometry.N * geometry.C == 0:
        return (grad_x, *zero_weight_grads(weight.shape, geometry.C, grad_x.dtype, needs_bias_grad))
    grad_x[:] = 0
    grad_w = np.zeros(weight.shape, np.float64)
    grad_b = np.zeros(geometry.C, np.float64)
    backward_loops(x, weight, grad_out, geometry, grad_x, grad_w, grad_b)
    dtype = grad_x.dtype
    return grad_x, grad_w.astype(dtype), (grad_b.astype(dtype) if needs_bias_grad else None)
