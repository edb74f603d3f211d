"""Cross-entropy kernels: fast (Numba) == plain NumPy reference == torch.nn.functional.cross_entropy."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd.backend import device_of, to_device, to_numpy
from autograd.kernels.cpu import cross_entropy

F = torch.nn.functional
REDUCTIONS = ["mean", "sum", "none"]


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


def ours(logits, target, grad_loss, **options):
    loss, probs = cross_entropy.cross_entropy_forward(logits, target, **options)
    return loss, cross_entropy.cross_entropy_backward(grad_loss, probs, target, **options)


def reference(logits, target, grad_loss, **options):
    loss, probs = cross_entropy.cross_entropy_forward_reference(logits, target, **options)
    return loss, cross_entropy.cross_entropy_backward_reference(grad_loss, probs, target, **options)


def torch_cross_entropy(logits, target, grad_loss, **options):
    logits_t = torch.from_numpy(np.ascontiguousarray(logits)).requires_grad_()
    loss_t = F.cross_entropy(logits_t, torch.from_numpy(np.ascontiguousarray(target)), **options)
    loss_t.backward(torch.from_numpy(np.asarray(grad_loss)))
    return loss_t.detach().numpy(), logits_t.grad.numpy()


def options_for(label_smoothing, reduction, ignore_index=-100):
    return dict(label_smoothing=label_smoothing, reduction=reduction, ignore_index=ignore_index)


@settings(deadline=None)
@given(
    rows=st.integers(1, 12),
    classes=st.integers(1, 40),
    soft=st.booleans(),
    label_smoothing=st.sampled_from([0.0, 0.1, 0.35, 0.9]),
    reduction=st.sampled_from(REDUCTIONS),
    ignored_every=st.sampled_from([0, 3]),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**31),
)
def test_fast_matches_reference(rows, classes, soft, label_smoothing, reduction, ignored_every, dtype, seed):
    rng = np.random.default_rng(seed)
    logits, target = make_inputs(rng, rows, classes, dtype, soft, ignored_every=ignored_every)
    grad_loss = grad_loss_for(rng, reduction, rows, dtype)
    options = options_for(label_smoothing, reduction)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    with np.errstate(invalid="ignore"):  # mean over all-ignored samples is nan, in both
        for a, b in zip(
            ours(logits, target, grad_loss, **options),
            reference(logits, target, grad_loss, **options),
            strict=False,
        ):
            if np.all(np.isnan(b)):
                assert np.all(np.isnan(a))
            else:
                assert_close(a, b, tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("targets", ["labels", "labels-all-ignored", "soft"])
def test_reference_runs_on_device(device, targets, reduction, dtype):
    """The references compute with the array module of the logits: on ``device`` they return arrays
    there, equal to the NumPy results up to rounding."""
    rng = np.random.default_rng(5)
    rows = 13
    logits, target = make_inputs(
        rng,
        rows,
        7,
        dtype,
        soft=targets == "soft",
        ignored_every={"labels": 3, "labels-all-ignored": 1, "soft": 0}[targets],
    )
    grad_loss = grad_loss_for(rng, reduction, rows, dtype)
    options = options_for(0.1, reduction)
    results = reference(*(to_device(a, device) for a in (logits, target, grad_loss)), **options)
    assert all(device_of(r) == device for r in results)
    for a, b in zip(results, reference(logits, target, grad_loss, **options), strict=False):
        assert_close(to_numpy(a), b, 1e-12 if dtype == np.float64 else 1e-6)


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
    for a, b in zip(ours(logits, target, grad_loss, **options), expected, strict=False):
        assert_close(a, b, tol)


@pytest.mark.parametrize("soft", [False, True])
def test_unnormalised_soft_targets_and_custom_ignore_index(soft):
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((9, 6))
    if soft:
        target = rng.random((9, 6)) * 2.0  # rows do not sum to 1: grad is p * sum(q) - q
        options = options_for(0.2, "mean")
    else:
        target = rng.integers(0, 6, 9)
        target[[1, 4]] = 2
        options = options_for(0.2, "mean", ignore_index=2)
    grad_loss = np.asarray(0.5)
    expected = torch_cross_entropy(logits, target, grad_loss, **options)
    for a, b in zip(ours(logits, target, grad_loss, **options), expected, strict=False):
        assert_close(a, b, 1e-12)


def test_large_logits_are_stable():
    logits = np.array([[1e4, -1e4, 0.0], [3e4, 3e4, -3e4], [-1e4, -1e4, -1e4]], np.float32)
    target = np.array([1, 0, 2])
    for label_smoothing in [0.0, 0.1]:
        options = options_for(label_smoothing, "none")
        grad_loss = np.ones(3, np.float32)
        loss, grad = ours(logits, target, grad_loss, **options)
        assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
        loss_t, grad_t = torch_cross_entropy(logits, target, grad_loss, **options)
        assert_close(loss, loss_t, 1e-6)
        assert_close(grad, grad_t, 1e-6)


def test_all_samples_ignored():
    logits = np.random.default_rng(2).standard_normal((3, 4))
    target = np.full(3, -100)
    for label_smoothing in [0.0, 0.3]:
        options = options_for(label_smoothing, "mean")
        with np.errstate(invalid="ignore"):
            loss, grad = ours(logits, target, np.asarray(1.0), **options)
        loss_t, grad_t = torch_cross_entropy(logits, target, np.asarray(1.0), **options)
        assert np.isnan(loss) and np.isnan(loss_t)
        np.testing.assert_array_equal(grad, grad_t)  # zeros


def test_nan_logit_gives_nan_loss():
    logits = np.zeros((2, 20), np.float32)
    logits[0, 7] = np.nan
    loss, probs = cross_entropy.cross_entropy_forward(logits, np.array([3, 3]), reduction="none")
    assert np.isnan(loss[0]) and np.isfinite(loss[1])


def test_non_contiguous_inputs():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((30, 50)).astype(np.float32)[::2, ::3].T  # (17, 15), strided
    target_soft = rng.random((15, 34)).astype(np.float32)[:, ::2].T  # (17, 15)
    target_index = rng.integers(0, 15, 34)[::2]
    grad_loss = rng.standard_normal(34).astype(np.float32)[::2]
    assert not logits.flags.c_contiguous and not target_soft.flags.c_contiguous
    for target in [target_index, target_soft]:
        for reduction in REDUCTIONS:
            g = grad_loss if reduction == "none" else np.asarray(1.0, np.float32)
            options = options_for(0.1, reduction)
            for a, b in zip(
                ours(logits, target, g, **options),
                torch_cross_entropy(logits, target, g, **options),
                strict=False,
            ):
                assert_close(a, b, 1e-5)


def test_serial_and_parallel_paths_agree():
    rng = np.random.default_rng(4)
    logits, target = make_inputs(rng, 300, 200, np.float32, soft=False)  # above the parallel threshold
    assert logits.size >= cross_entropy._PARALLEL_MIN_SIZE
    options = options_for(0.1, "none")
    grad_loss = rng.standard_normal(300).astype(np.float32)
    loss, grad = ours(logits, target, grad_loss, **options)
    loss_rows = np.concatenate(
        [
            ours(logits[i : i + 50], target[i : i + 50], grad_loss[i : i + 50], **options)[0]
            for i in range(0, 300, 50)
        ]
    )
    np.testing.assert_array_equal(loss, loss_rows)


def test_errors():
    logits = np.zeros((3, 4))
    with pytest.raises(IndexError):
        cross_entropy.cross_entropy_forward(logits, np.array([0, 4, 1]))
    with pytest.raises(IndexError):
        cross_entropy.cross_entropy_forward(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError):
        cross_entropy.cross_entropy_forward(logits, np.array([0, 1, 1]), reduction="avg")
    with pytest.raises(ValueError):
        cross_entropy.cross_entropy_forward(logits, np.zeros((3, 5)))
    with pytest.raises(ValueError):
        cross_entropy.cross_entropy_forward(logits[0], np.array([0]))


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
