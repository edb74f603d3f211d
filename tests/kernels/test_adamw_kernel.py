"""The AdamW kernels: every step == the array formula (``autograd.optim.adamw.adamw_update``, what the
optimizer runs with the kernels off); all paths, the same bits."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd.kernels.cpu import adamw
from autograd.optim import adamw as optim_adamw

STEP_NAMES = list(adamw.STEPS)
HYPER = dict(lr=3e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05, step=7)


def _state(rng, size, dtype):
    """p, m, v (v >= 0) and a gradient."""
    p, m, g = (rng.standard_normal(size).astype(dtype) for _ in range(3))
    v = rng.random(size).astype(dtype) * 0.01
    return p, m * 0.1, v, g


def _tolerance(dtype):
    # float64: the kernels and the array formula do the same operations in the same order; float32: the
    # kernels compute in float64 and round once, the array formula rounds after each array operation.
    return dict(rtol=1e-14, atol=0) if dtype == np.float64 else dict(rtol=2e-6, atol=1e-7)


def test_the_last_step_is_what_the_public_names_run():
    assert STEP_NAMES == ["1 plain loop", "2 threads for large parameters", "3 all parameters in one call"]
    last = adamw.STEPS[STEP_NAMES[-1]]
    for name in ("adamw_hyper", "adamw_update", "segment_tasks", "adamw_update_segments"):
        assert getattr(last, name) is getattr(adamw, name)


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(1, 40), min_size=1, max_size=3).map(tuple),
    step=st.sampled_from(STEP_NAMES),
    dtype=st.sampled_from([np.float32, np.float64]),
    parallel=st.booleans(),
    t=st.integers(1, 1000),
    seed=st.integers(0, 2**16),
)
def test_every_step_equals_the_array_formula(shape, step, dtype, parallel, t, seed):
    """adamw_update of each step, on parameters of any shape, the threaded path forced or not."""
    p, m, v, g = _state(np.random.default_rng(seed), shape, dtype)
    hyper = dict(HYPER, step=t)
    fast, ref = [a.copy() for a in (p, m, v)], [a.copy() for a in (p, m, v)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adamw, "PARALLEL_MIN_SIZE", 1 if parallel else 1 << 30)
        adamw.STEPS[step].adamw_update(fast[0], g, fast[1], fast[2], adamw.adamw_hyper(**hyper))
    optim_adamw.adamw_update(ref[0], g, ref[1], ref[2], **hyper)
    for a, b in zip(fast, ref, strict=True):
        assert a.dtype == dtype and a.shape == shape
        np.testing.assert_allclose(a, b, **_tolerance(dtype))


@pytest.mark.parametrize("size", [1, 1000, 3 * adamw.CHUNK + 17])
def test_every_step_gives_the_same_bits(monkeypatch, size):
    """The serial loop, the chunks on threads and the segments kernel do the same arithmetic per element."""
    monkeypatch.setattr(adamw, "PARALLEL_MIN_SIZE", 1)  # step 2 and 3 cut even small parameters into chunks
    p, m, v, g = _state(np.random.default_rng(size), size, np.float32)
    results = []
    for step in STEP_NAMES:
        state = [a.copy() for a in (p, m, v)]
        adamw.STEPS[step].adamw_update(state[0], g, state[1], state[2], adamw.adamw_hyper(**HYPER))
        results.append(state)
    state = [a.copy() for a in (p, m, v)]
    hyper = np.array(adamw.adamw_hyper(*(HYPER[k] for k in HYPER)), dtype=np.float64).reshape(6, 1)
    adamw.adamw_update_segments(state[0], g, state[1], state[2], adamw.segment_tasks([0, size]), hyper)
    results.append(state)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@settings(deadline=None)
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=6),
    chunk=st.integers(1, 2000),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**16),
)
def test_segments_equal_the_array_formula_per_segment(sizes, chunk, dtype, seed):
    """adamw_update_segments (the last step): each segment with its own hyper-parameters, cut into tasks of
    ``chunk`` elements, equals the array formula on that segment."""
    rng = np.random.default_rng(seed)
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    p, m, v, g = _state(rng, int(bounds[-1]), dtype)
    per_segment = [
        dict(HYPER, lr=1e-3 * (s + 1), beta2=0.99 + 0.001 * s, weight_decay=0.05 * (s % 2), step=3)
        for s in range(len(sizes))
    ]
    hyper = np.array([adamw.adamw_hyper(**h) for h in per_segment], dtype=np.float64).T.copy()
    tasks = adamw.segment_tasks(bounds, chunk=chunk)
    start, stop, segment = tasks
    assert (stop - start).max() <= chunk and np.array_equal(np.bincount(segment, stop - start), sizes)
    flat = [a.copy() for a in (p, m, v)]
    adamw.adamw_update_segments(flat[0], g, flat[1], flat[2], tasks, hyper)
    for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        ref = [x[a:b].copy() for x in (p, m, v)]
        optim_adamw.adamw_update(ref[0], g[a:b], ref[1], ref[2], **per_segment[s])
        for x, y in zip(flat, ref, strict=True):
            np.testing.assert_allclose(x[a:b], y, **_tolerance(dtype))
