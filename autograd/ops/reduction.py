"""Reductions over axes: sum, mean, max, min, var (and the non-differentiable argmax/argmin).

``axis`` is None (every axis), an int or a tuple of ints, negative counting from the end; ``keepdims``
keeps the reduced axes with size 1. Backward spreads the output gradient back over the reduced axes.
"""

from __future__ import annotations

import builtins

from ..backend import get_array_module
from ..function import Function
from ..tensor import Tensor, as_tensor


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` as a sorted tuple of non-negative ints, with a clear error for an axis out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis}")
    return tuple(sorted(out))


def _expand_reduced(grad, axes, keepdims, input_shape):
    """Put the reduced axes back (size 1) and broadcast ``grad`` to the input's shape."""
    xp = get_array_module(grad)
    if not keepdims and axes:
        grad = xp.expand_dims(grad, axes)
    return xp.broadcast_to(grad, input_shape)


class Sum(Function):
    """z = sum of x over ``axes``;  dz/dx = 1 for every summed element."""

    def forward(self, x, axes=(), keepdims=False):
        self.axes, self.keepdims, self.input_shape = axes, keepdims, x.shape
        return x.sum(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return _expand_reduced(grad, self.axes, self.keepdims, self.input_shape)


class Mean(Function):
    """z = mean of x over ``axes``;  dz/dx = 1/n, n the number of averaged elements."""

    def forward(self, x, axes=(), keepdims=False):
        self.axes, self.keepdims, self.input_shape = axes, keepdims, x.shape
        self.count = 1
        for a in axes:
            self.count *= x.shape[a]
        return x.mean(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return _expand_reduced(grad / self.count, self.axes, self.keepdims, self.input_shape)


class _Extremum(Function):
    """z = max (or min) of x over ``axes``; the gradient goes to the extreme elements, shared on ties."""

    def forward(self, x, axes=(), keepdims=False):
        z = getattr(x, self.pick)(axis=axes, keepdims=True)
        winners = x == z
        self.save_for_backward(winners / winners.sum(axis=axes, keepdims=True))
        self.axes, self.keepdims = axes, keepdims
        return z if keepdims else z.squeeze(axis=axes)

    def backward(self, grad):
        (share,) = self.saved
        return _expand_reduced(grad, self.axes, self.keepdims, share.shape) * share


class Max(_Extremum):
    pick = "max"


class Min(_Extremum):
    pick = "min"


class Var(Function):
    """z = sum((x - mean)^2) / (n - correction);  dz/dx = 2 (x - mean) / (n - correction).

    ``correction=1`` (the default, as ``torch.var``) is the unbiased estimate; 0 is the population variance.
    """

    def forward(self, x, axes=(), keepdims=False, correction=1):
        count = 1
        for a in axes:
            count *= x.shape[a]
        self.divisor = builtins.max(count - correction, 0)
        centred = x - x.mean(axis=axes, keepdims=True)
        self.save_for_backward(centred)
        self.axes, self.keepdims = axes, keepdims
        return (centred * centred).sum(axis=axes, keepdims=keepdims) / self.divisor

    def backward(self, grad):
        (centred,) = self.saved
        return _expand_reduced(grad, self.axes, self.keepdims, centred.shape) * (2 / self.divisor) * centred


def sum(x, axis=None, keepdims=False):
    x = as_tensor(x)
    return Sum.apply(x, axes=normalize_axes(axis, x.ndim), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    x = as_tensor(x)
    return Mean.apply(x, axes=normalize_axes(axis, x.ndim), keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    x = as_tensor(x)
    _refuse_empty("max", x)
    return Max.apply(x, axes=normalize_axes(axis, x.ndim), keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    x = as_tensor(x)
    _refuse_empty("min", x)
    return Min.apply(x, axes=normalize_axes(axis, x.ndim), keepdims=keepdims)


def var(x, axis=None, keepdims=False, correction=1):
    x = as_tensor(x)
    return Var.apply(x, axes=normalize_axes(axis, x.ndim), keepdims=keepdims, correction=correction)


def argmax(x, axis=None, keepdims=False) -> Tensor:
    """Index of the maximum (flattened when ``axis`` is None); an integer tensor outside the graph."""
    x = as_tensor(x)
    _refuse_empty("argmax", x)
    return Tensor(x.data.argmax(axis=axis, keepdims=keepdims))


def argmin(x, axis=None, keepdims=False) -> Tensor:
    x = as_tensor(x)
    _refuse_empty("argmin", x)
    return Tensor(x.data.argmin(axis=axis, keepdims=keepdims))


def _refuse_empty(op, x):
    if x.size == 0:
        raise ValueError(f"{op} of an empty tensor (shape {x.shape}) has no value")
