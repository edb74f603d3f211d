"""GELU, step 4: float32 computed in float32 with exp and Phi as short polynomials, so the loops vectorise.

Step 3 calls libm's erfc and exp once per element: opaque calls that LLVM cannot vectorise, so the loop
stays scalar. Here float32 gets its own per-element functions, made of multiplies, adds and divisions only,
which LLVM vectorises with the loop:
- exp: ``fast_math.exp_float32_fma`` (2^n * e^r range reduction, a polynomial for e^r, no branch).
- Phi: Phi(-a) = exp(-a^2 / 2) * R(a) for a = |x|, where R is Mills' ratio over sqrt(2 pi), fitted as
  R(a) = t * P(t), t = 1 / (1 + a / 3), P of degree 8 (relative error 4e-8 on a in [0, 13.5]), and
  Phi(x) = 1 - Phi(-|x|) for x >= 0. The same exp(-a^2 / 2) serves phi(x) in the slope, and Phi(x) keeps
  its relative accuracy in the left tail.
Multiply-adds are contracted to FMAs (fastmath={'contract'}): fewer instructions, one rounding instead of
two. Error about 3e-7 relative near the origin, growing in the tails to x^2 / 2 * 6e-8 (the rounding of
x^2 / 2 before exp; PyTorch's float32 GELU has the same), e.g. 3e-6 at |x| = 10. float64 keeps step 2's
functions (libm: exact to the last bits). The gain of the polynomial exp over libm's is measured by
bench/gelu_exp.py (docs/benchmarks.md).

This is the final step: it implements gelu_forward, gelu_forward_with_slope, gelu_backward and
gelu_backward_from_slope (step 3's multiply kernel); step4_bias.py adds the bias-fused variants.
"""

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from autograd.kernels.cpu.fast_math import FLOAT32_FASTMATH, exp_float32_fma
from autograd.kernels.cpu.gelu._common import (
    SQRT_2_OVER_PI,
    TANH_CUBIC,
    launch_backward,
    launch_backward_from_slope,
    launch_forward,
    launch_forward_with_slope,
)
from autograd.kernels.cpu.gelu.step2_stable_tails import (
    erf_gelu_and_slope_float64,
    tanh_gelu_and_slope_float64,
)
from autograd.kernels.cpu.gelu.step3_threads import multiply_threads

# float32 constants: typed as np.float32 so that the float32 kernels stay in float32 arithmetic.
_F32_ONE = np.float32(1.0)
_F32_HALF = np.float32(0.5)
_F32_TWO = np.float32(2.0)
_F32_ZERO = np.float32(0.0)
_F32_SQRT_2_OVER_PI = np.float32(SQRT_2_OVER_PI)
_F32_TANH_CUBIC = np.float32(TANH_CUBIC)
_F32_TANH_CUBIC_3 = np.float32(3.0 * TANH_CUBIC)
_F32_INV_SQRT_2PI = np.float32(1.0 / math.sqrt(2.0 * math.pi))
_F32_THIRD = np.float32(1.0 / 3.0)
# Mills' ratio fit: Phi(-a) * exp(a^2 / 2) = t * P(t), t = 1 / (1 + a / 3).
_F32_MILLS = tuple(
    np.float32(c)
    for c in (
        0.13295316666287862,
        0.13360607607135333,
        0.11218527175638933,
        0.12086888363202719,
        -0.05570104200265705,
        0.22244943613887716,
        -0.27442986601180835,
        0.1311623379503606,
        -0.023094243372975633,
    )
)


@njit(cache=True, fastmath=FLOAT32_FASTMATH, error_model="numpy")
def phi_tail_float32(a, gaussian):
    """Phi(-a) for a >= 0, given gaussian = exp(-a^2 / 2)."""
    t = _F32_ONE / (_F32_ONE + a * _F32_THIRD)
    c = _F32_MILLS
    p = c[8]
    p = p * t + c[7]
    p = p * t + c[6]
    p = p * t + c[5]
    p = p * t + c[4]
    p = p * t + c[3]
    p = p * t + c[2]
    p = p * t + c[1]
    p = p * t + c[0]
    return gaussian * t * p


@njit(cache=True, fastmath=FLOAT32_FASTMATH, error_model="numpy")
def normal_cdf_float32(x, gaussian):
    """Phi(x), given gaussian = exp(-x^2 / 2)."""
    tail = phi_tail_float32(abs(x), gaussian)
    return _F32_ONE - tail if x >= _F32_ZERO else tail


@njit(cache=True, fastmath=FLOAT32_FASTMATH, error_model="numpy")
def sigmoid_float32(z, e):
    """sigmoid(z), given e = exp(-|z|)."""
    return _F32_ONE / (_F32_ONE + e) if z >= _F32_ZERO else e / (_F32_ONE + e)


# Each form's value and slope at one element, (y, dy/dx). The kernels call these inside their loops; what a
# kernel does not use (the slope in the forward pass, y in the backward pass) is dropped by the compiler.


@njit(cache=True, fastmath=FLOAT32_FASTMATH, error_model="numpy")
def erf_gelu_and_slope_float32(v):
    gaussian = exp_float32_fma(-_F32_HALF * v * v)
    cdf = normal_cdf_float32(v, gaussian)
    return v * cdf, cdf + v * gaussian * _F32_INV_SQRT_2PI


@njit(cache=True, fastmath=FLOAT32_FASTMATH, error_model="numpy")
def tanh_gelu_and_slope_float32(v):
    v2 = v * v
    z = _F32_TWO * _F32_SQRT_2_OVER_PI * (v + _F32_TANH_CUBIC * v2 * v)
    e = exp_float32_fma(-abs(z))
    s = sigmoid_float32(z, e)
    one_plus_e = _F32_ONE + e
    s_one_minus_s = e / (one_plus_e * one_plus_e)
    du = _F32_SQRT_2_OVER_PI * (_F32_ONE + _F32_TANH_CUBIC_3 * v2)
    return v * s, s + _F32_TWO * v * s_one_minus_s * du


def erf_gelu_and_slope(v):
    """(y, dy/dx) of the erf form at one element, in the precision of v (typed below, for Numba only)."""
    raise NotImplementedError("called from the Numba kernels only")


def tanh_gelu_and_slope(v):
    """(y, dy/dx) of the tanh form at one element, in the precision of v (typed below, for Numba only)."""
    raise NotImplementedError("called from the Numba kernels only")


@overload(erf_gelu_and_slope)
def _erf_gelu_and_slope_typed(v):
    element = erf_gelu_and_slope_float32 if v == types.float32 else erf_gelu_and_slope_float64
    return lambda v: element(v)


@overload(tanh_gelu_and_slope)
def _tanh_gelu_and_slope_typed(v):
    element = tanh_gelu_and_slope_float32 if v == types.float32 else tanh_gelu_and_slope_float64
    return lambda v: element(v)


# The loops, compiled once per dtype, split across threads as in step 3. The form is chosen outside each
# loop, so that the loop body has no branch on it and vectorises. The arithmetic is in the per-element
# functions, with their own fastmath flags.


@njit(parallel=True, cache=True, error_model="numpy")
def forward_kernel(x, y, use_tanh):
    if use_tanh:
        for i in prange(x.shape[0]):
            y[i] = tanh_gelu_and_slope(x[i])[0]
    else:
        for i in prange(x.shape[0]):
            y[i] = erf_gelu_and_slope(x[i])[0]


@njit(parallel=True, cache=True, error_model="numpy")
def forward_with_slope_kernel(x, y, slope, use_tanh):
    if use_tanh:
        for i in prange(x.shape[0]):
            y[i], slope[i] = tanh_gelu_and_slope(x[i])
    else:
        for i in prange(x.shape[0]):
            y[i], slope[i] = erf_gelu_and_slope(x[i])


@njit(parallel=True, cache=True, error_model="numpy")
def backward_kernel(x, grad_y, grad_x, use_tanh):
    if use_tanh:
        for i in prange(x.shape[0]):
            grad_x[i] = grad_y[i] * tanh_gelu_and_slope(x[i])[1]
    else:
        for i in prange(x.shape[0]):
            grad_x[i] = grad_y[i] * erf_gelu_and_slope(x[i])[1]


def gelu_forward(x, approximate="none"):
    """GELU of x.

    Args:
        x: float array of any shape and strides.
        approximate: "none" (erf form) or "tanh".

    Returns:
        y, same shape as x, in the dtype of x (float32 or float64).
    """
    return launch_forward(forward_kernel, x, approximate)


def gelu_forward_with_slope(x, approximate="none"):
    """GELU of x and its derivative at x, in one pass: (y, dy/dx).

    The autograd op keeps dy/dx for its backward pass instead of x, which then is one multiply
    (grad_x = grad_y * dy/dx) instead of a second evaluation of exp and Phi. Same memory: one array of the
    size of x either way.
    """
    return launch_forward_with_slope(forward_with_slope_kernel, x, approximate)


def gelu_backward(x, grad_y, approximate="none"):
    """Gradient of GELU: grad_y * dGELU/dx at x.

    Args:
        x: input of the forward pass, any shape.
        grad_y: gradient of the output, same shape as x.
        approximate: "none" or "tanh".

    Returns:
        grad_x, same shape as x, in the dtype of x.
    """
    return launch_backward(backward_kernel, x, grad_y, approximate)


def gelu_backward_from_slope(grad_y, slope):
    """grad_x = grad_y * dy/dx, given the slope from gelu_forward_with_slope: the backward pass of the
    autograd op (on all threads; NumPy's multiply would use one). In the dtype of the slope."""
    return launch_backward_from_slope(multiply_threads, grad_y, slope)
