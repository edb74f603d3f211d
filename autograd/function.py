"""Function: one differentiable operation, forward on raw arrays with its backward right beneath it.

Calling ``SomeOp.apply(*tensors, **options)``:
1. runs ``forward`` on the tensors' arrays (no graph inside an op),
2. wraps the result in a new Tensor,
3. if gradients are wanted, records the op as that tensor's creator (``tensor._ctx``), keeping its inputs
   and whatever ``forward`` saved for ``backward``.

``backward(grad_output)`` returns one gradient per input (an array or None), in the shape of the op's
output or of the input: the engine (``autograd.graph``) sums a gradient back over broadcast dimensions, and
drops the gradients of inputs that need none. An optional input (a bias) may be passed as None: ``forward``
gets None, and ``backward`` returns None in its place.
This is the ``ctx`` pattern of MiniTorch and PyTorch, and DeZero's ``Function``.

An op with a fast kernel names it in ``fast_paths`` and writes ``fast_forward``/``fast_backward`` beside its
own body; ``apply`` runs them when ``autograd.kernels`` finds a kernel for the inputs' device and the switch
is on (see ``autograd/kernels/__init__.py``). Either way the op computes the same numbers.
"""

from __future__ import annotations

import functools

from . import kernels
from .backend import device_of
from .tensor import Tensor


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class set_grad_enabled:
    """Turn graph recording on or off, as a context manager or a decorator."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.previous = []

    def __enter__(self):
        self.previous.append(_GradMode.enabled)
        _GradMode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self.previous.pop()
        return False

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return wrapper


class no_grad(set_grad_enabled):
    """Record nothing: ops inside give tensors without a creator, so no activation is kept alive.

    Use as ``with autograd.no_grad(): ...`` or as the decorator ``@autograd.no_grad()``.
    """

    def __init__(self, mode: bool = False):
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Record again inside a ``no_grad`` block."""

    def __init__(self, mode: bool = True):
        super().__init__(True)


class Function:
    """Base class of every differentiable op. Subclasses define ``forward`` and ``backward``.

    Every concrete subclass is listed in ``Function.registry``; the test suite requires a gradient
    check case for each entry, so a new op cannot land unchecked.
    """

    registry: dict[str, type] = {}
    fast_paths: dict[str, str] = {}  # device ("cpu", "cuda") -> kernel module; empty: the body always runs

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Concrete ops only: a private base (name starting with "_") that shares a body is not an op itself.
        if (
            not cls.__name__.startswith("_")
            and cls.forward is not Function.forward
            and cls.backward is not Function.backward
        ):
            Function.registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def __init__(self):
        self.inputs = ()
        self.needs_input_grad = ()
        self.saved = ()
        self.kernels = None  # the kernel module that ran forward, or None: the op's own body did
        self.freed = False

    # -- what subclasses write --------------------------------------------------------------
    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad_output):
        raise NotImplementedError

    def fast_forward(self, kernels, *arrays, **options):
        """``forward`` through the kernel module ``kernels`` (only ops that name ``fast_paths``)."""
        raise NotImplementedError

    def fast_backward(self, grad_output):
        """``backward`` through ``self.kernels``, the module ``fast_forward`` used."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------
    def save_for_backward(self, *arrays) -> None:
        self.saved = arrays

    def release(self) -> None:
        """Drop the inputs and saved arrays once backward has used them (``retain_graph=False``)."""
        self.__dict__.clear()
        self.freed = True

    @classmethod
    def apply(cls, *inputs, **options):
        """Run the op on Tensors (None for an absent optional input) and record it for backward."""
        for t in inputs:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"{cls.__name__} expects Tensor inputs, got {type(t).__name__}")
        present = [t for t in inputs if t is not None]
        if len({device_of(t.data) for t in present}) > 1:
            shown = ", ".join(f"{device_of(t.data)} {tuple(t.shape)}" for t in present)
            raise ValueError(
                f"{cls.__name__}: all inputs must be on the same device, got {shown}; "
                "move them with .to(device) first"
            )
        ctx = cls()
        ctx.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
        record = _GradMode.enabled and any(ctx.needs_input_grad)
        arrays = tuple(None if t is None else t.data for t in inputs)
        ctx.kernels = kernels.kernel_for(cls, arrays)
        if ctx.kernels is None:
            data = ctx.forward(*arrays, **options)
        else:
            data = ctx.fast_forward(ctx.kernels, *arrays, **options)
        out = Tensor(data, requires_grad=record)
        if record:
            ctx.inputs = inputs
            out._ctx = ctx
        return out

    def __repr__(self):
        return f"<{self.__class__.__name__}{' (freed)' if self.freed else ''}>"
