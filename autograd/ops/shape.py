"""Ops that move values without changing them: reshape, permute, broadcast, squeeze, concatenate, pad, index.

Each backward moves the gradient back the same way: un-reshape, inverse permutation, sum over the
broadcast axes, split, crop, or scatter-add into the indexed positions.
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..function import Function
from ..graph import sum_to_shape
from ..tensor import Tensor, as_tensor
from .reduction import normalize_axes


def shape_args(shape) -> tuple:
    """Accept ``f(x, 2, 3)`` as well as ``f(x, (2, 3))``: the sizes (or axes) as a tuple of ints."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(n) for n in shape)


class Reshape(Function):
    """The same values in a new shape."""

    def forward(self, x, shape=()):
        self.input_shape = x.shape
        return x.reshape(shape)

    def backward(self, grad):
        return grad.reshape(self.input_shape)


class Permute(Function):
    """z = x with its axes reordered; the gradient goes through the inverse permutation."""

    def forward(self, x, axes=()):
        self.axes = axes
        return x.transpose(axes)

    def backward(self, grad):
        return grad.transpose(np.argsort(self.axes))


class BroadcastTo(Function):
    """z = x repeated along new leading axes and along its size-1 axes; the gradient sums the copies."""

    def forward(self, x, shape=()):
        self.input_shape = x.shape
        return get_array_module(x).broadcast_to(x, shape)

    def backward(self, grad):
        return sum_to_shape(grad, self.input_shape)


class Concatenate(Function):
    """z = the inputs joined along ``axis``; each gets back its own slice of the gradient."""

    def forward(self, *xs, axis=0):
        self.axis = axis
        self.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return get_array_module(*xs).concatenate(xs, axis=axis)

    def backward(self, grad):
        return tuple(get_array_module(grad).split(grad, self.bounds, axis=self.axis))


class Stack(Function):
    """z = the inputs stacked along a new ``axis``; each gets back its own slice of the gradient."""

    def forward(self, *xs, axis=0):
        self.axis = axis
        return get_array_module(*xs).stack(xs, axis=axis)

    def backward(self, grad):
        xp = get_array_module(grad)
        return tuple(xp.take(grad, i, axis=self.axis) for i in range(grad.shape[self.axis]))


class Pad(Function):
    """z = x with ``value`` added around it; the gradient is the centre crop of the output gradient."""

    def forward(self, x, pad_width=(), value=0.0):
        self.crop = tuple(
            slice(before, before + n) for (before, _), n in zip(pad_width, x.shape, strict=False)
        )
        return get_array_module(x).pad(x, pad_width, mode="constant", constant_values=value)

    def backward(self, grad):
        return grad[self.crop]


class GetItem(Function):
    """z = x[index]. Basic indexing (slices, ints, None, ...) writes the gradient into a view of zeros;
    integer or boolean arrays scatter-add it, so an element picked twice gets both gradients."""

    def forward(self, x, index=()):
        self.index, self.input_shape, self.input_dtype = index, x.shape, x.dtype
        return x[index]

    def backward(self, grad):
        xp = get_array_module(grad)
        out = xp.zeros(self.input_shape, dtype=self.input_dtype)
        if _is_basic_index(self.index):
            out[self.index] = grad
        else:
            xp.add.at(out, self.index, grad)
        return out


# -- the public functions ------------------------------------------------------------------------
def reshape(x, *shape):
    x = as_tensor(x)
    return Reshape.apply(x, shape=_resolve_shape(x.shape, shape_args(shape)))


def _resolve_shape(old_shape, shape) -> tuple:
    """The target of a reshape, with at most one -1 worked out; a clear error when sizes differ."""
    size = int(np.prod(old_shape))
    unknown = [i for i, n in enumerate(shape) if n == -1]
    known = int(np.prod([n for n in shape if n != -1]))
    bad = len(unknown) > 1 or any(n < -1 for n in shape)
    if not bad and unknown:
        bad = known == 0 or size % known != 0
        if not bad:
            shape = shape[: unknown[0]] + (size // known,) + shape[unknown[0] + 1 :]
    if bad or int(np.prod(shape)) != size:
        raise ValueError(
            f"cannot reshape a tensor of shape {tuple(old_shape)} ({size} elements) into {shape}"
        )
    return tuple(int(n) for n in shape)


def flatten(x, start_axis=0, end_axis=-1):
    """Merge axes ``start_axis..end_axis`` into one (as ``torch.flatten``)."""
    x = as_tensor(x)
    if x.ndim == 0:
        return reshape(x, 1)
    start, end = normalize_axes(start_axis, x.ndim)[0], normalize_axes(end_axis, x.ndim)[0]
    if start > end:
        raise ValueError(f"flatten: start_axis {start_axis} comes after end_axis {end_axis}")
    merged = int(np.prod(x.shape[start : end + 1]))
    return reshape(x, x.shape[:start] + (merged,) + x.shape[end + 1 :])


def permute(x, *axes):
    x = as_tensor(x)
    axes = shape_args(axes)
    if len(axes) != x.ndim or sorted(normalize_axes(a, x.ndim)[0] for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Permute.apply(x, axes=tuple(normalize_axes(a, x.ndim)[0] for a in axes))


def transpose(x, axis0=-2, axis1=-1):
    """Swap two axes (as ``torch.transpose``)."""
    x = as_tensor(x)
    a, b = normalize_axes(axis0, x.ndim)[0], normalize_axes(axis1, x.ndim)[0]
    axes = list(range(x.ndim))
    axes[a], axes[b] = axes[b], axes[a]
    return Permute.apply(x, axes=tuple(axes))


def broadcast_to(x, shape):
    x = as_tensor(x)
    shape = tuple(shape)
    try:
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"cannot broadcast a tensor of shape {x.shape} to {shape}") from None
    return BroadcastTo.apply(x, shape=shape)


def expand(x, *shape):
    """``broadcast_to`` where -1 keeps that axis's size (as ``torch.Tensor.expand``)."""
    x = as_tensor(x)
    shape = shape_args(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: the target {shape} has fewer axes than the tensor's shape {x.shape}")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    return broadcast_to(x, shape)


def squeeze(x, axis=None):
    """Drop size-1 axes (all of them, or the given ones; a given axis must have size 1)."""
    x = as_tensor(x)
    if axis is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = normalize_axes(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x, axis):
    """Insert a size-1 axis at position ``axis`` (negative counts from the end of the result)."""
    x = as_tensor(x)
    a = normalize_axes(axis, x.ndim + 1)[0]
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


def _check_joinable(op, tensors, axis, same_axis_size):
    if len(tensors) == 0:
        raise ValueError(f"{op} needs at least one tensor")
    first = tensors[0].shape
    for t in tensors[1:]:
        ok = len(t.shape) == len(first) and all(
            a == b or (i == axis and not same_axis_size)
            for i, (a, b) in enumerate(zip(t.shape, first, strict=False))
        )
        if not ok:
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"{op} along axis {axis}: shapes {shapes} do not match")


def concatenate(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    axis = normalize_axes(axis, tensors[0].ndim)[0] if tensors else axis
    _check_joinable("concatenate", tensors, axis, same_axis_size=False)
    return Concatenate.apply(*tensors, axis=axis)


concat = cat = concatenate


def stack(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    axis = normalize_axes(axis, tensors[0].ndim + 1)[0]
    _check_joinable("stack", tensors, -1, same_axis_size=True)
    return Stack.apply(*tensors, axis=axis)


def pad(x, pad_width, value=0.0):
    """Constant padding, NumPy style: ``pad_width`` is ((before, after), ...) per axis, or one pair."""
    x = as_tensor(x)
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64).reshape(-1, 2), (x.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: widths must be >= 0, got {pad_width}")
    return Pad.apply(x, pad_width=tuple(map(tuple, widths.tolist())), value=value)


def normalize_index(index):
    """Replace tensors inside an index by their arrays (and lists by integer arrays)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for item in index:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):
            item = np.asarray(item)
        out.append(item)
    return tuple(out)


def _is_basic_index(index) -> bool:
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in index)


def getitem(x, index):
    x = as_tensor(x)
    index = normalize_index(index)
    xp = get_array_module(x.data)
    if xp is not np:
        index = tuple(xp.asarray(i) if isinstance(i, np.ndarray) else i for i in index)
    try:
        return GetItem.apply(x, index=index)
    except IndexError as error:
        raise IndexError(f"index {index} does not fit a tensor of shape {x.shape}: {error}") from None
