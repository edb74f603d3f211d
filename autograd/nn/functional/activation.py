"""Activations: GELU (Hendrycks & Gimpel, 2016), the one ConvNeXt uses (Section 2.6), and ReLU.

    gelu(x) = x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)),        d/dx = Phi(x) + x * phi(x),
    tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), as ``approximate="tanh"`` in PyTorch.

Both directions are one fused pass: Numba on the CPU (``autograd.kernels.cpu.gelu``), CUDA on the GPU
(``autograd.kernels.cuda.gelu``); array-at-a-time code would need about ten passes for the erf form.
"""

from __future__ import annotations

from ...function import Function
from ...kernels import dispatch
from ...ops.elementwise import relu  # noqa: F401  (re-exported: F.relu)
from ...tensor import as_tensor


class GELU(Function):
    """y = x Phi(x) (see the module docstring)."""

    def forward(self, x, approximate="none"):
        self.kernels = dispatch.kernels("gelu", x)
        self.approximate = approximate
        self.save_for_backward(x)
        return self.kernels.gelu_forward(x, approximate)

    def backward(self, grad):
        (x,) = self.saved
        return self.kernels.gelu_backward(x, grad, self.approximate)


def gelu(x, approximate: str = "none"):
    """GELU, exact (erf) by default, as ``torch.nn.functional.gelu``."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(as_tensor(x), approximate=approximate)
