"""GELU kernels: every step == the ops' own bodies (GELU, LinearGELU), forward and backward, through the ops.

The ops' bodies (autograd/nn/functional/activation.py, fully_connected.py) compute in float64 and round once;
``run`` (tests/op_runs.py) takes an op through one step of ``autograd.kernels.cpu.gelu``, its default fast
path or its body, and returns the output and the input gradients. The entry points called directly (against
PyTorch, special values, errors) and the float32 exp: tests/kernels/test_gelu_entry_points.py.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_runs import assert_same, ops_through, run

import autograd as ag
from autograd import kernels
from autograd.backend import device_of, to_device, to_numpy
from autograd.kernels.cpu import gelu
from autograd.nn import functional as F
from autograd.nn.functional.activation import GELU
from autograd.nn.functional.fully_connected import LinearGELU

APPROXIMATIONS = ["none", "tanh"]
FLOATS = [np.float32, np.float64]
STEP_NAMES = list(gelu.STEPS)


def assert_within(actual, expected, rtol, atol):
    """|actual - expected| <= atol + rtol |expected| elementwise, atol an array or a number; NaN where
    expected is NaN."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    with np.errstate(invalid="ignore"):
        excess = np.abs(actual - expected) - rtol * np.abs(expected) - atol
    excess = np.where((actual == expected) | np.isnan(expected), 0.0, excess)
    worst = int(np.argmax(excess)) if excess.size else 0
    off = int((excess > 0).sum())
    assert off == 0, f"{off} values off; worst at {worst}: {actual.flat[worst]} vs {expected.flat[worst]}"


def gelu_op(approximate):
    return lambda x: F.gelu(x, approximate)


def through(step, fn, arrays, **options):
    """``run`` through the kernels of one step (its name), the default fast path ("fast") or the ops' bodies
    ("body")."""
    if step in ("fast", "body"):
        return run(fn, arrays, path=step, **options)
    return run(fn, arrays, kernels=gelu.STEPS[step], family="gelu", **options)


def upstream(x):
    """The gradient that ``run`` sends back into an output shaped and typed like x (the gradient of x * 1)."""
    return run(lambda t: t * 1.0, [x], path="body")[1][0]


def assert_gelu_close(actual, expected, up, rtol, atol):
    """``run``'s (y, [grad_x]) of F.gelu: y within rtol and atol of the expected, grad_x = up * dy/dx within
    rtol and atol per unit of the upstream gradient ``up``."""
    (y, (grad_x,)), (y_ref, (grad_x_ref,)) = actual, expected
    assert_within(y, y_ref, rtol, atol)
    assert_within(grad_x, grad_x_ref, rtol, atol * np.abs(up))


def forward_only(fn, arrays, step):
    """fn's output under no_grad, when the ops call the entry points without a slope: through the kernels of
    one step (its name), the default fast path ("fast") or the ops' bodies ("body")."""
    tensors = [ag.tensor(a) for a in arrays]
    with ag.no_grad():
        if step in ("fast", "body"):
            with kernels.use_reference(step == "body"):
                return fn(*tensors).numpy()
        with ops_through(gelu.STEPS[step], "gelu"):
            return fn(*tensors).numpy()


def sample_inputs(rng, shape, dtype, spread=3.0):
    x = (rng.standard_normal(shape) * spread).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    return x, grad_y


# Values covering both tails, the region around 0 and the polynomial-to-tail transitions.
GRID = np.concatenate([np.linspace(-16.0, 16.0, 6401), [-1e-30, 0.0, 1e-30, -1e-3, 1e-3]])


def test_both_ops_take_this_package_on_numpy_arrays():
    rows, weight, bias = np.zeros((2, 3)), np.zeros((4, 3)), np.zeros(4)
    with kernels.use_reference(False):
        assert kernels.kernel_for(GELU, (rows,)) is gelu
        assert kernels.kernel_for(LinearGELU, (rows, weight, bias)) is gelu


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_float64_fast_path_matches_the_body_tightly(approximate):
    x = GRID.astype(np.float64)
    fast = run(gelu_op(approximate), [x], path="fast")
    assert_gelu_close(fast, run(gelu_op(approximate), [x], path="body"), upstream(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_the_body_runs_on_device(device, approximate, dtype):
    """The op's body computes with the array module of its input: on ``device`` it gives arrays there, equal
    to the NumPy results up to rounding (CuPy's erfc, exp and tanh are not libm's)."""
    x = GRID.astype(dtype)
    grad_y = np.linspace(-2.0, 3.0, x.size).astype(dtype)
    results = []
    with kernels.use_reference():
        for where in ("cpu", device):
            xt = ag.tensor(to_device(x, where), requires_grad=True)
            y = F.gelu(xt, approximate)
            y.backward(ag.tensor(to_device(grad_y, where)))
            assert device_of(y.data) == device_of(xt.grad.data) == where
            results.append((to_numpy(y.data), to_numpy(xt.grad.data)))
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for on_device, on_cpu in zip(results[1], results[0], strict=True):
        assert on_device.dtype == on_cpu.dtype == dtype
        np.testing.assert_allclose(on_device, on_cpu, rtol=tol, atol=tol)


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_float32_fast_path_matches_the_float64_body(approximate):
    """float32 through the kernels against the float64 body on the same inputs. The absolute part covers the
    far left tail, where the tanh body itself cancels (1 + tanh(u) = 0 in float64)."""
    x = GRID.astype(np.float32)
    (y, (grad_x,)) = run(gelu_op(approximate), [x], path="fast")
    (y_ref, (grad_ref,)) = run(gelu_op(approximate), [x.astype(np.float64)], path="body")
    assert y.dtype == grad_x.dtype == np.float32
    assert_within(y, y_ref, rtol=1e-5, atol=1e-12)
    # dGELU/dx = Phi(x) + x phi(x) crosses zero at x = -0.7518 (exact form), where two terms of size 0.23
    # cancel: in float32 each carries a rounding of up to 0.23 * 2^-24 = 1.4e-8, so near the root only an
    # absolute bound holds (PyTorch's float32 gelu_backward errs by 1.2e-7 there), per unit of grad_y.
    assert_within(grad_x, grad_ref, rtol=1e-5, atol=5e-8 * np.abs(upstream(x)))


def test_float32_left_tail_is_relatively_accurate():
    # The fast kernels avoid the 1 + erf and 1 + tanh cancellations: x * Phi(x) keeps its relative
    # accuracy for x << 0 (up to exp's sensitivity to the rounding of x^2 / 2, ~x^2 / 2 * 6e-8).
    x = np.linspace(-9.0, -2.0, 1001).astype(np.float32)
    x64 = x.astype(np.float64)
    y_ref = run(gelu_op("none"), [x64], path="body")[0]
    np.testing.assert_allclose(run(gelu_op("none"), [x], path="fast")[0], y_ref, rtol=1e-5)
    u = np.sqrt(2.0 / np.pi) * (x64 + 0.044715 * x64**3)
    np.testing.assert_allclose(
        run(gelu_op("tanh"), [x], path="fast")[0], x64 / (1.0 + np.exp(-2.0 * u)), rtol=1e-5
    )


def test_the_op_keeps_the_slope_only_when_a_gradient_is_coming():
    x = ag.tensor(GRID[:100].astype(np.float32), requires_grad=True)
    with kernels.use_reference(False):
        y = F.gelu(x)
        (slope,) = y._ctx.saved  # the slope, not x
        np.testing.assert_array_equal(slope, gelu.gelu_backward(x.numpy(), np.ones(100, np.float32)))
        grad_y = np.linspace(-1.0, 1.0, 100).astype(np.float32)
        y.backward(ag.tensor(grad_y))
        np.testing.assert_allclose(
            x.grad.numpy(), gelu.gelu_backward(x.numpy(), grad_y), rtol=1e-6, atol=1e-12
        )
        assert x.grad.dtype == np.float32
        with ag.no_grad():
            assert F.gelu(x)._ctx is None
        assert F.gelu(ag.tensor(GRID[:10]))._ctx is None  # no input needs a gradient


# -- the steps ---------------------------------------------------------------------------------------------
ENTRY_POINTS = [
    "gelu_forward",
    "gelu_forward_with_slope",
    "gelu_backward",
    "gelu_backward_from_slope",
    "bias_gelu_forward",
    "bias_gelu_forward_with_slope",
    "gelu_backward_from_slope_with_bias_grad",
]
BIAS_STEPS = [name for name, step in gelu.STEPS.items() if hasattr(step, "bias_gelu_forward_with_slope")]


def test_the_last_step_is_what_the_public_names_run():
    assert STEP_NAMES == ["1 plain loop", "2 stable tails", "3 threads", "4 float32 polynomials"]
    last = gelu.STEPS[STEP_NAMES[-1]]
    for name in ENTRY_POINTS:
        assert getattr(last, name) is getattr(gelu, name)
    for step in gelu.STEPS.values():
        assert callable(step.gelu_forward_with_slope) and callable(step.gelu_backward_from_slope)
    assert BIAS_STEPS == [STEP_NAMES[-1]]


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=4),
    step=st.sampled_from([*STEP_NAMES, "fast"]),
    approximate=st.sampled_from(APPROXIMATIONS),
    dtype=st.sampled_from(FLOATS),
    seed=st.integers(0, 2**31),
)
def test_every_step_matches_the_body(shape, step, approximate, dtype, seed):
    """F.gelu through each step (and the default fast path) against its body, on any shape, in the dtype of
    x: y, and grad_x = grad_y * dy/dx; under no_grad too where the step has the forward without slope. Steps
    1 to 3 compute in float64 (float32 rounded once); step 1's 1 + erf cancels in the far left tail, where
    only the absolute tolerance holds. The backward pass from the slope is one multiply."""
    x, grad_y = sample_inputs(np.random.default_rng(seed), tuple(shape), dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    fn = gelu_op(approximate)
    actual = through(step, fn, [x], grad_seed=seed)
    assert actual[0].shape == actual[1][0].shape == x.shape
    assert_same(actual, through("body", fn, [x], grad_seed=seed), dtype, rtol=tol)
    step_kernels = gelu if step == "fast" else gelu.STEPS[step]
    if hasattr(step_kernels, "gelu_forward"):
        assert_same((forward_only(fn, [x], step), []), (forward_only(fn, [x], "body"), []), dtype, rtol=tol)
    y, slope = step_kernels.gelu_forward_with_slope(x, approximate)
    np.testing.assert_array_equal(step_kernels.gelu_backward_from_slope(grad_y, slope), grad_y * slope)
    with pytest.raises(ValueError, match="does not match"):
        step_kernels.gelu_backward_from_slope(np.ones(x.size + 1, dtype), slope)
    with pytest.raises(ValueError, match="approximate must be one of"):
        step_kernels.gelu_forward_with_slope(x, "sigmoid")


@settings(deadline=None)
@given(
    lead=st.lists(st.integers(0, 5), max_size=3),
    features=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    approximate=st.sampled_from(APPROXIMATIONS),
    dtype=st.sampled_from(FLOATS),
    needs=st.tuples(st.booleans(), st.booleans(), st.booleans()).filter(any),
    seed=st.integers(0, 2**31),
)
def test_linear_gelu_through_the_bias_steps_matches_the_body(lead, features, approximate, dtype, needs, seed):
    """F.linear_gelu through the steps with the bias epilogue (and the default fast path) against its body:
    output and the gradients of x, weight and bias, each asked for or not, and the output under no_grad."""
    rng = np.random.default_rng(seed)
    in_features, out_features = features
    x = rng.standard_normal((*lead, in_features)).astype(dtype)
    weight = (rng.standard_normal((out_features, in_features)) * 2 / np.sqrt(in_features)).astype(dtype)
    bias = rng.standard_normal(out_features).astype(dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5

    def fn(x, weight, bias):
        return F.linear_gelu(x, weight, bias, approximate)

    arrays, options = [x, weight, bias], dict(needs_grad=list(needs), grad_seed=seed)
    expected = through("body", fn, arrays, **options)
    expected_without_grad = (forward_only(fn, arrays, "body"), [])
    for step in [*BIAS_STEPS, "fast"]:
        actual = through(step, fn, arrays, **options)
        assert [g is not None for g in actual[1]] == list(needs)
        assert_same(actual, expected, dtype, rtol=tol)
        assert_same((forward_only(fn, arrays, step), []), expected_without_grad, dtype, rtol=tol)


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_every_step_on_the_grid_float64(step, approximate):
    """Both tails and the origin, in float64: step 1's plain formula loses only absolute accuracy in the left
    tail (1 + erf, 1 + tanh cancel); the later steps match the body tightly everywhere."""
    x = GRID.astype(np.float64).reshape(2, -1)[:, ::2]  # 2-D and strided
    fn = gelu_op(approximate)
    atol = 1e-14 if step != "1 plain loop" else 1e-13
    assert_gelu_close(through(step, fn, [x]), through("body", fn, [x]), upstream(x), rtol=1e-12, atol=atol)
