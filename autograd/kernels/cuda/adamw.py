"""AdamW on the GPU, one update step: one thread per parameter element, the whole update in one pass.

Each thread (grid-stride) reads p, g, m, v of its element once and writes p, m, v once; array-at-a-time
code would make about ten passes over memory. The math is ``autograd.optim.adamw``'s; the per-element
arithmetic is done in double, as in the CPU kernel ``autograd.kernels.cpu.adamw``, and the numbers of the
step (decay, step size, bias correction) are worked out once on the host by ``adamw_hyper``, the CPU
kernel's own helper. Elements are independent: there is nothing to reduce.
"""

from __future__ import annotations

from ...backend import get_array_module
from ..cpu.adamw import adamw_hyper  # noqa: F401  (the step's numbers, worked out on the host)
from .source import CudaSource

SOURCE = CudaSource(
    "adamw",
    r"""
extern "C" __global__ void adamw_step(scalar_t* p,
                                      const scalar_t* g,
                                      scalar_t* m,
                                      scalar_t* v,
                                      long long n,
                                      double decay,
                                      double beta1,
                                      double beta2,
                                      double step_size,
                                      double bias_correction2_sqrt,
                                      double eps) {
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


def adamw_update(p, g, m, v, hyper):
    """One AdamW step in place on C-contiguous arrays p, m, v (same dtype) with gradient g; ``hyper`` =
    ``adamw_hyper(lr, beta1, beta2, eps, weight_decay, step)``, as the CPU kernel takes it."""
    xp = get_array_module(p, g)
    g = xp.ascontiguousarray(g, dtype=p.dtype)
    SOURCE.launch("adamw_step", p.size, (p, g, m, v, p.size, *hyper), p.dtype)
