"""GELU, step 1: the plain loop, the formulas element by element, in float64 with libm's erf, exp and tanh.

    erf form:   y = x * Phi(x),  Phi(x) = 0.5 * (1 + erf(x / sqrt 2)),  dy/dx = Phi(x) + x * phi(x)
    tanh form:  y = 0.5 * x * (1 + tanh(u)),  dy/dx = 0.5 * (1 + tanh(u)) + 0.5 * x * (1 - tanh(u)^2) * du/dx

One serial loop; float32 inputs are computed in float64 and rounded once, on the store. Implements
gelu_forward_with_slope (y and dy/dx in one pass) and gelu_backward_from_slope (one multiply).
Accurate to the last bits in the middle, but 1 + erf and 1 + tanh cancel in the left tail (x << 0), where
y keeps only its absolute accuracy.
"""

import math

from numba import njit

from autograd.kernels.cpu.gelu._common import (
    INV_SQRT_2,
    INV_SQRT_2PI,
    SQRT_2_OVER_PI,
    TANH_CUBIC,
    launch_backward_from_slope,
    launch_forward_with_slope,
)


@njit(cache=True)
def plain_erf_gelu_and_slope(v):
    """(y, dy/dx) of the erf form at the float64 v."""
    cdf = 0.5 * (1.0 + math.erf(v * INV_SQRT_2))
    return v * cdf, cdf + v * math.exp(-0.5 * v * v) * INV_SQRT_2PI


@njit(cache=True)
def plain_tanh_gelu_and_slope(v):
    """(y, dy/dx) of the tanh form at the float64 v."""
    tanh_u = math.tanh(SQRT_2_OVER_PI * (v + TANH_CUBIC * v * v * v))
    du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * TANH_CUBIC * v * v)
    return 0.5 * v * (1.0 + tanh_u), 0.5 * (1.0 + tanh_u) + 0.5 * v * (1.0 - tanh_u * tanh_u) * du_dx


@njit(cache=True)
def forward_with_slope_loop(x, y, slope, use_tanh):
    for i in range(x.shape[0]):
        v = float(x[i])
        if use_tanh:
            y[i], slope[i] = plain_tanh_gelu_and_slope(v)
        else:
            y[i], slope[i] = plain_erf_gelu_and_slope(v)


@njit(cache=True)
def multiply_loop(a, b, out):
    for i in range(a.shape[0]):
        out[i] = a[i] * b[i]


def gelu_forward_with_slope(x, approximate="none"):
    return launch_forward_with_slope(forward_with_slope_loop, x, approximate)


def gelu_backward_from_slope(grad_y, slope):
    return launch_backward_from_slope(multiply_loop, grad_y, slope)
