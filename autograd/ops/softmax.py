"""softmax, log_softmax and logsumexp along an axis, all computed after subtracting the maximum
so that exp never overflows.

lse(x) = m + log sum exp(x - m), m = max x;   softmax(x) = exp(x - lse(x));   log_softmax = x - lse(x).
Gradients:  d lse / dx = softmax(x);
            softmax:     dx = s * (g - sum(g * s));
            log_softmax: dx = g - softmax(x) * sum(g).
"""

from __future__ import annotations

from ..backend import get_array_module
from ..function import Function
from ..tensor import as_tensor
from .reduction import normalize_axes


def stable_logsumexp(x, axis, keepdims=True):
    """log sum exp(x) over ``axis`` without overflow; rows that are all -inf give -inf, not nan."""
    xp = get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    out = m + xp.log(xp.exp(x - m).sum(axis=axis, keepdims=True))
    return out if keepdims else out.squeeze(axis=axis)


class Softmax(Function):
    def forward(self, x, axis=-1):
        s = get_array_module(x).exp(x - stable_logsumexp(x, axis))
        self.save_for_backward(s)
        self.axis = axis
        return s

    def backward(self, grad):
        (s,) = self.saved
        return s * (grad - (grad * s).sum(axis=self.axis, keepdims=True))


class LogSoftmax(Function):
    def forward(self, x, axis=-1):
        out = x - stable_logsumexp(x, axis)
        self.save_for_backward(out)
        self.axis = axis
        return out

    def backward(self, grad):
        (out,) = self.saved
        xp = get_array_module(out)
        return grad - xp.exp(out) * grad.sum(axis=self.axis, keepdims=True)


class LogSumExp(Function):
    def forward(self, x, axes=(), keepdims=False):
        lse = stable_logsumexp(x, axes, keepdims=True)
        self.save_for_backward(x, lse)
        self.axes, self.keepdims = axes, keepdims
        return lse if keepdims else lse.squeeze(axis=axes)

    def backward(self, grad):
        x, lse = self.saved
        xp = get_array_module(x)
        if not self.keepdims:
            grad = xp.expand_dims(grad, self.axes)
        return grad * xp.exp(x - lse)


def softmax(x, axis=-1):
    x = as_tensor(x)
    return Softmax.apply(x, axis=normalize_axes(axis, x.ndim)[0])


def log_softmax(x, axis=-1):
    x = as_tensor(x)
    return LogSoftmax.apply(x, axis=normalize_axes(axis, x.ndim)[0])


def logsumexp(x, axis=None, keepdims=False):
    x = as_tensor(x)
    return LogSumExp.apply(x, axes=normalize_axes(axis, x.ndim), keepdims=keepdims)
