"""Max pooling kernels: every step (Numba), run through the op ``F.max_pool2d``, == the op's own body, forward
values exactly and the gradients (which show where each window's maximum was taken), with overlapping
windows, padding, ties, -inf and NaN; the public functions == PyTorch."""

import numba
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from op_runs import assert_same, run

from autograd.backend import to_device
from autograd.kernels.cpu import max_pool2d
from autograd.nn import functional as F

STEP_NAMES = list(max_pool2d.STEPS)


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


def op_run(x, kernel, stride, padding, step=None, path=None, grad_seed=0):
    """(y, [grad x]) of ``F.max_pool2d`` with ``STEPS[step]`` as its kernels, or along ``path``."""

    def fn(t):
        return F.max_pool2d(t, kernel, stride, padding)

    if step is not None:
        return run(fn, [x], kernels=max_pool2d.STEPS[step], family="max_pool2d", grad_seed=grad_seed)
    return run(fn, [x], path=path, grad_seed=grad_seed)


def check(x, kernel, stride, padding, step, grad_seed=0):
    """STEPS[step] through the op == the op's body: the same values (exactly, NaN and -inf included) and the
    same gradients, so the same winner in every window. An input that wins several windows sums their
    gradients, in another order than the body: the gradients agree to rounding."""
    y, (grad_x,) = op_run(x, kernel, stride, padding, step=step, grad_seed=grad_seed)
    y_body, (grad_body,) = op_run(x, kernel, stride, padding, path="body", grad_seed=grad_seed)
    assert y.dtype == y_body.dtype == x.dtype
    np.testing.assert_array_equal(y, y_body)
    assert np.all(np.isfinite(grad_body))
    assert_same((grad_x, []), (grad_body, []), x.dtype)
    return y, grad_x


def test_public_functions_are_the_last_step():
    assert [name.split()[0] for name in STEP_NAMES] == [str(i) for i in range(1, len(STEP_NAMES) + 1)]
    last = max_pool2d.STEPS[STEP_NAMES[-1]]
    assert last.max_pool2d_forward is max_pool2d.max_pool2d_forward
    assert last.max_pool2d_backward is max_pool2d.max_pool2d_backward


@settings(deadline=None, max_examples=80)
@given(
    step=st.sampled_from(STEP_NAMES),
    geometry=geometries(),
    dtype=st.sampled_from([np.float32, np.float64]),
    ties=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_every_step_matches_the_op_body(step, geometry, dtype, ties, seed):
    shape, kernel, stride, padding = geometry
    x = inputs(np.random.default_rng(seed), shape, dtype, ties)
    check(x, kernel, stride, padding, step, grad_seed=seed)


@pytest.mark.parametrize("step", STEP_NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_step_edge_cases(step, dtype):
    """Ties (the first maximal tap wins), windows whose real inputs are all -inf (the first real tap wins,
    never the padding), NaN (the first NaN wins), and ResNet's overlapping 3x3/s2/p1 pool."""
    ties = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype)
    all_minus_inf = np.full((3, 4), -np.inf, dtype)
    nans = np.array([[0.0, np.nan, 2.0, np.nan], [np.nan, 5.0, 1.0, 1.0], [3.0, 3.0, 3.0, -np.inf]], dtype)
    for plane in (ties, all_minus_inf, nans):
        x = plane[None, None]
        for geometry in [((2, 2), (1, 1), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (1, 1))]:
            check(x, *geometry, step)
    y, grad_x = check(ties[None, None], (2, 2), (1, 1), (0, 0), step, grad_seed=3)
    np.testing.assert_array_equal(y[0, 0], [[1.0, 1.0], [1.0, 1.0]])
    expected = np.zeros_like(ties)  # window (i, j)'s first maximal tap is (i, j): it takes that gradient
    expected[:2, :2] = np.random.default_rng(3).standard_normal((2, 2)).astype(dtype)
    np.testing.assert_array_equal(grad_x[0, 0], expected)
    rng = np.random.default_rng(4)
    check(rng.integers(-2, 3, (2, 3, 11, 10)).astype(dtype), (3, 3), (2, 2), (1, 1), step)


@pytest.mark.parametrize("step", STEP_NAMES)
def test_every_step_matches_the_op_body_on_larger_planes(step):
    """More planes than threads, so that the threaded step splits them."""
    rng = np.random.default_rng(5)
    for ties in (False, True):
        check(inputs(rng, (4, 24, 16, 15), np.float32, ties), (3, 3), (2, 2), (1, 1), step)


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


@pytest.mark.parametrize("step", STEP_NAMES)
def test_strided_input_and_thread_count_give_the_same_numbers(step):
    kernels = max_pool2d.STEPS[step]
    rng = np.random.default_rng(2)
    x = rng.integers(-2, 3, (6, 16, 12, 12)).astype(np.float32)  # ties: one input wins several windows
    grad_y = rng.standard_normal((6, 16, 6, 6)).astype(np.float32)
    x_strided = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not x_strided.flags.c_contiguous
    geometry = ((3, 3), (2, 2), (1, 1))
    results = []
    threads_before = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            for inp in (x, x_strided):
                y, winner = kernels.max_pool2d_forward(inp, *geometry)
                assert y.dtype == x.dtype and winner.dtype == np.int32
                results.append((y, winner, kernels.max_pool2d_backward(grad_y, winner, x.shape, *geometry)))
    finally:
        numba.set_num_threads(threads_before)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_op_body_runs_on_device(device):
    """The op's body computes with the array module of its input: on ``device`` it gives the CPU's numbers."""
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 8))
    geometry = ((3, 3), (2, 2), (1, 1))
    y, (grad_x,) = op_run(to_device(x, device), *geometry, path="body")
    y_cpu, (grad_cpu,) = op_run(x, *geometry, path="body")
    np.testing.assert_array_equal(y, y_cpu)
    np.testing.assert_array_equal(grad_x, grad_cpu)
