"""GELU, shared by every step: the constants, the argument checks and the launchers of the kernels.

A launcher checks its arguments, flattens the arrays (any shape and strides) into contiguous 1-D arrays of
the float dtype of x, allocates the outputs, runs the given step's kernel and gives the outputs their shape.
"""

import math

import numpy as np

from autograd.kernels.cpu.common import float_dtype

APPROXIMATIONS = ("none", "tanh")

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
TANH_CUBIC = 0.044715
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)


def check_approximate(approximate):
    """True for the tanh form, False for the erf form; ValueError for anything else."""
    if approximate not in APPROXIMATIONS:
        raise ValueError(f"approximate must be one of {APPROXIMATIONS}, got {approximate!r}")
    return approximate == "tanh"


def flat_float(x):
    """x as a contiguous 1-D array of its float dtype (float32 stays float32, anything else float64)."""
    return np.ascontiguousarray(x, dtype=float_dtype(x)).reshape(-1)


def launch_forward(kernel, x, approximate):
    """y = GELU(x) by ``kernel(flat_x, y, use_tanh)``."""
    use_tanh = check_approximate(approximate)
    flat = flat_float(x)
    y = np.empty_like(flat)
    kernel(flat, y, use_tanh)
    return y.reshape(np.shape(x))


def launch_forward_with_slope(kernel, x, approximate):
    """(y, dy/dx) by ``kernel(flat_x, y, slope, use_tanh)``."""
    use_tanh = check_approximate(approximate)
    flat = flat_float(x)
    y = np.empty_like(flat)
    slope = np.empty_like(flat)
    kernel(flat, y, slope, use_tanh)
    return y.reshape(np.shape(x)), slope.reshape(np.shape(x))


def launch_backward(kernel, x, grad_y, approximate):
    """grad_x = grad_y * dy/dx at x by ``kernel(flat_x, flat_grad_y, grad_x, use_tanh)``."""
    use_tanh = check_approximate(approximate)
    flat = flat_float(x)
    grad_flat = np.ascontiguousarray(grad_y, dtype=flat.dtype).reshape(-1)
    if grad_flat.shape != flat.shape:
        raise ValueError(f"grad_y shape {np.shape(grad_y)} does not match x shape {np.shape(x)}")
    grad_x = np.empty_like(flat)
    kernel(flat, grad_flat, grad_x, use_tanh)
    return grad_x.reshape(np.shape(x))


def launch_backward_from_slope(multiply_kernel, grad_y, slope):
    """grad_x = grad_y * slope by ``multiply_kernel(flat_grad_y, flat_slope, grad_x)``, in slope.dtype."""
    flat_slope = np.ascontiguousarray(slope).reshape(-1)
    flat_grad = np.ascontiguousarray(grad_y, dtype=flat_slope.dtype).reshape(-1)
    if flat_grad.shape != flat_slope.shape:
        raise ValueError(
            f"grad_y shape {np.shape(grad_y)} does not match the slope's shape {np.shape(slope)}"
        )
    grad_x = np.empty_like(flat_slope)
    multiply_kernel(flat_grad, flat_slope, grad_x)
    return grad_x.reshape(np.shape(slope))
