"""Exercise 04: the hand-derived backward of softmax cross-entropy, (p - q) / N, equals the engine's."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from

import autograd as ag
from autograd import kernels
from autograd.nn import functional as F


def _engine_gradient(logits, labels, label_smoothing):
    z = ag.tensor(logits, requires_grad=True)
    with kernels.use_reference():
        F.cross_entropy(z, labels, label_smoothing=label_smoothing).backward()
    return z.grad.data


@settings(max_examples=15)
@given(
    n=st.integers(1, 6),
    k=st.integers(2, 7),
    scale=st.sampled_from([0.1, 3.0, 50.0]),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.5]),
    data=st.data(),
)
def test_cross_entropy_backward_matches_the_engine(exercise, n, k, scale, label_smoothing, data):
    cross_entropy_backward = exercise("04_cross_entropy_backward").cross_entropy_backward
    rng = rng_from(data.draw)
    logits, labels = scale * rng.standard_normal((n, k)), rng.integers(0, k, size=n)
    mine = cross_entropy_backward(logits, labels, label_smoothing)
    assert np.shape(mine) == (n, k)
    np.testing.assert_allclose(
        mine, _engine_gradient(logits, labels, label_smoothing), rtol=1e-10, atol=1e-14
    )


def test_cross_entropy_backward_survives_large_logits(exercise):
    cross_entropy_backward = exercise("04_cross_entropy_backward").cross_entropy_backward
    logits, labels = np.array([[1000.0, 0.0, -1000.0], [0.0, 800.0, 799.0]]), np.array([2, 1])
    with np.errstate(over="raise", invalid="raise"):
        mine = cross_entropy_backward(logits, labels)
    np.testing.assert_allclose(mine, _engine_gradient(logits, labels, 0.0), rtol=1e-10, atol=1e-14)
