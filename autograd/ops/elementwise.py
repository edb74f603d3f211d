"""Elementwise ops: arithmetic, exp/log/sqrt, tanh, sigmoid, relu, abs, clip, maximum/minimum, where.

Binary ops broadcast like NumPy. Their backward returns gradients in the broadcast (output) shape;
the engine sums them back to each input's shape (``autograd.graph.sum_to_shape``).
"""

from __future__ import annotations

import numpy as np

from ..backend import device_of, get_array_module, normalize_device
from ..backend import to_device as _move_array
from ..function import Function
from ..tensor import Tensor, as_tensor


def _as_tensors(x, y):
    """Both operands as tensors; a Python number takes the other operand's dtype."""
    if isinstance(x, Tensor):
        return x, as_tensor(y, like=x)
    y = as_tensor(y)
    return as_tensor(x, like=y), y


def _check_broadcast(op: str, a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together"
        ) from None


# -- arithmetic -----------------------------------------------------------------------------
class Add(Function):
    """z = x + y;  dz/dx = 1, dz/dy = 1."""

    def forward(self, x, y):
        _check_broadcast("add", x, y)
        return x + y

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    """z = x - y;  dz/dx = 1, dz/dy = -1."""

    def forward(self, x, y):
        _check_broadcast("sub", x, y)
        return x - y

    def backward(self, grad):
        return grad, -grad


class Mul(Function):
    """z = x * y;  dz/dx = y, dz/dy = x."""

    def forward(self, x, y):
        _check_broadcast("mul", x, y)
        self.save_for_backward(x, y)
        return x * y

    def backward(self, grad):
        x, y = self.saved
        return (
            grad * y if self.needs_input_grad[0] else None,
            grad * x if self.needs_input_grad[1] else None,
        )


class Div(Function):
    """z = x / y;  dz/dx = 1/y, dz/dy = -x/y^2."""

    def forward(self, x, y):
        _check_broadcast("div", x, y)
        self.save_for_backward(x, y)
        return x / y

    def backward(self, grad):
        x, y = self.saved
        grad_x = grad / y
        grad_y = -grad_x * x / y if self.needs_input_grad[1] else None
        return grad_x, grad_y


class Pow(Function):
    """z = x ** y;  dz/dx = y x^(y-1), dz/dy = z log x."""

    def forward(self, x, y):
        _check_broadcast("pow", x, y)
        z = x**y
        self.save_for_backward(x, y, z)
        return z

    def backward(self, grad):
        x, y, z = self.saved
        xp = get_array_module(x)
        grad_x = grad * y * x ** (y - 1) if self.needs_input_grad[0] else None
        grad_y = grad * z * xp.log(x) if self.needs_input_grad[1] else None
        return grad_x, grad_y


class Neg(Function):
    """z = -x."""

    def forward(self, x):
        return -x

    def backward(self, grad):
        return -grad


# -- unary functions ----------------------------------------------------------------------------
class Exp(Function):
    """z = e^x;  dz/dx = z."""

    def forward(self, x):
        z = get_array_module(x).exp(x)
        self.save_for_backward(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * z


class Log(Function):
    """z = ln x;  dz/dx = 1/x."""

    def forward(self, x):
        self.save_for_backward(x)
        return get_array_module(x).log(x)

    def backward(self, grad):
        (x,) = self.saved
        return grad / x


class Sqrt(Function):
    """z = sqrt(x);  dz/dx = 1 / (2 z)."""

    def forward(self, x):
        z = get_array_module(x).sqrt(x)
        self.save_for_backward(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad / (2 * z)


class Tanh(Function):
    """z = tanh x;  dz/dx = 1 - z^2."""

    def forward(self, x):
        z = get_array_module(x).tanh(x)
        self.save_for_backward(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * (1 - z * z)


class Sigmoid(Function):
    """z = 1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2, which never overflows;  dz/dx = z (1 - z)."""

    def forward(self, x):
        z = 0.5 * (1 + get_array_module(x).tanh(0.5 * x))
        self.save_for_backward(z)
        return z

    def backward(self, grad):
        (z,) = self.saved
        return grad * z * (1 - z)


class ReLU(Function):
    """z = max(x, 0);  dz/dx = 1 where x > 0, else 0 (0 at the kink, as PyTorch)."""

    def forward(self, x):
        mask = x > 0
        self.save_for_backward(mask)
        return x * mask

    def backward(self, grad):
        (mask,) = self.saved
        return grad * mask


class Abs(Function):
    """z = |x|;  dz/dx = sign(x) (0 at 0, as PyTorch)."""

    def forward(self, x):
        xp = get_array_module(x)
        self.save_for_backward(xp.sign(x))
        return xp.abs(x)

    def backward(self, grad):
        (sign,) = self.saved
        return grad * sign


class Clip(Function):
    """z = min(max(x, low), high);  dz/dx = 1 where low <= x <= high (PyTorch's clamp), else 0."""

    def forward(self, x, low=None, high=None):
        xp = get_array_module(x)
        inside = xp.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        self.save_for_backward(inside)
        return xp.clip(x, low, high).astype(x.dtype, copy=False)

    def backward(self, grad):
        (inside,) = self.saved
        return grad * inside


class Maximum(Function):
    """z = max(x, y) elementwise; the gradient goes to the larger input, halved on ties (as PyTorch)."""

    def forward(self, x, y):
        _check_broadcast("maximum", x, y)
        self.save_for_backward(x, y)
        return get_array_module(x).maximum(x, y)

    def backward(self, grad):
        x, y = self.saved
        share_x = (x > y) + 0.5 * (x == y)
        return grad * share_x, grad * (1 - share_x)


class Minimum(Function):
    """z = min(x, y) elementwise; the gradient goes to the smaller input, split in half on ties."""

    def forward(self, x, y):
        _check_broadcast("minimum", x, y)
        self.save_for_backward(x, y)
        return get_array_module(x).minimum(x, y)

    def backward(self, grad):
        x, y = self.saved
        share_x = (x < y) + 0.5 * (x == y)
        return grad * share_x, grad * (1 - share_x)


class Where(Function):
    """z = x where condition else y; the gradient flows to the input that was picked."""

    def forward(self, x, y, condition=None):
        xp = get_array_module(x)
        self.save_for_backward(condition)
        return xp.where(condition, x, y)

    def backward(self, grad):
        (condition,) = self.saved
        xp = get_array_module(grad)
        zero = xp.zeros((), dtype=grad.dtype)
        return xp.where(condition, grad, zero), xp.where(condition, zero, grad)


class Cast(Function):
    """z = x converted to another floating dtype; the gradient is converted back."""

    def forward(self, x, dtype=None):
        self.input_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, grad):
        return grad.astype(self.input_dtype)


class ToDevice(Function):
    """z = x copied to another device; the gradient is copied back."""

    def forward(self, x, device=None):
        self.input_device = device_of(x)
        return _move_array(x, device)

    def backward(self, grad):
        return _move_array(grad, self.input_device)


# -- the public functions ------------------------------------------------------------------------
def add(x, y):
    return Add.apply(*_as_tensors(x, y))


def sub(x, y):
    return Sub.apply(*_as_tensors(x, y))


def mul(x, y):
    return Mul.apply(*_as_tensors(x, y))


def div(x, y):
    return Div.apply(*_as_tensors(x, y))


def pow(x, y):
    return Pow.apply(*_as_tensors(x, y))


def neg(x):
    return Neg.apply(as_tensor(x))


def exp(x):
    return Exp.apply(as_tensor(x))


def log(x):
    return Log.apply(as_tensor(x))


def sqrt(x):
    return Sqrt.apply(as_tensor(x))


def tanh(x):
    return Tanh.apply(as_tensor(x))


def sigmoid(x):
    return Sigmoid.apply(as_tensor(x))


def relu(x):
    return ReLU.apply(as_tensor(x))


def abs(x):
    return Abs.apply(as_tensor(x))


def clip(x, min=None, max=None):
    """Clamp to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    return Clip.apply(as_tensor(x), low=min, high=max)


def maximum(x, y):
    return Maximum.apply(*_as_tensors(x, y))


def minimum(x, y):
    return Minimum.apply(*_as_tensors(x, y))


def where(condition, x, y):
    """Pick from ``x`` where ``condition`` is true, else from ``y`` (broadcasting all three)."""
    x, y = _as_tensors(x, y)
    condition = condition.data if isinstance(condition, Tensor) else condition
    xp = get_array_module(x.data)
    condition = xp.asarray(condition, dtype=bool)
    try:
        np.broadcast_shapes(condition.shape, x.shape, y.shape)
    except ValueError:
        raise ValueError(
            f"where: condition {tuple(condition.shape)}, x {x.shape} and y {y.shape} cannot be broadcast "
            "together"
        ) from None
    return Where.apply(x, y, condition=condition)


def compare(x, y, name: str) -> Tensor:
    """Elementwise comparison (``less``, ``equal``, ...): a boolean tensor outside the graph."""
    x, y = _as_tensors(x, y)
    xp = get_array_module(x.data)
    return Tensor(getattr(xp, name)(x.data, y.data))


def cast(x, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    x = as_tensor(x)
    if x.requires_grad and not np.issubdtype(dtype, np.floating):
        return Tensor(x.data.astype(dtype))  # an integer copy cannot carry a gradient
    return Cast.apply(x, dtype=dtype)


def to_device(x, device) -> Tensor:
    return ToDevice.apply(as_tensor(x), device=normalize_device(device))
