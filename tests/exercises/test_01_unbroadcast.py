"""Exercise 01: unbroadcast sums a gradient back to its input's shape, as the engine does after ``x + y``."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import broadcastable_shapes, rng_from

import autograd as ag


def test_unbroadcast_sums_the_copied_axes(exercise):
    unbroadcast = exercise("01_unbroadcast").unbroadcast
    grad = np.arange(24.0).reshape(2, 3, 4)
    assert np.array_equal(unbroadcast(grad, (3, 1)), grad.sum(axis=(0, 2)).reshape(3, 1))
    assert np.array_equal(unbroadcast(grad, (1, 4)), grad.sum(axis=(0, 1)).reshape(1, 4))
    assert np.array_equal(unbroadcast(grad, ()), np.array(grad.sum()))
    assert np.array_equal(unbroadcast(grad, (2, 3, 4)), grad)


@settings(max_examples=15)
@given(shapes=broadcastable_shapes(), data=st.data())
def test_unbroadcast_matches_the_engine(exercise, shapes, data):
    unbroadcast = exercise("01_unbroadcast").unbroadcast
    input_shape, other_shape = shapes
    out_shape = np.broadcast_shapes(input_shape, other_shape)
    rng = rng_from(data.draw)
    x = ag.tensor(rng.standard_normal(input_shape), requires_grad=True)
    other = ag.tensor(rng.standard_normal(other_shape))
    grad = rng.standard_normal(out_shape)
    (x * other).backward(ag.tensor(grad))

    mine = unbroadcast(grad * np.broadcast_to(other.data, out_shape), input_shape)
    assert np.shape(mine) == input_shape
    np.testing.assert_allclose(mine, x.grad.data, rtol=1e-12, atol=1e-12)
