"""The AdamW update fused into one GPU pass: each thread reads p, g, m, v of one element once and writes
p, m, v once (array-by-array NumPy-style code makes about ten passes). See ``autograd.optim.adamw`` for the
math; the per-element arithmetic is done in double, as in the CPU kernel ``autograd.kernels.cpu.adamw``.
"""

from __future__ import annotations

import math

from ...backend import get_array_module
from .source import CudaSource

SOURCE = CudaSource(
    "adamw",
    r"""
extern "C" __global__ void adamw_step(scalar_t* p, const scalar_t* g, scalar_t* m, scalar_t* v, long long n,
                                      double decay, double beta1, double beta2, double step_size,
                                      double bias_correction2_sqrt, double eps) {
    GRID_STRIDE_LOOP(i, n) {
        double gi = g[i];
        double mi = beta1 * m[i] + (1.0 - beta1) * gi;
        double vi = beta2 * v[i] + (1.0 - beta2) * gi * gi;
        m[i] = (scalar_t)mi;
        v[i] = (scalar_t)vi;
        p[i] = (scalar_t)(p[i] * decay - step_size * mi / (sqrt(vi) / bias_correction2_sqrt + eps));
    }
}
""",
)


def adamw_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One AdamW step in place on C-contiguous arrays p, m, v (same dtype) with gradient g."""
    xp = get_array_module(p, g)
    g = xp.ascontiguousarray(g, dtype=p.dtype)
    SOURCE.launch(
        "adamw_step",
        p.size,
        (
            p,
            g,
            m,
            v,
            p.size,
            1.0 - lr * weight_decay,
            beta1,
            beta2,
            lr / (1.0 - beta1**step),
            math.sqrt(1.0 - beta2**step),
            eps,
        ),
        p.dtype,
    )
