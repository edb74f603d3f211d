"""Keep freed memory for reuse: a CPU training step should not pay the kernel for fresh pages every time.

A training step allocates the same large arrays (activations, their gradients) and frees them again,
step after step. glibc's malloc, which NumPy (and PyTorch on the CPU) allocate from, serves a large block
with its own ``mmap`` and gives it back to the operating system with ``munmap`` when it is freed; memory
freed at the top of the heap is given back too ("trimmed"). The next step's arrays then land on fresh
pages: every 4 KiB page costs a page fault, and the kernel zeroes it before handing it over, so an op
that writes a large fresh array pays for the pages as well as for its arithmetic. The measured cost is in
docs/benchmarks.md ("All the cores in training").

``retain_freed_memory()`` asks glibc (``mallopt``) to keep what it frees: no ``mmap`` for large blocks,
no trimming, and heap growth in 64 MiB steps. Freed blocks are then reused by the next step, as GPU
frameworks do with their memory pools (CuPy's, PyTorch's caching allocator) and as PyTorch's CPU
performance guide gets by swapping in jemalloc or tcmalloc. The price: the process keeps its peak memory
until it exits. Other C libraries (macOS, musl) are left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4

_TOP_PAD_BYTES = 64 * 2**20
_NEVER_TRIM = 2**31 - 1  # the largest int: the heap's free top is never given back

_applied = False


def _glibc():
    """The process's C library when it is glibc (it has mallopt), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (see the module docstring). Affects this process only,
    from now on; calling it again does nothing. Returns True when glibc took the settings, False where
    there is no glibc."""
    global _applied
    if _applied:
        return True
    libc = _glibc()
    if libc is None:
        return False
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, _NEVER_TRIM), (M_TOP_PAD, _TOP_PAD_BYTES))
    _applied = all(libc.mallopt(ctypes.c_int(option), ctypes.c_int(value)) == 1 for option, value in settings)
    return _applied


def is_retaining_freed_memory() -> bool:
    """Whether ``retain_freed_memory()`` has been applied in this process."""
    return _applied
