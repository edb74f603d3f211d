"""GELU kernels: fast (Numba) == plain NumPy reference == PyTorch, forward and backward."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd.backend import device_of, to_device, to_numpy
from autograd.kernels.cpu import gelu

F = torch.nn.functional
APPROXIMATIONS = ["none", "tanh"]


def assert_close(actual, expected, rtol, atol):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def torch_gelu(x, grad_y, approximate):
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    yt = F.gelu(xt, approximate=approximate)
    yt.backward(torch.from_numpy(np.ascontiguousarray(grad_y)))
    return yt.detach().numpy(), xt.grad.numpy()


def sample_inputs(rng, shape, dtype, spread=3.0):
    x = (rng.standard_normal(shape) * spread).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    return x, grad_y


# Values covering both tails, the region around 0 and the polynomial-to-tail transitions.
GRID = np.concatenate([np.linspace(-16.0, 16.0, 6401), [-1e-30, 0.0, 1e-30, -1e-3, 1e-3]])


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_float64_fast_matches_reference_tightly(approximate):
    x = GRID.astype(np.float64)
    grad_y = np.linspace(-2.0, 3.0, x.size)
    y = gelu.gelu_forward(x, approximate)
    grad_x = gelu.gelu_backward(x, grad_y, approximate)
    assert_close(y, gelu.gelu_forward_reference(x, approximate), rtol=1e-12, atol=1e-14)
    assert_close(grad_x, gelu.gelu_backward_reference(x, grad_y, approximate), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_reference_runs_on_device(device, approximate, dtype):
    """The references compute with the array module of their input: on ``device`` they return arrays
    there, equal to the NumPy results up to rounding (CuPy's erfc, exp and tanh are not libm's)."""
    x = GRID.astype(dtype)
    grad_y = np.linspace(-2.0, 3.0, x.size).astype(dtype)
    y = gelu.gelu_forward_reference(to_device(x, device), approximate)
    grad_x = gelu.gelu_backward_reference(to_device(x, device), to_device(grad_y, device), approximate)
    assert device_of(y) == device_of(grad_x) == device
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert_close(to_numpy(y), gelu.gelu_forward_reference(x, approximate), rtol=tol, atol=tol)
    assert_close(to_numpy(grad_x), gelu.gelu_backward_reference(x, grad_y, approximate), rtol=tol, atol=tol)


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_float32_fast_matches_reference(approximate):
    x = GRID.astype(np.float32)
    grad_y = np.ones_like(x)
    y = gelu.gelu_forward(x, approximate)
    grad_x = gelu.gelu_backward(x, grad_y, approximate)
    # Reference in float64 from the same float32 inputs. The absolute part covers the far left tail,
    # where the tanh reference itself cancels (1 + tanh(u) = 0 in float64).
    y_ref = gelu.gelu_forward_reference(x.astype(np.float64), approximate)
    dy_ref = gelu.gelu_backward_reference(x.astype(np.float64), grad_y.astype(np.float64), approximate)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-12)
    # dGELU/dx = Phi(x) + x phi(x) crosses zero at x = -0.7518 (exact form), where two terms of size 0.23
    # cancel: in float32 each carries a rounding of up to 0.23 * 2^-24 = 1.4e-8, so near the root only an
    # absolute bound holds (PyTorch's float32 gelu_backward errs by 1.2e-7 there).
    np.testing.assert_allclose(grad_x, dy_ref, rtol=1e-5, atol=5e-8)


def test_float32_left_tail_is_relatively_accurate():
    # The fast kernels avoid the 1 + erf and 1 + tanh cancellations: x * Phi(x) keeps its relative
    # accuracy for x << 0 (up to exp's sensitivity to the rounding of x^2 / 2, ~x^2 / 2 * 6e-8).
    x = np.linspace(-9.0, -2.0, 1001).astype(np.float32)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(
        gelu.gelu_forward(x, "none"), gelu.gelu_forward_reference(x64, "none"), rtol=1e-5
    )
    u = np.sqrt(2.0 / np.pi) * (x64 + 0.044715 * x64**3)
    np.testing.assert_allclose(gelu.gelu_forward(x, "tanh"), x64 / (1.0 + np.exp(-2.0 * u)), rtol=1e-5)


@settings(deadline=None)
@given(
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=4),
    approximate=st.sampled_from(APPROXIMATIONS),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_any_shape_matches_reference(shape, approximate, dtype, seed):
    rng = np.random.default_rng(seed)
    x, grad_y = sample_inputs(rng, tuple(shape), dtype)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    y = gelu.gelu_forward(x, approximate)
    grad_x = gelu.gelu_backward(x, grad_y, approximate)
    assert y.shape == grad_x.shape == x.shape
    assert_close(y, gelu.gelu_forward_reference(x, approximate), rtol=tol, atol=tol)
    assert_close(grad_x, gelu.gelu_backward_reference(x, grad_y, approximate), rtol=tol, atol=tol)


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
@pytest.mark.parametrize("shape", [(1,), (7, 13), (3, 5, 7, 9), (4099,), (64, 1024)])
def test_matches_torch_float32(approximate, shape):
    rng = np.random.default_rng(0)
    x, grad_y = sample_inputs(rng, shape, np.float32)
    y_t, grad_x_t = torch_gelu(x, grad_y, approximate)
    # PyTorch's float32 GELU cancels in the left tail (1 + erf, 1 + tanh and 1 - tanh^2 near x = -5), where
    # its error is a few 1e-6 absolute; the tight comparison is against the float64 reference above.
    assert_close(gelu.gelu_forward(x, approximate), y_t, rtol=1e-5, atol=1e-5)
    assert_close(gelu.gelu_backward(x, grad_y, approximate), grad_x_t, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_matches_torch_float64(approximate):
    rng = np.random.default_rng(1)
    x, grad_y = sample_inputs(rng, (37, 41), np.float64, spread=5.0)
    y_t, grad_x_t = torch_gelu(x, grad_y, approximate)
    assert_close(gelu.gelu_forward(x, approximate), y_t, rtol=1e-12, atol=1e-14)
    assert_close(gelu.gelu_backward(x, grad_y, approximate), grad_x_t, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_non_contiguous_inputs(approximate):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((30, 40)) * 3).astype(np.float32)[::3, 1::2].T  # (20, 10), strided
    grad_y = rng.standard_normal((10, 20)).astype(np.float32).T
    assert not x.flags.c_contiguous and not grad_y.flags.c_contiguous
    y = gelu.gelu_forward(x, approximate)
    grad_x = gelu.gelu_backward(x, grad_y, approximate)
    np.testing.assert_array_equal(y, gelu.gelu_forward(np.ascontiguousarray(x), approximate))
    np.testing.assert_array_equal(
        grad_x, gelu.gelu_backward(np.ascontiguousarray(x), np.ascontiguousarray(grad_y), approximate)
    )
    y_t, grad_x_t = torch_gelu(x, grad_y, approximate)
    assert_close(y, y_t, rtol=1e-5, atol=1e-5)
    assert_close(grad_x, grad_x_t, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_special_values(dtype, approximate):
    x = np.array([np.nan, 1e4, -1e4, 100.0, -100.0, 0.0, np.finfo(dtype).max, -np.finfo(dtype).max], dtype)
    y = gelu.gelu_forward(x, approximate)
    grad_x = gelu.gelu_backward(x, np.ones_like(x), approximate)
    assert np.isnan(y[0]) and np.isnan(grad_x[0])
    np.testing.assert_array_equal(y[1:6], np.array([1e4, 0.0, 100.0, 0.0, 0.0], dtype))
    np.testing.assert_array_equal(grad_x[1:5], np.array([1.0, 0.0, 1.0, 0.0], dtype))
    assert grad_x[5] == 0.5
    assert y[6] == np.finfo(dtype).max  # (its gradient overflows in x^3 for the tanh form)
    assert abs(y[7]) == 0.0 or np.isnan(y[7])  # x * Phi(x): -max * 0


def test_positive_infinity():
    for dtype in [np.float32, np.float64]:
        x = np.array([np.inf], dtype)
        assert gelu.gelu_forward(x, "none")[0] == np.inf
        assert gelu.gelu_forward(x, "tanh")[0] == np.inf


def test_dtype_and_errors():
    x = np.linspace(-3, 3, 11)
    assert gelu.gelu_forward(x.astype(np.float32)).dtype == np.float32
    assert gelu.gelu_forward(x).dtype == np.float64
    with pytest.raises(ValueError):
        gelu.gelu_forward(x, "sigmoid")
    with pytest.raises(ValueError):
        gelu.gelu_backward(x, np.ones(5), "none")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_forward_with_slope_equals_forward_and_backward(approximate, dtype):
    """The one-pass (y, dy/dx) kernel that the autograd op uses gives exactly the forward kernel's y and the
    backward kernel's gradient for grad_y = 1; its reference twin agrees with the references."""
    x = GRID.astype(dtype).reshape(2, -1)[:, ::3]  # 2-D and strided, as activations can be
    y, slope = gelu.gelu_forward_with_slope(x, approximate)
    assert y.shape == slope.shape == x.shape and y.dtype == slope.dtype == dtype
    np.testing.assert_array_equal(y, gelu.gelu_forward(x, approximate))
    np.testing.assert_array_equal(slope, gelu.gelu_backward(x, np.ones_like(x), approximate))
    grad_y = np.linspace(-2.0, 3.0, x.size).astype(dtype).reshape(x.shape)
    np.testing.assert_array_equal(gelu.gelu_backward_from_slope(grad_y, slope), grad_y * slope)
    np.testing.assert_array_equal(gelu.gelu_backward_from_slope_reference(grad_y, slope), grad_y * slope)
    with pytest.raises(ValueError, match="does not match"):
        gelu.gelu_backward_from_slope(grad_y[:1], slope)
    y_ref, slope_ref = gelu.gelu_forward_with_slope_reference(x, approximate)
    np.testing.assert_array_equal(y_ref, gelu.gelu_forward_reference(x, approximate))
    np.testing.assert_array_equal(slope_ref, gelu.gelu_backward_reference(x, np.ones_like(x), approximate))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_bias_epilogue_equals_gelu_of_the_sum(approximate, dtype):
    """linear_gelu's kernels: GELU of pre + bias (with and without the slope) gives exactly the GELU kernels'
    bits for the summed array; the backward pass's multiply gives the same bits, its column sums agree with
    a float64 sum; the references agree with theirs."""
    rng = np.random.default_rng(0)
    pre = (rng.standard_normal((37, 24)) * 3).astype(dtype)
    bias = rng.standard_normal(24).astype(dtype)
    summed = pre + bias
    y, slope = gelu.bias_gelu_forward_with_slope(pre, bias, approximate)
    y_plain, slope_plain = gelu.gelu_forward_with_slope(summed, approximate)
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_array_equal(slope, slope_plain)
    np.testing.assert_array_equal(gelu.bias_gelu_forward(pre[:, :], bias, approximate), y_plain)
    grad_y = rng.standard_normal(pre.shape).astype(dtype)
    grad_pre, grad_bias = gelu.gelu_backward_from_slope_with_bias_grad(grad_y, slope)
    np.testing.assert_array_equal(grad_pre, grad_y * slope)
    assert grad_bias.dtype == dtype
    np.testing.assert_allclose(
        grad_bias, (grad_y * slope).astype(np.float64).sum(axis=0), rtol=1e-6, atol=1e-6
    )
    ref_pre, ref_bias = gelu.gelu_backward_from_slope_with_bias_grad_reference(grad_y, slope)
    np.testing.assert_array_equal(ref_pre, grad_pre)
    np.testing.assert_allclose(ref_bias, grad_bias, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(
        gelu.bias_gelu_forward_reference(pre, bias, approximate),
        gelu.gelu_forward_reference(summed, approximate),
    )
    with pytest.raises(ValueError, match=r"expected pre \(rows, F\) and bias \(F,\)"):
        gelu.bias_gelu_forward(pre, bias[:5])
    with pytest.raises(ValueError, match="does not match the slope's shape"):
        gelu.gelu_backward_from_slope_with_bias_grad(grad_y[:3], slope)


def test_the_op_keeps_the_slope_only_when_a_gradient_is_coming():
    import autograd as ag
    from autograd.nn import functional as F

    x = ag.tensor(GRID[:100].astype(np.float32), requires_grad=True)
    y = F.gelu(x)
    (slope,) = y._ctx.saved  # the slope, not x
    np.testing.assert_array_equal(slope, gelu.gelu_backward(x.numpy(), np.ones(100, np.float32)))
    grad_y = np.linspace(-1.0, 1.0, 100).astype(np.float32)
    y.backward(ag.tensor(grad_y))
    np.testing.assert_allclose(x.grad.numpy(), gelu.gelu_backward(x.numpy(), grad_y), rtol=1e-6, atol=1e-12)
    assert x.grad.dtype == np.float32
    with ag.no_grad():
        assert F.gelu(x)._ctx is None
    assert F.gelu(ag.tensor(GRID[:10]))._ctx is None  # no input needs a gradient
