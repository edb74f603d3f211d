"""Batch norm, step 2, channels last: (rows, C) kernels whose inner loop runs over contiguous channels.

A channel's values are strided (one per row), so instead of visiting one channel at a time as step 1
does, a kernel walks the rows in order and updates every channel of a row at once: the inner loop runs
over contiguous memory and is vectorised. For the per-channel sums, the rows are cut into a fixed number of
chunks (a function of the shape, not of the thread count) run in parallel; each chunk adds its rows into
its own row of a float64 partial buffer, and the launcher adds the partials in a fixed order: the result
is free of races and the same on any number of threads. The elementwise kernels spread the rows over
threads.
"""

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, fastmath=False)
def rows_sums(x, center, squared, partial):
    """partial[chunk, c] = sum over the chunk's rows of (x - center[c]), or of its square."""
    rows, channels = x.shape
    chunks = partial.shape[0]
    for chunk in prange(chunks):
        first = chunk * rows // chunks
        last = (chunk + 1) * rows // chunks
        sums = partial[chunk]
        if squared:
            for i in range(first, last):
                for c in range(channels):
                    d = np.float64(x[i, c]) - center[c]
                    sums[c] += d * d
        else:
            for i in range(first, last):
                for c in range(channels):
                    sums[c] += np.float64(x[i, c]) - center[c]


@njit(parallel=True, cache=True, fastmath=False)
def rows_backward_sums(grad_y, x, mean, partial_dy, partial_dy_centered):
    """partial_dy[chunk, c] and partial_dy_centered[chunk, c] = sums over the chunk's rows of dy and of
    dy * (x - mean[c])."""
    rows, channels = x.shape
    chunks = partial_dy.shape[0]
    for chunk in prange(chunks):
        first = chunk * rows // chunks
        last = (chunk + 1) * rows // chunks
        sums_dy = partial_dy[chunk]
        sums_dy_centered = partial_dy_centered[chunk]
        for i in range(first, last):
            for c in range(channels):
                dy = np.float64(grad_y[i, c])
                sums_dy[c] += dy
                sums_dy_centered[c] += dy * (np.float64(x[i, c]) - mean[c])


@njit(parallel=True, cache=True, fastmath=False)
def rows_normalize(x, mean, scale, shift, y):
    """y = (x - mean[c]) * scale[c] + shift[c]."""
    rows, channels = x.shape
    for i in prange(rows):
        for c in range(channels):
            y[i, c] = (x[i, c] - mean[c]) * scale[c] + shift[c]


@njit(parallel=True, cache=True, fastmath=False)
def rows_grad_input(grad_y, x, mean, scale, mean_dy, slope, grad_x):
    """dx = scale[c] * (dy - mean_dy[c] - (x - mean[c]) * slope[c])."""
    rows, channels = x.shape
    for i in prange(rows):
        for c in range(channels):
            grad_x[i, c] = scale[c] * (grad_y[i, c] - mean_dy[c] - (x[i, c] - mean[c]) * slope[c])
