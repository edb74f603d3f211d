"""Exercise 12: linear warmup then cosine decay, step for step as ``autograd.optim.cosine_with_warmup``."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from autograd.optim import cosine_with_warmup


def test_warmup_cosine_by_hand(exercise):
    warmup_cosine_lr = exercise("12_warmup_cosine_schedule").warmup_cosine_lr
    rates = [warmup_cosine_lr(step, 10, 2, 1.0) for step in range(12)]
    assert rates[:3] == [0.5, 1.0, 1.0]  # warmup never starts at 0, and reaches base_lr on its last step
    assert math.isclose(rates[6], 0.5)  # halfway through the cosine
    assert rates[10] == rates[11] == 0.0  # past the end it stays at min_lr


@settings(max_examples=15)
@given(
    total_and_warmup=st.integers(1, 40).flatmap(
        lambda total: st.tuples(st.just(total), st.integers(0, total))
    ),
    base_lr=st.sampled_from([1e-3, 4e-3, 0.1]),
    min_lr=st.sampled_from([0.0, 1e-6]),
)
def test_warmup_cosine_matches_the_engine(exercise, total_and_warmup, base_lr, min_lr):
    warmup_cosine_lr = exercise("12_warmup_cosine_schedule").warmup_cosine_lr
    total, warmup = total_and_warmup
    for step in range(total + 2):
        expected = cosine_with_warmup(step, total, warmup, base_lr, min_lr)
        assert math.isclose(
            warmup_cosine_lr(step, total, warmup, base_lr, min_lr), expected, rel_tol=1e-12, abs_tol=1e-15
        )
