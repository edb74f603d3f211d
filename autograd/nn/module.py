"""Module and Parameter: layers that own tensors, with names, state dicts, train/eval and devices.

A ``Module`` keeps, in the order they were assigned, its ``Parameter``s (learned), its buffers
(saved but not learned, like BatchNorm's running statistics) and its submodules. Names join with dots
(``stages.0.0.dwconv.weight``), exactly as in PyTorch, so a PyTorch state dict maps one to one.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..backend import device_of, to_device, to_numpy
from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that a Module learns: requires grad by default and is listed by ``parameters()``."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data.data if isinstance(data, Tensor) else data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model: subclasses set attributes in ``__init__``, define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.__init__ must call super().__init__() before setting attributes"
            )
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """A tensor saved in the state dict and moved with the module, but not learned."""
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        setattr(self, name, tensor)

    # -- walking the tree --------------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def children(self):
        return iter(m for m in self._modules.values() if m is not None)

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) for every parameter, in registration order."""
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # -- modes -------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def apply(self, fn) -> Module:
        """Call ``fn`` on every submodule (children first) and on self, as PyTorch's ``Module.apply``."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -- devices and dtypes ------------------------------------------------------------------
    def to(self, device=None, dtype=None) -> Module:
        """Move (in place) every parameter and buffer to ``device`` and/or cast floating ones to ``dtype``."""
        for _, module in self.named_modules():
            for table in (module._parameters, module._buffers):
                for tensor in table.values():
                    if tensor is None:
                        continue
                    data = tensor.data
                    if dtype is not None and np.issubdtype(data.dtype, np.floating):
                        data = data.astype(dtype)
                    if device is not None:
                        data = to_device(data, device)
                    tensor.data = data
                    if tensor.grad is not None:
                        tensor.grad = None
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("cuda")

    # -- state dicts -------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Every parameter and buffer by dotted name, as NumPy arrays (copies, on the host)."""
        out = OrderedDict()
        for name, tensor in list(self.named_parameters()) + list(self.named_buffers()):
            out[name] = np.array(to_numpy(tensor.data), copy=True)
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into the parameters and buffers, after checking every key and shape.

        With ``strict=True`` any missing, unexpected or mis-shaped key raises one ``KeyError`` that lists
        all of them, and nothing is loaded. With ``strict=False`` the matching keys are loaded and the
        missing and unexpected ones are returned; a shape mismatch is always an error.
        Returns:
            (missing_keys, unexpected_keys)
        """
        own = OrderedDict(list(self.named_parameters()) + list(self.named_buffers()))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mis_shaped = [
            f"{k}: checkpoint {tuple(np.shape(_array_of(state_dict[k])))}, model {own[k].shape}"
            for k in own
            if k in state_dict and tuple(np.shape(_array_of(state_dict[k]))) != own[k].shape
        ]
        if mis_shaped or (strict and (missing or unexpected)):
            lines = [f"cannot load the state dict into {type(self).__name__}; nothing was loaded:"]
            if missing:
                lines.append(f"  missing keys ({len(missing)}): {', '.join(missing)}")
            if unexpected:
                lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
            if mis_shaped:
                lines.append(f"  mis-shaped keys ({len(mis_shaped)}): " + "; ".join(mis_shaped))
            raise KeyError("\n".join(lines))
        for name, tensor in own.items():
            if name in state_dict:
                value = np.asarray(to_numpy(_array_of(state_dict[name])))
                tensor.data = to_device(value.astype(tensor.dtype, copy=True), device_of(tensor.data))
        return missing, unexpected

    # -- calling -----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ("\n" + "\n".join(children) + "\n)" if children else ")")


def _array_of(value):
    """A state-dict value as an array: our Tensors, NumPy arrays, or anything with ``.numpy()`` (torch)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return value
