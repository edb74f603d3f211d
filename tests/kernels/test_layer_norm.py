"""Layer norm kernels: fast (Numba) == plain NumPy reference == PyTorch, forward and backward."""

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd.backend import device_of, to_device, to_numpy
from autograd.kernels.cpu import layer_norm

F = torch.nn.functional
EPS = 1e-6


def assert_close(actual, expected, tol):
    """Elementwise |actual - expected| <= tol * (|expected| + max|expected|, at least 1)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def random_inputs(rng, shape, params, dtype, affine=True):
    x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal(params).astype(dtype) if affine else None
    bias = rng.standard_normal(params).astype(dtype) if affine else None
    return x, grad_y, weight, bias


def torch_layer_norm(x, grad_y, weight, bias, channels_first=False):
    """y, grad_x, grad_weight, grad_bias from torch autograd (channels first: permute + layer_norm)."""
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    wt = None if weight is None else torch.from_numpy(weight).requires_grad_()
    bt = None if bias is None else torch.from_numpy(bias).requires_grad_()
    if channels_first:
        yt = F.layer_norm(xt.movedim(1, -1), (x.shape[1],), wt, bt, EPS).movedim(-1, 1)
    else:
        yt = F.layer_norm(xt, (x.shape[-1],), wt, bt, EPS)
    yt.backward(torch.from_numpy(np.ascontiguousarray(grad_y)))
    return (
        yt.detach().numpy(),
        xt.grad.numpy(),
        None if wt is None else wt.grad.numpy(),
        None if bt is None else bt.grad.numpy(),
    )


def _conditioning(rstd):
    """y and dx carry a factor rstd: where a group's values nearly coincide (two channels drawn close
    together), float32 rounding of the mean and of the sums is amplified by it. Scale the tolerance to match."""
    return max(1.0, float(np.max(np.asarray(rstd, np.float64), initial=1.0)))


def check_rows(x, grad_y, weight, bias, tol):
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    y_ref, mean_ref, rstd_ref = layer_norm.layer_norm_forward_reference(x, weight, bias, EPS)
    assert_close(
        y, y_ref, tol * _conditioning(rstd_ref)
    )  # y = (x - mean) rstd: rounding of the mean times rstd
    for a, b in [(mean, mean_ref), (rstd, rstd_ref)]:
        assert_close(a, b, tol)
    grads = layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd)
    grads_ref = layer_norm.layer_norm_backward_reference(grad_y, x, weight, mean_ref, rstd_ref)
    for a, b in zip(grads, grads_ref, strict=False):
        assert_close(a, b, tol * _conditioning(rstd_ref))


def check_channels_first(x, grad_y, weight, bias, tol):
    y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
    y_ref, mean_ref, rstd_ref = layer_norm.layer_norm_channels_first_forward_reference(x, weight, bias, EPS)
    assert_close(
        y, y_ref, tol * _conditioning(rstd_ref)
    )  # y = (x - mean) rstd: rounding of the mean times rstd
    for a, b in [(mean, mean_ref), (rstd, rstd_ref)]:
        assert_close(a, b, tol)
    grads = layer_norm.layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd)
    grads_ref = layer_norm.layer_norm_channels_first_backward_reference(grad_y, x, weight, mean_ref, rstd_ref)
    for a, b in zip(grads, grads_ref, strict=False):
        assert_close(a, b, tol * _conditioning(rstd_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("layout", ["rows", "channels_first"])
def test_reference_runs_on_device(device, layout, affine, dtype):
    """The references compute with the array module of their inputs: on ``device`` they return arrays
    there, equal to the NumPy results up to rounding (reductions may add in another order)."""
    rng = np.random.default_rng(10)
    if layout == "rows":
        forward, backward = layer_norm.layer_norm_forward_reference, layer_norm.layer_norm_backward_reference
        inputs = random_inputs(rng, (9, 33), 33, dtype, affine)
    else:
        forward = layer_norm.layer_norm_channels_first_forward_reference
        backward = layer_norm.layer_norm_channels_first_backward_reference
        inputs = random_inputs(rng, (2, 6, 5, 7), 6, dtype, affine)

    def forward_backward(x, grad_y, weight, bias):
        y, mean, rstd = forward(x, weight, bias, EPS)
        return (y, mean, rstd) + backward(grad_y, x, weight, mean, rstd)

    results = forward_backward(*(None if a is None else to_device(a, device) for a in inputs))
    assert all(device_of(r) == device for r in results)
    for a, b in zip(results, forward_backward(*inputs), strict=False):
        assert_close(to_numpy(a), b, 1e-12 if dtype == np.float64 else 1e-6)


# ---------------------------------------------------------------------------------------------------------
# Rows (normalise over the last axis)
# ---------------------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(rows=st.integers(1, 40), size=st.integers(1, 70), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_rows_fast_matches_reference_float64(rows, size, affine, seed):
    rng = np.random.default_rng(seed)
    check_rows(*random_inputs(rng, (rows, size), size, np.float64, affine), tol=1e-10)


@settings(deadline=None)
@given(rows=st.integers(1, 40), size=st.integers(1, 70), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_rows_fast_matches_reference_float32(rows, size, affine, seed):
    rng = np.random.default_rng(seed)
    check_rows(*random_inputs(rng, (rows, size), size, np.float32, affine), tol=1e-5)


@pytest.mark.parametrize("shape", [(1, 2), (3, 5), (37, 129), (300, 96), (257, 768)])
@pytest.mark.parametrize("affine", [True, False])
def test_rows_match_torch_float32(shape, affine):
    rng = np.random.default_rng(0)
    x, grad_y, weight, bias = random_inputs(rng, shape, shape[1], np.float32, affine)
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    grad_x, grad_weight, grad_bias = layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd)
    y_t, grad_x_t, grad_weight_t, grad_bias_t = torch_layer_norm(x, grad_y, weight, bias)
    assert_close(y, y_t, 1e-5)
    assert_close(grad_x, grad_x_t, 1e-5)
    if affine:
        assert_close(grad_weight, grad_weight_t, 1e-5)
        assert_close(grad_bias, grad_bias_t, 1e-5)


def test_rows_match_torch_float64():
    rng = np.random.default_rng(1)
    x, grad_y, weight, bias = random_inputs(rng, (33, 47), 47, np.float64)
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    ours = (y,) + layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd)
    for a, b in zip(ours, torch_layer_norm(x, grad_y, weight, bias), strict=False):
        assert_close(a, b, 1e-10)


def test_rows_non_contiguous_inputs():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((40, 90)).astype(np.float32)
    x = base[::2, 5:80:3].T  # (25, 20), strided and transposed
    grad_y = rng.standard_normal((20, 25)).astype(np.float32).T
    weight = rng.standard_normal(40).astype(np.float32)[::2]
    bias = rng.standard_normal(20).astype(np.float32)
    assert not x.flags.c_contiguous and not grad_y.flags.c_contiguous and not weight.flags.c_contiguous
    check_rows(x, grad_y, weight, bias, tol=1e-5)
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    y_ref = layer_norm.layer_norm_forward(np.ascontiguousarray(x), weight.copy(), bias, EPS)[0]
    np.testing.assert_array_equal(y, y_ref)


def test_rows_without_weight_grad():
    rng = np.random.default_rng(3)
    x, grad_y, weight, bias = random_inputs(rng, (17, 33), 33, np.float32)
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    grad_x, grad_weight, grad_bias = layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd, False)
    assert grad_weight is None and grad_bias is None
    np.testing.assert_array_equal(grad_x, layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd)[0])


def test_rows_constant_row_is_finite():
    x = np.full((4, 16), 3.0, np.float32)
    y, mean, rstd = layer_norm.layer_norm_forward(x, None, None, 1e-5)
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_allclose(rstd, 1.0 / np.sqrt(1e-5), rtol=1e-6)


def test_weight_grad_is_deterministic_across_thread_counts():
    rng = np.random.default_rng(4)
    x, grad_y, weight, bias = random_inputs(rng, (1000, 64), 64, np.float32)
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    x4, g4, w4, b4 = random_inputs(rng, (6, 8, 9, 37), 8, np.float32)
    y4, mean4, rstd4 = layer_norm.layer_norm_channels_first_forward(x4, w4, b4, EPS)
    results = []
    threads_before = numba.get_num_threads()
    try:
        for threads in sorted({1, threads_before}):
            numba.set_num_threads(threads)
            results.append(
                layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd)
                + layer_norm.layer_norm_channels_first_backward(g4, x4, w4, mean4, rstd4)
            )
    finally:
        numba.set_num_threads(threads_before)
    results.append(
        layer_norm.layer_norm_backward(grad_y, x, weight, mean, rstd)
        + layer_norm.layer_norm_channels_first_backward(g4, x4, w4, mean4, rstd4)
    )
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=False):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------------------
# Channels first (normalise over axis 1 of NCHW)
# ---------------------------------------------------------------------------------------------------------


@settings(deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 12),
    height=st.integers(1, 9),
    width=st.integers(1, 40),
    affine=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_channels_first_fast_matches_reference_float64(batch, channels, height, width, affine, seed):
    rng = np.random.default_rng(seed)
    inputs = random_inputs(rng, (batch, channels, height, width), channels, np.float64, affine)
    check_channels_first(*inputs, tol=1e-10)


@settings(deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 12),
    height=st.integers(1, 9),
    width=st.integers(1, 40),
    affine=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_channels_first_fast_matches_reference_float32(batch, channels, height, width, affine, seed):
    rng = np.random.default_rng(seed)
    inputs = random_inputs(rng, (batch, channels, height, width), channels, np.float32, affine)
    check_channels_first(*inputs, tol=1e-5)


@pytest.mark.parametrize(
    "shape", [(1, 2, 1, 1), (2, 3, 5, 7), (3, 64, 16, 16), (2, 5, 23, 29), (1, 96, 28, 28)]
)
@pytest.mark.parametrize("affine", [True, False])
def test_channels_first_matches_torch_float32(shape, affine):
    rng = np.random.default_rng(5)
    x, grad_y, weight, bias = random_inputs(rng, shape, shape[1], np.float32, affine)
    y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
    assert mean.shape == rstd.shape == (shape[0],) + shape[2:]
    grad_x, grad_weight, grad_bias = layer_norm.layer_norm_channels_first_backward(
        grad_y, x, weight, mean, rstd
    )
    y_t, grad_x_t, grad_weight_t, grad_bias_t = torch_layer_norm(x, grad_y, weight, bias, channels_first=True)
    assert_close(y, y_t, 1e-5)
    assert_close(grad_x, grad_x_t, 1e-5)
    if affine:
        assert_close(grad_weight, grad_weight_t, 1e-5)
        assert_close(grad_bias, grad_bias_t, 1e-5)


def test_channels_first_matches_torch_float64():
    rng = np.random.default_rng(6)
    x, grad_y, weight, bias = random_inputs(rng, (2, 7, 19, 17), 7, np.float64)
    y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
    ours = (y,) + layer_norm.layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd)
    for a, b in zip(ours, torch_layer_norm(x, grad_y, weight, bias, channels_first=True), strict=False):
        assert_close(a, b, 1e-10)


def test_channels_first_equals_rows_on_moved_axis():
    rng = np.random.default_rng(7)
    x, grad_y, weight, bias = random_inputs(rng, (2, 6, 5, 4), 6, np.float64)
    y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
    rows = np.moveaxis(x, 1, -1).reshape(-1, 6)
    y_rows, mean_rows, rstd_rows = layer_norm.layer_norm_forward(rows, weight, bias, EPS)
    assert_close(np.moveaxis(y, 1, -1).reshape(-1, 6), y_rows, 1e-12)
    assert_close(mean.reshape(-1), mean_rows, 1e-12)


def test_channels_first_non_contiguous_inputs():
    rng = np.random.default_rng(8)
    x = (
        rng.standard_normal((3, 9, 11, 10)).astype(np.float32).transpose(0, 3, 2, 1)
    )  # (3, 10, 11, 9) NHWC memory
    grad_y = rng.standard_normal((3, 10, 22, 9)).astype(np.float32)[:, :, ::2]
    weight = rng.standard_normal(20).astype(np.float32)[::2]
    bias = rng.standard_normal(10).astype(np.float32)
    check_channels_first(x, grad_y, weight, bias, tol=1e-5)
    y_t, grad_x_t, grad_weight_t, grad_bias_t = torch_layer_norm(x, grad_y, weight, bias, channels_first=True)
    y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
    grad_x, grad_weight, grad_bias = layer_norm.layer_norm_channels_first_backward(
        grad_y, x, weight, mean, rstd
    )
    for a, b in [(y, y_t), (grad_x, grad_x_t), (grad_weight, grad_weight_t), (grad_bias, grad_bias_t)]:
        assert_close(a, b, 1e-5)


def test_channels_first_without_weight_grad():
    rng = np.random.default_rng(9)
    x, grad_y, weight, bias = random_inputs(rng, (2, 4, 6, 6), 4, np.float32)
    y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
    grad_x, grad_weight, grad_bias = layer_norm.layer_norm_channels_first_backward(
        grad_y, x, weight, mean, rstd, needs_weight_grad=False
    )
    assert grad_weight is None and grad_bias is None
    full = layer_norm.layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd)[0]
    np.testing.assert_array_equal(grad_x, full)
