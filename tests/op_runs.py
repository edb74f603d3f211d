"""Run an op's forward and backward through a chosen implementation: its own body, its fast path, one step
of the kernel chapter, or the CUDA kernels in the emulator. The kernel tests compare each with the op's body.

    out, grads = run(lambda x, w: F.depthwise_conv2d_channels_last(x, w, padding=3), [x, w],
                     kernels=STEPS["1 plain loops"], family="depthwise_conv2d")

``kernels`` is anything with the family's entry points (a kernel module, or a step of ``STEPS``); the ops
whose fast path is ``family`` run their ``fast_forward``/``fast_backward`` through it, the others their body.
"""

from __future__ import annotations

import contextlib

import numpy as np

import autograd as ag
from autograd import kernels as kernel_switch


@contextlib.contextmanager
def ops_through(kernels, family: str):
    """Within the block, ops whose CPU fast path is ``autograd.kernels.cpu.<family>`` run with ``kernels``."""
    original = kernel_switch.kernel_for
    target = f"autograd.kernels.cpu.{family}"

    def chosen(op, arrays):
        return kernels if getattr(op, "fast_paths", {}).get("cpu") == target else None

    kernel_switch.kernel_for = chosen
    try:
        yield
    finally:
        kernel_switch.kernel_for = original


def _forward_backward(fn, arrays, grad_seed, needs_grad):
    needs_grad = needs_grad or [True] * len(arrays)
    inputs = [ag.tensor(a, requires_grad=bool(need)) for a, need in zip(arrays, needs_grad, strict=True)]
    out = fn(*inputs)
    upstream = np.random.default_rng(grad_seed).standard_normal(out.shape).astype(out.dtype)
    out.backward(ag.tensor(upstream).to(out.device))
    grads = [None if t.grad is None else t.grad.numpy() for t in inputs]
    return out.numpy(), grads


def run(fn, arrays, kernels=None, family=None, path=None, grad_seed=0, needs_grad=None):
    """(output, input gradients) of ``fn`` on ``arrays``, all as NumPy arrays.

    path: "body" (kernels off), "fast" (the default fast path), "emulated-cuda" (the CUDA kernels in the
    CPU emulator); or ``kernels`` and ``family`` (that implementation of the family's entry points).
    """
    if kernels is not None:
        with ops_through(kernels, family):
            return _forward_backward(fn, arrays, grad_seed, needs_grad)
    if path == "body":
        with kernel_switch.use_reference(True):
            return _forward_backward(fn, arrays, grad_seed, needs_grad)
    if path == "emulated-cuda":
        with kernel_switch.use_reference(False), kernel_switch.emulate_cuda():
            return _forward_backward(fn, arrays, grad_seed, needs_grad)
    with kernel_switch.use_reference(False):
        return _forward_backward(fn, arrays, grad_seed, needs_grad)


def assert_same(actual, expected, dtype, rtol=None):
    """Outputs and gradients agree to rounding: relative to the largest value, a few units of ``dtype``."""
    rtol = rtol if rtol is not None else (2e-5 if np.dtype(dtype) == np.float32 else 1e-11)
    out_a, grads_a = actual
    out_e, grads_e = expected
    for a, e in zip([out_a, *grads_a], [out_e, *grads_e], strict=True):
        if e is None:
            assert a is None
            continue
        assert a.shape == e.shape and a.dtype == e.dtype, (a.shape, a.dtype, e.shape, e.dtype)
        scale = max(1.0, float(np.nanmax(np.abs(e), initial=0.0))) if e.size else 1.0
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, equal_nan=True)
