"""CUDA kernels for the hot ops: one file a family, each mirroring the CPU kernel family of the same name.

Every family file holds its CUDA C source (``SOURCE``, a ``CudaSource``) and Python wrappers with the same
names and signatures as the CPU entry points of ``autograd.kernels.cpu.<family>`` (``gelu_forward``,
``layer_norm_backward``, ...), so that an op's ``fast_forward``/``fast_backward`` call either by name. The
source is written against ``scalar_t`` and compiled once per dtype (float or double) at the first call.

* On CuPy arrays the kernels run on the GPU (``cupy.RawModule``).
* On NumPy arrays they run in the CPU emulator (``autograd.kernels.cuda.emulator``): the same source,
  compiled by the host C++ compiler, every CUDA thread run one after another. It is slow, and exists so
  that the kernels' logic can be tested, and read, on a machine without a GPU.

Why the kernels look the way they do: so that the emulator can run them, no thread ever waits for
another. There is no shared memory, no ``__syncthreads``, no warp shuffle and no atomic operation. Each
kernel gives every thread its own outputs (one element, one row, one sample, ...), written by no other
thread. A sum across threads is done in two steps: each thread adds up a chunk of the values into its own
slot of a buffer of partial sums (in double), then ``xp.sum`` in the Python wrapper adds the partials.
Run in any order, one at a time, the threads then give what they give in parallel on the GPU.

One version per kernel; the steps live in the CPU chapter. The CPU families (``autograd.kernels.cpu``)
tell their optimisation as a story of steps (``STEPS``), each one measured against the last. A step story
for the GPU (shared-memory tiles, warp reductions, ...) would need a GPU to measure every step, and those
steps could no longer run in the emulator, so each CUDA kernel here is the one plain, readable version.

Files: ``source.py`` (a source, its argument checks and its launch), ``emulator.py`` (the CPU emulator),
``common.py`` (helpers shared by the families), then one file per family. Some ops have no CUDA family:
on CuPy arrays their own bodies run (the scaled residual's few element-wise multiplies and adds, say, are
CuPy's own kernels there).

Importing this package needs neither CuPy nor a GPU.
"""
