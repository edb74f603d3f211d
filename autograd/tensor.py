"""Tensor: an array of the active backend, plus what reverse-mode differentiation needs.

A tensor holds ``data`` (a NumPy or CuPy array), ``requires_grad``, ``grad`` (a Tensor, accumulated
over backward calls until zeroed) and ``_ctx``, the op (``Function``) that created it, if any. Tensors
that require grad and have no creator are the leaves: parameters and inputs.
"""

from __future__ import annotations

import types

import numpy as np

from . import graph
from .backend import DEFAULT_FLOAT_DTYPE, device_of, get_array_module, normalize_device, to_device, to_numpy

# Tensor's methods (``x + y``, ``x.sum()``, ``x.reshape(...)``) are the differentiable ops of
# ``autograd/ops/``. Those build on Tensor, so Tensor cannot import them: ``autograd/ops/__init__.py`` puts
# its modules in this namespace when it is imported (``autograd``'s own ``__init__`` imports it).
OPS = types.SimpleNamespace()


def _is_floating(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.floating)


class Tensor:
    """An n-dimensional array that can record the ops applied to it and differentiate through them."""

    __slots__ = ("data", "requires_grad", "grad", "_ctx", "_retains_grad", "__weakref__")
    # Make NumPy hand binary ops with a Tensor on the right to the Tensor (ndarray + Tensor -> Tensor).
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False):
        """Wrap an array as it is (no copy). Use ``autograd.tensor(...)`` to build one from Python data."""
        if isinstance(data, Tensor):
            data = data.data
        if get_array_module(data) is np:
            data = np.asarray(data)
        if requires_grad and not _is_floating(data.dtype):
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {data.dtype}; "
                "convert first, e.g. x.float()"
            )
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self._retains_grad = False

    # -- what it is ----------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        return device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        """The op that created this tensor (None for leaves and for tensors made under no_grad)."""
        return self._ctx

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(to_numpy(self.data), separator=", ", precision=4, threshold=20, edgeitems=2)
        extras = [f"dtype={self.dtype}"]
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self._ctx is not None:
            extras.append(f"grad_fn={type(self._ctx).__name__}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"Tensor({body}, {', '.join(extras)})"

    # -- differentiation -----------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into ``.grad`` of every leaf it depends on.

        A scalar needs no ``grad``; any other shape needs one of its own shape (the vector of a
        vector-Jacobian product). The graph is freed afterwards unless ``retain_graph=True``.
        """
        graph.backward(self, grad, retain_graph=retain_graph)

    def retain_grad(self) -> Tensor:
        """Also keep ``.grad`` for this non-leaf tensor during backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and not _is_floating(self.dtype):
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor: use .detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> Tensor:
        """The same array, cut from the graph: no creator, no grad."""
        return Tensor(self.data)

    # -- conversion ----------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (shares memory on the CPU; copies from the GPU)."""
        return to_numpy(self.data)

    def item(self):
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return to_numpy(self.data).reshape(()).item()

    def tolist(self):
        return to_numpy(self.data).tolist()

    def to(self, device=None, dtype=None) -> Tensor:
        """A copy on ``device`` and/or of ``dtype`` (differentiable), or ``self`` when nothing changes."""
        out = self
        if dtype is not None and np.dtype(dtype) != self.dtype:
            out = OPS.elementwise.cast(out, dtype)
        if device is not None and out.device != normalize_device(device):
            out = OPS.elementwise.to_device(out, device)
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return self.to(dtype=np.float32)

    def double(self) -> Tensor:
        return self.to(dtype=np.float64)

    def astype(self, dtype) -> Tensor:
        return self.to(dtype=dtype)

    # -- arithmetic ------------------------------------------------------------------------
    def __add__(self, other):
        return OPS.elementwise.add(self, other)

    def __radd__(self, other):
        return OPS.elementwise.add(other, self)

    def __sub__(self, other):
        return OPS.elementwise.sub(self, other)

    def __rsub__(self, other):
        return OPS.elementwise.sub(other, self)

    def __mul__(self, other):
        return OPS.elementwise.mul(self, other)

    def __rmul__(self, other):
        return OPS.elementwise.mul(other, self)

    def __truediv__(self, other):
        return OPS.elementwise.div(self, other)

    def __rtruediv__(self, other):
        return OPS.elementwise.div(other, self)

    def __pow__(self, other):
        return OPS.elementwise.pow(self, other)

    def __rpow__(self, other):
        return OPS.elementwise.pow(other, self)

    def __matmul__(self, other):
        return OPS.matmul.matmul(self, other)

    def __rmatmul__(self, other):
        return OPS.matmul.matmul(other, self)

    def __neg__(self):
        return OPS.elementwise.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return OPS.elementwise.abs(self)

    # Comparisons give boolean tensors that are not differentiable.
    def __lt__(self, other):
        return OPS.elementwise.compare(self, other, "less")

    def __le__(self, other):
        return OPS.elementwise.compare(self, other, "less_equal")

    def __gt__(self, other):
        return OPS.elementwise.compare(self, other, "greater")

    def __ge__(self, other):
        return OPS.elementwise.compare(self, other, "greater_equal")

    def __eq__(self, other):
        return OPS.elementwise.compare(self, other, "equal")

    def __ne__(self, other):
        return OPS.elementwise.compare(self, other, "not_equal")

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.size} elements is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # -- indexing ----------------------------------------------------------------------------
    def __getitem__(self, index):
        return OPS.shape.getitem(self, index)

    def __setitem__(self, index, value):
        if self.requires_grad:
            raise RuntimeError(
                "in-place assignment into a tensor that requires grad would corrupt its gradient; "
                "assign under .detach() or build a new tensor (e.g. with autograd.where)"
            )
        value = value.data if isinstance(value, Tensor) else value
        self.data[OPS.shape.normalize_index(index)] = value

    # -- methods that mirror the functions ---------------------------------------------------
    def exp(self):
        return OPS.elementwise.exp(self)

    def log(self):
        return OPS.elementwise.log(self)

    def sqrt(self):
        return OPS.elementwise.sqrt(self)

    def tanh(self):
        return OPS.elementwise.tanh(self)

    def sigmoid(self):
        return OPS.elementwise.sigmoid(self)

    def relu(self):
        return OPS.elementwise.relu(self)

    def abs(self):
        return OPS.elementwise.abs(self)

    def clip(self, min=None, max=None):
        return OPS.elementwise.clip(self, min, max)

    clamp = clip

    def maximum(self, other):
        return OPS.elementwise.maximum(self, other)

    def minimum(self, other):
        return OPS.elementwise.minimum(self, other)

    def sum(self, axis=None, keepdims=False):
        return OPS.reduction.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return OPS.reduction.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return OPS.reduction.max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return OPS.reduction.min(self, axis, keepdims)

    def var(self, axis=None, keepdims=False, correction=1):
        return OPS.reduction.var(self, axis, keepdims, correction)

    def argmax(self, axis=None, keepdims=False):
        return OPS.reduction.argmax(self, axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return OPS.reduction.argmin(self, axis, keepdims)

    def reshape(self, *shape):
        return OPS.shape.reshape(self, *shape)

    view = reshape

    def flatten(self, start_axis=0, end_axis=-1):
        return OPS.shape.flatten(self, start_axis, end_axis)

    def transpose(self, axis0=-2, axis1=-1):
        return OPS.shape.transpose(self, axis0, axis1)

    def permute(self, *axes):
        return OPS.shape.permute(self, *axes)

    @property
    def T(self):
        return OPS.shape.permute(self, tuple(reversed(range(self.ndim))))

    def expand(self, *shape):
        return OPS.shape.expand(self, *shape)

    def broadcast_to(self, shape):
        return OPS.shape.broadcast_to(self, shape)

    def squeeze(self, axis=None):
        return OPS.shape.squeeze(self, axis)

    def unsqueeze(self, axis):
        return OPS.shape.unsqueeze(self, axis)

    def matmul(self, other):
        return OPS.matmul.matmul(self, other)

    def softmax(self, axis=-1):
        return OPS.softmax.softmax(self, axis)

    def log_softmax(self, axis=-1):
        return OPS.softmax.log_softmax(self, axis)

    def logsumexp(self, axis=None, keepdims=False):
        return OPS.softmax.logsumexp(self, axis, keepdims)


def as_tensor(value, like: Tensor | None = None) -> Tensor:
    """``value`` as a Tensor. A Python number takes the float dtype of ``like`` (so ``x * 0.5`` stays
    float32); arrays keep their dtype and are moved to ``like``'s device only if they are NumPy
    scalars or Python data."""
    if isinstance(value, Tensor):
        return value
    if (
        like is not None
        and isinstance(value, (bool, int, float, np.generic))
        and not isinstance(value, np.ndarray)
    ):
        dtype = like.dtype if _is_floating(like.dtype) else None
        if dtype is None and isinstance(value, float):
            dtype = DEFAULT_FLOAT_DTYPE
        xp = get_array_module(like.data)
        return Tensor(xp.asarray(value, dtype=dtype))
    if isinstance(value, (list, tuple, bool, int, float)):
        array = np.asarray(value)
        if _is_floating(array.dtype):
            array = array.astype(DEFAULT_FLOAT_DTYPE)
        if like is not None:
            array = to_device(array, like.device)
        return Tensor(array)
    return Tensor(value)
