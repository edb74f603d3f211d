"""Activations: GELU (Hendrycks & Gimpel, 2016), the one ConvNeXt uses (Section 2.6), and ReLU.

    gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)),        d/dx = Phi(x) + x * phi(x),
    tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as ``approximate="tanh"`` in PyTorch.

Both directions are one fused pass: Numba on the CPU (``autograd.kernels.cpu.gelu``), CUDA on the GPU
(``autograd.kernels.cuda.gelu``); array-at-a-time code would need about ten passes for the erf form.
When a gradient will be needed, the forward pass computes the slope dy/dx beside y (the same exp and Phi
serve both) and keeps it instead of x: the backward pass is then one multiply, grad_x = grad_y * dy/dx
(as ReLU keeps its mask). Memory is the same: one array the size of x.
"""

from __future__ import annotations

from ...function import Function, is_grad_enabled
from ...kernels import dispatch
from ...ops.elementwise import relu  # noqa: F401  (re-exported: F.relu)
from ...tensor import as_tensor


class GELU(Function):
    """y = x Phi(x) (see the module docstring)."""

    def forward(self, x, approximate="none"):
        self.kernels = dispatch.kernels("gelu", x)  # which ones: self.kernels.path
        if not (is_grad_enabled() and any(self.needs_input_grad)):
            return self.kernels.gelu_forward(x, approximate)  # no backward pass to come
        y, slope = self.kernels.gelu_forward_with_slope(x, approximate)
        self.save_for_backward(slope)
        return y

    def backward(self, grad):
        (slope,) = self.saved
        return self.kernels.gelu_backward_from_slope(grad, slope)  # grad * slope, in the dtype of x


def gelu(x, approximate: str = "none"):
    """GELU, exact (erf) by default, as ``torch.nn.functional.gelu``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(as_tensor(x), approximate=approximate)
