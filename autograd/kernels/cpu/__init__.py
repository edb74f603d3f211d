"""The CPU kernels, a chapter of their own: Numba kernels on NumPy arrays, each family told in numbered steps.

Each family starts from its plain loops and adds one idea a step; the last step is the one the ops use, and
each family's ``STEPS`` lists them all (``tests/kernels`` checks every step against the op's own body, and
lesson 06 times the depthwise convolution's one after another). Read them in this order:

* ``depthwise_conv2d/``: ConvNeXt's 7x7 depthwise conv: threads, wide rows, channels in the vector lanes;
* ``layer_norm/``, ``batch_norm/``: normalisation in one or two passes, in either layout, without transposing;
* ``gelu/``: GELU with its slope, then float32 polynomials that let the loop vectorise (``fast_math.py``);
* ``cross_entropy/``: softmax and cross-entropy fused over each row;
* ``max_pool2d.py``, ``residual.py``, ``adamw.py``: short ones; ``common.py``: the helpers they share.

Threading (unless NUMBA_THREADING_LAYER says otherwise), chosen at import from Numba's thread count:
- several threads: Numba's "workqueue" layer. Its threads sleep between kernels, whereas OpenMP threads
  spin-wait and then fight OpenBLAS's threads for the cores of a small machine (a whole training step is much
  slower with OpenMP there: docs/benchmarks.md). The kernels are only called from one thread at a time, which
  workqueue requires.
- one thread (NUMBA_NUM_THREADS=1, as in every data-parallel worker, ``tinyconvnext/parallel.py``):
  OpenMP. With one thread there is nothing to spin, and entering a parallel loop costs far less than with
  workqueue, which wakes its queue even for a single thread; a training step enters some 150 parallel loops.
  Without an OpenMP runtime, workqueue.
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
