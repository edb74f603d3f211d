"""Vectorisable float32 math for the Numba kernels: exp written as a short polynomial.

Why: libm's exp (``math.exp`` / ``np.exp`` inside a Numba kernel) is an opaque library call, which LLVM
cannot vectorise: a loop that calls it calls it once per element, and at best the arithmetic around the
call is vectorised, each lane going through memory to the call and back. ``exp_float32`` is written with
multiplies, adds, a floor and bit casts only, and has no branch, so LLVM vectorises it with the rest of the
loop (8 float32 lanes with AVX2, 16 with AVX-512). bench/gelu_exp.py measures the gain on the GELU loop
(docs/benchmarks.md).

One source, two compilations:
- ``exp_float32``: plain multiplies and adds (fastmath off). cross_entropy/ uses it, because with FMAs
  its row-parallel and serial loops rounded differently.
- ``exp_float32_fma``: the same source with multiply-adds contracted to FMAs (``FLOAT32_FASTMATH``): one
  rounding instead of two, a third fewer instructions in the polynomial. The GELU kernels use it.

Neither is cached on disk: Numba keys its cache by the Python function and the signature, not the
fastmath flags, so two cached compilations of one function would overwrite each other. They only ever run
inlined into the cached kernels of other modules.

Numba's on-disk cache does not track dependencies across modules: a kernel cached in gelu/ or
cross_entropy/ keeps the old machine code of this file after it is edited. After editing here, clear
the ``__pycache__`` folders of the kernels (or touch the files that use it).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# Lets LLVM fuse a multiply and an add into one FMA instruction (one rounding instead of two: as accurate
# or more); nothing is reordered.
FLOAT32_FASTMATH = {"contract"}

_F32_HALF = np.float32(0.5)
_F32_ZERO = np.float32(0.0)
_F32_INF = np.float32(np.inf)
_F32_EXP_MAX = np.float32(88.72283)  # exp overflows float32 above this
_F32_EXP_MIN = np.float32(-87.0)  # below this the result is (almost) subnormal: return 0
_F32_LOG2E = np.float32(1.4426950408889634)
_F32_LN2_HI = np.float32(0.693359375)  # ln 2 split in two for the range reduction (Cody and Waite)
_F32_LN2_LO = np.float32(-2.12194440e-4)
_F32_INV_FACTORIAL = tuple(np.float32(1.0 / math.factorial(k)) for k in range(8))


@intrinsic
def float32_from_bits(typingctx, bits):
    """Reinterpret the bits of an int32 as a float32 (used to build 2^n)."""
    if bits != types.int32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


def exp_float32_source(x):
    """exp(x) for float32 x, relative error < 1.1e-7; 0 below -87, inf above 88.72, nan for nan.
    Branch free, so that loops calling it vectorise. Range reduction x = n ln 2 + r, |r| <= ln(2) / 2,
    then exp(r) by its Taylor polynomial of degree 7 and 2^n from its bits."""
    xc = min(max(x, _F32_EXP_MIN), _F32_EXP_MAX)
    n = np.floor(xc * _F32_LOG2E + _F32_HALF)
    r = (xc - n * _F32_LN2_HI) - n * _F32_LN2_LO  # |r| <= ln(2) / 2
    c = _F32_INV_FACTORIAL
    p = c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    # 2^n for n in [-126, 128], built from its bits as two factors 2^h * 2^(n-h) that stay normal.
    whole = np.int32(n)
    half = np.int32(whole >> np.int32(1))
    scale_a = float32_from_bits(np.int32((half + np.int32(127)) << np.int32(23)))
    scale_b = float32_from_bits(np.int32((whole - half + np.int32(127)) << np.int32(23)))
    result = p * scale_a * scale_b
    result = _F32_ZERO if x < _F32_EXP_MIN else result
    result = _F32_INF if x > _F32_EXP_MAX else result
    return x if x != x else result


exp_float32 = njit(fastmath=False, error_model="numpy")(exp_float32_source)
exp_float32_fma = njit(fastmath=FLOAT32_FASTMATH, error_model="numpy")(exp_float32_source)
