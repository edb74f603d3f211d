"""Exercise 09: drop path keeps whole samples, scaled by 1 / (1 - p), exactly as the engine's ``F.drop_path``
does from the same random numbers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autograd as ag
from autograd.nn import functional as F


def _generator(seed):
    return np.random.Generator(np.random.PCG64(seed))


@settings(max_examples=15)
@given(
    n=st.integers(1, 8),
    p=st.sampled_from([0.1, 0.25, 0.5, 0.9]),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_drop_path_matches_the_engine(exercise, n, p, seed, dtype):
    drop_path = exercise("09_drop_path").drop_path
    x = _generator(seed + 1).standard_normal((n, 3, 2, 2)).astype(dtype)
    mine = drop_path(x, p, _generator(seed))
    expected = F.drop_path(ag.tensor(x), p, training=True, generator=ag.Generator(seed)).data
    assert np.shape(mine) == x.shape and mine.dtype == dtype
    np.testing.assert_allclose(mine, expected, rtol=1e-6)


def test_drop_path_drops_whole_samples_and_keeps_the_mean(exercise):
    drop_path = exercise("09_drop_path").drop_path
    x = np.ones((4000, 2, 3))
    out = drop_path(x, 0.25, _generator(0))
    per_sample = out.reshape(4000, -1)
    assert np.all((per_sample == 0) | np.isclose(per_sample, 1 / 0.75)), "scale kept samples by 1 / (1 - p)"
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1)), "a sample is kept or dropped whole"
    assert abs(out.mean() - 1.0) < 0.05


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_drop_path_at_the_ends(exercise, p):
    drop_path = exercise("09_drop_path").drop_path
    x, rng = np.arange(6.0).reshape(3, 2), _generator(0)
    out = drop_path(x, p, rng)
    assert np.array_equal(out, x if p == 0.0 else np.zeros_like(x))
    if p == 1.0:
        assert rng.random() == _generator(0).random(), "at p = 1 nothing is drawn"
