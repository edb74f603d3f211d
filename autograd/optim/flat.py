"""Parameters side by side in one flat buffer, found so that an optimizer can update them in one pass.

``tinyconvnext.parallel.DataParallel`` keeps a model's parameters as consecutive views of one (shared)
buffer and their summed gradients as consecutive views of another. An optimizer that knows this can treat
the whole model as one long array with a few dozen segments, one per parameter, and update it in a single
multi-threaded kernel call instead of one call per parameter (PyTorch's ``foreach``/``fused`` optimizers do
the same with lists of tensors). ``FlatLayout.find`` recognises the layout from the arrays themselves;
nothing has to be declared, and any other layout simply is not found.
"""

from __future__ import annotations

import numpy as np


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _flat_view(first: np.ndarray, size: int) -> np.ndarray:
    """A 1-D view of ``size`` elements starting at ``first``'s first element (whose memory the caller has
    checked to be one contiguous run of arrays of ``first``'s dtype)."""
    return np.lib.stride_tricks.as_strided(
        first.reshape(-1), shape=(size,), strides=(first.itemsize,), writeable=True
    )


def consecutive_views(flat: np.ndarray, shapes) -> list:
    """One view into the 1-D ``flat`` per shape, side by side from its start: the layout ``FlatLayout`` finds
    (``DataParallel`` lays out its shared weights and gradients this way)."""
    sizes = [int(np.prod(shape)) for shape in shapes]
    if sum(sizes) > flat.size:
        raise ValueError(
            f"consecutive_views: the shapes need {sum(sizes)} elements, the buffer has {flat.size}"
        )
    starts = np.cumsum([0] + sizes)
    return [
        flat[start : start + size].reshape(shape)
        for start, size, shape in zip(starts, sizes, shapes, strict=False)
    ]


class FlatLayout:
    """Parameters whose data are consecutive C-contiguous views of one buffer, and whose gradients sit at the
    same offsets in another.

    Attributes:
        params: the parameters in buffer order.
        data, grad: the two flat 1-D views covering them.
        bounds: int64 array of the segments' starts and the end: parameter i is data[bounds[i]:bounds[i+1]].
    """

    def __init__(self, params, data, grad, bounds):
        self.params, self.data, self.grad, self.bounds = params, data, grad, bounds
        self._arrays = [(p.data, p.grad.data) for p in params]  # the very arrays found: see still_holds

    @classmethod
    def find(cls, params) -> FlatLayout | None:
        """The layout of ``params`` (in any order) and their gradients, or None when they are not flat: an
        array that owns its memory, a gap, an overlap, a missing gradient, a dtype that differs, ..."""
        params = list(params)
        first = params[0] if params else None
        if (
            first is None
            or first.grad is None
            or getattr(first.data, "base", None) is None
            or getattr(first.grad.data, "base", None) is None
        ):  # arrays of their own: the usual case, at once
            return None
        if any(
            p.grad is None or not isinstance(p.data, np.ndarray) or not isinstance(p.grad.data, np.ndarray)
            for p in params
        ):
            return None
        dtype = params[0].data.dtype
        if any(
            p.data.dtype != dtype
            or p.grad.data.dtype != dtype
            or p.grad.data.shape != p.data.shape
            or not p.data.flags.c_contiguous
            or not p.grad.data.flags.c_contiguous
            for p in params
        ):
            return None
        params.sort(key=lambda p: _address(p.data))
        data_start, grad_start = _address(params[0].data), _address(params[0].grad.data)
        bounds = [0]
        for p in params:
            offset = bounds[-1] * dtype.itemsize
            if _address(p.data) != data_start + offset or _address(p.grad.data) != grad_start + offset:
                return None
            bounds.append(bounds[-1] + p.data.size)
        total = bounds[-1]
        return cls(
            params,
            _flat_view(params[0].data, total),
            _flat_view(params[0].grad.data, total),
            np.array(bounds, dtype=np.int64),
        )

    def still_holds(self) -> bool:
        """Whether every parameter still has the data and gradient arrays that were found (a cheap check by
        identity, done before each step: a new ``.data`` or ``.grad`` array breaks the layout)."""
        return all(
            p.data is data and p.grad is not None and p.grad.data is grad
            for p, (data, grad) in zip(self.params, self._arrays, strict=False)
        )
