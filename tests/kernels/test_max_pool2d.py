"""Max pooling kernel: fast (Numba) == plain reference == PyTorch, forward (values and winners) and backward,
with overlapping windows, padding, ties, -inf and NaN."""

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autograd.backend import device_of, to_device, to_numpy
from autograd.kernels.cpu import max_pool2d


@st.composite
def geometries(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), h, w)
    return shape, (kh, kw), (sh, sw), (ph, pw)


def inputs(rng, shape, dtype, ties):
    """Random values; with ``ties``, small integers (many equal maxima), some -inf and a NaN."""
    if not ties:
        return rng.standard_normal(shape).astype(dtype)
    x = rng.integers(-2, 3, shape).astype(dtype)
    x[rng.random(shape) < 0.1] = -np.inf
    if x.size > 3:
        x.reshape(-1)[rng.integers(x.size)] = np.nan
    return x


def check(x, rng, kernel, stride, padding):
    y, winner = max_pool2d.max_pool2d_forward(x, kernel, stride, padding)
    y_ref, winner_ref = max_pool2d.max_pool2d_forward_reference(x, kernel, stride, padding)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(winner, winner_ref)
    assert y.dtype == x.dtype and winner.dtype == np.int32
    grad_y = rng.standard_normal(y.shape).astype(x.dtype)
    grad_x = max_pool2d.max_pool2d_backward(grad_y, winner, x.shape, kernel, stride, padding)
    grad_ref = max_pool2d.max_pool2d_backward_reference(grad_y, winner_ref, x.shape, kernel, stride, padding)
    assert grad_x.dtype == x.dtype
    # An input that wins several windows sums their gradients, in another order than the reference.
    np.testing.assert_allclose(grad_x, grad_ref, rtol=1e-6, atol=1e-6)


@settings(deadline=None, max_examples=80)
@given(
    geometry=geometries(),
    dtype=st.sampled_from([np.float32, np.float64]),
    ties=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_fast_matches_reference(geometry, dtype, ties, seed):
    shape, kernel, stride, padding = geometry
    rng = np.random.default_rng(seed)
    x = inputs(rng, shape, dtype, ties)
    check(x, rng, kernel, stride, padding)


@pytest.mark.parametrize(
    "kernel, stride, padding", [((3, 3), (2, 2), (1, 1)), ((2, 2), (2, 2), (0, 0)), ((3, 2), (1, 2), (1, 0))]
)
@pytest.mark.parametrize("ties", [False, True])
def test_matches_torch(kernel, stride, padding, ties):
    """Values, and gradients, which show where each window's maximum was taken: ties go to the first."""
    rng = np.random.default_rng(1)
    x = (
        rng.integers(-3, 4, (4, 8, 16, 15)).astype(np.float32)
        if ties
        else rng.standard_normal((4, 8, 16, 15)).astype(np.float32)
    )
    y, winner = max_pool2d.max_pool2d_forward(x, kernel, stride, padding)
    grad_y = rng.standard_normal(y.shape).astype(np.float32)
    grad_x = max_pool2d.max_pool2d_backward(grad_y, winner, x.shape, kernel, stride, padding)
    xt = torch.from_numpy(x).requires_grad_()
    yt = torch.nn.functional.max_pool2d(xt, kernel, stride, padding)
    yt.backward(torch.from_numpy(grad_y))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_strided_input_and_thread_count_give_the_same_numbers():
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, (6, 16, 12, 12)).astype(np.float32)  # ties: one input wins several windows
    grad_y = rng.standard_normal((6, 16, 6, 6)).astype(np.float32)
    x_strided = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    geometry = ((3, 3), (2, 2), (1, 1))
    results = []
    threads_before = numba.get_num_threads()
    try:
        for threads in sorted({1, threads_before}):
            numba.set_num_threads(threads)
            for inp in (x, x_strided):
                y, winner = max_pool2d.max_pool2d_forward(inp, *geometry)
                results.append(
                    (y, winner, max_pool2d.max_pool2d_backward(grad_y, winner, x.shape, *geometry))
                )
    finally:
        numba.set_num_threads(threads_before)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=False):
            np.testing.assert_array_equal(a, b)


def test_reference_runs_on_device(device):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 8))
    geometry = ((3, 3), (2, 2), (1, 1))
    y, winner = max_pool2d.max_pool2d_forward_reference(to_device(x, device), *geometry)
    grad_y = np.ones(y.shape)
    grad_x = max_pool2d.max_pool2d_backward_reference(to_device(grad_y, device), winner, x.shape, *geometry)
    assert {device_of(y), device_of(winner), device_of(grad_x)} == {device}
    y_cpu, winner_cpu = max_pool2d.max_pool2d_forward_reference(x, *geometry)
    np.testing.assert_array_equal(to_numpy(y), y_cpu)
    np.testing.assert_array_equal(
        to_numpy(grad_x), max_pool2d.max_pool2d_backward_reference(grad_y, winner_cpu, x.shape, *geometry)
    )
