"""Every differentiable op of the engine passes a float64 gradient check on hypothesis-drawn shapes, on
every device (the "cuda" runs are skipped without CuPy and a GPU)."""

import pytest
from gradcheck_cases import load_all
from hypothesis import given
from hypothesis import strategies as st

import autograd
import autograd.nn  # noqa: F401  (registers the nn ops too, once they exist)
from autograd.function import Function

CASES = load_all()
CASE_LIST = [(cls, builder) for cls, builders in CASES.items() for builder in builders]


def test_every_op_has_a_gradcheck_case():
    engine_ops = {cls for cls in Function.registry.values() if cls.__module__.startswith("autograd.")}
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in engine_ops - set(CASES))
    assert not missing, f"differentiable ops without a gradient-check case: {missing}"


@pytest.mark.parametrize(
    "builder", [b for _, b in CASE_LIST], ids=[f"{c.__name__}-{b.__name__}" for c, b in CASE_LIST]
)
@given(data=st.data())
def test_gradcheck(builder, device, data):
    fn, inputs = builder(data.draw, device)
    assert all(t.device == device and t.is_leaf for t in inputs)
    assert autograd.gradcheck(fn, inputs)
