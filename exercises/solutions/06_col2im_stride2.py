"""Exercise 06, after lesson 05 (convolution as im2col + matmul): col2im for stride 2, the backward of im2col.

The reference solution, what the tests check by default:
python -m pytest tests/exercises/test_06_col2im_stride2.py
"""

import numpy as np


def col2im_stride2(grad_cols: np.ndarray, x_shape: tuple) -> np.ndarray:
    """Add the gradients of the windows back to the input positions they were read from.

    im2col for a K x K kernel, stride 2 and no padding reads

        cols[n, i, j, c, u, v] = x[n, c, 2 i + u, 2 j + v],      Ho = (H - K) // 2 + 1, Wo likewise.

    Windows overlap when K > 2 (a pixel is read by several windows) and skip pixels when K < 2 (or at the
    bottom and right edges when H - K is odd). So dL/dx[n, c, h, w] is the sum of dL/dcols over every
    (i, j, u, v) with 2 i + u = h and 2 j + v = w, and zero where no window reads.

    Args:
        grad_cols: (N, Ho, Wo, C, K, K), dL/dcols.
        x_shape: (N, C, H, W), the shape of the input x.
    Returns:
        dL/dx: an array of ``x_shape``, in grad_cols' dtype.
    Hint: loop over the K * K taps (u, v); each adds a (N, C, Ho, Wo) slab to the strided slice
    ``[:, :, u : u + 2 * Ho : 2, v : v + 2 * Wo : 2]`` of the result.
    """
    _, ho, wo, _, k, _ = grad_cols.shape
    grad_x = np.zeros(x_shape, dtype=grad_cols.dtype)
    for u in range(k):
        for v in range(k):
            grad_x[:, :, u : u + 2 * ho : 2, v : v + 2 * wo : 2] += grad_cols[..., u, v].transpose(0, 3, 1, 2)
    return grad_x
