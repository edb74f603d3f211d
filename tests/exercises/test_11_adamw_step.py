"""Exercise 11: a few NumPy lines of AdamW take the same steps as ``autograd.optim.AdamW`` (Adam at weight
decay 0), and keep the same state."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import rng_from

import autograd as ag
from autograd import kernels
from autograd.optim import AdamW


@settings(max_examples=15)
@given(
    lr=st.sampled_from([1e-3, 0.1]),
    betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9)]),
    eps=st.sampled_from([1e-8, 1e-3]),
    weight_decay=st.sampled_from([0.0, 0.05]),
    data=st.data(),
)
def test_adamw_steps_match_the_engine(exercise, lr, betas, eps, weight_decay, data):
    adamw_step = exercise("11_adamw_step").adamw_step
    rng = rng_from(data.draw)
    start = rng.standard_normal((2, 5))
    p = ag.tensor(start, requires_grad=True)
    optimizer = AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    mine, state = start.copy(), {}
    for _ in range(6):
        grad = rng.standard_normal(start.shape)
        p.grad = ag.tensor(grad)
        with kernels.use_reference():
            optimizer.step()
        mine = adamw_step(mine.copy(), grad.copy(), state, lr, betas, eps, weight_decay)
        np.testing.assert_allclose(mine, p.data, rtol=1e-10, atol=1e-12)
    engine_state = optimizer.state[id(p)]
    assert state["step"] == engine_state["step"] == 6
    np.testing.assert_allclose(state["exp_avg"], engine_state["exp_avg"], rtol=1e-12)
    np.testing.assert_allclose(state["exp_avg_sq"], engine_state["exp_avg_sq"], rtol=1e-12)


def test_the_first_adam_step_has_size_lr(exercise):
    # With bias correction, m_hat = g and v_hat = g^2 at step 1: each entry moves by lr * g / (|g| + eps).
    adamw_step = exercise("11_adamw_step").adamw_step
    grad = np.array([1e-4, -3.0, 250.0])
    new = adamw_step(np.zeros(3), grad, {}, lr=0.01, eps=1e-12, weight_decay=0.0)
    np.testing.assert_allclose(new, -0.01 * np.sign(grad), rtol=1e-6)
