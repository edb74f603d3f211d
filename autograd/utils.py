"""Helpers that the ops and the kernels share: pairs of sizes, output sizes, windows, the float dtype."""

from __future__ import annotations

import math

import numpy as np

from .backend import device_of


def pair(value, name: str = "value") -> tuple[int, int]:
    """An int or a pair of ints as (height, width), as PyTorch's ``kernel_size``, ``stride``, ``padding``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Positions of a ``kernel`` window sliding by ``stride`` over ``size`` values padded by ``padding``."""
    return (size + 2 * padding - kernel) // stride + 1


def float_dtype(*arrays) -> np.dtype:
    """The dtype to compute in for these arrays (None entries ignored): float32 or float64, never less."""
    dtype = np.result_type(*[a.dtype for a in arrays if a is not None])
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def sliding_windows(xp, x_pad, kh: int, kw: int, sh: int, sw: int, channels_last: bool = False):
    """Every KH x KW window of a padded batch as a view, without copying: (N, C, Ho, Wo, KH, KW) of an NCHW
    ``x_pad``, or (N, Ho, Wo, C, KH, KW) of an NHWC one (``channels_last``)."""
    axes = (1, 2) if channels_last else (2, 3)
    if xp is np:
        windows = np.lib.stride_tricks.sliding_window_view(x_pad, (kh, kw), axis=axes)
    else:  # CuPy
        from cupy.lib.stride_tricks import sliding_window_view

        windows = sliding_window_view(x_pad, (kh, kw), axis=axes)
    return windows[:, ::sh, ::sw] if channels_last else windows[:, :, ::sh, ::sw]


def erfc(x):
    """The complementary error function, elementwise on the array's device: libm's ``math.erfc`` for a NumPy
    array (NumPy has no erfc), ``cupyx.scipy.special.erfc`` (CUDA's) for a CuPy array."""
    if device_of(x) == "cpu":
        return _erfc_numpy(x)
    from cupyx.scipy.special import erfc as erfc_cupy  # CuPy is optional: only reached with a CuPy array

    return erfc_cupy(x)


_erfc_numpy = np.vectorize(math.erfc, otypes=[np.float64])
