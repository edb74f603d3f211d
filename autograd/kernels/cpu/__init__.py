"""Numba CPU kernels: pure functions on NumPy arrays, each beside its plain NumPy reference.

Threading (unless NUMBA_THREADING_LAYER says otherwise), chosen at import from Numba's thread count:
- several threads: Numba's "workqueue" layer. Its threads sleep between kernels, whereas OpenMP threads
  spin-wait and then fight OpenBLAS's threads for the two cores of a small machine: measured on a ConvNeXt
  training step here, 0.52-0.61 s with workqueue against 0.93-0.95 s with OpenMP. The kernels are only
  called from one thread at a time, which workqueue requires.
- one thread (NUMBA_NUM_THREADS=1, as in every data-parallel worker, ``tinyconvnext/parallel.py``):
  OpenMP. With one thread there is nothing to spin, and entering a parallel loop costs about 1 us, against
  about 135 us with workqueue, which wakes its queue even for a single thread. A training step calls the
  kernels some 150 times: one worker's CIFAR step (batch 32, one thread) took 164 ms with workqueue and
  143 ms with OpenMP at 32x32 pixels, 108 and 86 ms at 24x24. Without an OpenMP runtime, workqueue.
"""

import os


def _openmp_available() -> bool:
    try:
        from numba.np.ufunc import omppool  # noqa: F401  (fails without an OpenMP runtime)
    except ImportError:
        return False
    return True


if "NUMBA_THREADING_LAYER" not in os.environ:
    import numba

    one_thread = numba.config.NUMBA_NUM_THREADS == 1
    numba.config.THREADING_LAYER = "omp" if one_thread and _openmp_available() else "workqueue"
