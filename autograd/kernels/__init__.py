"""Fast kernels: the one switch that turns them all off, and which op has which fast path.

Every op computes its forward and backward in its own body, with ``xp`` (NumPy or CuPy): that is the math the
lessons show and the tests check. An op that also has a fast kernel says so in its class, beside that body::

    class GELU(Function):
        fast_paths = {"cpu": "autograd.kernels.cpu.gelu", "cuda": "autograd.kernels.cuda.gelu"}

        def forward(self, x, approximate="none"): ...        # the math, in xp
        def backward(self, grad): ...
        def fast_forward(self, kernels, x, approximate="none"): ...   # the same op through `kernel`
        def fast_backward(self, grad): ...

``Function.apply`` asks ``kernel_for(op, arrays)`` which kernel module, if any, runs the op on these arrays:

* NumPy arrays: the Numba kernels of ``autograd.kernels.cpu.<family>`` (when Numba imports);
* CuPy arrays: the CUDA kernels of ``autograd.kernels.cuda.<family>`` (compiled by CuPy at their first call);
* none at all while the switch is off: the op's own ``forward`` and ``backward`` run.

The switch, one for every fast path (the optimizers' fused steps included):

* ``AUTOGRAD_KERNELS=reference`` in the environment, read once at import;
* ``autograd.kernels.set_enabled(False)``, or for one block ``with autograd.kernels.use_reference(): ...``.

A testing tool sits beside it: inside ``with autograd.kernels.emulate_cuda(): ...`` NumPy arrays take the
CUDA kernels too, run by the CPU emulator (``autograd.kernels.cuda.emulator``), so that the GPU code path is
checked on a machine without a GPU. It is slow.

``python -m autograd.kernels`` prints every op's fast paths and whether they can run on this machine.
The kernels are a chapter of their own: ``cpu/`` tells each one as a sequence of optimisation steps.
"""

from __future__ import annotations

import contextlib
import importlib
import os

import numpy as np

from .. import _identity  # noqa: F401  (first: stops if another autograd's __init__ ran)
from ..backend import device_of

_state = {
    "enabled": os.environ.get("AUTOGRAD_KERNELS", "fast").strip().lower() != "reference",
    "emulate_cuda": False,
}

try:
    import numba  # noqa: F401

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - numba is an install dependency
    NUMBA_AVAILABLE = False


def enabled() -> bool:
    """True unless the switch has turned every fast path off."""
    return _state["enabled"]


def set_enabled(flag: bool) -> None:
    """Turn every fast path on (True) or off (False): with them off, each op runs its own body."""
    _state["enabled"] = bool(flag)


@contextlib.contextmanager
def use_reference(enabled: bool = True):
    """Within this block every op runs its own body, no fast kernel (``enabled=False``: the fast paths)."""
    previous = _state["enabled"]
    _state["enabled"] = not enabled
    try:
        yield
    finally:
        _state["enabled"] = previous


@contextlib.contextmanager
def emulate_cuda(enabled: bool = True):
    """Within this block NumPy arrays take the CUDA kernels too, run by the CPU emulator (a testing tool)."""
    previous = _state["emulate_cuda"]
    _state["emulate_cuda"] = enabled
    try:
        yield
    finally:
        _state["emulate_cuda"] = previous


def device_for_kernels(*arrays) -> str | None:
    """The kernels that suit these arrays (None entries ignored): "cuda", "cpu", or None (the op's body)."""
    devices = {device_of(a) for a in arrays if a is not None}
    if not _state["enabled"] or len(devices) != 1:
        return None
    if devices == {"cuda"} or (_state["emulate_cuda"] and devices == {"cpu"}):
        return "cuda"
    if NUMBA_AVAILABLE and all(isinstance(a, np.ndarray) for a in arrays if a is not None):
        return "cpu"
    return None


def kernel_for(op: type, arrays) -> object | None:
    """The kernel module that runs ``op`` on ``arrays``, or None when the op's own body runs."""
    paths = getattr(op, "fast_paths", None)
    if not paths:
        return None
    device = device_for_kernels(*arrays)
    return None if device not in paths else importlib.import_module(paths[device])
