"""2-D max pooling over NCHW planes: a Numba CPU kernel beside its plain reference (which runs on NumPy
and CuPy arrays alike: it takes the array module of its inputs).

    y[n, c, i, j] = max over the KH x KW window at (i sh - ph, j sw - pw) of x[n, c]   (padding never wins)

The forward also records, for every output, which input of its plane held the maximum (``winner``, the
flat index r * W + c within the H x W plane; the first maximal tap in row-major order, a NaN counting as
the maximum, as ``numpy.argmax``). Backward sends each output's gradient to that input alone:

    dx[n, c, r] = sum over the outputs (i, j) whose winner is r of dy[n, c, i, j]

Windows overlap when the stride is smaller than the kernel (ResNet's 3x3/s2 pool), so one input may win
several windows: the Numba kernel adds them plane by plane in a fixed order (one task per plane), so the
result is deterministic.
"""

import numpy as np
from numba import njit, prange

from autograd.backend import get_array_module
from autograd.nn.functional.conv import _sliding_windows  # every window as a strided view, as conv2d


def _output_size(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


@njit(parallel=True, cache=True, fastmath=False)
def _max_pool_forward(x, kh, kw, sh, sw, ph, pw, y, winner):
    planes, height, width = x.shape
    out_h, out_w = y.shape[1], y.shape[2]
    for p in prange(planes):
        for i in range(out_h):
            top = i * sh - ph
            for j in range(out_w):
                left = j * sw - pw
                best = x[p, 0, 0]
                index = -1
                for u in range(kh):
                    r = top + u
                    if r < 0 or r >= height:
                        continue
                    for v in range(kw):
                        c = left + v
                        if c < 0 or c >= width:
                            continue
                        value = x[p, r, c]
                        if index < 0 or (not np.isnan(best) and (value > best or np.isnan(value))):
                            best = value
                            index = r * width + c
                y[p, i, j] = best
                winner[p, i, j] = index


@njit(parallel=True, cache=True, fastmath=False)
def _max_pool_backward(grad_y, winner, grad_x):
    planes, out_h, out_w = grad_y.shape
    for p in prange(planes):
        plane = grad_x[p]
        for i in range(out_h):
            for j in range(out_w):
                plane[winner[p, i, j]] += grad_y[p, i, j]


def max_pool2d_forward(x, kernel, stride, padding):
    """Max pooling of x (N, C, H, W), any strides.

    Args:
        kernel, stride, padding: (KH, KW), (SH, SW), (PH, PW); padding at most half the kernel, so that
            every window holds at least one input.

    Returns:
        y (N, C, Ho, Wo) in the dtype of x, and winner (N, C, Ho, Wo) int32: the flat index in its H x W
        plane of each output's maximum.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = _output_size(h, kh, sh, ph), _output_size(w, kw, sw, pw)
    x3 = np.ascontiguousarray(x).reshape(n * c, h, w)
    y = np.empty((n * c, ho, wo), x3.dtype)
    winner = np.empty((n * c, ho, wo), np.int32)
    _max_pool_forward(x3, kh, kw, sh, sw, ph, pw, y, winner)
    return y.reshape(n, c, ho, wo), winner.reshape(n, c, ho, wo)


def max_pool2d_backward(grad_y, winner, x_shape, kernel=None, stride=None, padding=None):
    """dx (x_shape) from dy (N, C, Ho, Wo) and the forward's ``winner`` (the geometry is not needed here;
    the reference takes it)."""
    n, c, h, w = x_shape
    ho, wo = grad_y.shape[2:]
    grad_x = np.zeros((n * c, h * w), grad_y.dtype)
    _max_pool_backward(
        np.ascontiguousarray(grad_y).reshape(n * c, ho, wo), winner.reshape(n * c, ho, wo), grad_x
    )
    return grad_x.reshape(x_shape)


# --------------------------------------------------------------------------------------------------------
# Plain reference (NumPy or CuPy): every window as a strided view, argmax over its taps
# --------------------------------------------------------------------------------------------------------


def _window_origins(xp, ho, wo, sh, sw, ph, pw):
    """Row and column of each window's top-left tap, broadcastable against (N, C, Ho, Wo)."""
    return (xp.arange(ho) * sh - ph)[:, None], (xp.arange(wo) * sw - pw)[None, :]


def max_pool2d_forward_reference(x, kernel, stride, padding):
    """Plain twin of max_pool2d_forward."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    h, w = x.shape[2:]
    x_pad = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf) if ph or pw else x
    windows = _sliding_windows(xp, x_pad, kh, kw, sh, sw)  # (N, C, Ho, Wo, KH, KW)
    ho, wo = windows.shape[2:4]
    flat = windows.reshape(windows.shape[:4] + (kh * kw,))
    tap = flat.argmax(axis=-1)  # the first maximal tap
    top, left = _window_origins(xp, ho, wo, sh, sw, ph, pw)
    row, col = top + tap // kw, left + tap % kw
    # Only where every real input of a window is -inf can a padded tap (-inf too) come first: take the
    # window's first real tap then, as the kernel does.
    padded = (row < 0) | (row >= h) | (col < 0) | (col >= w)
    row, col = xp.where(padded, xp.maximum(top, 0), row), xp.where(padded, xp.maximum(left, 0), col)
    y = xp.take_along_axis(flat, tap[..., None], axis=-1)[..., 0]
    return y, (row * w + col).astype(xp.int32)


def max_pool2d_backward_reference(grad_y, winner, x_shape, kernel, stride, padding):
    """Plain twin of max_pool2d_backward: each output's gradient goes to its winning tap, and every tap
    (u, v) of every window is added back where it was read."""
    xp = get_array_module(grad_y, winner)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x_shape
    ho, wo = grad_y.shape[2:]
    top, left = _window_origins(xp, ho, wo, sh, sw, ph, pw)
    tap = (winner // w - top) * kw + winner % w - left
    grad_pad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), grad_y.dtype)
    for u in range(kh):
        for v in range(kw):
            grad_pad[:, :, u : u + sh * ho : sh, v : v + sw * wo : sw] += xp.where(
                tap == u * kw + v, grad_y, 0
            )
    return grad_pad[:, :, ph : ph + h, pw : pw + w]
