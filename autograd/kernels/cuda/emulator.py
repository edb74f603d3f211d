"""The CUDA emulator: a kernel run on the CPU, one thread after another, for tests and learning without a GPU.

A CUDA kernel is a function that every thread of a grid runs, each knowing its place through
``blockIdx``, ``blockDim``, ``threadIdx`` and ``gridDim``. When the threads never wait for each other (no
``__syncthreads``, shared memory, warp shuffles or atomics: the rule of ``autograd.kernels.cuda``), running
them one at a time in any order gives the same result as running them in parallel. So the emulator:

1. puts a small prelude before the source: ``dim3`` globals for the four built-in variables, and
   ``__global__``/``__device__`` defined away so that the kernel is plain C++;
2. adds, for every kernel, a launcher that loops over blocks and threads, setting the globals and
   calling the kernel;
3. compiles the result with the host C++ compiler (``$CXX``, else ``c++``/``g++``/``clang++``) into a
   shared library, cached by the hash of the code, and calls the launcher through ``ctypes``.

The arithmetic is the same C++ (the same float or double operations, the same math functions up to the
last bit of the libraries), so the emulator checks a kernel's indexing and logic exactly, and its
numbers to rounding. It says nothing about speed.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PRELUDE = r"""
#include <cmath>
struct emulated_dim3 { unsigned int x, y, z; };
static emulated_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__ static inline
#define __forceinline__
using std::exp; using std::log; using std::sqrt; using std::tanh; using std::erfc; using std::erf;
using std::fabs; using std::isnan; using std::isinf;
"""

_CTYPES_OF_C_TYPE = {  # scalar_t: c_float or c_double, chosen per launch
    "scalar_t": None,
    "long long": ctypes.c_longlong,
    "int": ctypes.c_int,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
}


def compiler() -> str | None:
    """The host C++ compiler the emulator uses, or None when there is none."""
    for candidate in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def _launcher(name, params) -> str:
    """C++ of ``emulate_<name>(blocks, block, args...)``: every thread of the grid, one after another."""
    signature = ", ".join(f"{p.ctype}{'*' if p.pointer else ''} {p.name}" for p in params)
    call = ", ".join(p.name for p in params)
    return f"""
extern "C" void emulate_{name}(unsigned int emulated_blocks, unsigned int emulated_block, {signature}) {{
    gridDim = {{emulated_blocks, 1, 1}};
    blockDim = {{emulated_block, 1, 1}};
    for (unsigned int emulated_b = 0; emulated_b < emulated_blocks; ++emulated_b)
        for (unsigned int emulated_t = 0; emulated_t < emulated_block; ++emulated_t) {{
            blockIdx = {{emulated_b, 0, 0}};
            threadIdx = {{emulated_t, 0, 0}};
            {name}({call});
        }}
}}
"""


def _cache_dir() -> Path:
    """Where compiled libraries are kept: $TINYCONVNEXT_CACHE or ~/.cache/tinyconvnext, else a temporary
    folder."""
    root = os.environ.get("TINYCONVNEXT_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "tinyconvnext"
    )
    for path in (Path(root) / "cuda_emulator", Path(tempfile.gettempdir()) / "tinyconvnext_cuda_emulator"):
        try:
            path.mkdir(parents=True, exist_ok=True)
            return path
        except OSError:  # a read-only home, say
            continue
    raise RuntimeError(f"the CUDA emulator found no writable folder for its libraries (tried {root})")


@functools.cache
def _library(code: str) -> ctypes.CDLL:
    """The shared library of this C++ code, compiled on first use and then loaded from the cache folder."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError(
            "the CUDA emulator needs a C++ compiler (c++, g++ or clang++; or set $CXX), and none was found"
        )
    digest = hashlib.sha256(code.encode()).hexdigest()[:20]
    target = _cache_dir() / f"kernels_{digest}.so"
    if not target.exists():
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "kernels.cpp"
            source.write_text(code)
            built = Path(tmp) / "kernels.so"
            result = subprocess.run(
                [cxx, "-O2", "-std=c++14", "-shared", "-fPIC", "-o", str(built), str(source)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise RuntimeError(f"the CUDA emulator could not compile the kernels:\n{result.stderr}")
            os.replace(built, target)  # atomic: a concurrent run sees the whole library or none
    return ctypes.CDLL(str(target))


def emulated_kernel(source, kernel: str, dtype):
    """A callable ``f(blocks, block, args)`` that runs ``kernel`` of ``source`` on NumPy arrays."""
    params = source.kernels[kernel]
    code = PRELUDE + source.code_for(dtype) + "".join(_launcher(k, p) for k, p in source.kernels.items())
    function = getattr(_library(code), f"emulate_{kernel}")
    scalar = ctypes.c_float if np.dtype(dtype) == np.float32 else ctypes.c_double
    function.restype = None
    function.argtypes = [ctypes.c_uint, ctypes.c_uint] + [
        ctypes.c_void_p if p.pointer else (_CTYPES_OF_C_TYPE[p.ctype] or scalar) for p in params
    ]

    def run(blocks, block, args):
        values = [a.ctypes.data if p.pointer else a.item() for p, a in zip(params, args, strict=False)]
        function(blocks, block, *values)

    return run
