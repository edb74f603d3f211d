"""The AdamW update fused into one Numba pass over a parameter (see ``autograd.optim.adamw`` for the math).

NumPy needs about ten passes over memory for the same update (one per array operation); this reads p,
g, m, v once and writes p, m, v once. The arithmetic is done in float64 per element, so float32 results
round like the reference's float32 operations to within an ulp or two.

Parameters under PARALLEL_MIN_SIZE elements take the serial loop; larger ones are cut into chunks that
Numba's threads share. Waking the threads costs ~170 us on the 2-core machines, against ~1 us for a whole
pass over a bias or a norm weight and ~4.5 ns an element of serial work (the pass is bound by memory
traffic), so the threads pay off only for a few hundred thousand elements. A model has many small
parameters: ``convnext_cifar_3stage`` has 88, 61 of them under 1,000 elements, and a parallel loop over
each made its optimizer step take 15-17 ms; it takes 6 ms now. Each element is computed the same way on
either path, so the choice never changes a result.

When all the parameters lie side by side in one flat buffer, and their gradients in another (as
``tinyconvnext.parallel.DataParallel`` lays them out), ``adamw_update_segments`` updates them all in one
call: each parameter is a segment with its own hyper-parameters, cut into chunks that the threads share
(the "multi-tensor" update of PyTorch's ``foreach``/``fused`` AdamW). Every element gets the same
arithmetic, so the same bits. The 88 parameters of ``convnext_cifar_3stage`` (1.07M elements) take 2.4 ms
on two threads instead of 5.0 ms (88 serial calls), measured alone; inside train_cifar.py's loop, where the
memory traffic (~30 MB a step) mostly misses the caches, 5.1 ms instead of 6.1 ms.
"""

import math

import numpy as np
from numba import njit, prange

PARALLEL_MIN_SIZE = 1 << 18  # elements; below this the serial loop is faster
CHUNK = 1 << 14  # elements per task of the parallel loop


@njit(cache=True)
def _adamw_range(p, g, m, v, start, stop, decay, beta1, beta2, step_size, bias_correction2_sqrt, eps):
    """The update of elements start..stop-1."""
    for i in range(start, stop):
        gi = g[i]
        mi = beta1 * m[i] + (1.0 - beta1) * gi
        vi = beta2 * v[i] + (1.0 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - step_size * mi / (math.sqrt(vi) / bias_correction2_sqrt + eps)


@njit(parallel=True, cache=True)
def _adamw_chunks(p, g, m, v, decay, beta1, beta2, step_size, bias_correction2_sqrt, eps):
    """The same update, in chunks of CHUNK elements shared by Numba's threads."""
    for c in prange((p.size + CHUNK - 1) // CHUNK):
        _adamw_range(
            p,
            g,
            m,
            v,
            c * CHUNK,
            min((c + 1) * CHUNK, p.size),
            decay,
            beta1,
            beta2,
            step_size,
            bias_correction2_sqrt,
            eps,
        )


def adamw_hyper(lr, beta1, beta2, eps, weight_decay, step):
    """The per-parameter numbers of one step, as the kernels take them:
    (decay = 1 - lr * weight_decay, beta1, beta2, step_size = lr / (1 - beta1^t), sqrt(1 - beta2^t), eps)."""
    return (
        1.0 - lr * weight_decay,
        beta1,
        beta2,
        lr / (1.0 - beta1**step),
        math.sqrt(1.0 - beta2**step),
        eps,
    )


def adamw_update(p, g, m, v, lr, beta1, beta2, eps, weight_decay, step):
    """One AdamW step in place on contiguous NumPy arrays p, m, v with gradient g."""
    g = np.ascontiguousarray(g, dtype=p.dtype)
    p, g, m, v = p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)
    hyper = adamw_hyper(lr, beta1, beta2, eps, weight_decay, step)
    if p.size >= PARALLEL_MIN_SIZE:
        _adamw_chunks(p, g, m, v, *hyper)
    else:
        _adamw_range(p, g, m, v, 0, p.size, *hyper)


def segment_tasks(bounds, chunk: int = CHUNK):
    """Cut segments [bounds[s], bounds[s+1]) into tasks of at most ``chunk`` elements: three int64 arrays
    (start, stop, segment) for ``adamw_update_segments``."""
    starts, stops, segments = [], [], []
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=False)):
        cuts = list(range(int(a), int(b), chunk)) + [int(b)]
        starts += cuts[:-1]
        stops += cuts[1:]
        segments += [s] * (len(cuts) - 1)
    return tuple(np.array(values, dtype=np.int64) for values in (starts, stops, segments))


@njit(parallel=True, cache=True)
def _adamw_tasks(
    p, g, m, v, start, stop, segment, decay, beta1, beta2, step_size, bias_correction2_sqrt, eps
):
    """The update of each task's elements with its segment's hyper-parameters, tasks shared by the threads."""
    for t in prange(start.size):
        s = segment[t]
        _adamw_range(
            p,
            g,
            m,
            v,
            start[t],
            stop[t],
            decay[s],
            beta1[s],
            beta2[s],
            step_size[s],
            bias_correction2_sqrt[s],
            eps[s],
        )


def adamw_update_segments(p, g, m, v, tasks, hyper):
    """One AdamW step in place on flat arrays p, m, v (gradient g) made of segments.

    tasks: ``segment_tasks(bounds)``. hyper: six float64 arrays, one value per segment, in the order of
    ``adamw_hyper``'s tuple."""
    _adamw_tasks(p, g, m, v, *tasks, *hyper)
