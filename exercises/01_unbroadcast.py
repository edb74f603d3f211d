"""Exercise 01, after lesson 01 (broadcasting): sum a gradient back to the shape of a broadcast input.

Fill in the body that raises NotImplementedError, then test it:
TINYCONVNEXT_EXERCISES=mine python -m pytest tests/exercises/test_01_unbroadcast.py
"""

import numpy as np


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting expanded, so that the result has ``shape``.

    When ``z = x + y`` broadcasts y of shape (3, 1) to (2, 3, 4), every value of y is copied along the new
    leading axis and along its axis of size 1. The gradient of a copied value is the sum of the gradients of
    its copies, so dL/dy = dL/dz summed over axis 0 (added in front) and over axis 2 (size 1 in y), keeping
    axis 2 as size 1.

    Args:
        grad: the gradient of the broadcast result, of shape S.
        shape: the input's shape; broadcasting ``shape`` to S must be possible.
    Returns:
        An array of exactly ``shape``.
    Hint: first sum away the ``grad.ndim - len(shape)`` leading axes, then sum with ``keepdims=True`` over
    each axis where ``shape`` has 1 and grad does not.
    """
    raise NotImplementedError("exercise 01: write unbroadcast")
