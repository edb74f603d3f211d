"""The fused residual end of a block: every step of the Numba kernels == the op's own body, both ways.

The op is ``ScaledResidual`` (``F.residual_add``). The tests run it, with fixed drop-path factors s[n],
through each step of ``autograd.kernels.cpu.residual`` and through its body, and compare the outputs and
the gradients.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from op_runs import assert_same, run

import autograd as ag
from autograd import kernels
from autograd.kernels.cpu import residual
from autograd.nn import functional as F
from autograd.nn.functional.residual import ScaledResidual

STEP_NAMES = list(residual.STEPS)


def _inputs(rng, shape, dtype, with_gamma, drop):
    shortcut, x, grad = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    gamma = rng.standard_normal(shape[-1]).astype(dtype) if with_gamma else None
    sample_scale = None
    if drop:
        keep = rng.random(shape[0]) < 0.6
        keep[0] = False  # at least one dropped sample
        sample_scale = keep.astype(dtype) * dtype(1 / 0.6)
    return shortcut, x, grad, gamma, sample_scale


def _op(gamma, sample_scale):
    """The op as ``run`` takes it: a function of (shortcut, x, gamma), or of (shortcut, x) without gamma,
    with the drop-path factors fixed to ``sample_scale``."""
    if gamma is None:
        return lambda shortcut, x: ScaledResidual.apply(shortcut, x, None, sample_scale=sample_scale)
    return lambda shortcut, x, g: ScaledResidual.apply(shortcut, x, g, sample_scale=sample_scale)


def _run(shortcut, x, gamma, s, step=None, **options):
    """(out, [d shortcut, d x, d gamma]) through the kernels of ``step``, or through the op's body (None)."""
    arrays = [shortcut, x] if gamma is None else [shortcut, x, gamma]
    if step is None:
        return run(_op(gamma, s), arrays, path="body", **options)
    return run(_op(gamma, s), arrays, kernels=residual.STEPS[step], family="residual", **options)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple),
    dtype=st.sampled_from([np.float32, np.float64]),
    with_gamma=st.booleans(),
    drop=st.booleans(),
    seed=st.integers(0, 2**16),
    step=st.sampled_from(STEP_NAMES),
)
def test_every_step_equals_the_body(shape, dtype, with_gamma, drop, seed, step):
    """out and the gradients of shortcut, x and gamma: each step against the op's body, in the dtype of x
    (d gamma: the kernels sum in float64, the body in the dtype)."""
    shortcut, x, _, gamma, s = _inputs(np.random.default_rng(seed), shape, dtype, with_gamma, drop)
    actual = _run(shortcut, x, gamma, s, step, grad_seed=seed)
    expected = _run(shortcut, x, gamma, s, grad_seed=seed)
    assert actual[0].shape == shape and actual[0].dtype == dtype
    assert_same(actual, expected, dtype)
    if s is None:
        # Without drop path the kernels' scale is gamma itself: one multiply, as in the body, the same bits.
        np.testing.assert_array_equal(actual[0], expected[0])
        np.testing.assert_array_equal(actual[1][1], expected[1][1])


def test_the_last_step_is_what_the_public_names_run():
    assert STEP_NAMES == ["1 plain loops", "2 samples on threads"]
    last = residual.STEPS["2 samples on threads"]
    assert last.scaled_residual_forward is residual.scaled_residual_forward
    assert last.scaled_residual_backward is residual.scaled_residual_backward


def test_dropped_samples_pass_the_shortcut_and_get_no_gradient():
    shortcut, x, grad, gamma, s = _inputs(np.random.default_rng(0), (6, 3, 3, 8), np.float32, True, True)
    out = residual.scaled_residual_forward(shortcut, x, gamma, s)
    grad_x, grad_gamma = residual.scaled_residual_backward(grad, x, gamma, s)
    dropped = s == 0
    np.testing.assert_array_equal(out[dropped], shortcut[dropped])
    assert not grad_x[dropped].any()
    kept = ~dropped
    expected = (grad[kept] * x[kept]).astype(np.float64).sum(axis=(0, 1, 2)) * (1 / 0.6)
    np.testing.assert_allclose(grad_gamma, expected, rtol=1e-5)


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize(
    "needs", [(True, False, True), (True, True, False), (False, True, True), (False, False, True)]
)
def test_only_the_gradients_asked_for_are_computed(step, needs):
    """Through the op (it passes needs_input_grad to the kernels) against the body, and the step's backward
    entry point itself: None for what is not asked for, the same numbers for what is."""
    shortcut, x, grad, gamma, s = _inputs(np.random.default_rng(1), (4, 5, 8), np.float32, True, True)
    actual = _run(shortcut, x, gamma, s, step, needs_grad=list(needs))
    assert_same(actual, _run(shortcut, x, gamma, s, needs_grad=list(needs)), np.float32)
    assert [g is not None for g in actual[1]] == list(needs)
    backward = residual.STEPS[step].scaled_residual_backward
    both = backward(grad, x, gamma, s)
    only_gamma = backward(grad, x, gamma, s, need_x=False, need_gamma=True)
    only_x = backward(grad, x, gamma, s, need_x=True, need_gamma=False)
    assert only_gamma[0] is None and only_x[1] is None
    np.testing.assert_array_equal(only_gamma[1], both[1])
    np.testing.assert_array_equal(only_x[0], both[0])


def test_strided_inputs_give_the_contiguous_results():
    shortcut, x, grad, gamma, s = _inputs(np.random.default_rng(2), (4, 3, 5, 6), np.float64, True, True)
    strided = np.zeros(x.shape[:-1] + (12,))[..., ::2]
    strided[...] = x
    np.testing.assert_array_equal(
        residual.scaled_residual_forward(shortcut, strided, gamma, s),
        residual.scaled_residual_forward(shortcut, x, gamma, s),
    )
    for a, b in zip(
        residual.scaled_residual_backward(grad, strided, gamma, s),
        residual.scaled_residual_backward(grad, x, gamma, s),
        strict=False,
    ):
        np.testing.assert_array_equal(a, b)
    assert_same(_run(shortcut, strided, gamma, s, STEP_NAMES[-1]), _run(shortcut, x, gamma, s), np.float64)


@pytest.mark.parametrize("training", [False, True])
def test_residual_add_takes_the_kernels_and_equals_its_body(training):
    """F.residual_add, drop path drawn from a seeded generator: the fast path against the op's body."""
    shortcut, x, _, gamma, _ = _inputs(np.random.default_rng(4), (8, 3, 3, 4), np.float32, True, False)

    def block_end(shortcut, x, gamma):
        generator = ag.Generator(7)
        return F.residual_add(shortcut, x, gamma, drop_prob=0.5, training=training, generator=generator)

    fast = run(block_end, [shortcut, x, gamma], path="fast")
    assert_same(fast, run(block_end, [shortcut, x, gamma], path="body"), np.float32)
    dropped = (fast[0] == shortcut).all(axis=(1, 2, 3))
    assert (0 < dropped.sum() < 8) if training else not dropped.any()
    with kernels.use_reference(False):
        out = block_end(*(ag.tensor(a, requires_grad=True) for a in (shortcut, x, gamma)))
        assert out.grad_fn.kernels is residual


def test_on_the_gpu_the_op_runs_its_body():
    """No CUDA kernel: on CuPy arrays (here the emulator's NumPy stand-ins) the op's few element-wise
    operations run, the same numbers as the body on the CPU."""
    assert set(ScaledResidual.fast_paths) == {"cpu"}
    arrays = (np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(3), None)
    with kernels.use_reference(False), kernels.emulate_cuda():
        assert kernels.kernel_for(ScaledResidual, arrays) is None
    shortcut, x, _, gamma, s = _inputs(np.random.default_rng(3), (4, 3, 5), np.float32, True, True)
    out, grads = run(_op(gamma, s), [shortcut, x, gamma], path="emulated-cuda")
    out_body, grads_body = _run(shortcut, x, gamma, s)
    for a, b in zip([out, *grads], [out_body, *grads_body], strict=True):
        np.testing.assert_array_equal(a, b)
