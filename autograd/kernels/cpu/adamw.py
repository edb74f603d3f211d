"""AdamW, steps 1 to 3: the update fused into one Numba pass over a parameter, then over all of them.

The math is in ``autograd.optim.adamw``, written with array operations: ``adamw_update`` there, which
the tests compare every step with. NumPy needs about ten passes over memory for the update (one per array
operation); a loop reads p, g, m, v once and writes p, m, v once. The arithmetic is done in float64 per
element, so float32 results round like the array formula's float32 operations to within an ulp or two.
The per-parameter numbers of a step come from ``adamw_hyper`` as one tuple, ``hyper`` = (decay, beta1,
beta2, step_size, bias_correction2_sqrt, eps).

The steps (``STEPS``, in order):
1. plain loop: one serial pass over the parameter's elements (implements adamw_update).
2. threads for large parameters: a parameter of PARALLEL_MIN_SIZE elements or more is cut into chunks of
   CHUNK elements that Numba's threads share; smaller ones keep the serial loop, because waking the
   threads costs far more than a pass over a bias or a norm weight (the pass is bound by memory traffic),
   and a model has many small parameters (``convnext_cifar_3stage``: 61 of its 88 under 1,000 elements).
   Implements adamw_update.
3. all parameters in one call: when the parameters lie side by side in one flat buffer, and their
   gradients in another (as ``tinyconvnext.parallel.DataParallel`` lays them out),
   ``adamw_update_segments`` updates them all at once: each parameter is a segment with its own
   hyper-parameters, cut into tasks of CHUNK elements that the threads share (the "multi-tensor" update
   of PyTorch's ``foreach``/``fused`` AdamW). Implements all four entry points (adamw_hyper, adamw_update,
   segment_tasks, adamw_update_segments); what the public names are.
Each element gets the same arithmetic on every path, so the choice never changes a result.
Measured in docs/benchmarks.md.
"""

import math
from types import SimpleNamespace

import numpy as np
from numba import njit, prange

PARALLEL_MIN_SIZE = 1 << 18  # elements; below this the serial loop is faster
CHUNK = 1 << 14  # elements per task of the parallel loops


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


def _flat_arrays(p, g, m, v):
    g = np.ascontiguousarray(g, dtype=p.dtype)
    return p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1)


# -- step 1: the plain loop ---------------------------------------------------------------------------
@njit(cache=True)
def _adamw_range(p, g, m, v, start, stop, hyper):
    """The update of elements start..stop-1."""
    decay, beta1, beta2, step_size, bias_correction2_sqrt, eps = hyper
    for i in range(start, stop):
        gi = g[i]
        mi = beta1 * m[i] + (1.0 - beta1) * gi
        vi = beta2 * v[i] + (1.0 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] = p[i] * decay - step_size * mi / (math.sqrt(vi) / bias_correction2_sqrt + eps)


def plain_adamw_update(p, g, m, v, hyper):
    """One AdamW step in place, one serial pass; ``hyper`` = ``adamw_hyper(...)``."""
    p, g, m, v = _flat_arrays(p, g, m, v)
    _adamw_range(p, g, m, v, 0, p.size, hyper)


# -- step 2: large parameters cut into chunks for the threads -----------------------------------------
@njit(parallel=True, cache=True)
def _adamw_chunks(p, g, m, v, hyper):
    """The update in chunks of CHUNK elements shared by Numba's threads."""
    for c in prange((p.size + CHUNK - 1) // CHUNK):
        _adamw_range(p, g, m, v, c * CHUNK, min((c + 1) * CHUNK, p.size), hyper)


def adamw_update(p, g, m, v, hyper):
    """One AdamW step in place on contiguous NumPy arrays p, m, v with gradient g; ``hyper`` =
    ``adamw_hyper(lr, beta1, beta2, eps, weight_decay, step)``."""
    p, g, m, v = _flat_arrays(p, g, m, v)
    if p.size >= PARALLEL_MIN_SIZE:
        _adamw_chunks(p, g, m, v, hyper)
    else:
        _adamw_range(p, g, m, v, 0, p.size, hyper)


# -- step 3: all parameters of a flat buffer in one call ---------------------------------------------
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
def _adamw_tasks(p, g, m, v, tasks, hyper):
    """The update of each task's elements with its segment's hyper-parameters, tasks shared by the threads.
    tasks: (start, stop, segment) arrays; hyper: six arrays, one value per segment."""
    start, stop, segment = tasks
    decay, beta1, beta2, step_size, bias_correction2_sqrt, eps = hyper
    for t in prange(start.size):
        s = segment[t]
        segment_hyper = (decay[s], beta1[s], beta2[s], step_size[s], bias_correction2_sqrt[s], eps[s])
        _adamw_range(p, g, m, v, start[t], stop[t], segment_hyper)


def adamw_update_segments(p, g, m, v, tasks, hyper):
    """One AdamW step in place on flat arrays p, m, v (gradient g) made of segments.

    tasks: ``segment_tasks(bounds)``. hyper: six float64 arrays, one value per segment, in the order of
    ``adamw_hyper``'s tuple (e.g. a (6, segments) array)."""
    _adamw_tasks(p, g, m, v, tuple(tasks), tuple(hyper))


STEPS = {
    "1 plain loop": SimpleNamespace(adamw_update=plain_adamw_update),
    "2 threads for large parameters": SimpleNamespace(adamw_update=adamw_update),
    "3 all parameters in one call": SimpleNamespace(
        adamw_hyper=adamw_hyper,
        adamw_update=adamw_update,
        segment_tasks=segment_tasks,
        adamw_update_segments=adamw_update_segments,
    ),
}
