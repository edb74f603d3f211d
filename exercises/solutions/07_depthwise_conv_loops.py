"""Exercise 07, after lesson 06 (depthwise convolution): the depthwise convolution's forward, tap by tap.

The reference solution, what the tests check by default:
python -m pytest tests/exercises/test_07_depthwise_conv_loops.py
"""

import numpy as np


def depthwise_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, padding: int) -> np.ndarray:
    """A depthwise convolution (groups = channels), stride 1, zero padding: each channel has its own K x K
    filter and sees only itself (ConvNeXt's 7x7 depthwise layer, the paper's Section 2.3).

        out[n, c, i, j] = bias[c] + sum over u, v of weight[c, 0, u, v] * x_pad[n, c, i + u, j + v]

    Args:
        x: (N, C, H, W).
        weight: (C, 1, K, K).
        bias: (C,), or None for no bias.
        padding: zeros added on each side of H and W.
    Returns:
        (N, C, Ho, Wo) with Ho = H + 2 padding - K + 1 (and Wo likewise), as
        ``conv2d(x, weight, bias, padding=padding, groups=C)``.
    Hint: loop over the K * K taps, not over pixels: each tap adds a shifted slice of x_pad times
    ``weight[:, 0, u, v]`` broadcast over channels (shape (1, C, 1, 1)).
    """
    n, c, h, w = x.shape
    k = weight.shape[-1]
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = h + 2 * padding - k + 1, w + 2 * padding - k + 1
    out = np.zeros((n, c, ho, wo), dtype=x.dtype)
    for u in range(k):
        for v in range(k):
            out += weight[:, 0, u, v].reshape(1, c, 1, 1) * x_pad[:, :, u : u + ho, v : v + wo]
    if bias is not None:
        out += bias.reshape(1, c, 1, 1)
    return out
