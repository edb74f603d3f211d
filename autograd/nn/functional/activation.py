"""Activations: GELU (Hendrycks & Gimpel, 2016), the one ConvNeXt uses (Section 2.6), and ReLU.

    gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)),        d/dx = Phi(x) + x * phi(x),
    tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as ``approximate="tanh"`` in PyTorch.

On the CPU both directions are one fused Numba pass (``autograd.kernels.cpu.gelu``); NumPy alone would
need about ten passes over the array for the erf form.
"""

from __future__ import annotations

from ...function import Function
from ...kernels import dispatch
from ...ops.elementwise import relu  # noqa: F401  (re-exported: F.relu)
from ...tensor import as_tensor


def _kernels():
    from ...kernels.cpu import gelu

    return gelu


class GELU(Function):
    """y = x Phi(x) (see the module docstring)."""

    def forward(self, x, approximate="none"):
        k = _kernels()
        self.fast = dispatch.use_fast_cpu_kernel(x)
        self.approximate = approximate
        self.save_for_backward(x)
        return (k.gelu_forward if self.fast else k.gelu_forward_reference)(x, approximate)

    def backward(self, grad):
        k = _kernels()
        (x,) = self.saved
        return (k.gelu_backward if self.fast else k.gelu_backward_reference)(x, grad, self.approximate)


def gelu(x, approximate: str = "none"):
    """GELU, exact (erf) by default, as ``torch.nn.functional.gelu``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(as_tensor(x), approximate=approximate)
