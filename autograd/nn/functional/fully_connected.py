"""linear: y = x W^T + b over the last axis (``torch.nn.functional.linear``).

Shapes: x (..., in), weight (out, in), bias (out,) -> y (..., out). The leading axes are flattened into
one, so forward and both weight gradients are single matrix products (BLAS sgemm):
    dx = dy W,   dW = dy^T x,   db = sum of dy over the rows.
"""

from __future__ import annotations

from ...function import Function
from ...tensor import as_tensor


class Linear(Function):
    """y = x W^T + b (see the module docstring)."""

    def forward(self, x, weight, bias=None):
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
        if len(self.needs_input_grad) == 2:
            return grad_x, grad_w
        return grad_x, grad_w, (g2.sum(axis=0) if self.needs_input_grad[2] else None)


def linear(x, weight, bias=None):
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.ndim != 2:
        raise ValueError(f"linear expects weight of shape (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input {x.shape} must end with in_features={weight.shape[1]} to match weight {weight.shape}"
        )
    if bias is None:
        return Linear.apply(x, weight)
    bias = as_tensor(bias)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},) for weight {weight.shape}, got {bias.shape}")
    return Linear.apply(x, weight, bias)
