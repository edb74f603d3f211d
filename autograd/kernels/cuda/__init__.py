"""CUDA kernels for the hot ops, one file a family, each beside the CPU kernel of the same name.

Every file holds its CUDA C source as a string (``SOURCE``) and Python wrappers with the same names and
signatures as the Numba wrappers in ``autograd.kernels.cpu`` (``gelu_forward``, ``layer_norm_backward``, ...).
The source is compiled once per dtype (``scalar_t`` is float or double) by CuPy at the first call.

* On CuPy arrays the kernels run on the GPU (``cupy.RawModule``).
* On NumPy arrays they run in the CPU emulator (``autograd.kernels.cuda.emulator``): the same source,
  compiled by the host C++ compiler, every CUDA thread run one after another. It is slow, and exists so
  that the kernels' logic can be tested, and read about, on a machine without a GPU.

To make that possible every kernel is written so that its threads never wait for each other: no shared
memory, no ``__syncthreads``, no warp shuffles, no atomics. A reduction across threads is done in two
steps: each thread sums a chunk into a buffer of partial sums, then ``xp.sum`` adds the partials.

Importing this package needs neither CuPy nor a GPU.
"""
