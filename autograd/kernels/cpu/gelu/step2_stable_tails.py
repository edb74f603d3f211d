"""GELU, step 2: forms that stay accurate in both tails, with one exp for the tanh form's y and slope.

- erf form: Phi(x) = 0.5 * erfc(-x / sqrt 2), the same value as 0.5 * (1 + erf(x / sqrt 2)) without its
  cancellation for x << 0, so x * Phi(x) keeps its relative accuracy there.
- tanh form: 0.5 * (1 + tanh(u)) = s = sigmoid(2u) and 1 - tanh(u)^2 = 4 s (1 - s). With e = exp(-|2u|) <= 1,
  s = 1 / (1 + e) for u >= 0, e / (1 + e) for u < 0, and s (1 - s) = e / (1 + e)^2: one exp gives both,
  with no overflow and no cancellation in either tail.

Still serial and in float64 (libm's erfc and exp); what changes from step 1 is only the per-element math.
These per-element functions are the final float64 ones: steps 3 and 4 call them unchanged.
Implements gelu_forward_with_slope and gelu_backward_from_slope (the multiply loop of step 1).
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
from autograd.kernels.cpu.gelu.step1_plain_loop import multiply_loop


@njit(cache=True, fastmath=False, error_model="numpy")
def sigmoid_float64(z, e):
    """sigmoid(z), given e = exp(-|z|)."""
    return 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)


@njit(cache=True, fastmath=False, error_model="numpy")
def erf_gelu_and_slope_float64(v):
    """(y, dy/dx) of the erf form at the float64 v."""
    cdf = 0.5 * math.erfc(-v * INV_SQRT_2)
    return v * cdf, cdf + v * math.exp(-0.5 * v * v) * INV_SQRT_2PI


@njit(cache=True, fastmath=False, error_model="numpy")
def tanh_gelu_and_slope_float64(v):
    """(y, dy/dx) of the tanh form at the float64 v."""
    v2 = v * v
    z = 2.0 * SQRT_2_OVER_PI * (v + TANH_CUBIC * v2 * v)
    e = math.exp(-abs(z))
    s = sigmoid_float64(z, e)
    s_one_minus_s = e / ((1.0 + e) * (1.0 + e))
    du = SQRT_2_OVER_PI * (1.0 + 3.0 * TANH_CUBIC * v2)
    return v * s, s + 2.0 * v * s_one_minus_s * du


@njit(cache=True, error_model="numpy")
def forward_with_slope_loop(x, y, slope, use_tanh):
    for i in range(x.shape[0]):
        v = float(x[i])
        if use_tanh:
            y[i], slope[i] = tanh_gelu_and_slope_float64(v)
        else:
            y[i], slope[i] = erf_gelu_and_slope_float64(v)


def gelu_forward_with_slope(x, approximate="none"):
    return launch_forward_with_slope(forward_with_slope_loop, x, approximate)


def gelu_backward_from_slope(grad_y, slope):
    return launch_backward_from_slope(multiply_loop, grad_y, slope)
