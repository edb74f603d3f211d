"""Exercise 09, after lesson 08 (the ConvNeXt block): drop path, also called stochastic depth.

The reference solution, what the tests check by default:
python -m pytest tests/exercises/test_09_drop_path.py
"""

import numpy as np


def drop_path(x: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Drop the whole residual branch of each sample with probability p (the paper's Section 2.1).

    Draw one number per sample, u = rng.random(N); keep sample n when u[n] < 1 - p. A kept sample is scaled by
    1 / (1 - p), so that the expected output equals x and evaluation needs no rescaling; a dropped one is all
    zeros. At p = 1 every sample is dropped and nothing is drawn.

    Args:
        x: (N, ...), a batch of a residual branch's outputs.
        p: the drop probability, in [0, 1].
        rng: the generator to draw from (exactly N numbers, once).
    Returns:
        An array of x's shape and dtype.
    Hint: reshape the (N,) keep mask to (N, 1, 1, ...) so that it broadcasts over the other axes.
    """
    if p == 1.0:
        return np.zeros_like(x)
    keep = rng.random(x.shape[0]) < 1.0 - p
    factors = keep.reshape((-1,) + (1,) * (x.ndim - 1)) / (1.0 - p)
    return (x * factors).astype(x.dtype)
