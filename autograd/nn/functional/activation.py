"""Activations: GELU (Hendrycks & Gimpel, 2016), the one ConvNeXt uses (Section 2.6), and ReLU.

    gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)),          dy/dx = Phi(x) + x phi(x),
    tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)   (PyTorch's ``approximate="tanh"``),
               dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2).

The forward pass computes the slope dy/dx beside y and keeps it instead of x: the backward pass is then one
multiply, dx = dy * dy/dx (as ReLU keeps its mask), for the same memory, one array the size of x.
"""

from __future__ import annotations

import math

from ...backend import get_array_module
from ...function import Function, is_grad_enabled
from ...ops.elementwise import relu  # noqa: F401  (re-exported: F.relu)
from ...tensor import as_tensor
from ...utils import erfc

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
TANH_CUBIC = 0.044715


def gelu_and_slope(x, approximate: str):
    """(GELU(x), dGELU/dx), computed in float64 and returned in x's dtype (the formulas above)."""
    xp = get_array_module(x)
    x64 = x.astype(xp.float64)
    if approximate == "tanh":
        t = xp.tanh(SQRT_2_OVER_PI * (x64 + TANH_CUBIC * x64**3))
        y = 0.5 * x64 * (1.0 + t)
        slope = 0.5 * (1.0 + t) + 0.5 * x64 * (1.0 - t**2) * SQRT_2_OVER_PI * (
            1.0 + 3.0 * TANH_CUBIC * x64**2
        )
    else:
        cdf = 0.5 * erfc(
            -x64 / math.sqrt(2.0)
        )  # Phi(x), without the cancellation of 1 + erf in the left tail
        y = x64 * cdf
        slope = cdf + x64 * xp.exp(-0.5 * x64**2) / math.sqrt(2.0 * math.pi)
    return y.astype(x.dtype), slope.astype(x.dtype)


class GELU(Function):
    """y = x Phi(x) (see the module docstring).

    Fast paths: the Numba kernels of ``autograd/kernels/cpu/gelu/`` on NumPy arrays, the CUDA kernels of
    ``autograd/kernels/cuda/gelu.py`` on CuPy arrays: each direction is one pass over memory.
    """

    fast_paths = {"cpu": "autograd.kernels.cpu.gelu", "cuda": "autograd.kernels.cuda.gelu"}

    def forward(self, x, approximate):
        y, slope = gelu_and_slope(x, approximate)
        self.save_for_backward(slope)
        return y

    def backward(self, grad):
        (slope,) = self.saved
        return grad * slope

    def fast_forward(self, kernels, x, approximate):
        if not (is_grad_enabled() and any(self.needs_input_grad)):
            return kernels.gelu_forward(x, approximate)  # no backward pass to come: no slope
        y, slope = kernels.gelu_forward_with_slope(x, approximate)
        self.save_for_backward(slope)
        return y

    def fast_backward(self, grad):
        (slope,) = self.saved
        return self.kernels.gelu_backward_from_slope(grad, slope)


def gelu(x, approximate: str = "none"):
    """GELU, exact (erf) by default, as ``torch.nn.functional.gelu``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(as_tensor(x), approximate=approximate)
