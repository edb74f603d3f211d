"""Random regularisers: dropout (per element) and drop path / stochastic depth (per sample).

Both keep a value with probability 1 - p and scale the kept ones by 1 / (1 - p), so the expected output
equals the input and evaluation needs no rescaling. The backward is the same mask and scale.

Drop path (Huang et al., 2016, "Deep Networks with Stochastic Depth"; ConvNeXt Section 2.1) drops the
whole residual branch of a sample: the mask has shape (N, 1, 1, ...).
"""

from __future__ import annotations

import numpy as np

from ... import random as _random
from ...backend import device_of, to_device
from ...function import Function
from ...tensor import as_tensor


class ScaleByMask(Function):
    """y = x * factors, the factors a fixed (non-differentiable) array broadcast against x: 0 where a value
    is dropped, 1 / (1 - p) where it is kept (``_keep_factors``)."""

    def forward(self, x, factors=None):
        self.factor = factors
        return x * self.factor

    def backward(self, grad):
        return grad * self.factor


def _keep_mask(shape, keep_prob, like, generator):
    """A 0/1 mask drawn on the CPU from the (seedable) generator, on the device of ``like``."""
    mask = _random.resolve(generator).random(shape) < keep_prob
    return to_device(mask.astype(like.dtype), device_of(like))


def _keep_factors(shape, p, like, generator):
    """Per-value factors 1 / (1 - p) (kept, probability 1 - p) or 0 (dropped), on the device of ``like``.
    At p = 1 every value is dropped and nothing is drawn, so the generator's stream is left as it was."""
    if p == 1.0:
        return to_device(np.zeros(shape, like.dtype), device_of(like))
    return _keep_mask(shape, 1.0 - p, like, generator) * like.dtype.type(1.0 / (1.0 - p))


def _check_p(name, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be a probability in [0, 1], got {p}")


def _drop(name, x, p, training, generator, per_sample):
    """Keep values with probability 1 - p, scaled by 1 / (1 - p): per element, or per sample."""
    _check_p(name, p)
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    shape = (x.shape[0],) + (1,) * (x.ndim - 1) if per_sample else x.shape
    return ScaleByMask.apply(
        x, factors=_keep_factors(shape, p, x.data, generator)
    )  # p = 1: all zeros, no draw


def dropout(x, p: float = 0.5, training: bool = True, generator=None):
    """Zero each value with probability p, scale the rest by 1 / (1 - p): ``torch.nn.functional.dropout``."""
    return _drop("dropout", x, p, training, generator, per_sample=False)


def drop_path(x, p: float = 0.0, training: bool = False, generator=None):
    """Drop whole samples of a residual branch with probability p; scale the kept ones by 1 / (1 - p).

    The same as timm's ``drop_path(x, drop_prob=p, training, scale_by_keep=True)``.
    """
    return _drop("drop_path", x, p, training, generator, per_sample=True)
