"""The one place where an op chooses between its fast kernel and its plain NumPy reference.

Fast kernels (Numba on the CPU) are used when all of these hold:
* the environment variable ``AUTOGRAD_KERNELS`` is not ``reference`` (read at import; ``use_reference``
  switches at run time, for tests and lessons),
* the arrays are NumPy arrays (CuPy arrays take the GPU path of their op),
* Numba imports.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

_mode = {"reference": os.environ.get("AUTOGRAD_KERNELS", "fast").strip().lower() == "reference"}

try:
    import numba  # noqa: F401

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - numba is an install dependency
    NUMBA_AVAILABLE = False


def use_fast_cpu_kernel(*arrays) -> bool:
    """True when the op should call its Numba kernel for these arrays."""
    return NUMBA_AVAILABLE and not _mode["reference"] and all(isinstance(a, np.ndarray) for a in arrays)


def reference_forced() -> bool:
    return _mode["reference"]


@contextlib.contextmanager
def use_reference(enabled: bool = True):
    """Within this block every op takes its plain NumPy reference path (``enabled=False``: the fast one)."""
    previous = _mode["reference"]
    _mode["reference"] = enabled
    try:
        yield
    finally:
        _mode["reference"] = previous
