"""Layer norm: the arrays every step's launcher hands its kernel (contiguous, in the dtype of x), prepared
once here so that each step file shows only what it changes."""

import numpy as np

from autograd.kernels.cpu.common import contiguous_vector, float_dtype


def affine_params(weight, bias, size, dtype):
    """Weight and bias as contiguous arrays of `size`; None becomes ones / zeros."""
    w = np.ones(size, dtype) if weight is None else contiguous_vector(weight, size, dtype)
    b = np.zeros(size, dtype) if bias is None else contiguous_vector(bias, size, dtype)
    return w, b


def rows_forward_arrays(x2d, weight, bias):
    """x, weight, bias for a rows kernel, and the empty outputs y (rows, D), mean (rows,), rstd (rows,)."""
    dtype = float_dtype(x2d)
    x = np.ascontiguousarray(x2d, dtype=dtype)
    rows, size = x.shape
    w, b = affine_params(weight, bias, size, dtype)
    return x, w, b, np.empty_like(x), np.empty(rows, dtype), np.empty(rows, dtype)


def rows_backward_arrays(grad_y2d, x2d, weight, mean, rstd):
    """grad_y, x, weight, (mean, rstd) for a rows backward kernel, and the empty grad_x."""
    dtype = float_dtype(x2d)
    x = np.ascontiguousarray(x2d, dtype=dtype)
    grad_y = np.ascontiguousarray(grad_y2d, dtype=dtype)
    rows, size = x.shape
    w, _ = affine_params(weight, None, size, dtype)
    statistics = (contiguous_vector(mean, rows, dtype), contiguous_vector(rstd, rows, dtype))
    return grad_y, x, w, statistics, np.empty_like(x)


def sum_partials(partial, dtype):
    """Add the per-chunk partials (rows of `partial`) in a fixed order."""
    return partial.sum(axis=0).astype(dtype)
