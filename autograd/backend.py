"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU.

Every op body is written once against an array module ``xp`` that it gets from its inputs
(``xp = get_array_module(x)``), the idiom of Chainer and DeZero, so the same code runs on both.
CuPy is optional: importing this module, and everything on the CPU, works without it.
"""

from __future__ import annotations

import numpy as np

try:  # CuPy is an optional dependency: only the GPU backend needs it.
    import cupy as _cupy
except Exception:  # ImportError, or a CuPy that is installed but finds no CUDA driver
    _cupy = None

DEVICES = ("cpu", "cuda")

DEFAULT_FLOAT_DTYPE = np.dtype(np.float32)


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one GPU."""
    if _cupy is None:
        return False
    try:
        return _cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _require_cupy():
    if not cupy_available():
        raise RuntimeError(
            "device 'cuda' needs CuPy and an NVIDIA GPU, but CuPy is "
            + ("not installed (pip install cupy-cuda12x)" if _cupy is None else "installed and sees no GPU")
        )
    return _cupy


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``."""
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


def device_of(array) -> str:
    """'cuda' for a CuPy array, 'cpu' for anything else."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return "cuda"
    return "cpu"


def normalize_device(device) -> str:
    """Accept 'cpu', 'cuda', 'cuda:0' (and None meaning 'cpu'); refuse anything else clearly."""
    if device is None:
        return _default_device
    name = str(device).lower()
    if name.startswith("cuda"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {DEVICES}")
    return name


def array_module_for(device: str):
    """The array module that holds arrays on ``device``."""
    return _require_cupy() if normalize_device(device) == "cuda" else np


def to_device(array, device: str):
    """Move an array to ``device`` ('cpu' or 'cuda'); a no-op when it is already there."""
    device = normalize_device(device)
    if device_of(array) == device:
        return array
    if device == "cuda":
        return _require_cupy().asarray(array)
    return _cupy.asnumpy(array)


def to_numpy(array) -> np.ndarray:
    """A NumPy array with the same values (a transfer from the GPU when needed)."""
    return to_device(array, "cpu")


_default_device = "cpu"


def set_default_device(device) -> None:
    """Where new tensors are created when no ``device`` is given (like ``torch.set_default_device``)."""
    global _default_device
    device = normalize_device(device)
    if device == "cuda":
        _require_cupy()
    _default_device = device


def get_default_device() -> str:
    return _default_device
