"""Exercise 05, after lesson 05 (convolution as im2col + matmul): im2col for a 3x3 kernel with padding 1.

The reference solution, what the tests check by default:
python -m pytest tests/exercises/test_05_im2col_3x3.py
"""

import numpy as np


def im2col_3x3(x: np.ndarray) -> np.ndarray:
    """The windows of a 3x3 convolution with stride 1 and zero padding 1, one row per output pixel.

    With x_pad = x padded by one zero on each side of H and W:

        cols[(n, i, j), (c, u, v)] = x_pad[n, c, i + u, j + v]      for u, v in 0, 1, 2

    so that, for a weight (O, C, 3, 3), ``cols @ weight.reshape(O, C * 9).T`` is the convolution's output with
    its rows in (n, i, j) order: reshaped to (N, H, W, O) and transposed, it equals
    ``conv2d(x, weight, padding=1)`` (N, O, H, W).

    Args:
        x: (N, C, H, W).
    Returns:
        cols: (N * H * W, C * 9).
    Hint: fill an (N, H, W, C, 3, 3) array with nine slices of x_pad (one per tap u, v), then reshape.
    """
    n, c, h, w = x.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, h, w, c, 3, 3), dtype=x.dtype)
    for u in range(3):
        for v in range(3):
            cols[..., u, v] = x_pad[:, :, u : u + h, v : v + w].transpose(0, 2, 3, 1)
    return cols.reshape(n * h * w, c * 9)
