"""Exercise 03, after lesson 04 (gradient checking): the central-difference gradient of a scalar function.

Fill in the body that raises NotImplementedError, then test it:
TINYCONVNEXT_EXERCISES=mine python -m pytest tests/exercises/test_03_numerical_gradient.py
"""

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The gradient of a scalar function f at x, one entry at a time, by central differences:

        df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

    whose error is O(eps^2) (the first-order terms cancel), plus rounding of order (machine epsilon / eps).

    Args:
        f: takes an array of x's shape and returns a number.
        x: a float64 array of any shape.
        eps: the step.
    Returns:
        A float64 array of x's shape. ``x`` must hold its original values afterwards.
    Hint: loop over ``np.ndindex(x.shape)``; change one entry of a copy, evaluate, and put the entry back.
    """
    raise NotImplementedError("exercise 03: write numerical_gradient")
