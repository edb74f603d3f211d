"""CUDA sources and their launch: compile once per dtype, check the arguments, run on the GPU or the emulator.

A kernel family writes its CUDA C once, against the type ``scalar_t``::

    SOURCE = CudaSource("gelu", r'''
    extern "C" __global__ void gelu_forward(const scalar_t* x, scalar_t* y, long long n) { ... }
    ''')
    SOURCE.launch("gelu_forward", n, (x, y, n))

``launch`` reads each kernel's parameter list from the source, checks every argument against it (an
array of the right dtype, C-contiguous; a number for a number), and runs ``threads`` threads in blocks of
``THREADS_PER_BLOCK``: on the GPU when the arrays are CuPy arrays, in the CPU emulator when they are
NumPy arrays. A wrong argument is a clear Python error here rather than garbage or a crash on the device.

Every kernel walks its items with ``GRID_STRIDE_LOOP`` (the ``PRELUDE`` below), so the launch needs no
knowledge of the kernel beyond how many threads would cover its items once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ...backend import device_of

THREADS_PER_BLOCK = 256  # a multiple of the warp size (32) that suits every kernel here
MAX_BLOCKS = 1 << 20  # grid-stride loops cover any size with at most this many blocks

SCALAR_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
C_TYPES = {"long long": np.int64, "int": np.int32, "float": np.float32, "double": np.float64}

# Put before every source. A grid-stride loop: thread t of a grid of T threads takes items t, t + T,
# t + 2T, ... so a grid of any size covers any number of items (Caffe's CUDA_KERNEL_LOOP).
PRELUDE = r"""
#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)
"""

_KERNEL_DECLARATION = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)', re.S)


@dataclass(frozen=True)
class Param:
    """One kernel parameter: its name, its C type ('scalar_t', 'long long', 'int', 'double') and whether it
    is a pointer."""

    name: str
    ctype: str
    pointer: bool


def parse_params(text: str) -> tuple[Param, ...]:
    """A C parameter list as Params, e.g. ``const scalar_t* __restrict__ x, long long n`` ->
    (Param('x', 'scalar_t', True), Param('n', 'long long', False))."""
    params = []
    for piece in text.split(","):
        words = piece.replace("*", " * ").split()
        words = [w for w in words if w not in ("const", "__restrict__")]
        if not words:
            continue
        pointer = "*" in words
        words = [w for w in words if w != "*"]
        params.append(Param(words[-1], " ".join(words[:-1]), pointer))
    return tuple(params)


def scalar_dtype(ctype: str, dtype) -> np.dtype:
    """The NumPy dtype of a C type, ``scalar_t`` being ``dtype``."""
    if ctype == "scalar_t":
        return np.dtype(dtype)
    return np.dtype(C_TYPES[ctype])


class CudaSource:
    """CUDA C source of one kernel family; compiled lazily, once per scalar type."""

    def __init__(self, name: str, code: str):
        self.name = name
        self.code = code
        self.kernels = {m.group(1): parse_params(m.group(2)) for m in _KERNEL_DECLARATION.finditer(code)}
        if not self.kernels:
            raise ValueError(f'CUDA source {name!r} defines no extern "C" __global__ kernel')
        self._compiled = {}

    def code_for(self, dtype) -> str:
        """The source with ``scalar_t`` defined: what nvcc, NVRTC or the emulator compiles."""
        dtype = np.dtype(dtype)
        if dtype not in SCALAR_TYPES:
            raise TypeError(f"CUDA kernels {self.name!r}: expected float32 or float64 arrays, got {dtype}")
        return f"typedef {SCALAR_TYPES[dtype]} scalar_t;\n{PRELUDE}{self.code}"

    def launch(self, kernel: str, threads: int, args: tuple, dtype) -> None:
        """Run ``kernel`` with at least ``threads`` threads (grid-stride loops take any surplus)."""
        params = self.kernels[kernel]
        if len(args) != len(params):
            names = ", ".join(p.name for p in params)
            raise TypeError(f"{kernel}: expected {len(params)} arguments ({names}), got {len(args)}")
        converted = tuple(
            self._checked_argument(kernel, p, a, dtype) for p, a in zip(params, args, strict=False)
        )
        blocks = max(1, min(MAX_BLOCKS, -(-int(threads) // THREADS_PER_BLOCK)))
        devices = {device_of(a) for a, p in zip(args, params, strict=False) if p.pointer}
        if devices == {"cuda"}:
            self._cupy_function(kernel, dtype)((blocks,), (THREADS_PER_BLOCK,), converted)
        elif devices <= {"cpu"}:
            from .emulator import emulated_kernel

            emulated_kernel(self, kernel, dtype)(blocks, THREADS_PER_BLOCK, converted)
        else:
            raise ValueError(f"{kernel}: all arrays must be on one device, got {sorted(devices)}")

    def _checked_argument(self, kernel, param, value, dtype):
        """The argument as the kernel takes it: an array as it is (once checked), a number in its C type."""
        expected = scalar_dtype(param.ctype, dtype)
        if param.pointer:
            if getattr(value, "dtype", None) != expected or not value.flags.c_contiguous:
                got = f"{getattr(value, 'dtype', type(value).__name__)}" + (
                    "" if not hasattr(value, "flags") or value.flags.c_contiguous else " (not C-contiguous)"
                )
                raise TypeError(
                    f"{kernel}: argument {param.name!r} must be a C-contiguous {expected} array, got {got}"
                )
            return value
        if hasattr(value, "shape") and getattr(value, "ndim", 0) > 0:
            raise TypeError(
                f"{kernel}: argument {param.name!r} must be a number, got an array of shape {value.shape}"
            )
        return expected.type(value)

    def _cupy_function(self, kernel, dtype):
        dtype = np.dtype(dtype)
        module = self._compiled.get(dtype)
        if module is None:
            import cupy

            module = self._compiled[dtype] = cupy.RawModule(
                code=self.code_for(dtype), options=("--std=c++14",)
            )
        return module.get_function(kernel)
