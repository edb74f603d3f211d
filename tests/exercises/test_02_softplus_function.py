"""Exercise 02: a ``Function`` of one's own. Its forward is softplus, its backward passes a float64 gradient
check through the engine, and both stay finite where exp overflows."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import leaf, rng_from, shapes

import autograd as ag

EXTREMES = np.array([-1000.0, -100.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 100.0, 1000.0])


def _sigmoid(x):
    return np.exp(x - np.logaddexp(0.0, x))  # 1 / (1 + exp(-x)) without overflow or cancellation


def test_softplus_is_a_function_of_the_engine(exercise):
    module = exercise("02_softplus_function")
    assert issubclass(module.Softplus, ag.Function)
    x = ag.tensor([0.0, 1.0], requires_grad=True)
    y = module.softplus(x)
    assert y.requires_grad, "softplus must go through Softplus.apply, so that backward can reach x"


@settings(max_examples=15)
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data())
def test_softplus_passes_a_gradient_check(exercise, shape, data):
    softplus = exercise("02_softplus_function").softplus
    x = leaf(rng_from(data.draw).uniform(-6.0, 6.0, size=shape))
    assert ag.gradcheck(softplus, [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softplus_and_its_gradient_are_exact_and_finite(exercise, dtype):
    softplus = exercise("02_softplus_function").softplus
    x = ag.tensor(EXTREMES.astype(dtype), requires_grad=True)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        y = softplus(x)
        y.backward(ag.ones_like(y))
    assert y.dtype == dtype and x.grad.dtype == dtype
    tolerance = dict(rtol=1e-6, atol=1e-35) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(y.data, np.logaddexp(0.0, EXTREMES), **tolerance)
    np.testing.assert_allclose(x.grad.data, _sigmoid(EXTREMES), **tolerance)


def test_softplus_matches_pytorch_in_float32(exercise):
    torch = pytest.importorskip("torch")
    softplus = exercise("02_softplus_function").softplus
    values = np.random.default_rng(0).uniform(-20, 20, size=(4, 5)).astype(np.float32)
    x, x_torch = ag.tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    weights = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    (softplus(x) * ag.tensor(weights)).sum().backward()
    (torch.nn.functional.softplus(x_torch) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.data, x_torch.grad.numpy(), rtol=1e-5, atol=1e-6)
