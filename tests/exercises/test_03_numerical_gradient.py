"""Exercise 03: the central-difference gradient agrees with the engine's backward and with calculus, has an
O(eps^2) error, and leaves its input as it was."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from, shapes

import autograd as ag


def _engine_function(t):
    return ((t.tanh() * t).sum() + (t * t * t).mean()).sum()


@settings(max_examples=10)
@given(shape=shapes(min_dims=0, max_dims=3, max_side=4), data=st.data())
def test_numerical_gradient_matches_the_engine(exercise, shape, data):
    numerical_gradient = exercise("03_numerical_gradient").numerical_gradient
    x = rng_from(data.draw).uniform(-2.0, 2.0, size=shape)
    before = x.copy()
    t = ag.tensor(x, requires_grad=True)
    _engine_function(t).backward()

    numeric = numerical_gradient(lambda a: float(_engine_function(ag.tensor(a)).data), x)
    assert np.shape(numeric) == shape
    np.testing.assert_allclose(numeric, t.grad.data, rtol=1e-6, atol=1e-7)
    assert np.array_equal(x, before), "numerical_gradient must leave x as it was"


def test_numerical_gradient_matches_calculus(exercise):
    numerical_gradient = exercise("03_numerical_gradient").numerical_gradient
    x = np.linspace(-2.0, 2.0, 12).reshape(3, 4)
    numeric = numerical_gradient(lambda a: float(np.sum(np.sin(a) * a**2)), x)
    np.testing.assert_allclose(numeric, np.cos(x) * x**2 + 2 * x * np.sin(x), rtol=1e-7, atol=1e-8)


def test_numerical_gradient_is_central(exercise):
    # d/dx x^3 at 1 is 3. A central difference errs by eps^2 = 1e-6; a one-sided one by about 3 eps = 3e-3.
    numerical_gradient = exercise("03_numerical_gradient").numerical_gradient
    numeric = numerical_gradient(lambda a: float(np.sum(a**3)), np.array([1.0]), eps=1e-3)
    assert abs(numeric[0] - 3.0) < 1e-5
