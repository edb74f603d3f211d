"""The fused residual end of a block: Numba kernels == plain reference, forward and backward."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd.kernels import dispatch
from autograd.kernels.cpu import residual


def _inputs(rng, shape, dtype, with_gamma, drop):
    shortcut, x, grad = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    gamma = rng.standard_normal(shape[-1]).astype(dtype) if with_gamma else None
    sample_scale = None
    if drop:
        keep = rng.random(shape[0]) < 0.6
        keep[0] = False  # at least one dropped sample
        sample_scale = keep.astype(dtype) * dtype(1 / 0.6)
    return shortcut, x, grad, gamma, sample_scale


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple),
    dtype=st.sampled_from([np.float32, np.float64]),
    with_gamma=st.booleans(),
    drop=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_kernels_equal_the_reference(shape, dtype, with_gamma, drop, seed):
    shortcut, x, grad, gamma, s = _inputs(np.random.default_rng(seed), shape, dtype, with_gamma, drop)
    out = residual.scaled_residual_forward(shortcut, x, gamma, s)
    np.testing.assert_array_equal(out, residual.scaled_residual_forward_reference(shortcut, x, gamma, s))
    assert out.dtype == dtype and out.shape == shape
    grad_x, grad_gamma = residual.scaled_residual_backward(grad, x, gamma, s)
    ref_x, ref_gamma = residual.scaled_residual_backward_reference(grad, x, gamma, s)
    np.testing.assert_array_equal(grad_x, ref_x)  # the same rounded scale, one multiply: the same bits
    if gamma is None:
        assert grad_gamma is None and ref_gamma is None
    else:
        eps = 1e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(
            grad_gamma, ref_gamma, rtol=10 * eps, atol=eps * max(1.0, float(np.abs(ref_gamma).max()))
        )
        assert grad_gamma.dtype == dtype


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


def test_only_the_gradients_asked_for_are_computed():
    shortcut, x, grad, gamma, s = _inputs(np.random.default_rng(1), (4, 5, 8), np.float32, True, False)
    for kernel in (residual.scaled_residual_backward, residual.scaled_residual_backward_reference):
        assert kernel(grad, x, gamma, s, need_x=False, need_gamma=True)[0] is None
        assert kernel(grad, x, gamma, s, need_x=True, need_gamma=False)[1] is None


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


def test_the_gpu_takes_the_references():
    from autograd.kernels.cuda import residual as on_gpu

    assert on_gpu.scaled_residual_forward is residual.scaled_residual_forward_reference
    assert on_gpu.scaled_residual_backward is residual.scaled_residual_backward_reference
    with dispatch.emulate_cuda():
        assert dispatch.kernels("residual", np.zeros(3)).path == "cuda"
