"""Batch norm kernels: every step of STEPS, run through the op BatchNorm, == the op's own body (output,
gradients and the running statistics it updates), in both layouts, in training (batch statistics) and
evaluation (running statistics); the fast (Numba) kernels == PyTorch; strides and threads give the same
bits."""

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from op_runs import assert_same, run

import autograd as ag
import autograd.nn.functional as F
from autograd.backend import device_of, get_array_module
from autograd.kernels.cpu import batch_norm

EPS = 1e-5
STEP_NAMES = list(batch_norm.STEPS)


def assert_close(actual, expected, tol):
    """Elementwise |actual - expected| <= tol * (|expected| + max|expected|, at least 1)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def random_inputs(rng, shape, channels_last, dtype, affine=True):
    channels = shape[-1] if channels_last else shape[1]
    x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(dtype)
    grad_y = rng.standard_normal(shape).astype(dtype)
    weight = rng.standard_normal(channels).astype(dtype) if affine else None
    bias = rng.standard_normal(channels).astype(dtype) if affine else None
    return x, grad_y, weight, bias


def rstd_of(var):
    xp = get_array_module(var)
    return (1.0 / xp.sqrt(var.astype(xp.float64) + EPS)).astype(var.dtype)


def strided(a):
    """The same values in a view with gaps (every other element of a twice-as-wide array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def fixed_statistics(rng, channels, dtype):
    """Running statistics for evaluation mode."""
    return rng.standard_normal(channels).astype(dtype), rng.uniform(0.2, 3.0, channels).astype(dtype)


def run_kernels(module_kernels, inputs, training, channels_last, stats=None):
    """(y, mean, rstd, grad_x, grad_w, grad_b) from the entry points of ``module_kernels`` (the package, or
    one step of STEPS), on inputs = (x, grad_y, weight, bias)."""
    x, grad_y, weight, bias = inputs
    mean, var = module_kernels.batch_norm_statistics(x, channels_last) if training else stats
    rstd = rstd_of(var)
    y = module_kernels.batch_norm_normalize(x, mean, rstd, weight, bias, channels_last)
    return (y, mean, rstd) + module_kernels.batch_norm_backward(
        grad_y, x, weight, mean, rstd, training, channels_last
    )


def run_op(x, weight, bias, training, channels_last, stats, device="cpu", **how):
    """(y, [grad_x, grad_w, grad_b, running_mean, running_var]) of F.batch_norm, run as ``how`` says (the
    arguments of op_runs.run): the running statistics start as copies of ``stats`` and the op updates them."""
    running = [ag.tensor(s).to(device) for s in stats]

    def norm(x, weight=None, bias=None):
        on_device = [None if t is None else t.to(device) for t in (x, weight, bias)]
        options = dict(training=training, eps=EPS, channels_last=channels_last)
        y = F.batch_norm(on_device[0], *running, *on_device[1:], **options)
        assert device_of(y.data) == device
        return y

    y, grads = run(norm, [x] if weight is None else [x, weight, bias], **how)
    return y, list(grads) + [r.numpy() for r in running]


def conditioning(x, training, channels_last, stats):
    """y and dx carry a factor rstd: where a channel's values nearly coincide (few of them, drawn close
    together), float32 rounding of the mean and of the sums is amplified by it. Scale the tolerance to
    match."""
    axes = tuple(range(x.ndim - 1)) if channels_last else (0,) + tuple(range(2, x.ndim))
    var = x.astype(np.float64).var(axis=axes) if training else stats[1].astype(np.float64)
    return max(1.0, float(np.max(1.0 / np.sqrt(var + EPS), initial=1.0)))


def check_against_body(kernels, x, weight, bias, training, channels_last, stats, tol, **how):
    """``kernels`` (the package, or one step of STEPS) through the op == the op's body.

    A ``grad_seed`` (in ``how``) for the upstream gradient: never the seed x was drawn with, or dy would be
    x's own draws, and dx (nearly) zero in training."""
    case = (x, weight, bias, training, channels_last, stats)
    actual = run_op(*case, kernels=kernels, family="batch_norm", **how)
    tol *= conditioning(x, training, channels_last, stats)
    assert_same(actual, run_op(*case, path="body", **how), x.dtype, rtol=tol)
    return actual


shapes = st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(1, 7), st.integers(1, 7))


def test_steps_are_in_story_order_and_the_last_is_the_public_kernels():
    assert [name.split()[0] for name in STEP_NAMES] == [str(i) for i in range(1, len(STEP_NAMES) + 1)]
    last = batch_norm.STEPS[STEP_NAMES[-1]]
    for name in ["batch_norm_statistics", "batch_norm_normalize", "batch_norm_backward"]:
        assert getattr(last, name) is getattr(batch_norm, name)


@pytest.mark.parametrize("step", STEP_NAMES)
@settings(deadline=None, max_examples=60)
@given(
    shape=shapes,
    channels_last=st.booleans(),
    training=st.booleans(),
    affine=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_every_step_matches_the_body_float64(step, shape, channels_last, training, affine, seed):
    rng = np.random.default_rng(seed)
    if training and np.prod(shape) // (shape[-1] if channels_last else shape[1]) < 2:
        shape = (2,) + shape[1:]  # training needs two values per channel
    x, _, weight, bias = random_inputs(rng, shape, channels_last, np.float64, affine)
    stats = fixed_statistics(rng, shape[-1] if channels_last else shape[1], np.float64)
    check_against_body(
        batch_norm.STEPS[step], x, weight, bias, training, channels_last, stats, 1e-10, grad_seed=seed + 1
    )


@pytest.mark.parametrize("step", STEP_NAMES)
@settings(deadline=None, max_examples=60)
@given(shape=shapes, channels_last=st.booleans(), training=st.booleans(), seed=st.integers(0, 2**31))
def test_every_step_matches_the_body_float32(step, shape, channels_last, training, seed):
    rng = np.random.default_rng(seed)
    shape = (max(2, shape[0]),) + shape[1:]
    x, _, weight, bias = random_inputs(rng, shape, channels_last, np.float32)
    stats = fixed_statistics(rng, shape[-1] if channels_last else shape[1], np.float32)
    check_against_body(
        batch_norm.STEPS[step], x, weight, bias, training, channels_last, stats, 2e-5, grad_seed=seed + 1
    )


def torch_batch_norm(x, grad_y, weight, bias, training, channels_last, stats=None):
    """y, grad_x, grad_weight, grad_bias from torch (channels last: on the NCHW permutation)."""
    xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
    wt = torch.from_numpy(weight).requires_grad_()
    bt = torch.from_numpy(bias).requires_grad_()
    running = (None, None) if training else tuple(torch.from_numpy(s.copy()) for s in stats)
    x_nchw = xt.movedim(-1, 1) if channels_last else xt
    yt = torch.nn.functional.batch_norm(x_nchw, *running, wt, bt, training=training, eps=EPS)
    yt = yt.movedim(1, -1) if channels_last else yt
    yt.backward(torch.from_numpy(np.ascontiguousarray(grad_y)))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("channels_last", [True, False], ids=["channels_last", "channels_first"])
@pytest.mark.parametrize("shape", [(2, 1, 1, 3), (8, 7, 9, 64), (32, 16, 16, 32), (4, 3, 3, 512)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_torch(shape, channels_last, training, dtype):
    rng = np.random.default_rng(0)
    if not channels_last:
        shape = (shape[0], shape[3], shape[1], shape[2])
    x, grad_y, weight, bias = random_inputs(rng, shape, channels_last, dtype)
    stats = fixed_statistics(rng, weight.size, dtype)
    ours = run_kernels(batch_norm, (x, grad_y, weight, bias), training, channels_last, stats)
    y, _, _, grad_x, grad_w, grad_b = ours
    tol = 1e-5 if dtype == np.float32 else 1e-10
    for a, b in zip(
        (y, grad_x, grad_w, grad_b),
        torch_batch_norm(x, grad_y, weight, bias, training, channels_last, stats),
        strict=False,
    ):
        assert_close(a, b, tol)


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize("channels_last", [True, False])
def test_non_contiguous_inputs_give_the_contiguous_results(channels_last, step):
    kernels = batch_norm.STEPS[step]
    rng = np.random.default_rng(2)
    x, grad_y, weight, bias = random_inputs(rng, (6, 5, 4, 8), channels_last, np.float32)
    x_view = np.ascontiguousarray(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1)  # same values, other strides
    grad_view = strided(grad_y)
    assert not x_view.flags.c_contiguous and not grad_view.flags.c_contiguous
    for a, b in zip(
        run_kernels(kernels, (x_view, grad_view, weight, bias), True, channels_last),
        run_kernels(kernels, (x, grad_y, weight, bias), True, channels_last),
        strict=False,
    ):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize("channels_last", [True, False])
def test_without_weight_grad_and_without_affine(channels_last, step):
    kernels = batch_norm.STEPS[step]
    rng = np.random.default_rng(3)
    x, grad_y, weight, bias = random_inputs(rng, (5, 6, 7, 9), channels_last, np.float32)
    mean, var = kernels.batch_norm_statistics(x, channels_last)
    rstd = rstd_of(var)
    grad_x, grad_w, grad_b = kernels.batch_norm_backward(
        grad_y, x, weight, mean, rstd, True, channels_last, False
    )
    assert grad_w is None and grad_b is None
    np.testing.assert_array_equal(
        grad_x, kernels.batch_norm_backward(grad_y, x, weight, mean, rstd, True, channels_last)[0]
    )
    plain = kernels.batch_norm_normalize(x, mean, rstd, None, None, channels_last)
    axes = (0, 1, 2) if channels_last else (0, 2, 3)
    np.testing.assert_allclose(plain.mean(axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(plain.var(axis=axes), 1.0, atol=1e-3)  # var / (var + eps)
    # Through the op: a weight and bias that need no gradient take the "no weight gradient" path.
    stats = fixed_statistics(rng, weight.size, np.float32)
    for training in (True, False):
        case = (x, weight, bias, training, channels_last, stats, 2e-5)
        _, grads = check_against_body(kernels, *case, needs_grad=[True, False, False])
        assert grads[1] is None and grads[2] is None


@pytest.mark.parametrize("step", STEP_NAMES)
def test_a_constant_channel_is_finite(step):
    kernels = batch_norm.STEPS[step]
    x = np.full((4, 3, 3, 16), 3.0, np.float32)
    mean, var = kernels.batch_norm_statistics(x, channels_last=True)
    np.testing.assert_array_equal(mean, 3.0)
    np.testing.assert_array_equal(var, 0.0)
    y = kernels.batch_norm_normalize(x, mean, rstd_of(var), None, None, channels_last=True)
    np.testing.assert_array_equal(y, 0.0)
    stats = fixed_statistics(np.random.default_rng(12), 16, np.float32)
    y, grads = check_against_body(kernels, x, None, None, True, True, stats, 2e-5)
    np.testing.assert_array_equal(y, 0.0)
    assert all(np.isfinite(g).all() for g in grads)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(4)
    cases = [
        random_inputs(rng, (16, 8, 8, 64), True, np.float32) + (True,),
        random_inputs(rng, (8, 32, 9, 9), False, np.float32) + (False,),
    ]
    threads_before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append([run_kernels(batch_norm, (x, g, w, b), True, cl) for x, g, w, b, cl in cases])
    finally:
        numba.set_num_threads(threads_before)
    results.append([run_kernels(batch_norm, (x, g, w, b), True, cl) for x, g, w, b, cl in cases])
    for other in results[1:]:
        for case_a, case_b in zip(results[0], other, strict=False):
            for a, b in zip(case_a, case_b, strict=False):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_body_runs_on_device(device, channels_last, training):
    """The op's body computes with the array module of its inputs: on ``device`` it returns arrays there
    (and updates running statistics there), equal to the NumPy results up to rounding."""
    rng = np.random.default_rng(10)
    x, _, weight, bias = random_inputs(rng, (3, 5, 4, 6), channels_last, np.float64)
    stats = fixed_statistics(rng, 6 if channels_last else 5, np.float64)
    case = (x, weight, bias, training, channels_last, stats)
    expected = run_op(*case, path="body")
    assert_same(run_op(*case, device=device, path="body"), expected, np.float64, rtol=1e-12)
