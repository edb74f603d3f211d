"""Matrix product with NumPy's rules: 1-D operands, batched and broadcast leading axes.

z = a @ b;  dL/da = dL/dz @ b^T,  dL/db = a^T @ dL/dz, summed over any broadcast batch axes.
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..graph import sum_to_shape
from ..tensor import as_tensor


class MatMul(Function):
    """z = a @ b (see the module docstring for the gradients)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, grad):
        a, b = self.saved
        # Treat 1-D operands as a row (a) or a column (b), as NumPy does, then undo it at the end.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = sum_to_shape(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            grad_b = sum_to_shape(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape)
        return grad_a, grad_b


def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}"
        )
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align: "
            f"{inner_a} (last axis of the first) != {inner_b} "
            f"({'only' if b.ndim == 1 else 'second-to-last'} axis of the second)"
        )
    if a.ndim > 2 and b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch shapes {a.shape[:-2]} and {b.shape[:-2]} of {a.shape} and {b.shape} "
                "cannot be broadcast together"
            ) from None
    return MatMul.apply(a, b)
