"""Layer norm kernels: every step of STEPS, run through the op LayerNorm, == the op's own body, forward and
backward, in both layouts; the fast (Numba) kernels == PyTorch; layouts, strides and threads give the same
bits."""

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from op_runs import assert_same, run

import autograd.nn.functional as F
from autograd.backend import device_of
from autograd.kernels.cpu import layer_norm

EPS = 1e-6
STEP_NAMES = list(layer_norm.STEPS)
# The steps that implement the channels-first entry points too (the last one, at least).
CHANNELS_FIRST_STEPS = [
    name for name in STEP_NAMES if hasattr(layer_norm.STEPS[name], "layer_norm_channels_first_forward")
]


def rows_norm(x, weight=None, bias=None):
    """LayerNorm over the last axis (the rows kernels)."""
    return F.layer_norm(x, x.shape[-1:], weight, bias, EPS)


def channels_first_norm(x, weight=None, bias=None):
    """LayerNorm over axis 1 of (N, C, ...) (the channels-first kernels)."""
    return F.layer_norm_channels_first(x, weight, bias, EPS)


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


def op_arrays(x, weight, bias):
    """The op's inputs: x, and weight and bias when there are some."""
    return [x] if weight is None else [x, weight, bias]


def torch_layer_norm(x, grad_y, weight, bias, channels_first=False):
    """y, grad_x, grad_weight, grad_bias from torch autograd (channels first: permute + layer_norm)."""
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    wt = None if weight is None else torch.from_numpy(weight).requires_grad_()
    bt = None if bias is None else torch.from_numpy(bias).requires_grad_()
    if channels_first:
        yt = torch.nn.functional.layer_norm(xt.movedim(1, -1), (x.shape[1],), wt, bt, EPS).movedim(-1, 1)
    else:
        yt = torch.nn.functional.layer_norm(xt, (x.shape[-1],), wt, bt, EPS)
    yt.backward(torch.from_numpy(np.ascontiguousarray(grad_y)))
    return (
        yt.detach().numpy(),
        xt.grad.numpy(),
        None if wt is None else wt.grad.numpy(),
        None if bt is None else bt.grad.numpy(),
    )


def conditioning(x, axis):
    """y and dx carry a factor rstd: where a group's values nearly coincide (two channels drawn close
    together), float32 rounding of the mean and of the sums is amplified by it. Scale the tolerance to
    match."""
    var = np.asarray(x, np.float64).var(axis=axis)
    return max(1.0, float(np.max(1.0 / np.sqrt(var + EPS), initial=1.0)))


def check_against_body(norm, arrays, kernels, tol, grad_seed=0, needs_grad=None):
    """``norm`` through ``kernels`` (one step of STEPS, or the package) == through the op's body.

    ``grad_seed`` seeds the upstream gradient: never the seed x was drawn with, or dy would be x's own
    draws, and dx (nearly) zero."""
    how = dict(grad_seed=grad_seed, needs_grad=needs_grad)
    actual = run(norm, arrays, kernels=kernels, family="layer_norm", **how)
    assert_same(actual, run(norm, arrays, path="body", **how), arrays[0].dtype, rtol=tol)
    return actual


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("layout", ["rows", "channels_first"])
def test_body_runs_on_device(device, layout, affine, dtype):
    """The op's body computes with the array module of its inputs: on ``device`` it returns arrays there,
    equal to the NumPy results up to rounding (reductions may add in another order)."""
    rng = np.random.default_rng(10)
    if layout == "rows":
        norm, (x, _, weight, bias) = rows_norm, random_inputs(rng, (9, 33), 33, dtype, affine)
    else:
        norm, (x, _, weight, bias) = channels_first_norm, random_inputs(rng, (2, 6, 5, 7), 6, dtype, affine)

    def on_device(*tensors):
        out = norm(*(t.to(device) for t in tensors))
        assert device_of(out.data) == device
        return out

    arrays = op_arrays(x, weight, bias)
    expected = run(norm, arrays, path="body")
    assert_same(run(on_device, arrays, path="body"), expected, dtype, 1e-12 if dtype == np.float64 else 1e-6)


# ---------------------------------------------------------------------------------------------------------
# Rows (normalise over the last axis)
# ---------------------------------------------------------------------------------------------------------


def test_steps_are_in_story_order_and_the_last_is_the_public_kernels():
    assert [name.split()[0] for name in STEP_NAMES] == [str(i) for i in range(1, len(STEP_NAMES) + 1)]
    last = layer_norm.STEPS[STEP_NAMES[-1]]
    assert CHANNELS_FIRST_STEPS[-1] == STEP_NAMES[-1]
    for name in [
        "layer_norm_forward",
        "layer_norm_backward",
        "layer_norm_channels_first_forward",
        "layer_norm_channels_first_backward",
    ]:
        assert getattr(last, name) is getattr(layer_norm, name)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("step", STEP_NAMES)
@settings(deadline=None)
@given(rows=st.integers(1, 40), size=st.integers(1, 70), affine=st.booleans(), seed=st.integers(0, 2**31))
def test_rows_every_step_matches_the_body(step, dtype, tol, rows, size, affine, seed):
    rng = np.random.default_rng(seed)
    x, _, weight, bias = random_inputs(rng, (rows, size), size, dtype, affine)
    arrays = op_arrays(x, weight, bias)
    check_against_body(rows_norm, arrays, layer_norm.STEPS[step], tol * conditioning(x, -1), seed + 1)


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
    weight_base = rng.standard_normal(40).astype(np.float32)
    bias = rng.standard_normal(20).astype(np.float32)

    def strided_norm(base, weight_base, bias):
        x, weight = base[::2, 5:80:3].T, weight_base[::2]  # x (25, 20), strided and transposed
        assert not x.data.flags.c_contiguous and not weight.data.flags.c_contiguous
        return F.layer_norm(x, (20,), weight, bias, EPS).T  # the op's incoming gradient is transposed too

    x = base[::2, 5:80:3].T
    check_against_body(strided_norm, [base, weight_base, bias], layer_norm, 1e-5 * conditioning(x, -1))
    weight = weight_base[::2]
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    y_contiguous = layer_norm.layer_norm_forward(np.ascontiguousarray(x), weight.copy(), bias, EPS)[0]
    np.testing.assert_array_equal(y, y_contiguous)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_rows_without_weight_grad(step):
    kernels = layer_norm.STEPS[step]
    rng = np.random.default_rng(3)
    x, grad_y, weight, bias = random_inputs(rng, (17, 33), 33, np.float32)
    y, mean, rstd = kernels.layer_norm_forward(x, weight, bias, EPS)
    grad_x, grad_weight, grad_bias = kernels.layer_norm_backward(grad_y, x, weight, mean, rstd, False)
    assert grad_weight is None and grad_bias is None
    np.testing.assert_array_equal(grad_x, kernels.layer_norm_backward(grad_y, x, weight, mean, rstd)[0])
    # Through the op: a weight and bias that need no gradient take the "no weight gradient" path.
    _, grads = check_against_body(
        rows_norm, [x, weight, bias], kernels, 1e-5 * conditioning(x, -1), needs_grad=[True, False, False]
    )
    assert grads[1] is None and grads[2] is None


@pytest.mark.parametrize("step", STEP_NAMES)
def test_rows_constant_row_is_finite(step):
    x = np.full((4, 16), 3.0, np.float32)
    y, mean, rstd = layer_norm.STEPS[step].layer_norm_forward(x, None, None, 1e-5)
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_allclose(rstd, 1.0 / np.sqrt(1e-5), rtol=1e-6)
    rng = np.random.default_rng(11)
    weight, bias = rng.standard_normal((2, 16)).astype(np.float32)
    y, grads = check_against_body(rows_norm, [x, weight, bias], layer_norm.STEPS[step], 1e-5)
    np.testing.assert_array_equal(y, np.broadcast_to(bias, x.shape))  # xhat = 0: y = bias exactly
    assert all(np.isfinite(g).all() for g in grads)


def test_weight_grad_is_deterministic_across_thread_counts():
    rng = np.random.default_rng(4)
    x, grad_y, weight, bias = random_inputs(rng, (1000, 64), 64, np.float32)
    y, mean, rstd = layer_norm.layer_norm_forward(x, weight, bias, EPS)
    x4, g4, w4, b4 = random_inputs(rng, (6, 8, 9, 37), 8, np.float32)
    y4, mean4, rstd4 = layer_norm.layer_norm_channels_first_forward(x4, w4, b4, EPS)
    results = []
    threads_before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
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


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("step", CHANNELS_FIRST_STEPS)
@settings(deadline=None)
@given(
    batch=st.integers(1, 3),
    channels=st.integers(1, 12),
    height=st.integers(1, 9),
    width=st.integers(1, 40),
    affine=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_channels_first_every_step_matches_the_body(
    step, dtype, tol, batch, channels, height, width, affine, seed
):
    rng = np.random.default_rng(seed)
    x, _, weight, bias = random_inputs(rng, (batch, channels, height, width), channels, dtype, affine)
    arrays = op_arrays(x, weight, bias)
    check_against_body(
        channels_first_norm, arrays, layer_norm.STEPS[step], tol * conditioning(x, 1), seed + 1
    )


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
    nhwc = rng.standard_normal((3, 9, 11, 10)).astype(np.float32)
    x = nhwc.transpose(0, 3, 2, 1)  # (3, 10, 11, 9) in NHWC memory
    weight_base = rng.standard_normal(20).astype(np.float32)
    bias = rng.standard_normal(10).astype(np.float32)

    def strided_norm(nhwc, weight_base, bias):
        x, weight = nhwc.permute(0, 3, 2, 1), weight_base[::2]
        assert not x.data.flags.c_contiguous and not weight.data.flags.c_contiguous
        y = F.layer_norm_channels_first(x, weight, bias, EPS)
        return y.permute(0, 2, 3, 1)  # the op's incoming gradient is a permuted view too

    check_against_body(strided_norm, [nhwc, weight_base, bias], layer_norm, 1e-5 * conditioning(x, 1))
    grad_y = rng.standard_normal((3, 10, 22, 9)).astype(np.float32)[:, :, ::2]
    weight = weight_base[::2]
    y_t, grad_x_t, grad_weight_t, grad_bias_t = torch_layer_norm(x, grad_y, weight, bias, channels_first=True)
    y, mean, rstd = layer_norm.layer_norm_channels_first_forward(x, weight, bias, EPS)
    grad_x, grad_weight, grad_bias = layer_norm.layer_norm_channels_first_backward(
        grad_y, x, weight, mean, rstd
    )
    for a, b in [(y, y_t), (grad_x, grad_x_t), (grad_weight, grad_weight_t), (grad_bias, grad_bias_t)]:
        assert_close(a, b, 1e-5)


@pytest.mark.parametrize("step", CHANNELS_FIRST_STEPS)
def test_channels_first_without_weight_grad(step):
    kernels = layer_norm.STEPS[step]
    rng = np.random.default_rng(9)
    x, grad_y, weight, bias = random_inputs(rng, (2, 4, 6, 6), 4, np.float32)
    y, mean, rstd = kernels.layer_norm_channels_first_forward(x, weight, bias, EPS)
    grad_x, grad_weight, grad_bias = kernels.layer_norm_channels_first_backward(
        grad_y, x, weight, mean, rstd, needs_weight_grad=False
    )
    assert grad_weight is None and grad_bias is None
    full = kernels.layer_norm_channels_first_backward(grad_y, x, weight, mean, rstd)[0]
    np.testing.assert_array_equal(grad_x, full)
    _, grads = check_against_body(
        channels_first_norm,
        [x, weight, bias],
        kernels,
        1e-5 * conditioning(x, 1),
        needs_grad=[True, False, False],
    )
    assert grads[1] is None and grads[2] is None
