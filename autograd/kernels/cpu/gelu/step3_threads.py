"""GELU, step 3: the array split across threads, one contiguous piece per thread.

The loops of step 2 with ``prange``: Numba cuts the flat array into one piece per thread. The per-element
math is step 2's (float64). The form is chosen outside each loop, so that the loop body has no branch on
it. error_model='numpy' (a float division by zero gives inf/nan instead of raising) keeps the check for
ZeroDivisionError out of the loop. The multiply kernel is the final one: step 4 uses it unchanged.
Implements gelu_forward_with_slope and gelu_backward_from_slope.
"""

from numba import njit, prange

from autograd.kernels.cpu.gelu._common import launch_backward_from_slope, launch_forward_with_slope
from autograd.kernels.cpu.gelu.step2_stable_tails import (
    erf_gelu_and_slope_float64,
    tanh_gelu_and_slope_float64,
)


@njit(parallel=True, cache=True, error_model="numpy")
def forward_with_slope_threads(x, y, slope, use_tanh):
    if use_tanh:
        for i in prange(x.shape[0]):
            y[i], slope[i] = tanh_gelu_and_slope_float64(float(x[i]))
    else:
        for i in prange(x.shape[0]):
            y[i], slope[i] = erf_gelu_and_slope_float64(float(x[i]))


@njit(parallel=True, cache=True, error_model="numpy")
def multiply_threads(a, b, out):
    for i in prange(a.shape[0]):
        out[i] = a[i] * b[i]


def gelu_forward_with_slope(x, approximate="none"):
    return launch_forward_with_slope(forward_with_slope_threads, x, approximate)


def gelu_backward_from_slope(grad_y, slope):
    return launch_backward_from_slope(multiply_threads, grad_y, slope)
