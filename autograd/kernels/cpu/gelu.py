"""GELU activation: fused Numba CPU kernels beside their plain references (which run on NumPy and CuPy
arrays alike: they take the array module of their input).

Math (elementwise, any shape):

    exact ("none"):  y = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
                     dy/dx = Phi(x) + x * phi(x),        phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
    tanh:            y = 0.5 * x * (1 + tanh(u)),        u = sqrt(2 / pi) * (x + 0.044715 * x^3)
                     dy/dx = 0.5 * (1 + tanh(u)) + 0.5 * x * (1 - tanh(u)^2) * du/dx,
                     du/dx = sqrt(2 / pi) * (1 + 3 * 0.044715 * x^2)          (PyTorch's definition)

How the fast kernels evaluate it:
- The tanh form uses 0.5 * (1 + tanh(u)) = s = sigmoid(2u) and 1 - tanh(u)^2 = 4 s (1 - s). With
  e = exp(-|2u|) <= 1: s = 1 / (1 + e) for u >= 0, e / (1 + e) for u < 0, and s (1 - s) = e / (1 + e)^2.
  No overflow, and no cancellation in either tail.
- The exact form uses Phi(-a) = exp(-a^2 / 2) * R(a) for a = |x|, where R is Mills' ratio over sqrt(2 pi),
  and Phi(x) = 1 - Phi(-|x|) for x >= 0. The same exp(-a^2 / 2) serves phi(x) in the backward pass, and
  Phi(x) keeps its relative accuracy in the left tail (no 1 + erf cancellation).
- float32: exp and R are short polynomials written here (R(a) = t * P(t), t = 1 / (1 + a / 3), P of
  degree 8, fitted to relative error 4e-8 on a in [0, 13.5]; exp by the usual 2^n * e^r range reduction),
  so that LLVM vectorises the loop; libm's erf and exp would keep it scalar. Multiply-adds are contracted to
  FMAs (fastmath={'contract'}): 25-30% faster than separate multiplies and adds (1.57M elements, one thread:
  forward 2.3 -> 1.7-1.8 ms, backward 2.5 -> 1.7 ms). Error about 3e-7 relative
  near the origin, growing in the tails to x^2 / 2 * 6e-8 (the rounding of x^2 / 2 before exp; PyTorch's
  float32 GELU has the same), e.g. 3e-6 at |x| = 10.
- float64: libm's math.erfc and math.exp (scalar, exact to the last bits).

_exp_float32 (the same source compiled without FMAs) is also used by autograd/kernels/cpu/cross_entropy.py. (Numba's on-disk cache does not track
that dependency: after editing _exp_float32, touch cross_entropy.py or clear __pycache__.)

Parallelisation: the array is flattened and prange splits it into one contiguous piece per thread.
The kernels use error_model='numpy' (a float division by zero gives inf/nan instead of raising): the
check for ZeroDivisionError would otherwise keep the loops from vectorising.
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload

from autograd.backend import get_array_module

APPROXIMATIONS = ("none", "tanh")

# The float32 kernels let LLVM fuse a multiply and an add into one FMA instruction (one rounding instead of
# two: as accurate or more, and a third fewer instructions in the polynomials); nothing is reordered.
_FLOAT32_FASTMATH = {"contract"}

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)

# float32 constants: typed as np.float32 so that the float32 kernels stay in float32 arithmetic.
_F32_ONE = np.float32(1.0)
_F32_HALF = np.float32(0.5)
_F32_TWO = np.float32(2.0)
_F32_ZERO = np.float32(0.0)
_F32_INF = np.float32(np.inf)
_F32_SQRT_2_OVER_PI = np.float32(_SQRT_2_OVER_PI)
_F32_TANH_CUBIC = np.float32(_TANH_CUBIC)
_F32_TANH_CUBIC_3 = np.float32(3.0 * _TANH_CUBIC)
_F32_INV_SQRT_2PI = np.float32(_INV_SQRT_2PI)
_F32_THIRD = np.float32(1.0 / 3.0)
_F32_EXP_MAX = np.float32(88.72283)  # exp overflows float32 above this
_F32_EXP_MIN = np.float32(-87.0)  # below this the result is (almost) subnormal: return 0
_F32_LOG2E = np.float32(1.4426950408889634)
_F32_LN2_HI = np.float32(0.693359375)  # ln 2 split in two for the range reduction (Cody and Waite)
_F32_LN2_LO = np.float32(-2.12194440e-4)
_F32_INV_FACT = tuple(np.float32(1.0 / math.factorial(k)) for k in range(8))
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


# --------------------------------------------------------------------------------------------------------
# Vectorisable float32 math
# --------------------------------------------------------------------------------------------------------


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret the bits of an int32 as a float32 (used to build 2^n)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


def _exp_float32_source(x):
    """exp(x) for float32 x, relative error < 1.1e-7; 0 below -87, inf above 88.72, nan for nan.
    Branch free, so that loops calling it vectorise."""
    xc = min(max(x, _F32_EXP_MIN), _F32_EXP_MAX)
    n = np.floor(xc * _F32_LOG2E + _F32_HALF)
    r = (xc - n * _F32_LN2_HI) - n * _F32_LN2_LO  # |r| <= ln(2) / 2
    c = _F32_INV_FACT
    p = c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    # 2^n for n in [-126, 128], built from its bits as two factors 2^h * 2^(n-h) that stay normal.
    whole = np.int32(n)
    half = np.int32(whole >> np.int32(1))
    scale_a = _float32_from_bits(np.int32((half + np.int32(127)) << np.int32(23)))
    scale_b = _float32_from_bits(np.int32((whole - half + np.int32(127)) << np.int32(23)))
    result = p * scale_a * scale_b
    result = _F32_ZERO if x < _F32_EXP_MIN else result
    result = _F32_INF if x > _F32_EXP_MAX else result
    return x if x != x else result


# One source, two compilations: the GELU kernels use the FMA version; cross_entropy.py uses the exact one
# (plain multiplies and adds), because there FMAs made its row-parallel and serial loops round differently.
# Not cached on disk: Numba keys its cache by the Python function and the signature, not the fastmath flags,
# so two cached compilations of one function would overwrite each other. They only ever run inlined into
# the kernels below and in cross_entropy.py, which are cached.
_exp_float32 = njit(fastmath=False, error_model="numpy")(_exp_float32_source)
_exp_float32_fma = njit(fastmath=_FLOAT32_FASTMATH, error_model="numpy")(_exp_float32_source)


@njit(cache=True, fastmath=_FLOAT32_FASTMATH, error_model="numpy")
def _phi_tail_float32(a, gaussian):
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


@njit(cache=True, fastmath=_FLOAT32_FASTMATH, error_model="numpy")
def _normal_cdf_float32(x, gaussian):
    """Phi(x), given gaussian = exp(-x^2 / 2)."""
    tail = _phi_tail_float32(abs(x), gaussian)
    return _F32_ONE - tail if x >= _F32_ZERO else tail


# --------------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, fastmath=_FLOAT32_FASTMATH, error_model="numpy")
def _sigmoid_float32(z, e):
    """sigmoid(z), given e = exp(-|z|)."""
    return _F32_ONE / (_F32_ONE + e) if z >= _F32_ZERO else e / (_F32_ONE + e)


# Each form's value and slope at one element, (y, dy/dx). The kernels call these inside their loops; what a
# kernel does not use (the slope in the forward pass, y in the backward pass) is dropped by the compiler.


@njit(cache=True, fastmath=_FLOAT32_FASTMATH, error_model="numpy")
def _erf_gelu_and_slope_float32(v):
    gaussian = _exp_float32_fma(-_F32_HALF * v * v)
    cdf = _normal_cdf_float32(v, gaussian)
    return v * cdf, cdf + v * gaussian * _F32_INV_SQRT_2PI


@njit(cache=True, fastmath=_FLOAT32_FASTMATH, error_model="numpy")
def _tanh_gelu_and_slope_float32(v):
    v2 = v * v
    z = _F32_TWO * _F32_SQRT_2_OVER_PI * (v + _F32_TANH_CUBIC * v2 * v)
    e = _exp_float32_fma(-abs(z))
    s = _sigmoid_float32(z, e)
    one_plus_e = _F32_ONE + e
    s_one_minus_s = e / (one_plus_e * one_plus_e)
    du = _F32_SQRT_2_OVER_PI * (_F32_ONE + _F32_TANH_CUBIC_3 * v2)
    return v * s, s + _F32_TWO * v * s_one_minus_s * du


@njit(cache=True, fastmath=False, error_model="numpy")
def _sigmoid_float64(z, e):
    """sigmoid(z), given e = exp(-|z|)."""
    return 1.0 / (1.0 + e) if z >= 0.0 else e / (1.0 + e)


@njit(cache=True, fastmath=False, error_model="numpy")
def _erf_gelu_and_slope_float64(v):
    cdf = 0.5 * math.erfc(-v * _INV_SQRT_2)
    return v * cdf, cdf + v * math.exp(-0.5 * v * v) * _INV_SQRT_2PI


@njit(cache=True, fastmath=False, error_model="numpy")
def _tanh_gelu_and_slope_float64(v):
    v2 = v * v
    z = 2.0 * _SQRT_2_OVER_PI * (v + _TANH_CUBIC * v2 * v)
    e = math.exp(-abs(z))
    s = _sigmoid_float64(z, e)
    s_one_minus_s = e / ((1.0 + e) * (1.0 + e))
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _TANH_CUBIC * v2)
    return v * s, s + 2.0 * v * s_one_minus_s * du


def _erf_gelu_and_slope(v):
    """(y, dy/dx) of the erf form at one element, in the precision of v (typed below, for Numba only)."""
    raise NotImplementedError("called from the Numba kernels only")


def _tanh_gelu_and_slope(v):
    """(y, dy/dx) of the tanh form at one element, in the precision of v (typed below, for Numba only)."""
    raise NotImplementedError("called from the Numba kernels only")


@overload(_erf_gelu_and_slope)
def _erf_gelu_and_slope_typed(v):
    element = _erf_gelu_and_slope_float32 if v == types.float32 else _erf_gelu_and_slope_float64
    return lambda v: element(v)


@overload(_tanh_gelu_and_slope)
def _tanh_gelu_and_slope_typed(v):
    element = _tanh_gelu_and_slope_float32 if v == types.float32 else _tanh_gelu_and_slope_float64
    return lambda v: element(v)


# The loops, compiled once per dtype. The form is chosen outside each loop, so that the loop body has no
# branch on it and vectorises. The arithmetic is in the per-element functions, with their own fastmath flags.


@njit(parallel=True, cache=True, error_model="numpy")
def _gelu_forward_kernel(x, y, use_tanh):
    if use_tanh:
        for i in prange(x.shape[0]):
            y[i] = _tanh_gelu_and_slope(x[i])[0]
    else:
        for i in prange(x.shape[0]):
            y[i] = _erf_gelu_and_slope(x[i])[0]


@njit(parallel=True, cache=True, error_model="numpy")
def _gelu_forward_with_slope_kernel(x, y, slope, use_tanh):
    if use_tanh:
        for i in prange(x.shape[0]):
            y[i], slope[i] = _tanh_gelu_and_slope(x[i])
    else:
        for i in prange(x.shape[0]):
            y[i], slope[i] = _erf_gelu_and_slope(x[i])


@njit(parallel=True, cache=True, error_model="numpy")
def _multiply_kernel(a, b, out):
    for i in prange(a.shape[0]):
        out[i] = a[i] * b[i]


@njit(parallel=True, cache=True, error_model="numpy")
def _gelu_backward_kernel(x, grad_y, grad_x, use_tanh):
    if use_tanh:
        for i in prange(x.shape[0]):
            grad_x[i] = grad_y[i] * _tanh_gelu_and_slope(x[i])[1]
    else:
        for i in prange(x.shape[0]):
            grad_x[i] = grad_y[i] * _erf_gelu_and_slope(x[i])[1]


# The epilogue of a Linear layer followed by GELU (``F.linear_gelu``): the bias is added inside GELU's pass,
# and on the way back the bias gradient (column sums) is taken inside the multiply by the slope. One serial
# function per row (or chunk of rows), called from the parallel loop with the whole arrays and an index.

_COLUMN_SUM_CHUNKS = (
    16  # row chunks of the bias gradient: fixed, so the result does not depend on the threads
)


@njit(cache=True, error_model="numpy")
def _bias_gelu_with_slope_row(pre, bias, y, slope, r, use_tanh):
    if use_tanh:
        for c in range(pre.shape[1]):
            y[r, c], slope[r, c] = _tanh_gelu_and_slope(pre[r, c] + bias[c])
    else:
        for c in range(pre.shape[1]):
            y[r, c], slope[r, c] = _erf_gelu_and_slope(pre[r, c] + bias[c])


@njit(cache=True, error_model="numpy")
def _bias_gelu_row(pre, bias, y, r, use_tanh):
    if use_tanh:
        for c in range(pre.shape[1]):
            y[r, c] = _tanh_gelu_and_slope(pre[r, c] + bias[c])[0]
    else:
        for c in range(pre.shape[1]):
            y[r, c] = _erf_gelu_and_slope(pre[r, c] + bias[c])[0]


@njit(parallel=True, cache=True, error_model="numpy")
def _bias_gelu_kernel(pre, bias, y, use_tanh):
    for r in prange(pre.shape[0]):
        _bias_gelu_row(pre, bias, y, r, use_tanh)


@njit(parallel=True, cache=True, error_model="numpy")
def _bias_gelu_with_slope_kernel(pre, bias, y, slope, use_tanh):
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
def _multiply_column_sum_kernel(grad, slope, out, partials):
    for k in prange(partials.shape[0]):
        _multiply_column_sum_rows(grad, slope, out, partials, k)


# --------------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------------


def _check_approximate(approximate):
    if approximate not in APPROXIMATIONS:
        raise ValueError(f"approximate must be one of {APPROXIMATIONS}, got {approximate!r}")
    return approximate == "tanh"


def _float_dtype(x):
    return np.float32 if x.dtype == np.float32 else np.float64


def gelu_forward(x, approximate="none"):
    """GELU of x.

    Args:
        x: float array of any shape and strides.
        approximate: "none" (erf form) or "tanh".

    Returns:
        y, same shape as x, in the dtype of x (float32 or float64).
    """
    use_tanh = _check_approximate(approximate)
    dtype = _float_dtype(x)
    flat = np.ascontiguousarray(x, dtype=dtype).reshape(-1)
    y = np.empty_like(flat)
    _gelu_forward_kernel(flat, y, use_tanh)
    return y.reshape(np.shape(x))


def gelu_forward_with_slope(x, approximate="none"):
    """GELU of x and its derivative at x, in one pass: (y, dy/dx).

    The autograd op keeps dy/dx for its backward pass instead of x, which then is one multiply
    (grad_x = grad_y * dy/dx) instead of a second evaluation of exp and Phi. Same memory: one array of the
    size of x either way.
    """
    use_tanh = _check_approximate(approximate)
    dtype = _float_dtype(x)
    flat = np.ascontiguousarray(x, dtype=dtype).reshape(-1)
    y = np.empty_like(flat)
    slope = np.empty_like(flat)
    _gelu_forward_with_slope_kernel(flat, y, slope, use_tanh)
    return y.reshape(np.shape(x)), slope.reshape(np.shape(x))


def gelu_backward(x, grad_y, approximate="none"):
    """Gradient of GELU: grad_y * dGELU/dx at x.

    Args:
        x: input of the forward pass, any shape.
        grad_y: gradient of the output, same shape as x.
        approximate: "none" or "tanh".

    Returns:
        grad_x, same shape as x, in the dtype of x.
    """
    use_tanh = _check_approximate(approximate)
    dtype = _float_dtype(x)
    flat = np.ascontiguousarray(x, dtype=dtype).reshape(-1)
    grad_flat = np.ascontiguousarray(grad_y, dtype=dtype).reshape(-1)
    if grad_flat.shape != flat.shape:
        raise ValueError(f"grad_y shape {np.shape(grad_y)} does not match x shape {np.shape(x)}")
    grad_x = np.empty_like(flat)
    _gelu_backward_kernel(flat, grad_flat, grad_x, use_tanh)
    return grad_x.reshape(np.shape(x))


def gelu_backward_from_slope(grad_y, slope):
    """grad_x = grad_y * dy/dx, given the slope from gelu_forward_with_slope: the backward pass of the
    autograd op (on all threads; NumPy's multiply would use one). In the dtype of the slope."""
    flat_slope = np.ascontiguousarray(slope).reshape(-1)
    flat_grad = np.ascontiguousarray(grad_y, dtype=flat_slope.dtype).reshape(-1)
    if flat_grad.shape != flat_slope.shape:
        raise ValueError(
            f"grad_y shape {np.shape(grad_y)} does not match the slope's shape {np.shape(slope)}"
        )
    grad_x = np.empty_like(flat_slope)
    _multiply_kernel(flat_grad, flat_slope, grad_x)
    return grad_x.reshape(np.shape(slope))


def _pre_and_bias(pre, bias):
    dtype = _float_dtype(pre)
    pre, bias = np.ascontiguousarray(pre, dtype=dtype), np.ascontiguousarray(bias, dtype=dtype)
    if pre.ndim != 2 or bias.shape != (pre.shape[1],):
        raise ValueError(f"bias_gelu: expected pre (rows, F) and bias (F,), got {pre.shape} and {bias.shape}")
    return pre, bias


def bias_gelu_forward(pre, bias, approximate="none"):
    """GELU of pre + bias in one pass. pre: (rows, features), the output of a Linear layer's matrix product;
    bias: (features,). The same values as gelu_forward of pre + bias, without the pass that adds the bias."""
    use_tanh = _check_approximate(approximate)
    pre, bias = _pre_and_bias(pre, bias)
    y = np.empty_like(pre)
    _bias_gelu_kernel(pre, bias, y, use_tanh)
    return y


def bias_gelu_forward_with_slope(pre, bias, approximate="none"):
    """GELU of pre + bias and its slope, in one pass: (y, dy/d(pre + bias)); see bias_gelu_forward."""
    use_tanh = _check_approximate(approximate)
    pre, bias = _pre_and_bias(pre, bias)
    y, slope = np.empty_like(pre), np.empty_like(pre)
    _bias_gelu_with_slope_kernel(pre, bias, y, slope, use_tanh)
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
    partials = np.empty((min(_COLUMN_SUM_CHUNKS, max(1, slope.shape[0])), slope.shape[1]))
    _multiply_column_sum_kernel(grad_y, slope, grad_pre, partials)
    return grad_pre, partials.sum(axis=0).astype(slope.dtype)


_erfc_numpy = np.vectorize(math.erfc, otypes=[np.float64])


def _erfc(x):
    """erfc(x) elementwise, on the device of x: libm's math.erfc for a NumPy array (NumPy has no erfc),
    cupyx.scipy.special.erfc (CUDA's erfc) for a CuPy array."""
    if get_array_module(x) is np:
        return _erfc_numpy(x)
    from cupyx.scipy.special import erfc  # CuPy is optional: only reached with a CuPy array in hand

    return erfc(x)


def _normal_cdf_reference(x):
    """Phi(x) = 0.5 * (1 + erf(x / sqrt 2)), written as 0.5 * erfc(-x / sqrt 2): the same value, without
    the cancellation of 1 + erf in the left tail."""
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def gelu_forward_reference(x, approximate="none"):
    """Plain twin of gelu_forward, straight from the formulas (float64 inside). Runs on NumPy or CuPy
    arrays alike (on the array module of x)."""
    _check_approximate(approximate)
    xp = get_array_module(x)
    dtype = _float_dtype(xp.asarray(x))
    x = xp.asarray(x, xp.float64)
    if approximate == "tanh":
        y = 0.5 * x * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (x + _TANH_CUBIC * x**3)))
    else:
        y = x * _normal_cdf_reference(x)
    return y.astype(dtype)


def gelu_forward_with_slope_reference(x, approximate="none"):
    """Plain twin of gelu_forward_with_slope: (y, dy/dx) from the two references."""
    return gelu_forward_reference(x, approximate), gelu_backward_reference(
        x, get_array_module(x).ones_like(x), approximate
    )


def gelu_backward_from_slope_reference(grad_y, slope):
    """Plain twin of gelu_backward_from_slope."""
    xp = get_array_module(grad_y, slope)
    return (xp.asarray(grad_y) * slope).astype(slope.dtype, copy=False)


def bias_gelu_forward_reference(pre, bias, approximate="none"):
    """Plain twin of bias_gelu_forward: the bias added, then gelu_forward_reference."""
    xp = get_array_module(pre, bias)
    pre = xp.asarray(pre)
    return gelu_forward_reference(pre + xp.asarray(bias, dtype=pre.dtype), approximate)


def bias_gelu_forward_with_slope_reference(pre, bias, approximate="none"):
    """Plain twin of bias_gelu_forward_with_slope: the bias added, then gelu_forward_with_slope_reference."""
    xp = get_array_module(pre, bias)
    pre = xp.asarray(pre)
    return gelu_forward_with_slope_reference(pre + xp.asarray(bias, dtype=pre.dtype), approximate)


def gelu_backward_from_slope_with_bias_grad_reference(grad_y, slope):
    """Plain twin of gelu_backward_from_slope_with_bias_grad."""
    xp = get_array_module(grad_y, slope)
    grad_pre = gelu_backward_from_slope_reference(grad_y, slope)
    return grad_pre, grad_pre.sum(axis=0, dtype=xp.float64).astype(slope.dtype)


def gelu_backward_reference(x, grad_y, approximate="none"):
    """Plain twin of gelu_backward (float64 inside), on the array module of its inputs."""
    _check_approximate(approximate)
    xp = get_array_module(x, grad_y)
    dtype = _float_dtype(xp.asarray(x))
    x = xp.asarray(x, xp.float64)
    grad_y = xp.asarray(grad_y, xp.float64)
    if approximate == "tanh":
        tanh_u = xp.tanh(_SQRT_2_OVER_PI * (x + _TANH_CUBIC * x**3))
        du_dx = _SQRT_2_OVER_PI * (1.0 + 3.0 * _TANH_CUBIC * x**2)
        dy_dx = 0.5 * (1.0 + tanh_u) + 0.5 * x * (1.0 - tanh_u**2) * du_dx
    else:
        cdf = _normal_cdf_reference(x)
        pdf = xp.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)
        dy_dx = cdf + x * pdf
    return (grad_y * dy_dx).astype(dtype)
