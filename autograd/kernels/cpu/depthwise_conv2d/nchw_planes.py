"""Depthwise conv, the NCHW layout: one (n, c) plane at a time (the public NCHW entry points).

In NCHW a channel's image is one contiguous H x W plane, so the natural unit of work is a plane with
its scalar weights. A task (a chunk of planes) copies each plane into a flat zeroed buffer with row stride
S = max(W + pw, Wo): the "wide row" trick of step 3, here in one dimension, so for stride 1 every tap is a
constant shift of one long loop over the plane (nchw_plane_loops fuses the taps of a kernel row into it).
grad_x for stride 1 and padding <= K-1 is the same correlation, of grad_out with the flipped kernel;
other strides scatter. grad_w: per plane, dot products of the wide grad_out plane with the shifted
input plane, added to each chunk's float64 partial buffers (summed afterwards in a fixed order).

Planes of at most 64 pixels make loops too short to vectorise: those inputs go to the 16-channel-block
kernels of step 4 instead, with NCHW element strides.
"""

import numpy as np
from numba import njit, prange

from ..common import check_window_geometry, float_dtype
from .geometry import CONTRACT, CONTRACT_REASSOC, Geometry, contiguous, zero_weight_grads
from .nchw_plane_loops import copy_run, strided_correlation, sum_float64, wide_correlation, wide_weight_grad
from .step4_backward import blocked_grad_x, blocked_weight_grads
from .step4_forward import blocked_forward, nchw_element_strides

# NCHW inputs whose planes have at most this many pixels use the 16-channel-block kernels of step 4.
BLOCKED_MAX_PLANE = 64


def plane_buffer_layout(H, W, ph, pw, KH, KW, Wo):
    """(row stride, size) of the flat padded plane buffer (pw zero columns shared between rows)."""
    row_stride = max(W + pw, Wo)
    return row_stride, (H + 2 * ph + 1) * row_stride + KW + Wo + 16


@njit(cache=True, fastmath=CONTRACT, inline="always")
def copy_plane_in(buffer, plane, geometry, row_stride):
    """The H x W plane into the zeroed padded buffer (rows row_stride apart, ph rows and pw columns in)."""
    H, W, ph, pw = geometry.H, geometry.W, geometry.ph, geometry.pw
    for r in range(H):
        copy_run(buffer, (r + ph) * row_stride + pw, plane, r * W, W)


@njit(parallel=True, cache=True, fastmath=CONTRACT)
def plane_forward_kernel(planes, weight, bias, geometry, buffer_layout, out_planes):
    """out_planes[p] = correlation of planes[p] (channel p % C) with weight[c], plus bias[c]; the planes
    are cut into at most 64 chunks."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    row_stride, buffer_size = buffer_layout
    count = planes.shape[0]
    chunks = min(count, 64)
    stride1 = sh == 1 and sw == 1
    length = Ho * row_stride if stride1 else Ho * Wo
    for k in prange(chunks):
        buffer = np.zeros(buffer_size, planes.dtype)
        acc = np.empty(length, planes.dtype)
        for p in range(k * count // chunks, (k + 1) * count // chunks):
            c = p % C
            copy_plane_in(buffer, planes[p], geometry, row_stride)
            out = out_planes[p]
            if stride1:
                wide_correlation(acc, buffer, weight[c], row_stride, length, bias[c])
                for i in range(Ho):
                    copy_run(out, i * Wo, acc, i * row_stride, Wo)
            else:
                acc[:] = bias[c]
                strided_correlation(acc, buffer, weight[c], row_stride, sh, sw, Ho, Wo)
                copy_run(out, 0, acc, 0, length)


@njit(parallel=True, cache=True, fastmath=CONTRACT)
def plane_scatter_kernel(g_planes, weight, geometry, buffer_layout, grad_x_planes):
    """grad_x by scattering weight * g into a padded plane (any stride / padding)."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    row_stride, buffer_size = buffer_layout
    count = g_planes.shape[0]
    chunks = min(count, 64)
    for k in prange(chunks):
        buffer = np.empty(buffer_size, g_planes.dtype)
        for p in range(k * count // chunks, (k + 1) * count // chunks):
            c = p % C
            g_plane = g_planes[p]
            buffer[:] = 0
            for i in range(Ho):
                g_row = g_plane[i * Wo : (i + 1) * Wo]
                for kh in range(KH):
                    for kw in range(KW):
                        wv = weight[c, kh, kw]
                        dst = buffer[(i * sh + kh) * row_stride + kw :]
                        for j in range(Wo):
                            dst[j * sw] += wv * g_row[j]
            out = grad_x_planes[p]
            for r in range(H):
                copy_run(out, r * W, buffer, (r + ph) * row_stride + pw, W)


@njit(parallel=True, cache=True, fastmath=CONTRACT_REASSOC)
def plane_weight_grad_kernel(planes, g_planes, geometry, buffer_layout, zero, grad_w_partial, grad_b_partial):
    """Partial weight/bias gradients. The (n, c) planes, in memory order, are split into
    grad_w_partial.shape[0] fixed chunks; chunk k adds into its own float64 buffers grad_w_partial[k]
    (C, KH, KW) and grad_b_partial[k] (C,)."""
    N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo = geometry
    row_stride, buffer_size = buffer_layout
    count = planes.shape[0]
    chunks = grad_w_partial.shape[0]
    stride1 = sh == 1 and sw == 1
    length = Ho * row_stride
    for k in prange(chunks):
        buffer = np.zeros(buffer_size, planes.dtype)
        g_wide = np.zeros(length + 8, planes.dtype)
        for p in range(k * count // chunks, (k + 1) * count // chunks):
            c = p % C
            grad_w = grad_w_partial[k, c]
            g_plane = g_planes[p]
            copy_plane_in(buffer, planes[p], geometry, row_stride)
            grad_b_partial[k, c] += sum_float64(g_plane, Ho * Wo)
            if stride1:
                for i in range(Ho):
                    copy_run(g_wide, i * row_stride, g_plane, i * Wo, Wo)
                wide_weight_grad(grad_w, g_wide, buffer, row_stride, length, zero)
            else:
                for kh in range(KH):
                    for kw in range(KW):
                        s = 0.0
                        for i in range(Ho):
                            g_row = g_plane[i * Wo : (i + 1) * Wo]
                            x_row = buffer[(i * sh + kh) * row_stride + kw :]
                            for j in range(Wo):
                                s += g_row[j] * x_row[j * sw]
                        grad_w[kh, kw] += s


def nchw_geometry(x, weight, stride, padding):
    """x (N, C, H, W) and weight (C, KH, KW) -> Geometry (raises ValueError on a mismatch)."""
    N, C, H, W = x.shape
    if weight.ndim != 3 or weight.shape[0] != C:
        raise ValueError(f"weight must be (C, KH, KW) with C={C}, got {weight.shape}")
    KH, KW = weight.shape[1], weight.shape[2]
    sh, sw, ph, pw, Ho, Wo = check_window_geometry(H, W, KH, KW, stride, padding)
    return Geometry(N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo)


def depthwise_conv2d_nchw_forward(x, weight, bias=None, stride=1, padding=0):
    """x (N, C, H, W), weight (C, KH, KW), bias (C,) or None -> out (N, C, Ho, Wo)."""
    g = nchw_geometry(x, weight, stride, padding)
    dtype = float_dtype(x, weight, bias)
    x, w = contiguous(x, dtype), contiguous(weight, dtype)
    b = np.zeros(g.C, dtype) if bias is None else contiguous(bias, dtype).reshape(g.C)
    out = np.empty((g.N, g.C, g.Ho, g.Wo), dtype)
    if out.size == 0:
        return out
    if g.H * g.W <= BLOCKED_MAX_PLANE:
        # tiny planes: per-plane loops are too short; gather 16 channels into vector lanes instead
        x_strides = nchw_element_strides(g.N, g.C, g.H, g.W)
        out_strides = nchw_element_strides(g.N, g.C, g.Ho, g.Wo)
        w_hwc = np.ascontiguousarray(w.transpose(1, 2, 0))
        blocked_forward(
            x.reshape(-1), x_strides, w_hwc, None if bias is None else b, g, out.reshape(-1), out_strides
        )
        return out
    layout = plane_buffer_layout(g.H, g.W, g.ph, g.pw, g.KH, g.KW, g.Wo)
    plane_forward_kernel(
        x.reshape(g.N * g.C, g.H * g.W), w, b, g, layout, out.reshape(g.N * g.C, g.Ho * g.Wo)
    )
    return out


def _tiny_plane_backward(x, w, grad_out, g, grad_x, needs_bias_grad):
    """The 16-channel-block kernels of step 4 on NCHW arrays; returns (grad_w (C, KH, KW), grad_b)."""
    x_strides = nchw_element_strides(g.N, g.C, g.H, g.W)
    g_strides = nchw_element_strides(g.N, g.C, g.Ho, g.Wo)
    x_flat, g_flat = x.reshape(-1), grad_out.reshape(-1)
    blocked_grad_x(
        g_flat, g_strides, np.ascontiguousarray(w.transpose(1, 2, 0)), g, grad_x.reshape(-1), x_strides
    )
    grad_w, grad_b = blocked_weight_grads(
        x_flat, x_strides, g_flat, g_strides, g, grad_x.dtype, needs_bias_grad
    )
    return np.ascontiguousarray(grad_w.transpose(2, 0, 1)), grad_b


def _plane_grad_x(w, g_planes, g, grad_x_planes):
    if g.sh == 1 and g.sw == 1 and g.ph <= g.KH - 1 and g.pw <= g.KW - 1:
        # grad_x = correlation of g padded by (K-1-p) with the flipped kernel
        qh, qw = g.KH - 1 - g.ph, g.KW - 1 - g.pw
        full = Geometry(g.N, g.C, g.Ho, g.Wo, g.KH, g.KW, 1, 1, qh, qw, g.H, g.W)
        wflip = np.ascontiguousarray(w[:, ::-1, ::-1])
        layout = plane_buffer_layout(g.Ho, g.Wo, qh, qw, g.KH, g.KW, g.W)
        plane_forward_kernel(g_planes, wflip, np.zeros(g.C, w.dtype), full, layout, grad_x_planes)
    else:
        layout = plane_buffer_layout(g.H, g.W, g.ph, g.pw, g.KH, g.KW, g.Wo)
        plane_scatter_kernel(g_planes, w, g, layout, grad_x_planes)


def _plane_weight_grads(x_planes, g_planes, g, dtype, needs_bias_grad):
    layout = plane_buffer_layout(g.H, g.W, g.ph, g.pw, g.KH, g.KW, g.Wo)
    # fixed number of plane chunks (shapes only -> deterministic), partial buffers kept under ~2 MB
    chunks = min(g.N * g.C, 16, max(2, (1 << 21) // (8 * g.C * g.KH * g.KW)))
    grad_w_partial = np.zeros((chunks, g.C, g.KH, g.KW), np.float64)
    grad_b_partial = np.zeros((chunks, g.C), np.float64)
    plane_weight_grad_kernel(x_planes, g_planes, g, layout, dtype.type(0), grad_w_partial, grad_b_partial)
    grad_w = grad_w_partial.sum(axis=0).astype(dtype)
    return grad_w, (grad_b_partial.sum(axis=0).astype(dtype) if needs_bias_grad else None)


def depthwise_conv2d_nchw_backward(x, weight, grad_out, stride=1, padding=0, needs_bias_grad=True):
    """Returns (grad_x (N, C, H, W), grad_weight (C, KH, KW), grad_bias (C,) or None)."""
    g = nchw_geometry(x, weight, stride, padding)
    if grad_out.shape != (g.N, g.C, g.Ho, g.Wo):
        raise ValueError(f"grad_out must be {(g.N, g.C, g.Ho, g.Wo)}, got {grad_out.shape}")
    dtype = float_dtype(x, weight, grad_out)
    x, w, grad_out = contiguous(x, dtype), contiguous(weight, dtype), contiguous(grad_out, dtype)
    grad_x = np.empty((g.N, g.C, g.H, g.W), dtype)
    if g.N * g.C == 0:
        return (grad_x, *zero_weight_grads((g.C, g.KH, g.KW), g.C, dtype, needs_bias_grad))
    if g.H * g.W <= BLOCKED_MAX_PLANE:
        return (grad_x, *_tiny_plane_backward(x, w, grad_out, g, grad_x, needs_bias_grad))
    g_planes = grad_out.reshape(g.N * g.C, g.Ho * g.Wo)
    _plane_grad_x(w, g_planes, g, grad_x.reshape(g.N * g.C, g.H * g.W))
    x_planes = x.reshape(g.N * g.C, g.H * g.W)
    return (grad_x, *_plane_weight_grads(x_planes, g_planes, g, dtype, needs_bias_grad))
