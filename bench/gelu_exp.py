"""Time the float32 GELU loop with libm's exp against the same loop with the polynomial exp (fast_math).

Why the GELU kernels (autograd/kernels/cpu/gelu/step4_float32_polynomials.py) carry their own exp: a loop
that calls libm's expf stays scalar (LLVM cannot vectorise across the library call), whereas
``fast_math.exp_float32_fma`` is plain arithmetic that LLVM vectorises. Both loops here compute the erf
form's forward pass y = x * Phi(x) in float32 with the same polynomial Phi (``normal_cdf_float32``) and
the same flags (fastmath={'contract'}); only the exp differs. Serial loops, one thread. Each loop runs on
the same SIZE-element array REPEATS times; the median time of a call is printed, and whether each loop's
machine code calls expf (once per element) and how many packed (vectorised) float32 FMAs it holds.

Numba can vectorise libm calls through Intel's SVML when it is installed (icc_rt); the SVML state is
printed, as it changes the answer. Results go to docs/benchmarks.md. Run it on an idle machine:

    cd /work/main && .venv/bin/python bench/gelu_exp.py [--size 1500000] [--repeats 51]
"""

import os
import re
import statistics
import sys
import time

import numba
import numpy as np
from numba import njit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from autograd.kernels.cpu.fast_math import FLOAT32_FASTMATH, exp_float32_fma  # noqa: E402
from autograd.kernels.cpu.gelu.step4_float32_polynomials import normal_cdf_float32  # noqa: E402
from tinyconvnext.cli import make_parser, positive_int, run_command  # noqa: E402

HALF = np.float32(0.5)


@njit(fastmath=FLOAT32_FASTMATH, error_model="numpy")
def gelu_with_libm_exp(x, y):
    for i in range(x.shape[0]):
        v = x[i]
        y[i] = v * normal_cdf_float32(v, np.exp(-HALF * v * v))


@njit(fastmath=FLOAT32_FASTMATH, error_model="numpy")
def gelu_with_polynomial_exp(x, y):
    for i in range(x.shape[0]):
        v = x[i]
        y[i] = v * normal_cdf_float32(v, exp_float32_fma(-HALF * v * v))


def median_seconds(kernel, x, y, repeats):
    kernel(x, y)  # compile and warm the caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        kernel(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_code_summary(kernel):
    """Whether the machine code calls libm's expf, and how many packed float32 multiply-adds it holds."""
    asm = "".join(kernel.inspect_asm().values())
    calls_expf = "yes" if re.search(r"\$expf\b", asm) else "no"
    packed_fma = len(re.findall(r"\tvfn?m(?:add|sub)\d+ps\t", asm))
    return f"calls expf: {calls_expf}, packed float32 FMAs: {packed_fma}"


def main(argv=None):
    parser = make_parser("python bench/gelu_exp.py", __doc__)
    parser.add_argument("--size", type=positive_int, default=1_500_000, help="elements of the input array")
    parser.add_argument("--repeats", type=positive_int, default=51, help="timed calls; the median counts")
    args = parser.parse_args(argv)
    svml = "in use" if numba.config.USING_SVML else "not in use"
    print(f"numba {numba.__version__}, SVML {svml}, {args.size:,} float32 elements, one thread")
    x = (np.random.default_rng(0).standard_normal(args.size) * 3).astype(np.float32)
    y_libm, y_poly = np.empty_like(x), np.empty_like(x)
    libm = median_seconds(gelu_with_libm_exp, x, y_libm, args.repeats)
    poly = median_seconds(gelu_with_polynomial_exp, x, y_poly, args.repeats)
    print(f"libm exp:       {libm * 1e3:8.3f} ms  ({machine_code_summary(gelu_with_libm_exp)})")
    print(f"polynomial exp: {poly * 1e3:8.3f} ms  ({machine_code_summary(gelu_with_polynomial_exp)})")
    difference = np.abs(y_libm - y_poly).max()
    print(f"libm / polynomial: {libm / poly:.2f}x; largest difference in y: {difference:.2e}")


if __name__ == "__main__":
    sys.exit(run_command(main))
