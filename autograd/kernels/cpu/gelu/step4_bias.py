"""GELU, step 4 with the bias fused in: the epilogue of a Linear layer followed by GELU (``F.linear_gelu``).

The bias is added inside GELU's pass (step 4's per-element functions, so the same bits as gelu_forward of
pre + bias), and on the way back the bias gradient (column sums) is taken inside the multiply by the
slope. One serial function per row (or chunk of rows), called from the parallel loop with the whole arrays
and an index, so that no view is made inside the parallel loop. Implements bias_gelu_forward,
bias_gelu_forward_with_slope and gelu_backward_from_slope_with_bias_grad.
"""

import numpy as np
from numba import njit, prange

from autograd.kernels.cpu.common import float_dtype
from autograd.kernels.cpu.gelu._common import check_approximate
from autograd.kernels.cpu.gelu.step4_float32_polynomials import erf_gelu_and_slope, tanh_gelu_and_slope

COLUMN_SUM_CHUNKS = 16  # row chunks of the bias gradient: fixed, so the result does not depend on the threads


@njit(cache=True, error_model="numpy")
def _bias_gelu_with_slope_row(pre, bias, y, slope, r, use_tanh):
    if use_tanh:
        for c in range(pre.shape[1]):
            y[r, c], slope[r, c] = tanh_gelu_and_slope(pre[r, c] + bias[c])
    else:
        for c in range(pre.shape[1]):
            y[r, c], slope[r, c] = erf_gelu_and_slope(pre[r, c] + bias[c])


@njit(cache=True, error_model="numpy")
def _bias_gelu_row(pre, bias, y, r, use_tanh):
    if use_tanh:
        for c in range(pre.shape[1]):
            y[r, c] = tanh_gelu_and_slope(pre[r, c] + bias[c])[0]
    else:
        for c in range(pre.shape[1]):
            y[r, c] = erf_gelu_and_slope(pre[r, c] + bias[c])[0]


@njit(parallel=True, cache=True, error_model="numpy")
def bias_gelu_kernel(pre, bias, y, use_tanh):
    for r in prange(pre.shape[0]):
        _bias_gelu_row(pre, bias, y, r, use_tanh)


@njit(parallel=True, cache=True, error_model="numpy")
def bias_gelu_with_slope_kernel(pre, bias, y, slope, use_tanh):
    for r in prange(pre.shape[0]):
        _bias_gelu_with_slope_row(pre, bias, y, slope, r, use_tanh)


@njit(cache=True, error_model="numpy")
def _multiply_column_sum_rows(grad, slope, out, partials, k):
    """Rows of chunk k: out = grad * slope, and partials[k] = the column sums of out (float64)."""
    rows, chunks = grad.shape[0], partials.shape[0]
    partials[k] = 0.0
    for r in range(k * rows // chunks, (k + 1) * rows // chunks):
        for c in range(grad.shape[1]):
            value = grad[r, c] * slope[r, c]
            out[r, c] = value
            partials[k, c] += value


@njit(parallel=True, cache=True, error_model="numpy")
def multiply_column_sum_kernel(grad, slope, out, partials):
    for k in prange(partials.shape[0]):
        _multiply_column_sum_rows(grad, slope, out, partials, k)


def _pre_and_bias(pre, bias):
    dtype = float_dtype(pre)
    pre, bias = np.ascontiguousarray(pre, dtype=dtype), np.ascontiguousarray(bias, dtype=dtype)
    if pre.ndim != 2 or bias.shape != (pre.shape[1],):
        raise ValueError(f"bias_gelu: expected pre (rows, F) and bias (F,), got {pre.shape} and {bias.shape}")
    return pre, bias


def bias_gelu_forward(pre, bias, approximate="none"):
    """GELU of pre + bias in one pass. pre: (rows, features), the output of a Linear layer's matrix product;
    bias: (features,). The same values as gelu_forward of pre + bias, without the pass that adds the bias."""
    use_tanh = check_approximate(approximate)
    pre, bias = _pre_and_bias(pre, bias)
    y = np.empty_like(pre)
    bias_gelu_kernel(pre, bias, y, use_tanh)
    return y


def bias_gelu_forward_with_slope(pre, bias, approximate="none"):
    """GELU of pre + bias and its slope, in one pass: (y, dy/d(pre + bias)); see bias_gelu_forward."""
    use_tanh = check_approximate(approximate)
    pre, bias = _pre_and_bias(pre, bias)
    y, slope = np.empty_like(pre), np.empty_like(pre)
    bias_gelu_with_slope_kernel(pre, bias, y, slope, use_tanh)
    return y, slope


def gelu_backward_from_slope_with_bias_grad(grad_y, slope):
    """(grad_pre, grad_bias) for y = GELU(pre + bias): grad_pre = grad_y * slope, and grad_bias its column
    sums (float64 inside, rows summed in fixed chunks), in one pass. grad_y and slope: (rows, features)."""
    slope = np.ascontiguousarray(slope)
    grad_y = np.ascontiguousarray(grad_y, dtype=slope.dtype)
    if grad_y.shape != slope.shape or slope.ndim != 2:
        raise ValueError(
            f"grad_y shape {grad_y.shape} does not match the slope's shape {slope.shape} (rows, F)"
        )
    grad_pre = np.empty_like(slope)
    partials = np.empty((min(COLUMN_SUM_CHUNKS, max(1, slope.shape[0])), slope.shape[1]))
    multiply_column_sum_kernel(grad_y, slope, grad_pre, partials)
    return grad_pre, partials.sum(axis=0).astype(slope.dtype)
