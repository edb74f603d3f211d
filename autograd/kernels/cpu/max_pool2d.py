"""2-D max pooling, steps 1-2: plain loops, then one task per plane across threads (the one in use).

Over NCHW planes (the plain math, which both steps are tested against, is the op's own body: ``MaxPool2d``
in ``autograd/nn/functional/pooling.py``):

    y[n, c, i, j] = max over the KH x KW window at (i sh - ph, j sw - pw) of x[n, c]   (padding never wins)

The forward also records, for every output, which input of its plane held the maximum (``winner``, the
flat index r * W + c within the H x W plane; the first maximal tap in row-major order, a NaN counting as
the maximum, as ``numpy.argmax``). Backward sends each output's gradient to that input alone:

    dx[n, c, r] = sum over the outputs (i, j) whose winner is r of dy[n, c, i, j]

Windows overlap when the stride is smaller than the kernel (ResNet's 3x3/s2 pool), so one input may win
several windows, and its gradients are added up.

The steps (``STEPS``, in story order; both implement max_pool2d_forward and max_pool2d_backward, with
the signatures of the public functions):
1 plain loops             the formula as four nested loops over (n, c, i, j) and the window's taps, and
                          the backward's scatter, on one thread.
2 planes across threads   the (N, C) planes as one flat loop, one plane per task, over Numba's threads
                          (prange). A plane's scatter is done by one task alone, in a fixed order: the
                          gradients that land on one input are added in the same order on any number
                          of threads, so the result is deterministic, without atomics. The public
                          functions are step 2's.
"""

from types import SimpleNamespace

import numpy as np
from numba import njit, prange

from autograd.kernels.cpu.common import check_window_geometry, pair


def _geometry(x_shape, kernel, stride, padding):
    """The window as three pairs of ints (kernel, stride, padding), and the output's height and width."""
    kernel = pair(kernel, "kernel")
    sh, sw, ph, pw, ho, wo = check_window_geometry(
        x_shape[2], x_shape[3], kernel[0], kernel[1], stride, padding
    )
    return (kernel, (sh, sw), (ph, pw)), ho, wo


# --------------------------------------------------------------------------------------------------------
# Step 1: plain loops
# --------------------------------------------------------------------------------------------------------


@njit(cache=True)
def _forward_plain_loops(x, kernel, stride, padding, y, winner):
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
    batch, channels, height, width = x.shape
    for n in range(batch):
        for c in range(channels):
            for i in range(y.shape[2]):
                for j in range(y.shape[3]):
                    best = x[n, c, 0, 0]
                    index = -1
                    for u in range(kh):
                        for v in range(kw):
                            row, col = i * sh - ph + u, j * sw - pw + v
                            if row < 0 or row >= height or col < 0 or col >= width:
                                continue  # padding
                            value = x[n, c, row, col]
                            if index < 0 or (not np.isnan(best) and (value > best or np.isnan(value))):
                                best = value
                                index = row * width + col
                    y[n, c, i, j] = best
                    winner[n, c, i, j] = index


@njit(cache=True)
def _backward_plain_loops(grad_y, winner, grad_x):
    batch, channels, out_h, out_w = grad_y.shape
    width = grad_x.shape[3]
    for n in range(batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    index = winner[n, c, i, j]
                    grad_x[n, c, index // width, index % width] += grad_y[n, c, i, j]


def _max_pool2d_forward_plain_loops(x, kernel, stride, padding):
    window, ho, wo = _geometry(x.shape, kernel, stride, padding)
    x = np.ascontiguousarray(x)
    y = np.empty(x.shape[:2] + (ho, wo), x.dtype)
    winner = np.empty(x.shape[:2] + (ho, wo), np.int32)
    _forward_plain_loops(x, *window, y, winner)
    return y, winner


def _max_pool2d_backward_plain_loops(grad_y, winner, x_shape, kernel=None, stride=None, padding=None):
    grad_x = np.zeros(x_shape, grad_y.dtype)
    _backward_plain_loops(np.ascontiguousarray(grad_y), np.ascontiguousarray(winner), grad_x)
    return grad_x


# --------------------------------------------------------------------------------------------------------
# Step 2: planes across threads (the public functions)
# --------------------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True, fastmath=False)
def _forward_planes_parallel(x, kernel, stride, padding, y, winner):
    """x (planes, H, W); one task per plane."""
    kh, kw = kernel
    sh, sw = stride
    ph, pw = padding
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
def _backward_planes_parallel(grad_y, winner, grad_x):
    """grad_x (planes, H * W), zeros on entry; one task per plane adds up its plane's gradients."""
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
    window, ho, wo = _geometry(x.shape, kernel, stride, padding)
    x3 = np.ascontiguousarray(x).reshape(n * c, h, w)
    y = np.empty((n * c, ho, wo), x3.dtype)
    winner = np.empty((n * c, ho, wo), np.int32)
    _forward_planes_parallel(x3, *window, y, winner)
    return y.reshape(n, c, ho, wo), winner.reshape(n, c, ho, wo)


def max_pool2d_backward(grad_y, winner, x_shape, kernel=None, stride=None, padding=None):
    """dx (x_shape) from dy (N, C, Ho, Wo) and the forward's ``winner`` (the geometry is not needed here;
    the op passes it, as the CUDA kernel's signature has it)."""
    n, c, h, w = x_shape
    ho, wo = grad_y.shape[2:]
    grad_x = np.zeros((n * c, h * w), grad_y.dtype)
    _backward_planes_parallel(
        np.ascontiguousarray(grad_y).reshape(n * c, ho, wo), winner.reshape(n * c, ho, wo), grad_x
    )
    return grad_x.reshape(x_shape)


STEPS = {
    "1 plain loops": SimpleNamespace(
        max_pool2d_forward=_max_pool2d_forward_plain_loops,
        max_pool2d_backward=_max_pool2d_backward_plain_loops,
    ),
    "2 planes across threads": SimpleNamespace(
        max_pool2d_forward=max_pool2d_forward, max_pool2d_backward=max_pool2d_backward
    ),
}
