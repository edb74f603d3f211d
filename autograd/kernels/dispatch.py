"""The one place where an op chooses its kernels: Numba on the CPU, CUDA on the GPU, or the plain reference.

An op asks for a family by name and calls it with the fast kernels' names, whatever comes back::

    k = dispatch.kernels("gelu", x)          # k.path is "numba", "cuda" or "reference"
    y = k.gelu_forward(x, "none")

* CuPy arrays get the CUDA kernels of ``autograd.kernels.cuda.<family>``;
* NumPy arrays get the Numba kernels of ``autograd.kernels.cpu.<family>`` when Numba imports;
* otherwise, or when the environment variable ``AUTOGRAD_KERNELS`` is ``reference`` (read at import) or
  inside ``use_reference()`` (for tests and lessons), the plain references beside the Numba kernels
  (``gelu_forward_reference``, ...), written with ``xp`` so they run on NumPy and CuPy alike.
"""

from __future__ import annotations

import contextlib
import importlib
import os

import numpy as np

from ..backend import device_of

_mode = {
    "reference": os.environ.get("AUTOGRAD_KERNELS", "fast").strip().lower() == "reference",
    "emulate_cuda": False,
}

try:
    import numba  # noqa: F401

    NUMBA_AVAILABLE = True
except ImportError:  # pragma: no cover - numba is an install dependency
    NUMBA_AVAILABLE = False


def use_fast_cpu_kernel(*arrays) -> bool:
    """True when the op should call its Numba kernel for these arrays."""
    return NUMBA_AVAILABLE and not _mode["reference"] and all(isinstance(a, np.ndarray) for a in arrays)


def use_cuda_kernel(*arrays) -> bool:
    """True when the op should call its CUDA kernel for these arrays: all on the GPU (or all on the CPU
    inside ``emulate_cuda()``), and references not forced."""
    devices = {device_of(a) for a in arrays}
    return not _mode["reference"] and (devices == {"cuda"} or (_mode["emulate_cuda"] and devices == {"cpu"}))


class KernelFamily:
    """One family's kernels under the fast kernels' names; ``path`` says which ones they are."""

    def __init__(self, module, path: str):
        self.module = module
        self.path = path

    def __getattr__(self, name):
        return getattr(self.module, name + "_reference" if self.path == "reference" else name)

    def __repr__(self):
        return f"<{self.path} kernels of {self.module.__name__}>"


def kernels(family: str, *arrays) -> KernelFamily:
    """The kernels of ``family`` (e.g. "gelu", "layer_norm") that suit ``arrays`` (None entries ignored)."""
    arrays = [a for a in arrays if a is not None]
    if use_cuda_kernel(*arrays):
        return KernelFamily(importlib.import_module(f"autograd.kernels.cuda.{family}"), "cuda")
    cpu = importlib.import_module(f"autograd.kernels.cpu.{family}")
    return KernelFamily(cpu, "numba" if use_fast_cpu_kernel(*arrays) else "reference")


def reference_forced() -> bool:
    return _mode["reference"]


@contextlib.contextmanager
def emulate_cuda(enabled: bool = True):
    """Within this block NumPy arrays take the CUDA kernels too, run by the CPU emulator
    (``autograd.kernels.cuda.emulator``): the GPU code path, checked on a machine without a GPU. Slow."""
    previous = _mode["emulate_cuda"]
    _mode["emulate_cuda"] = enabled
    try:
        yield
    finally:
        _mode["emulate_cuda"] = previous


@contextlib.contextmanager
def use_reference(enabled: bool = True):
    """Within this block every op takes its plain NumPy reference path (``enabled=False``: the fast one)."""
    previous = _mode["reference"]
    _mode["reference"] = enabled
    try:
        yield
    finally:
        _mode["reference"] = previous
