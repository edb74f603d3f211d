"""GELU on the GPU, forward and backward: one thread per element, one pass over memory each way.

    exact:  y = x * Phi(x),  Phi(x) = 0.5 * erfc(-x / sqrt 2);   dy/dx = Phi(x) + x * phi(x)
    tanh:   y = 0.5 x (1 + tanh u),  u = sqrt(2/pi) (x + 0.044715 x^3);
            dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

Thread mapping: every kernel is element-wise; thread t (grid-stride) takes elements t, t + T, ... of the
flattened array and works out y and the slope dy/dx of each from x alone, so threads share nothing and
there is nothing to reduce. ``gelu_forward_with_slope`` keeps the slope for the backward pass, which then
is one multiply (done by CuPy's own element-wise kernel).

The math is that of ``autograd.kernels.cpu.gelu`` (see there for why erfc rather than 1 + erf). Arithmetic
is in the precision of the array, as PyTorch's CUDA kernel does. The Linear-layer epilogues (``bias_...``)
add the bias with CuPy, then run the kernels here.
"""

from __future__ import annotations

from ...backend import get_array_module
from ..cpu.common import float_dtype
from ..cpu.gelu._common import check_approximate
from .source import CudaSource

SOURCE = CudaSource(
    "gelu",
    r"""
/* Phi(x), the standard normal CDF; 0.7071... = 1 / sqrt(2). */
__device__ __forceinline__ scalar_t normal_cdf(scalar_t x) {
    return (scalar_t)0.5 * erfc(-x * (scalar_t)0.70710678118654752440);
}

/* u = sqrt(2/pi) (x + 0.044715 x^3); 0.7978... = sqrt(2 / pi). */
__device__ __forceinline__ scalar_t tanh_inner(scalar_t x) {
    return (scalar_t)0.79788456080286535588 * (x + (scalar_t)0.044715 * x * x * x);
}

/* y = GELU(x) and slope = dy/dx at one element; 0.3989... = 1 / sqrt(2 pi).
   What a kernel leaves unused is dropped by the compiler. */
__device__ __forceinline__ void gelu_and_slope(scalar_t x, int use_tanh, scalar_t* y, scalar_t* slope) {
    if (use_tanh) {
        scalar_t t = tanh(tanh_inner(x));
        scalar_t du_dx = (scalar_t)0.79788456080286535588 * ((scalar_t)1 + (scalar_t)(3 * 0.044715) * x * x);
        *y = (scalar_t)0.5 * x * ((scalar_t)1 + t);
        *slope = (scalar_t)0.5 * ((scalar_t)1 + t) + (scalar_t)0.5 * x * ((scalar_t)1 - t * t) * du_dx;
    } else {
        scalar_t cdf = normal_cdf(x);
        scalar_t pdf = (scalar_t)0.39894228040143267794 * exp((scalar_t)-0.5 * x * x);
        *y = x * cdf;
        *slope = cdf + x * pdf;
    }
}

extern "C" __global__ void gelu_forward(const scalar_t* x, scalar_t* y, long long n, int use_tanh) {
    GRID_STRIDE_LOOP(i, n) {
        scalar_t slope;
        gelu_and_slope(x[i], use_tanh, &y[i], &slope);
    }
}

extern "C" __global__ void gelu_forward_with_slope(const scalar_t* x,
                                                   scalar_t* y,
                                                   scalar_t* slope,
                                                   long long n,
                                                   int use_tanh) {
    GRID_STRIDE_LOOP(i, n) {
        gelu_and_slope(x[i], use_tanh, &y[i], &slope[i]);
    }
}

extern "C" __global__ void gelu_backward(const scalar_t* x,
                                         const scalar_t* grad_y,
                                         scalar_t* grad_x,
                                         long long n,
                                         int use_tanh) {
    GRID_STRIDE_LOOP(i, n) {
        scalar_t y, slope;
        gelu_and_slope(x[i], use_tanh, &y, &slope);
        grad_x[i] = grad_y[i] * slope;
    }
}
""",
)


def _float_contiguous(xp, a):
    """``a`` as a C-contiguous array in the dtype the kernels compute in."""
    return xp.ascontiguousarray(a, dtype=float_dtype(a))


def gelu_forward(x, approximate="none"):
    """GELU of x (any shape), exact or with the tanh approximation."""
    use_tanh = check_approximate(approximate)
    xp = get_array_module(x)
    x = _float_contiguous(xp, x)
    y = xp.empty_like(x)
    SOURCE.launch("gelu_forward", x.size, (x, y, x.size, int(use_tanh)), x.dtype)
    return y


def gelu_forward_with_slope(x, approximate="none"):
    """(GELU(x), GELU'(x)) in one pass: the autograd op keeps the slope for its backward pass."""
    use_tanh = check_approximate(approximate)
    xp = get_array_module(x)
    x = _float_contiguous(xp, x)
    y = xp.empty_like(x)
    slope = xp.empty_like(x)
    SOURCE.launch("gelu_forward_with_slope", x.size, (x, y, slope, x.size, int(use_tanh)), x.dtype)
    return y, slope


def gelu_backward_from_slope(grad_y, slope):
    """grad_x = grad_y * GELU'(x), given the slope from gelu_forward_with_slope: one element-wise multiply,
    which CuPy's own element-wise kernel does. In the dtype of the slope."""
    xp = get_array_module(grad_y, slope)
    return (xp.asarray(grad_y) * slope).astype(slope.dtype, copy=False)


def bias_gelu_forward(pre, bias, approximate="none"):
    """GELU of pre + bias (a Linear layer's epilogue): CuPy's add, then the kernel above."""
    xp = get_array_module(pre, bias)
    pre = _float_contiguous(xp, pre)
    return gelu_forward(pre + xp.asarray(bias, dtype=pre.dtype), approximate)


def bias_gelu_forward_with_slope(pre, bias, approximate="none"):
    """GELU of pre + bias and its slope (a Linear layer's epilogue): CuPy's add, then the kernel above."""
    xp = get_array_module(pre, bias)
    pre = _float_contiguous(xp, pre)
    return gelu_forward_with_slope(pre + xp.asarray(bias, dtype=pre.dtype), approximate)


def gelu_backward_from_slope_with_bias_grad(grad_y, slope):
    """(grad_pre, grad_bias) for y = GELU(pre + bias): grad_pre = grad_y * slope and its column sums (in
    double), a multiply and a sum that CuPy's own kernels do. grad_y and slope: (rows, features)."""
    xp = get_array_module(grad_y, slope)
    grad_pre = gelu_backward_from_slope(grad_y, slope)
    return grad_pre, grad_pre.sum(axis=0, dtype=xp.float64).astype(slope.dtype)


def gelu_backward(x, grad_y, approximate="none"):
    """grad_x = grad_y * GELU'(x)."""
    use_tanh = check_approximate(approximate)
    xp = get_array_module(x, grad_y)
    x = _float_contiguous(xp, x)
    grad_y = xp.ascontiguousarray(grad_y, dtype=x.dtype)
    grad_x = xp.empty_like(x)
    SOURCE.launch("gelu_backward", x.size, (x, grad_y, grad_x, x.size, int(use_tanh)), x.dtype)
    return grad_x
