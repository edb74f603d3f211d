"""linear: y = x W^T + b over the last axis (``torch.nn.functional.linear``); linear_gelu: GELU(x W^T + b).

Shapes: x (..., in), weight (out, in), bias (out,) -> y (..., out). The leading axes are flattened into
one, so forward and both weight gradients are single matrix products (BLAS sgemm):
    dx = dy W,   dW = dy^T x,   db = sum of dy over the rows.

linear_gelu is ConvNeXt's first pointwise layer and its activation as one op. The matrix product is the
same; what follows it, the bias and the GELU, is one pass over the product ("epilogue fusion", as
cuBLASLt's GELU_BIAS epilogue and ``torch._addmm_activation``), and on the way back the multiply by GELU's
slope and the bias gradient (its column sums) are one pass too. Written as ``gelu(linear(x, W, b))`` the
widest activation of the block would be read and written twice more each way.
"""

from __future__ import annotations

from ...function import Function, is_grad_enabled
from ...tensor import as_tensor
from .activation import gelu, gelu_and_slope


class Linear(Function):
    """y = x W^T + b (see the module docstring). No fast kernel: the products are BLAS already."""

    def forward(self, x, weight, bias):
        rows = x.reshape(-1, x.shape[-1])
        out = rows @ weight.T
        if bias is not None:
            out += bias
        self.save_for_backward(rows, weight)
        self.input_shape = x.shape
        return out.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad):
        rows, weight = self.saved
        g2 = grad.reshape(-1, weight.shape[0])
        grad_x = (g2 @ weight).reshape(self.input_shape) if self.needs_input_grad[0] else None
        grad_w = g2.T @ rows if self.needs_input_grad[1] else None
        grad_b = g2.sum(axis=0) if self.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class LinearGELU(Function):
    """y = GELU(x W^T + b): the product, then the bias and GELU (module docstring). Keeps the input rows and
    GELU's slope (not the product) for the backward pass.

    Fast paths: the bias and GELU in one pass after the product, and on the way back the multiply by the
    slope with the bias gradient in one pass: ``bias_gelu_*`` of ``autograd/kernels/cpu/gelu/`` on NumPy
    arrays and of ``autograd/kernels/cuda/gelu.py`` on CuPy arrays.
    """

    fast_paths = {"cpu": "autograd.kernels.cpu.gelu", "cuda": "autograd.kernels.cuda.gelu"}

    def forward(self, x, weight, bias, approximate):
        rows = x.reshape(-1, x.shape[-1])
        y, slope = gelu_and_slope(rows @ weight.T + bias, approximate)
        self.save_for_backward(rows, weight, slope)
        self.input_shape = x.shape
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, grad):
        rows, weight, slope = self.saved
        grad_pre = grad.reshape(-1, weight.shape[0]) * slope
        grad_x = (grad_pre @ weight).reshape(self.input_shape) if self.needs_input_grad[0] else None
        grad_w = grad_pre.T @ rows if self.needs_input_grad[1] else None
        return grad_x, grad_w, grad_pre.sum(axis=0)

    def fast_forward(self, kernels, x, weight, bias, approximate):
        rows = x.reshape(-1, x.shape[-1])
        self.input_shape = x.shape
        if is_grad_enabled() and any(self.needs_input_grad):
            y, slope = kernels.bias_gelu_forward_with_slope(rows @ weight.T, bias, approximate)
            self.save_for_backward(rows, weight, slope)
        else:  # no backward pass to come: no slope
            y = kernels.bias_gelu_forward(rows @ weight.T, bias, approximate)
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def fast_backward(self, grad):
        rows, weight, slope = self.saved
        grad_pre, grad_b = self.kernels.gelu_backward_from_slope_with_bias_grad(
            grad.reshape(-1, weight.shape[0]), slope
        )
        grad_x = (grad_pre @ weight).reshape(self.input_shape) if self.needs_input_grad[0] else None
        grad_w = grad_pre.T @ rows if self.needs_input_grad[1] else None
        return grad_x, grad_w, grad_b


def _check_linear(x, weight, bias, name):
    if weight.ndim != 2:
        raise ValueError(f"{name} expects weight of shape (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"{name}: input {x.shape} must end with in_features={weight.shape[1]} to match weight "
            f"{weight.shape}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"{name}: bias must have shape ({weight.shape[0]},) for weight {weight.shape}, got {bias.shape}"
        )


def linear_gelu(x, weight, bias=None, approximate: str = "none"):
    """``gelu(linear(x, weight, bias), approximate)`` with the bias and GELU fused after the product."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"linear_gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_linear(x, weight, bias, "linear_gelu")
    if bias is None:
        return gelu(linear(x, weight), approximate)
    return LinearGELU.apply(x, weight, bias, approximate=approximate)


def linear(x, weight, bias=None):
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    _check_linear(x, weight, bias, "linear")
    return Linear.apply(x, weight, bias)
