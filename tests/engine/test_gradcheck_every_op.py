"""Every differentiable op of the engine passes a float64 gradient check on hypothesis-drawn shapes, on
every device (the "cuda" runs are skipped without CuPy and a GPU). An op with fast kernels is checked twice:
through its fast path, and through its own body with the kernels switched off."""

import pytest
from gradcheck_cases import load_all
from hypothesis import given
from hypothesis import strategies as st

import autograd
import autograd.nn  # noqa: F401  (registers the nn ops too, once they exist)
from autograd import kernels
from autograd.function import Function

CASES = load_all()
CASE_LIST = [
    (cls, builder, path)
    for cls, builders in CASES.items()
    for builder in builders
    for path in (("fast", "body") if cls.fast_paths else ("body",))
]


def test_every_op_has_a_gradcheck_case():
    engine_ops = {cls for cls in Function.registry.values() if cls.__module__.startswith("autograd.")}
    missing = sorted(f"{c.__module__}.{c.__qualname__}" for c in engine_ops - set(CASES))
    assert not missing, f"differentiable ops without a gradient-check case: {missing}"


@pytest.mark.parametrize(
    "builder, path",
    [(b, p) for _, b, p in CASE_LIST],
    ids=[f"{c.__name__}-{b.__name__}-{p}" for c, b, p in CASE_LIST],
)
@given(data=st.data())
def test_gradcheck(builder, path, device, data):
    fn, inputs = builder(data.draw, device)
    assert all(t.device == device and t.is_leaf for t in inputs)
    with kernels.use_reference(path == "body"):
        assert autograd.gradcheck(fn, inputs)
