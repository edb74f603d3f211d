"""Cross-entropy kernels: every step (Numba), run through the op ``F.cross_entropy``, == the op's own body,
loss and gradients; the public functions == torch.nn.functional.cross_entropy."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from op_runs import assert_same, run

import autograd as ag
from autograd.backend import to_device
from autograd.kernels.cpu import cross_entropy
from autograd.nn import functional as F

TF = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]
STEP_NAMES = list(cross_entropy.STEPS)


def assert_close(actual, expected, tol):
    """|actual - expected| <= tol * (|expected| + max(1, max|expected|))."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    scale = max(1.0, float(np.max(np.abs(expected), initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


def make_inputs(rng, rows, classes, dtype, soft, ignore_index=-100, ignored_every=0, spread=3.0):
    logits = (rng.standard_normal((rows, classes)) * spread).astype(dtype)
    if soft:
        target = rng.random((rows, classes)).astype(dtype)
        target /= target.sum(axis=1, keepdims=True)
    else:
        target = rng.integers(0, classes, rows)
        if ignored_every:
            target[::ignored_every] = ignore_index
    return logits, target


def grad_loss_for(rng, reduction, rows, dtype):
    if reduction == "none":
        return rng.standard_normal(rows).astype(dtype)
    return np.asarray(1.7, dtype)


def options_for(label_smoothing, reduction, ignore_index=-100):
    return dict(label_smoothing=label_smoothing, reduction=reduction, ignore_index=ignore_index)


def op_run(logits, target, options, step=None, path=None, target_grad=True):
    """(loss, [grad logits] or [grad logits, grad soft target]) of ``F.cross_entropy`` through the op, with
    ``STEPS[step]`` as its kernels, or along ``path`` ("body": the op's own body)."""
    if np.issubdtype(target.dtype, np.floating):  # soft targets: an input, with or without a gradient
        fn, arrays = (lambda z, t: F.cross_entropy(z, t, **options)), [logits, target]
        needs_grad = [True, target_grad]
    else:  # labels: an option of the op
        fn, arrays, needs_grad = (lambda z: F.cross_entropy(z, target, **options)), [logits], None
    if step is not None:
        return run(
            fn, arrays, kernels=cross_entropy.STEPS[step], family="cross_entropy", needs_grad=needs_grad
        )
    return run(fn, arrays, path=path, needs_grad=needs_grad)


def check_step(step, logits, target, options, target_grad=True, rtol=None):
    """STEPS[step] through the op == the op's body, loss and gradients."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a mean over all-ignored samples is nan, in both
        actual = op_run(logits, target, options, step=step, target_grad=target_grad)
        expected = op_run(logits, target, options, path="body", target_grad=target_grad)
        assert_same(actual, expected, logits.dtype, rtol)
    return actual


def ours(logits, target, grad_loss, step=None, **options):
    """Loss and gradient from the public entry points, or from ``STEPS[step]``'s, called directly."""
    kernels = cross_entropy if step is None else cross_entropy.STEPS[step]
    loss, probs = kernels.cross_entropy_forward(logits, target, **options)
    return loss, kernels.cross_entropy_backward(grad_loss, probs, target, **options)


def torch_cross_entropy(logits, target, grad_loss, **options):
    logits_t = torch.from_numpy(np.ascontiguousarray(logits)).requires_grad_()
    loss_t = TF.cross_entropy(logits_t, torch.from_numpy(np.ascontiguousarray(target)), **options)
    loss_t.backward(torch.from_numpy(np.asarray(grad_loss)))
    return loss_t.detach().numpy(), logits_t.grad.numpy()


def test_public_functions_are_the_last_step():
    assert [name.split()[0] for name in STEP_NAMES] == [str(i) for i in range(1, len(STEP_NAMES) + 1)]
    last = cross_entropy.STEPS[STEP_NAMES[-1]]
    assert last.cross_entropy_forward is cross_entropy.cross_entropy_forward
    assert last.cross_entropy_backward is cross_entropy.cross_entropy_backward


@settings(deadline=None)
@given(
    step=st.sampled_from(STEP_NAMES),
    rows=st.integers(1, 12),
    classes=st.integers(1, 40),
    soft=st.booleans(),
    target_grad=st.booleans(),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.35, 0.9]),
    reduction=st.sampled_from(REDUCTIONS),
    ignored_every=st.sampled_from([0, 3]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_every_step_matches_the_op_body(
    step, rows, classes, soft, target_grad, label_smoothing, reduction, ignored_every, dtype, seed
):
    rng = np.random.default_rng(seed)
    logits, target = make_inputs(rng, rows, classes, dtype, soft, ignored_every=ignored_every)
    check_step(step, logits, target, options_for(label_smoothing, reduction), target_grad)


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("soft", [False, True])
def test_every_step_matches_the_op_body_above_the_parallel_threshold(step, dtype, soft):
    """Large enough for the threaded kernels of the steps that have them."""
    rng = np.random.default_rng(6)
    logits, target = make_inputs(rng, 300, 200, dtype, soft, ignored_every=0 if soft else 7)
    assert logits.size >= cross_entropy.PARALLEL_MIN_SIZE
    for reduction in REDUCTIONS:
        check_step(step, logits, target, options_for(0.1, reduction))


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize("soft", [False, True])
def test_every_step_unnormalised_soft_targets_and_custom_ignore_index(step, soft):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((9, 6))
    if soft:
        target = rng.random((9, 6)) * 2.0  # rows do not sum to 1: grad is p * sum(q) - q
        options = options_for(0.2, "mean")
    else:
        target = rng.integers(0, 6, 9)
        target[[1, 4]] = 2
        options = options_for(0.2, "mean", ignore_index=2)
    check_step(step, logits, target, options)
    if step == STEP_NAMES[-1]:
        grad_loss = np.asarray(0.5)
        expected = torch_cross_entropy(logits, target, grad_loss, **options)
        for a, b in zip(ours(logits, target, grad_loss, **options), expected, strict=True):
            assert_close(a, b, 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("targets", ["labels", "labels-all-ignored", "soft"])
def test_op_body_runs_on_device(device, targets, reduction, dtype):
    """The op's body computes with the array module of the logits: on ``device`` it gives the CPU's
    numbers up to rounding."""
    rng = np.random.default_rng(5)
    logits, target = make_inputs(
        rng,
        13,
        7,
        dtype,
        soft=targets == "soft",
        ignored_every={"labels": 3, "labels-all-ignored": 1, "soft": 0}[targets],
    )
    options = options_for(0.1, reduction)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all ignored: a nan mean
        if targets == "soft":
            on_device = op_run(to_device(logits, device), to_device(target, device), options, path="body")
        else:
            labels = ag.tensor(target, device=device)  # a Tensor: F.cross_entropy reads CuPy labels so
            on_device = run(
                lambda z: F.cross_entropy(z, labels, **options), [to_device(logits, device)], path="body"
            )
        assert_same(on_device, op_run(logits, target, options, path="body"), dtype)
    if targets == "labels-all-ignored":
        assert reduction != "mean" or np.isnan(on_device[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.4])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (128, 10), (64, 1000)])
def test_matches_torch(dtype, soft, label_smoothing, reduction, shape):
    rng = np.random.default_rng(0)
    rows, classes = shape
    logits, target = make_inputs(rng, rows, classes, dtype, soft, ignored_every=0 if soft else 4)
    grad_loss = grad_loss_for(rng, reduction, rows, dtype)
    options = options_for(label_smoothing, reduction)
    tol = 1e-10 if dtype == np.float64 else 1e-5
    expected = torch_cross_entropy(logits, target, grad_loss, **options)
    for a, b in zip(ours(logits, target, grad_loss, **options), expected, strict=True):
        assert_close(a, b, tol)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_large_logits_are_stable(step):
    logits = np.array([[1e4, -1e4, 0.0], [3e4, 3e4, -3e4], [-1e4, -1e4, -1e4]], np.float32)
    target = np.array([1, 0, 2])
    for label_smoothing in [0.0, 0.1]:
        options = options_for(label_smoothing, "none")
        loss, (grad,) = check_step(step, logits, target, options)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
        if step == STEP_NAMES[-1]:
            grad_loss = np.ones(3, np.float32)
            for a, b in zip(
                ours(logits, target, grad_loss, **options),
                torch_cross_entropy(logits, target, grad_loss, **options),
                strict=True,
            ):
                assert_close(a, b, 1e-6)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_all_samples_ignored(step):
    logits = np.random.default_rng(2).standard_normal((3, 4))
    target = np.full(3, -100)
    for label_smoothing in [0.0, 0.3]:
        options = options_for(label_smoothing, "mean")
        loss, (grad,) = check_step(step, logits, target, options)
        assert np.isnan(loss)
        np.testing.assert_array_equal(grad, 0.0)
        if step == STEP_NAMES[-1]:
            with np.errstate(invalid="ignore"):
                loss, grad = ours(logits, target, np.asarray(1.0), **options)
            loss_t, grad_t = torch_cross_entropy(logits, target, np.asarray(1.0), **options)
            assert np.isnan(loss) and np.isnan(loss_t)
            np.testing.assert_array_equal(grad, grad_t)  # zeros


@pytest.mark.parametrize("step", STEP_NAMES)
def test_nan_logit_gives_nan_loss(step):
    logits = np.zeros((2, 20), np.float32)
    logits[0, 7] = np.nan
    with np.errstate(invalid="ignore"):
        loss, _ = check_step(step, logits, np.array([3, 3]), options_for(0.0, "none"))
    assert np.isnan(loss[0]) and np.isfinite(loss[1])


@pytest.mark.parametrize("step", STEP_NAMES)
def test_non_contiguous_inputs(step):
    """Strided inputs give each step's numbers for their contiguous copies (the op hands the kernels
    contiguous arrays, so the entry points are called directly); the public functions match torch."""
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((30, 50)).astype(np.float32)[::2, ::3].T  # (17, 15), strided
    target_soft = rng.random((15, 34)).astype(np.float32)[:, ::2].T  # (17, 15)
    target_index = rng.integers(0, 15, 34)[::2]
    grad_loss = rng.standard_normal(34).astype(np.float32)[::2]
    assert not logits.flags.c_contiguous and not target_soft.flags.c_contiguous
    assert not target_index.flags.c_contiguous and not grad_loss.flags.c_contiguous
    for target in [target_index, target_soft]:
        for reduction in REDUCTIONS:
            g = grad_loss if reduction == "none" else np.asarray(1.0, np.float32)
            options = options_for(0.1, reduction)
            strided = ours(logits, target, g, step, **options)
            contiguous = [np.ascontiguousarray(a) for a in (logits, target, g)]
            for a, b in zip(strided, ours(*contiguous, step, **options), strict=True):
                np.testing.assert_array_equal(a, b)
            if step == STEP_NAMES[-1]:
                for a, b in zip(strided, torch_cross_entropy(logits, target, g, **options), strict=True):
                    assert_close(a, b, 1e-5)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_serial_and_parallel_paths_agree(step):
    """Each row is computed alone: the numbers do not depend on the batch, nor on the kernel (serial or
    parallel) that its size selects."""
    rng = np.random.default_rng(4)
    logits, target = make_inputs(rng, 300, 200, np.float32, soft=False)  # above the parallel threshold
    assert logits.size >= cross_entropy.PARALLEL_MIN_SIZE
    options = options_for(0.1, "none")
    grad_loss = rng.standard_normal(300).astype(np.float32)
    loss, grad = ours(logits, target, grad_loss, step, **options)
    pieces = [
        ours(logits[i : i + 50], target[i : i + 50], grad_loss[i : i + 50], step, **options)
        for i in range(0, 300, 50)
    ]
    assert logits[:50].size < cross_entropy.PARALLEL_MIN_SIZE
    np.testing.assert_array_equal(loss, np.concatenate([piece[0] for piece in pieces]))
    np.testing.assert_array_equal(grad, np.concatenate([piece[1] for piece in pieces]))


@pytest.mark.parametrize("step", STEP_NAMES)
def test_errors(step):
    kernels = cross_entropy.STEPS[step]
    logits = np.zeros((3, 4))
    with pytest.raises(IndexError):
        kernels.cross_entropy_forward(logits, np.array([0, 4, 1]))
    with pytest.raises(IndexError):
        kernels.cross_entropy_forward(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError):
        kernels.cross_entropy_forward(logits, np.array([0, 1, 1]), reduction="avg")
    with pytest.raises(ValueError):
        kernels.cross_entropy_forward(logits, np.zeros((3, 5)))
    with pytest.raises(ValueError):
        kernels.cross_entropy_forward(logits[0], np.array([0]))


def test_output_dtypes_and_shapes():
    logits = np.zeros((3, 4), np.float32)
    target = np.array([0, 1, 2])
    loss, probs = cross_entropy.cross_entropy_forward(logits, target)
    assert loss.shape == () and loss.dtype == np.float32
    assert probs.shape == (3, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, 0.25)
    loss, probs = cross_entropy.cross_entropy_forward(logits, target, reduction="none")
    assert loss.shape == (3,) and loss.dtype == np.float32
    grad = cross_entropy.cross_entropy_backward(np.float32(1.0), probs, target)
    assert grad.shape == (3, 4) and grad.dtype == np.float32
