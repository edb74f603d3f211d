"""Exercise 10: a few NumPy lines of SGD with momentum take the same steps as ``autograd.optim.SGD``."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from

import autograd as ag
from autograd.optim import SGD


@settings(max_examples=15)
@given(
    lr=st.sampled_from([0.01, 0.1, 0.5]),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    weight_decay=st.sampled_from([0.0, 1e-2]),
    nesterov=st.booleans(),
    data=st.data(),
)
def test_sgd_momentum_steps_match_the_engine(exercise, lr, momentum, weight_decay, nesterov, data):
    sgd_momentum_step = exercise("10_sgd_momentum_step").sgd_momentum_step
    nesterov = nesterov and momentum > 0
    rng = rng_from(data.draw)
    start = rng.standard_normal((3, 4))
    p = ag.tensor(start, requires_grad=True)
    optimizer = SGD([p], lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    mine, state = start.copy(), {}
    for _ in range(5):
        grad = rng.standard_normal(start.shape)
        p.grad = ag.tensor(grad)
        optimizer.step()
        given_grad = grad.copy()
        mine = sgd_momentum_step(mine.copy(), given_grad, state, lr, momentum, weight_decay, nesterov)
        assert np.array_equal(given_grad, grad), "the step must not change the gradient it is given"
        np.testing.assert_allclose(mine, p.data, rtol=1e-12, atol=1e-12)


def test_sgd_momentum_trains_a_linear_regression(exercise):
    # y = X w_true: the least-squares loss is convex, so the steps must reach w_true.
    sgd_momentum_step = exercise("10_sgd_momentum_step").sgd_momentum_step
    rng = np.random.default_rng(0)
    inputs, w_true = rng.standard_normal((64, 3)), np.array([1.5, -2.0, 0.5])
    targets = inputs @ w_true
    w, state = np.zeros(3), {}
    for _ in range(300):
        grad = 2 * inputs.T @ (inputs @ w - targets) / len(inputs)
        w = sgd_momentum_step(w, grad, state, lr=0.05, momentum=0.9)
    np.testing.assert_allclose(w, w_true, atol=1e-6)
