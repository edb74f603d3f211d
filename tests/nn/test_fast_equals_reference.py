"""Every op with a fast kernel gives the reference path's numbers, forward and backward, through the
public functions (the kernels' own tests in tests/kernels go deeper), including non-contiguous inputs."""

import numpy as np
import pytest

import autograd as ag
from autograd import kernels
from autograd.nn import functional as F

RNG = np.random.default_rng(2)


def _forward_backward(fn, arrays):
    inputs = [ag.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*inputs)
    out.backward(np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype))
    return out.numpy(), [t.grad.numpy() for t in inputs]


def _non_contiguous(a):
    """The same values in a strided view (every other element of a twice-as-wide array)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    view = wide[..., ::2]
    assert not view.flags.c_contiguous
    return view


def _nchw_transposed(a):
    """The same values as an NHWC array transposed to NCHW (as a channels-last model hands them over)."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


CASES = {
    "depthwise7x7": (
        lambda x, w, b: F.conv2d(x, w, b, padding=3, groups=16),
        [(4, 16, 13, 11), (16, 1, 7, 7), (16,)],
    ),
    "depthwise3x3-stride2": (
        lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=8),
        [(2, 8, 9, 10), (8, 1, 3, 3)],
    ),
    "depthwise7x7-channels-last": (
        lambda x, w, b: F.depthwise_conv2d_channels_last(x, w, b, padding=3),
        [(3, 10, 9, 24), (24, 1, 7, 7), (24,)],
    ),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (24,), w, b, eps=1e-6), [(5, 7, 24), (24,), (24,)]),
    "layer_norm_channels_first": (
        lambda x, w, b: F.layer_norm_channels_first(x, w, b),
        [(3, 12, 5, 6), (12,), (12,)],
    ),
    "gelu": (F.gelu, [(64, 33)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [(64, 33)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, np.arange(12) % 7, label_smoothing=0.1), [(12, 7)]),
    "linear_gelu": (F.linear_gelu, [(6, 5, 24), (40, 24), (40,)]),
    "residual_add": (
        lambda x, s, g: F.residual_add(s, x, g, 0.3, training=True, generator=ag.Generator(4)),
        [(9, 5, 4, 24), (9, 5, 4, 24), (24,)],
    ),
    "residual_add-eval": (lambda x, s, g: F.residual_add(s, x, g), [(3, 5, 4, 24), (3, 5, 4, 24), (24,)]),
    "batch_norm": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [(4, 6, 5, 7), (6,), (6,)],
    ),
    "batch_norm-channels-last": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, channels_last=True),
        [(3, 5, 4, 24), (24,), (24,)],
    ),
    "max_pool2d": (lambda x: F.max_pool2d(x, 3, 2, 1), [(2, 5, 9, 8)]),
    "batch_norm-eval": (
        lambda x, w, b: F.batch_norm(
            x, ag.tensor(np.linspace(-1, 1, 6)), ag.tensor(np.linspace(0.5, 2, 6)), w, b
        ),
        [(4, 6, 5, 7), (6,), (6,)],
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "nchw-from-nhwc"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_kernel_equals_reference(name, layout, dtype):
    fn, shapes = CASES[name]
    arrays = [RNG.uniform(-2, 2, size=s).astype(dtype) for s in shapes]
    if layout == "strided":
        arrays[0] = _non_contiguous(arrays[0])
    elif layout == "nchw-from-nhwc":
        if arrays[0].ndim != 4:
            pytest.skip("4-D inputs only")
        arrays[0] = _nchw_transposed(arrays[0])
    with kernels.use_reference(False):
        fast_out, fast_grads = _forward_backward(fn, arrays)
    with kernels.use_reference(True):
        ref_out, ref_grads = _forward_backward(fn, arrays)
    # Sums in another order differ by rounding: about machine epsilon times the size of the terms.
    eps = 1e-6 if dtype == np.float32 else 1e-13
    for fast, ref in zip([fast_out] + fast_grads, [ref_out] + ref_grads, strict=False):
        np.testing.assert_allclose(fast, ref, rtol=10 * eps, atol=eps * max(1.0, float(np.abs(ref).max())))


def test_reference_switch_really_switches_paths():
    x = ag.tensor(RNG.standard_normal((4, 8)).astype(np.float32), requires_grad=True)
    with kernels.use_reference(True):
        assert F.gelu(x).grad_fn.kernels is None  # the op's own body ran
    with kernels.use_reference(False):
        assert F.gelu(x).grad_fn.kernels.__name__ == "autograd.kernels.cpu.gelu"
    kernels.set_enabled(False)
    try:
        assert not kernels.enabled() and F.gelu(x).grad_fn.kernels is None
    finally:
        kernels.set_enabled(True)


def test_switch_turns_off_the_optimizer_fast_path_too(monkeypatch):
    """AdamW's fused step is a fast path like the ops': with the switch off, the plain formula runs."""
    from autograd import optim
    from autograd.kernels.cpu import adamw as fused

    calls = []
    monkeypatch.setattr(fused, "adamw_update", lambda *args: calls.append(args))
    p = ag.tensor(np.ones(5, np.float32), requires_grad=True)
    p.grad = ag.tensor(np.ones(5, np.float32))
    with kernels.use_reference(True):
        optim.AdamW([p], lr=0.1).step()
    assert not calls and np.all(p.numpy() < 1)
    optim.AdamW([p], lr=0.1).step()
    assert len(calls) == 1
