"""Helpers shared by the CPU kernel families: argument handling, written once (``pair`` and ``float_dtype``
are the engine's own, from ``autograd/utils.py``).

Other families may add functions here; nothing here is renamed once added.
"""

import numpy as np

from ...utils import conv_output_size, float_dtype, pair  # noqa: F401  (shared with the ops: defined once)


def check_window_geometry(H, W, KH, KW, stride, padding):
    """A KH x KW window sliding over an H x W image with the given stride and zero padding.

    Returns (sh, sw, ph, pw, Ho, Wo): the stride and padding per axis and the output size
    Ho = (H + 2*ph - KH)//sh + 1, Wo = (W + 2*pw - KW)//sw + 1. Raises ValueError for a stride < 1,
    a padding < 0, an empty kernel or a kernel larger than the padded input."""
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be >= 1, got {stride!r}")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    if KH < 1 or KW < 1:
        raise ValueError("kernel size must be >= 1")
    Ho, Wo = conv_output_size(H, KH, sh, ph), conv_output_size(W, KW, sw, pw)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"kernel {KH}x{KW} larger than padded input {(H + 2 * ph, W + 2 * pw)}")
    return sh, sw, ph, pw, Ho, Wo


def contiguous_vector(a, size, dtype):
    """``a`` as a contiguous (size,) array of ``dtype`` (no copy when it already is one)."""
    return np.ascontiguousarray(a, dtype=dtype).reshape(size)


def fixed_chunk_count(tasks, tasks_per_chunk, most=64):
    """How many chunks to cut ``tasks`` into for per-chunk partial sums: at least ``tasks_per_chunk``
    tasks per chunk, at most ``most`` chunks, at least one. A function of the shape only, never of the
    thread count: partials added in a fixed order then give the same result on any number of threads."""
    return max(1, min(most, tasks // tasks_per_chunk))
