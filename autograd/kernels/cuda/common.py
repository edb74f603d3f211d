"""Helpers shared by the CUDA kernel families: the (outer, C, inner) view of the normalisation kernels.

The normalisation kernels (``layer_norm``, ``batch_norm``) serve both of ConvNeXt's layouts with one set
of kernels by viewing x as (outer, C, inner): element (o, c, s) lies at o * C * inner + c * inner + s.
Channels last (..., C) is outer = the product of the leading axes, inner = 1; channels first
(N, C, *spatial) is outer = N, inner = the product of the spatial axes.

The helpers the CPU kernels share too (``float_dtype``, ``check_window_geometry``) live once, in
``autograd.kernels.cpu.common``.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

ChannelLayout = namedtuple("ChannelLayout", ["outer", "channels", "inner"])


def channel_layout(shape, channels_last: bool) -> ChannelLayout:
    """(outer, channels, inner) of an array of this shape, with channels on the last axis or on axis 1."""
    if channels_last:
        return ChannelLayout(int(np.prod(shape[:-1])), shape[-1], 1)
    return ChannelLayout(shape[0], shape[1], int(np.prod(shape[2:])))
