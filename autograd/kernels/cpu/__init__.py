"""Numba CPU kernels: pure functions on NumPy arrays, each beside its plain NumPy reference.

Threading: Numba's "workqueue" layer is chosen unless NUMBA_THREADING_LAYER says otherwise. Its threads
sleep between kernels, whereas OpenMP threads spin-wait and then fight OpenBLAS's threads for the two cores
of a small machine: measured on a ConvNeXt training step here, 0.52-0.61 s with workqueue against
0.93-0.95 s with OpenMP. The kernels are only called from one thread at a time, which workqueue requires.
"""

import os

if "NUMBA_THREADING_LAYER" not in os.environ:
    import numba

    numba.config.THREADING_LAYER = "workqueue"
