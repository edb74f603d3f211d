"""The engine's behaviour: graph recording, backward, accumulation, no_grad, errors, constructors."""

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
from autograd.function import Function


def test_import_autograd_is_this_repository():
    # HIPS autograd on PyPI has the same name: make sure we test our package.
    repo = Path(__file__).resolve().parents[2]
    assert Path(ag.__file__).resolve().parent == repo / "autograd"
    assert hasattr(ag, "Tensor") and hasattr(ag, "gradcheck")


def test_chain_of_ten_thousand_ops_backprops_without_recursion():
    x = ag.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad.item(), 1.0001**10_000, rtol=1e-3)


def test_gradients_accumulate_until_zeroed():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    x.zero_grad()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


def test_a_tensor_used_twice_gets_both_gradients():
    x = ag.tensor(3.0, requires_grad=True)
    (x * x + x).backward()
    assert x.grad.item() == 7.0


def test_graph_is_freed_and_a_second_backward_says_so():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_no_grad_records_nothing_and_keeps_no_activation_alive():
    x = ag.randn(4, 4, requires_grad=True)
    with ag.no_grad():
        hidden = x * 2
        probe = weakref.ref(hidden)
        y = hidden.exp().sum()
        del hidden
    gc.collect()
    assert probe() is None, "an intermediate of a no_grad computation is still referenced"
    assert not y.requires_grad and y.grad_fn is None
    assert ag.is_grad_enabled()


def test_no_grad_as_decorator_and_enable_grad_inside():
    @ag.no_grad()
    def f(t):
        inside = t * 2
        with ag.enable_grad():
            again = t * 2
        return inside, again

    x = ag.ones(2, requires_grad=True)
    inside, again = f(x)
    assert not inside.requires_grad and again.requires_grad
    assert ag.is_grad_enabled()


def test_recording_keeps_the_graph_alive_until_backward_frees_it():
    x = ag.randn(3, requires_grad=True)
    hidden = x * 2
    probe = weakref.ref(hidden)
    y = hidden.exp().sum()
    del hidden
    gc.collect()
    assert probe() is not None  # needed by backward
    y.backward()
    assert y.grad_fn.freed


def test_broadcast_gradients_are_summed_back():
    x = ag.ones(3, 1, requires_grad=True)
    b = ag.ones(4, requires_grad=True)
    (x + b).sum().backward()
    assert x.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 1), 4.0))
    np.testing.assert_array_equal(b.grad.numpy(), np.full(4, 3.0))


def test_backward_of_a_non_scalar_needs_grad():
    y = ag.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"scalar output, got shape \(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), expected \(2, 3\)"):
        y.backward(ag.ones(3))


def test_backward_on_a_tensor_without_grad_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        ag.ones(2).sum().backward()


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients, got dtype int64"):
        ag.tensor([1, 2, 3], requires_grad=True)


def test_non_leaf_grad_only_with_retain_grad():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 2).retain_grad()
    k = x * 3
    (h * k).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [3.0, 6.0])
    assert k.grad is None


def test_detach_cuts_the_graph():
    x = ag.tensor([1.0], requires_grad=True)
    y = (x * 2).detach()
    assert not y.requires_grad and y.grad_fn is None


@pytest.mark.parametrize(
    "op, pattern",
    [
        (
            lambda: ag.ones(2, 3) @ ag.ones(4, 5),
            r"matmul: shapes \(2, 3\) and \(4, 5\) do not align: 3 .* != 4",
        ),
        (lambda: ag.ones(2, 2, 3) @ ag.ones(3, 3, 4), r"batch shapes \(2,\) and \(3,\)"),
        (lambda: ag.ones(2, 3) + ag.ones(4), r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
        (
            lambda: ag.ones(2, 3).reshape(4, 2),
            r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)",
        ),
        (lambda: ag.ones(2, 3).sum(axis=2), r"axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: ag.ones(2, 3).squeeze(1), r"squeeze: axis 1 of shape \(2, 3\) has size 3, not 1"),
        (lambda: ag.concatenate([ag.ones(2, 3), ag.ones(3, 3)], axis=1), r"concatenate along axis 1: shapes"),
        (lambda: ag.ones(2, 3)[5], r"does not fit a tensor of shape \(2, 3\)"),
        (lambda: ag.ones(2, 3).permute(0, 0), r"not a permutation"),
        (lambda: ag.ones(2).to("tpu"), r"unknown device 'tpu'"),
    ],
)
def test_errors_name_what_was_expected_and_what_came(op, pattern):
    with pytest.raises((ValueError, IndexError)) as info:
        op()
    assert info.match(pattern)


def test_comparisons_give_boolean_tensors_outside_the_graph():
    x = ag.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = x > 1.5
    assert mask.dtype == np.bool_ and not mask.requires_grad
    np.testing.assert_array_equal(mask.numpy(), [False, True, True])
    np.testing.assert_array_equal((x == 2.0).numpy(), [False, True, False])


def test_indexing_forms():
    x = ag.arange(24, dtype=ag.float32).reshape(2, 3, 4)
    a = x.numpy()
    for index in [
        (0,),
        (slice(None), 1),
        (None, Ellipsis, -1),
        (np.array([1, 0]),),
        (slice(None), np.array([2, 0]), 1),
        (ag.tensor([0, 1]),),
    ]:
        expected = a[tuple(i.numpy() if isinstance(i, ag.Tensor) else i for i in index)]
        np.testing.assert_array_equal(x[index].numpy(), expected)


def test_repeated_integer_index_accumulates_gradient():
    x = ag.zeros(3, requires_grad=True)
    x[np.array([0, 0, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, 1.0])


def test_python_scalars_keep_float32():
    x = ag.ones(3)
    for y in (x * 0.5, 0.5 * x, x + 1, x / 3, 2**x, x**2, x - np.float64(1.0)):
        assert y.dtype == np.float32


def test_numpy_array_on_the_left_defers_to_tensor():
    y = np.ones(3) + ag.ones(3, requires_grad=True)
    assert isinstance(y, ag.Tensor) and y.requires_grad


def test_constructors_default_to_float32_and_honour_dtype():
    assert ag.tensor([1.0, 2.0]).dtype == np.float32
    assert ag.tensor([1, 2]).dtype == np.int64
    assert ag.tensor(np.ones(2)).dtype == np.float64  # arrays keep their dtype
    assert ag.zeros(2, 3).shape == (2, 3) and ag.zeros((2, 3)).dtype == np.float32
    assert ag.ones(2, dtype=ag.float64).dtype == np.float64
    assert ag.full((2, 2), 7.0).numpy().tolist() == [[7.0, 7.0], [7.0, 7.0]]
    assert ag.arange(5).dtype == np.int64 and ag.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert ag.zeros_like(ag.ones(2, 3, dtype=ag.float64)).dtype == np.float64
    assert ag.randn(4, 5).dtype == np.float32 and ag.rand(3).shape == (3,)
    t = ag.tensor([1.0, 2.0])
    assert t.item  # noqa: B018
    assert ag.tensor(3.5).item() == 3.5 and ag.tensor([[1.0]]).ndim == 2 and t.size == 2


def test_tensor_copies_its_data():
    a = np.ones(3, dtype=np.float32)
    t = ag.tensor(a)
    a[0] = 5
    assert t.numpy()[0] == 1.0


def test_seeded_generators_repeat():
    ag.manual_seed(123)
    a = ag.randn(5).numpy()
    ag.manual_seed(123)
    b = ag.randn(5).numpy()
    np.testing.assert_array_equal(a, b)
    g1, g2 = ag.Generator(7), ag.Generator(7)
    np.testing.assert_array_equal(ag.rand(4, generator=g1).numpy(), ag.rand(4, generator=g2).numpy())
    state = g1.get_state()
    first = ag.rand(3, generator=g1).numpy()
    g1.set_state(state)
    np.testing.assert_array_equal(ag.rand(3, generator=g1).numpy(), first)


def test_item_and_numpy_and_repr():
    t = ag.tensor([[1.0, 2.0]], requires_grad=True)
    assert isinstance(t.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="one element"):
        t.item()
    assert "requires_grad=True" in repr(t) and "grad_fn=Mul" in repr(t * 2)


def test_setitem_is_refused_on_tensors_that_require_grad():
    x = ag.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place assignment"):
        x[0] = 1.0
    y = ag.zeros(3)
    y[1] = 4.0
    assert y.numpy().tolist() == [0.0, 4.0, 0.0]


def test_to_cpu_is_a_no_op_and_cuda_without_cupy_is_a_clear_error():
    x = ag.ones(2)
    assert x.to("cpu") is x
    if not ag.cupy_available():
        with pytest.raises(RuntimeError, match="CuPy"):
            x.to("cuda")


def test_function_registry_lists_engine_ops():
    names = {cls.__name__ for cls in Function.registry.values()}
    assert {"Add", "MatMul", "Softmax", "GetItem", "Var"} <= names


def test_gradcheck_catches_a_planted_bug():
    class BadSquare(Function):  # d(x^2)/dx is 2x; this says 3x
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, grad):
            (x,) = self.saved
            return 3 * x * grad

    try:
        small = ag.tensor([0.5, -1.0, 2.0], dtype=ag.float64, requires_grad=True)
        with pytest.raises(ag.GradcheckError, match=r"full Jacobian.*analytic.*numeric.*relative error"):
            ag.gradcheck(lambda t: BadSquare.apply(t), [small])
        large = ag.randn(50, 60, dtype=ag.float64, requires_grad=True)
        with pytest.raises(ag.GradcheckError, match="random projection"):
            ag.gradcheck(lambda t: BadSquare.apply(t), [large])
        assert ag.gradcheck(lambda t: t * t, [large])
    finally:
        Function.registry.pop(f"{BadSquare.__module__}.{BadSquare.__qualname__}", None)


def test_gradcheck_refuses_float32():
    with pytest.raises(TypeError, match="float64"):
        ag.gradcheck(lambda t: t * 2, [ag.ones(2, requires_grad=True)])
