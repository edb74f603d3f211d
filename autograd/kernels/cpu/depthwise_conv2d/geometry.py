"""Depthwise conv, shared by every step: argument checks, the output geometry and the split into tasks."""

from collections import namedtuple

import numpy as np

from ..common import check_window_geometry, float_dtype

# Sizes of one convolution (names as in the package docstring). Numba unpacks it at no cost.
Geometry = namedtuple("Geometry", ["N", "C", "H", "W", "KH", "KW", "sh", "sw", "ph", "pw", "Ho", "Wo"])


def contiguous(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


def nhwc_geometry(x, weight, stride, padding):
    """x (N, H, W, C) and weight (KH, KW, C) -> Geometry (raises ValueError on a mismatch)."""
    N, H, W, C = x.shape
    if weight.ndim != 3 or weight.shape[2] != C:
        raise ValueError(f"weight must be (KH, KW, C) with C={C}, got {weight.shape}")
    KH, KW = weight.shape[0], weight.shape[1]
    sh, sw, ph, pw, Ho, Wo = check_window_geometry(H, W, KH, KW, stride, padding)
    return Geometry(N, C, H, W, KH, KW, sh, sw, ph, pw, Ho, Wo)


def nhwc_forward_arguments(x, weight, bias, stride, padding):
    """Checks the shapes; returns (geometry, x, weight, bias or None, out): the arrays contiguous in one
    float dtype, out the empty (N, Ho, Wo, C) result."""
    g = nhwc_geometry(x, weight, stride, padding)
    dtype = float_dtype(x, weight, bias)
    out = np.empty((g.N, g.Ho, g.Wo, g.C), dtype)
    bias = None if bias is None else contiguous(bias, dtype).reshape(g.C)
    return g, contiguous(x, dtype), contiguous(weight, dtype), bias, out


def nhwc_backward_arguments(x, weight, grad_out, stride, padding):
    """Checks the shapes; returns (geometry, x, weight, grad_out, grad_x): the arrays contiguous in one
    float dtype, grad_x the empty (N, H, W, C) result."""
    g = nhwc_geometry(x, weight, stride, padding)
    if grad_out.shape != (g.N, g.Ho, g.Wo, g.C):
        raise ValueError(f"grad_out must be {(g.N, g.Ho, g.Wo, g.C)}, got {grad_out.shape}")
    dtype = float_dtype(x, weight, grad_out)
    grad_x = np.empty((g.N, g.H, g.W, g.C), dtype)
    return g, contiguous(x, dtype), contiguous(weight, dtype), contiguous(grad_out, dtype), grad_x


def zero_weight_grads(weight_shape, C, dtype, needs_bias_grad):
    """(grad_w, grad_b) of an empty batch: zeros (grad_b None when not needed)."""
    return np.zeros(weight_shape, dtype), (np.zeros(C, dtype) if needs_bias_grad else None)


def padded_row_stride(W, pw, Wo):
    """Row stride of a 'wide row' buffer: W image columns + pw zero columns shared by the right padding
    of a row and the left padding of the next, and at least Wo (the rows of the output buffer)."""
    return max(W + pw, Wo)


def rows_per_task(N, Ho):
    """Output rows per task: whole images when small, else 8 rows; at least ~8 tasks in all."""
    rows = Ho if Ho <= 16 else 8
    want = -(-8 // N)  # row blocks per image needed for >= 8 tasks
    if -(-Ho // rows) < want:
        rows = max(1, -(-Ho // want))
    return rows


# Numba fastmath flags of the final kernels. 'contract' allows fused multiply-adds (one rounding fewer);
# 'reassoc' (NCHW weight-gradient dot products only) lets LLVM keep several vector partial sums, a
# different, fixed order of summation. No 'nnan'/'ninf': NaN and inf propagate as in IEEE arithmetic.
CONTRACT = {"contract"}
CONTRACT_REASSOC = {"contract", "reassoc"}
