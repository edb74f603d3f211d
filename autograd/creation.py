"""Making tensors: from Python data or arrays, filled, ranges and random draws.

Floating tensors are float32 unless ``dtype`` says otherwise (use float64 for gradient checks).
Every constructor takes ``device`` ('cpu' or 'cuda'; the default device when omitted) and
``requires_grad``.
"""

from __future__ import annotations

import numpy as np

from . import random as _random
from .backend import DEFAULT_FLOAT_DTYPE, array_module_for, device_of, normalize_device, to_device
from .ops.shape import shape_args
from .tensor import Tensor


def _finish(array, dtype, device, requires_grad) -> Tensor:
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    array = to_device(array, normalize_device(device))
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python numbers, nested lists, a NumPy/CuPy array or a Tensor).

    Python floats become float32 unless ``dtype`` is given; arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    if device is None and device_of(data) == "cuda":
        device = "cuda"
    xp = array_module_for(device_of(data)) if hasattr(data, "dtype") else np
    array = xp.array(data, copy=True)
    if dtype is None and not hasattr(data, "dtype") and np.issubdtype(array.dtype, np.floating):
        dtype = DEFAULT_FLOAT_DTYPE
    return _finish(array, dtype, device, requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap a NumPy array without copying (its dtype is kept)."""
    return Tensor(np.asarray(array))


def _filled(shape, value, dtype, device, requires_grad):
    dtype = np.dtype(dtype or DEFAULT_FLOAT_DTYPE)
    xp = array_module_for(normalize_device(device))
    return Tensor(xp.full(shape_args(shape), value, dtype=dtype), requires_grad=requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled(shape, 0, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled(shape, 1, dtype, device, requires_grad)


def empty(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled(shape, 0, dtype, device, requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _filled(
        (shape,) if isinstance(shape, int) else (tuple(shape),), fill_value, dtype, device, requires_grad
    )


def _like(x: Tensor, dtype, device):
    return x.shape, dtype or x.dtype, device or x.device


def zeros_like(x: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype, device = _like(x, dtype, device)
    return _filled((shape,), 0, dtype, device, requires_grad)


def ones_like(x: Tensor, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype, device = _like(x, dtype, device)
    return _filled((shape,), 1, dtype, device, requires_grad)


def full_like(x: Tensor, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    shape, dtype, device = _like(x, dtype, device)
    return _filled((shape,), fill_value, dtype, device, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Evenly spaced values in [start, stop); integers give int64, floats give float32 by default."""
    if stop is None:
        start, stop = 0, start
    array = np.arange(start, stop, step)
    if dtype is None and np.issubdtype(array.dtype, np.floating):
        dtype = DEFAULT_FLOAT_DTYPE
    return _finish(array, dtype, device, requires_grad)


def linspace(start, stop, num, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.linspace(start, stop, num), dtype or DEFAULT_FLOAT_DTYPE, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _finish(np.eye(n, m), dtype or DEFAULT_FLOAT_DTYPE, device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal draws."""
    array = _random.resolve(generator).standard_normal(shape_args(shape))
    return _finish(array, dtype or DEFAULT_FLOAT_DTYPE, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform draws in [0, 1)."""
    array = _random.resolve(generator).random(shape_args(shape))
    return _finish(array, dtype or DEFAULT_FLOAT_DTYPE, device, requires_grad)


def randint(low, high, shape, dtype=np.int64, device=None, generator=None) -> Tensor:
    """Integer draws in [low, high)."""
    array = _random.resolve(generator).integers(low, high, size=tuple(shape))
    return _finish(array, dtype, device, False)


def randn_like(x: Tensor, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    return randn(
        x.shape,
        dtype=dtype or x.dtype,
        device=device or x.device,
        requires_grad=requires_grad,
        generator=generator,
    )


def rand_like(x: Tensor, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    return rand(
        x.shape,
        dtype=dtype or x.dtype,
        device=device or x.device,
        requires_grad=requires_grad,
        generator=generator,
    )
