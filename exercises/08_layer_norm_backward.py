"""Exercise 08, after lesson 07 (norms and activations): LayerNorm's backward, by hand.

Fill in the body that raises NotImplementedError, then test it:
TINYCONVNEXT_EXERCISES=mine python -m pytest tests/exercises/test_08_layer_norm_backward.py
"""

import numpy as np


def layer_norm_backward(
    x: np.ndarray, weight: np.ndarray, grad_out: np.ndarray, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gradients of y = weight * xhat + bias, xhat = (x - mean) / sqrt(var + eps), over the last axis.

    mean and var (biased: divide by D) are taken over the last axis of x, separately for every row. With
    rstd = 1 / sqrt(var + eps) and g = grad_out * weight:

        dL/dx      = rstd * (g - mean(g) - xhat * mean(g * xhat))      (means over the last axis)
        dL/dweight = sum over rows of grad_out * xhat
        dL/dbias   = sum over rows of grad_out

    Args:
        x: (..., D) float64.
        weight: (D,).
        grad_out: dL/dy, x's shape.
        eps: added to the variance.
    Returns:
        (dL/dx of x's shape, dL/dweight (D,), dL/dbias (D,)).
    Hint: recompute mean, rstd and xhat first; keep the last axis (``keepdims=True``) so that they broadcast.
    """
    raise NotImplementedError("exercise 08: write layer_norm_backward")
