"""autograd.memory.retain_freed_memory: glibc stops serving large arrays with mmap (which gives them back to
the OS on free, so the next one faults in fresh zeroed pages). Checked in a fresh interpreter, through
glibc's own count of mmapped blocks (mallinfo2().hblks)."""

import subprocess
import sys
import textwrap

import pytest

from autograd import memory

_PROBE = textwrap.dedent("""
    import ctypes, sys
    import numpy as np
    from autograd import memory

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                     "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "retain":
        assert memory.retain_freed_memory() and memory.is_retaining_freed_memory()
        assert memory.retain_freed_memory()  # a second call is harmless
    before = libc.mallinfo2().hblks
    big = np.ones(64 * 2 ** 20 // 4, np.float32)  # 64 MiB: above glibc's largest mmap threshold
    print(libc.mallinfo2().hblks - before)
""")


def _glibc_with_mallinfo2():
    libc = memory._glibc()
    return libc is not None and hasattr(libc, "mallinfo2")


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="needs glibc 2.33 or later (mallinfo2)")
def test_large_arrays_come_from_the_heap_once_freed_memory_is_retained():
    def mmapped_blocks(mode):
        result = subprocess.run(
            [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
        )
        return int(result.stdout.split()[-1])

    assert mmapped_blocks("default") == 1  # glibc's default: the 64 MiB array is a mapping of its own
    assert mmapped_blocks("retain") == 0


def test_without_glibc_nothing_is_changed(monkeypatch):
    monkeypatch.setattr(memory, "_applied", False)
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.retain_freed_memory() is False
    assert memory.is_retaining_freed_memory() is False
