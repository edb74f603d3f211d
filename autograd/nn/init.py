"""Weight initialisation, in place, drawing from the seedable generators of ``autograd.random``.

* ``trunc_normal_``: normal(mean, std) redrawn until inside [a, b] (absolute bounds, as timm's; ConvNeXt
  initialises every conv and linear weight with std 0.02).
* ``kaiming_uniform_``: PyTorch's default for Conv2d/Linear weights, U(-bound, bound) with
  bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)); with a = sqrt(5) that is 1 / sqrt(fan_in).
* ``kaiming_normal_``: He et al. (2015) for ReLU networks, normal(0, sqrt(2 / fan)); ``mode="fan_out"``
  (outputs fed by one input: out_channels KH KW, as PyTorch counts it) is the ResNet init.
"""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..backend import device_of, to_device


def _fill(tensor, values):
    tensor.data = to_device(
        np.asarray(values, dtype=tensor.dtype).reshape(tensor.shape), device_of(tensor.data)
    )
    return tensor


def fan_in(tensor) -> int:
    """Inputs feeding one output: in_features for Linear, (C/groups) KH KW for Conv2d."""
    shape = tensor.shape
    return int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])


def fan_out(tensor) -> int:
    """Outputs one input feeds, as PyTorch counts them: out_features for Linear, C_out KH KW for Conv2d."""
    shape = tensor.shape
    return int(shape[0] * np.prod(shape[2:])) if len(shape) > 1 else int(shape[0])


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    rng = _random.resolve(generator)
    dtype = np.float32 if tensor.dtype == np.float32 else np.float64  # float32 draws: large models init fast

    def draw(n):
        return rng.standard_normal(n, dtype=dtype) * dtype(std) + dtype(mean)

    values = draw(tensor.size)
    outside = np.flatnonzero((values < a) | (values > b))
    while outside.size:
        values[outside] = draw(outside.size)
        outside = outside[(values[outside] < a) | (values[outside] > b)]
    return _fill(tensor, values)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    return _fill(tensor, _random.resolve(generator).normal(mean, std, size=tensor.size))


def uniform_(tensor, low=0.0, high=1.0, generator=None):
    dtype = np.float32 if tensor.dtype == np.float32 else np.float64
    draws = _random.resolve(generator).random(tensor.size, dtype=dtype)
    return _fill(tensor, draws * dtype(high - low) + dtype(low))


SQRT_5 = math.sqrt(5)  # PyTorch's default a, for Conv2d and Linear


def kaiming_uniform_(tensor, a=SQRT_5, generator=None):
    gain = math.sqrt(2.0 / (1 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in(tensor))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, mode="fan_in", generator=None):
    """normal(0, sqrt(2 / fan)) for a ReLU network: ``torch.nn.init.kaiming_normal_(nonlinearity="relu")``."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_normal_: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in(tensor) if mode == "fan_in" else fan_out(tensor)
    return normal_(tensor, 0.0, math.sqrt(2.0 / fan), generator)


def constant_(tensor, value):
    return _fill(tensor, np.full(tensor.size, value))


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)
