"""The AdamW update fused into one Numba pass over a parameter (see ``autograd.optim.adamw`` for the math).

NumPy needs about ten passes over memory for the same update (one per array operation); this reads p,
g, m, v once and writes p, m, v once. Parallel over elements; the arithmetic is done in float64 per
element, so float32 results round like the reference's float32 operations to within an ulp or two.
"""

import math

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _adamw_kernel(p, g, m, v, decay, beta1, beta2, step_size, bias_correction2_sqrt, eps):
    for i in prange(p.size):
        gi = g[i]
        mi = beta1 * m[i] + (1.0 - beta1) * gi
        vi = beta2 * v[i] + (1.0 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - step_size * mi / (math.sqrt(vi) / bias_correction2_sqrt + eps)


def adamw_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One AdamW step in place on contiguous NumPy arrays p, m, v with gradient g."""
    g = np.ascontiguousarray(g, dtype=p.dtype)
    _adamw_kernel(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), 1.0 - lr * weight_decay, beta1, beta2,
                  lr / (1.0 - beta1 ** step), math.sqrt(1.0 - beta2 ** step), eps)
