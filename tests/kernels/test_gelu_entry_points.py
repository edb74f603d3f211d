"""GELU kernels, their entry points called directly: == PyTorch, with the special values, the errors, and
the equalities between entry points (the one-pass slope, the bias epilogue); the float32 exp.

Every step against the ops' own bodies, through the ops: tests/kernels/test_gelu.py.
"""

import numpy as np
import pytest
import torch
from numba import njit

from autograd.kernels.cpu import fast_math, gelu

APPROXIMATIONS = ["none", "tanh"]
FLOATS = [np.float32, np.float64]
STEP_NAMES = list(gelu.STEPS)
# Values covering both tails, the region around 0 and the polynomial-to-tail transitions.
GRID = np.concatenate([np.linspace(-16.0, 16.0, 6401), [-1e-30, 0.0, 1e-30, -1e-3, 1e-3]])


def assert_close(actual, expected, rtol, atol):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def torch_gelu(x, grad_y, approximate):
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    yt = torch.nn.functional.gelu(xt, approximate=approximate)
    yt.backward(torch.from_numpy(np.ascontiguousarray(grad_y)))
    return yt.detach().numpy(), xt.grad.numpy()


def sample_inputs(rng, shape, dtype, spread=3.0):
    x = (rng.standard_normal(shape) * spread).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    return x, grad_y


@pytest.mark.parametrize("approximate", APPROXIMATIONS)
@pytest.mark.parametrize("shape", [(1,), (7, 13), (3, 5, 7, 9), (4099,), (64, 1024)])
def test_matches_torch_float32(approximate, shape):
    rng = np.random.default_rng(0)
    x, grad_y = sample_inputs(rng, shape, np.float32)
    y_t, grad_x_t = torch_gelu(x, grad_y, approximate)
    # PyTorch's float32 GELU cancels in the left tail (1 + erf, 1 + tanh and 1 - tanh^2 near x = -5), where
    # its error is a few 1e-6 absolute; the tight comparison is against the float64 body, in test_gelu.py.
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


@pytest.mark.parametrize("dtype", FLOATS)
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
    for dtype in FLOATS:
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


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_forward_with_slope_equals_forward_and_backward(approximate, dtype):
    """The one-pass (y, dy/dx) kernel that the autograd op uses gives exactly the forward kernel's y and the
    backward kernel's gradient; the backward pass from the slope is one multiply."""
    x = GRID.astype(dtype).reshape(2, -1)[:, ::3]  # 2-D and strided, as activations can be
    y, slope = gelu.gelu_forward_with_slope(x, approximate)
    assert y.shape == slope.shape == x.shape and y.dtype == slope.dtype == dtype
    np.testing.assert_array_equal(y, gelu.gelu_forward(x, approximate))
    np.testing.assert_array_equal(slope, gelu.gelu_backward(x, np.ones_like(x), approximate))
    grad_y = np.linspace(-2.0, 3.0, x.size).astype(dtype).reshape(x.shape)
    np.testing.assert_array_equal(gelu.gelu_backward_from_slope(grad_y, slope), grad_y * slope)
    np.testing.assert_array_equal(gelu.gelu_backward(x, grad_y, approximate), grad_y * slope)
    with pytest.raises(ValueError, match="does not match"):
        gelu.gelu_backward_from_slope(grad_y[:1], slope)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("approximate", APPROXIMATIONS)
def test_bias_epilogue_equals_gelu_of_the_sum(approximate, dtype):
    """linear_gelu's kernels: GELU of pre + bias (with and without the slope) gives exactly the GELU kernels'
    bits for the summed array; the backward pass's multiply gives the same bits, its column sums agree with
    a float64 sum."""
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
    with pytest.raises(ValueError, match=r"expected pre \(rows, F\) and bias \(F,\)"):
        gelu.bias_gelu_forward(pre, bias[:5])
    with pytest.raises(ValueError, match="does not match the slope's shape"):
        gelu.gelu_backward_from_slope_with_bias_grad(grad_y[:3], slope)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_every_step_passes_nan_and_infinity(step):
    for dtype in FLOATS:
        x = np.array([np.nan, np.inf, -100.0, 0.0], dtype)
        for approximate in APPROXIMATIONS:
            y, slope = gelu.STEPS[step].gelu_forward_with_slope(x, approximate)
            assert np.isnan(y[0]) and np.isnan(slope[0]) and y[1] == np.inf
            np.testing.assert_array_equal(y[2:], np.zeros(2, dtype))
            assert slope[3] == 0.5 and y.dtype == slope.dtype == dtype


# -- the float32 exp (autograd/kernels/cpu/fast_math.py) -----------------------------------------------------
@njit
def _exp_each(x, out, fused):
    for i in range(x.size):
        out[i] = fast_math.exp_float32_fma(x[i]) if fused else fast_math.exp_float32(x[i])


@pytest.mark.parametrize("fused", [False, True])
def test_float32_exp_is_accurate_and_handles_the_ends(fused):
    x = np.concatenate([np.linspace(-87.0, 88.7, 400001), [-1e-30, 0.0, 1e-30]]).astype(np.float32)
    out = np.empty_like(x)
    _exp_each(x, out, fused)
    np.testing.assert_allclose(out, np.exp(x.astype(np.float64)), rtol=1.1e-7, atol=0)
    ends = np.array([-88.0, -1e4, 89.0, 1e4, np.inf, -np.inf, np.nan], np.float32)
    out = np.empty_like(ends)
    _exp_each(ends, out, fused)
    np.testing.assert_array_equal(out, np.array([0, 0, np.inf, np.inf, np.inf, 0, np.nan], np.float32))
