"""Scaled residual, steps 1 and 2: the end of a residual block (layer scale, drop path, sum) in one pass.

ConvNeXt's block ends with ``shortcut + drop_path(gamma * x)`` (Section 2.1; layer scale from Touvron et
al., 2021, "Going deeper with Image Transformers"; drop path from Huang et al., 2016). Written op by op
that is three passes forward (multiply by gamma, by the drop-path mask, add) and three backward. With the
branch x of shape (N, ..., C), channels last, gamma of shape (C,) and one drop-path factor per sample,
s[n] (0 for a dropped sample, 1 / (1 - p) for a kept one; 1 in evaluation), it is one pass each way:

    out[n, ..., c]   = shortcut[n, ..., c] + x[n, ..., c] * scale[n, c],     scale[n, c] = gamma[c] * s[n]
    d shortcut       = d out
    d x[n, ..., c]   = d out[n, ..., c] * scale[n, c]
    d gamma[c]       = sum over n and ... of d out[n, ..., c] * x[n, ..., c] * s[n]

``scale`` is rounded to the dtype of x before use; d gamma is summed in float64, per sample in a fixed
order, then over the samples. The kernels see x as (N, rows, C). The plain math, which the tests compare
both steps with, is the op's own body: ``ScaledResidual`` in autograd/nn/functional/residual.py (it
multiplies by gamma and s[n] one after the other, so in float32 it rounds a little differently).

The steps (``STEPS``; both implement scaled_residual_forward and scaled_residual_backward):
1. plain loops: the formulas as serial loops over n, rows and c, one pass each way.
2. samples on threads: the same loops, one sample per task, the samples shared by Numba's threads (prange
   over a serial function per sample). What the public functions run.
"""

from types import SimpleNamespace

import numpy as np
from numba import njit, prange


def _scales(x, gamma, sample_scale):
    """scale[n, c] = gamma[c] * s[n] in x's dtype, shape (N, C); gamma or s may be None (all ones)."""
    n, c = x.shape[0], x.shape[-1]
    scale = np.ones((n, c), dtype=x.dtype)
    if gamma is not None:
        scale = scale * gamma.astype(x.dtype, copy=False)[None, :]
    if sample_scale is not None:
        scale = scale * sample_scale.astype(x.dtype, copy=False).reshape(n, 1)
    return scale


def _per_sample(a):
    """(N, ..., C) -> a contiguous (N, rows, C) view (or copy)."""
    return np.ascontiguousarray(a).reshape(a.shape[0], -1, a.shape[-1])


def _forward(kernels, shortcut, x, gamma, sample_scale):
    """out = shortcut + x * scale by ``kernels.forward(shortcut, x, scale, out)`` on (N, rows, C) arrays."""
    scale = _scales(x, gamma, sample_scale)
    out = np.empty(x.shape, dtype=x.dtype)
    shortcut = shortcut.astype(x.dtype, copy=False)
    kernels.forward(_per_sample(shortcut), _per_sample(x), scale, _per_sample(out))
    return out


def _backward(kernels, grad, x, gamma, sample_scale, need_x, need_gamma):
    """(d x, d gamma) by ``kernels.backward_x(grad, scale, grad_x)`` and
    ``kernels.gamma_partials(grad, x, s, partials)`` (partials: (N, C) float64, summed here over n)."""
    n, c = x.shape[0], x.shape[-1]
    grad3 = _per_sample(grad.astype(x.dtype, copy=False))
    grad_x = grad_gamma = None
    if need_x:
        grad_x = np.empty(x.shape, dtype=x.dtype)
        kernels.backward_x(grad3, _scales(x, gamma, sample_scale), grad_x.reshape(n, -1, c))
    if gamma is not None and need_gamma:
        s = np.ones(n) if sample_scale is None else np.asarray(sample_scale, dtype=np.float64).reshape(n)
        partials = np.empty((n, c))
        kernels.gamma_partials(grad3, _per_sample(x), s, partials)
        grad_gamma = partials.sum(axis=0).astype(gamma.dtype)
    return grad_x, grad_gamma


# -- step 1: plain loops ------------------------------------------------------------------------------
@njit(cache=True)
def _plain_forward(shortcut, x, scale, out):
    for n in range(x.shape[0]):
        for r in range(x.shape[1]):
            for c in range(x.shape[2]):
                out[n, r, c] = shortcut[n, r, c] + x[n, r, c] * scale[n, c]


@njit(cache=True)
def _plain_backward_x(grad, scale, grad_x):
    for n in range(grad.shape[0]):
        for r in range(grad.shape[1]):
            for c in range(grad.shape[2]):
                grad_x[n, r, c] = grad[n, r, c] * scale[n, c]


@njit(cache=True)
def _plain_gamma_partials(grad, x, sample_scale, partials):
    """partials[n, c] = s[n] * sum over rows of grad * x, in float64."""
    for n in range(grad.shape[0]):
        for c in range(grad.shape[2]):
            partials[n, c] = 0.0
        for r in range(grad.shape[1]):
            for c in range(grad.shape[2]):
                partials[n, c] += grad[n, r, c] * x[n, r, c]
        for c in range(grad.shape[2]):
            partials[n, c] *= sample_scale[n]


_PLAIN_LOOPS = SimpleNamespace(
    forward=_plain_forward, backward_x=_plain_backward_x, gamma_partials=_plain_gamma_partials
)


def plain_scaled_residual_forward(shortcut, x, gamma=None, sample_scale=None):
    return _forward(_PLAIN_LOOPS, shortcut, x, gamma, sample_scale)


def plain_scaled_residual_backward(grad, x, gamma=None, sample_scale=None, need_x=True, need_gamma=True):
    return _backward(_PLAIN_LOOPS, grad, x, gamma, sample_scale, need_x, need_gamma)


# -- step 2: one sample per task, the samples shared by the threads --------------------------------------
# Each parallel loop runs over the samples and calls a serial function for one sample, on the whole
# arrays and the sample's index (as layer_norm.py does), so that no view is made inside the parallel loop.
# A dropped sample (s[n] = 0) skips its sum for d gamma.


@njit(cache=True)
def _forward_sample(shortcut, x, scale, out, n):
    for r in range(x.shape[1]):
        for c in range(x.shape[2]):
            out[n, r, c] = shortcut[n, r, c] + x[n, r, c] * scale[n, c]


@njit(cache=True)
def _backward_x_sample(grad, scale, grad_x, n):
    for r in range(grad.shape[1]):
        for c in range(grad.shape[2]):
            grad_x[n, r, c] = grad[n, r, c] * scale[n, c]


@njit(cache=True)
def _gamma_partial_sample(grad, x, sample_scale, partials, n):
    """partials[n, c] = s[n] * sum over rows of grad * x, in float64 (0 for a dropped sample)."""
    partials[n] = 0.0
    if sample_scale[n] == 0:
        return
    for r in range(grad.shape[1]):
        for c in range(grad.shape[2]):
            partials[n, c] += grad[n, r, c] * x[n, r, c]
    for c in range(grad.shape[2]):
        partials[n, c] *= sample_scale[n]


@njit(parallel=True, cache=True)
def _forward_kernel(shortcut, x, scale, out):
    for n in prange(x.shape[0]):
        _forward_sample(shortcut, x, scale, out, n)


@njit(parallel=True, cache=True)
def _backward_x_kernel(grad, scale, grad_x):
    for n in prange(grad.shape[0]):
        _backward_x_sample(grad, scale, grad_x, n)


@njit(parallel=True, cache=True)
def _gamma_partials_kernel(grad, x, sample_scale, partials):
    for n in prange(grad.shape[0]):
        _gamma_partial_sample(grad, x, sample_scale, partials, n)


_SAMPLE_THREADS = SimpleNamespace(
    forward=_forward_kernel, backward_x=_backward_x_kernel, gamma_partials=_gamma_partials_kernel
)


def scaled_residual_forward(shortcut, x, gamma=None, sample_scale=None):
    """out = shortcut + x * gamma[c] * s[n]; x (N, ..., C); gamma (C,) and sample_scale (N,) may be None."""
    return _forward(_SAMPLE_THREADS, shortcut, x, gamma, sample_scale)


def scaled_residual_backward(grad, x, gamma=None, sample_scale=None, need_x=True, need_gamma=True):
    """(d x, d gamma) of out for the gradient grad of out: each None when not needed (d gamma is None
    without gamma)."""
    return _backward(_SAMPLE_THREADS, grad, x, gamma, sample_scale, need_x, need_gamma)


STEPS = {
    "1 plain loops": SimpleNamespace(
        scaled_residual_forward=plain_scaled_residual_forward,
        scaled_residual_backward=plain_scaled_residual_backward,
    ),
    "2 samples on threads": SimpleNamespace(
        scaled_residual_forward=scaled_residual_forward, scaled_residual_backward=scaled_residual_backward
    ),
}
