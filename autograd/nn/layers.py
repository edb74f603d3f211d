"""Layers: each owns its parameters and calls one function of ``autograd.nn.functional``.

Names, arguments, parameter names and shapes, and default initialisations follow ``torch.nn``.
"""

from __future__ import annotations

import numpy as np

from .. import creation
from ..utils import pair
from . import functional as F
from . import init
from .module import Module, Parameter


def _default_init(weight, bias):
    """PyTorch's default for Conv2d and Linear: weight U(+-1/sqrt(fan_in)) (kaiming_uniform_ with a=sqrt(5)),
    bias U(+-1/sqrt(fan_in))."""
    init.kaiming_uniform_(weight)
    if bias is not None:
        bound = 1 / np.sqrt(init.fan_in(weight))
        init.uniform_(bias, -bound, bound)


class Conv2d(Module):
    """2-D convolution; weight (out, in/groups, KH, KW), bias (out,). PyTorch's default init."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1, bias=True):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        kh, kw = pair(kernel_size, "kernel_size")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.groups = (kh, kw), stride, padding, groups
        self.weight = Parameter(creation.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = Parameter(creation.empty(out_channels)) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.groups)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, groups={self.groups}"
        )


class Linear(Module):
    """y = x W^T + b; weight (out, in), bias (out,). PyTorch's default init."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(creation.empty(out_features, in_features))
        self.bias = Parameter(creation.empty(out_features)) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}"


class LayerNorm(Module):
    """LayerNorm over the last axis ("channels_last", as torch.nn.LayerNorm over one axis) or over the
    channels of an NCHW tensor ("channels_first"), as the official ConvNeXt ``LayerNorm`` class."""

    def __init__(self, normalized_shape, eps=1e-6, data_format="channels_last"):
        super().__init__()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"LayerNorm: data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
            )
        self.normalized_shape = (
            (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        )
        self.eps, self.data_format = eps, data_format
        self.weight = Parameter(creation.ones(*self.normalized_shape))
        self.bias = Parameter(creation.zeros(*self.normalized_shape))

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return F.layer_norm_channels_first(x, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, data_format={self.data_format}"


class BatchNorm2d(Module):
    """BatchNorm over (N, C, H, W) with running statistics (buffers) and PyTorch's state-dict keys; with
    ``data_format="channels_last"`` over (N, H, W, C), as ``LayerNorm``'s option (the same numbers).

    ``momentum=None`` makes the running statistics the plain average over all batches seen since
    ``num_batches_tracked`` was 0 (PyTorch's cumulative moving average), as ``recompute_batchnorm_statistics``
    uses."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, data_format="channels_first"):
        super().__init__()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"BatchNorm2d: data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
            )
        self.num_features, self.eps, self.momentum, self.data_format = (
            num_features,
            eps,
            momentum,
            data_format,
        )
        self.weight = Parameter(creation.ones(num_features))
        self.bias = Parameter(creation.zeros(num_features))
        self.register_buffer("running_mean", creation.zeros(num_features))
        self.register_buffer("running_var", creation.ones(num_features))
        self.register_buffer("num_batches_tracked", creation.tensor(0))

    def forward(self, x):
        momentum = self.momentum
        if self.training:
            self.num_batches_tracked.data = self.num_batches_tracked.data + 1
            if momentum is None:  # the k-th batch gets weight 1/k: the mean over all k batches
                momentum = 1.0 / float(self.num_batches_tracked.data)
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=self.training,
            momentum=0.0 if momentum is None else momentum,
            eps=self.eps,
            channels_last=self.data_format == "channels_last",
        )

    def extra_repr(self):
        layout = ", data_format=channels_last" if self.data_format == "channels_last" else ""
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}{layout}"


class GELU(Module):
    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class DropPath(Module):
    """Stochastic depth on a residual branch (drops whole samples while training)."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.drop_path(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class AdaptiveAvgPool2d(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class Flatten(Module):
    """Merge all axes after the first (as torch.nn.Flatten)."""

    def forward(self, x):
        return x.flatten(1)


class DepthwiseConv2dChannelsLast(Module):
    """Depthwise conv on (N, H, W, C) activations; weight (C, 1, KH, KW) and bias (C,) as torch's
    ``Conv2d(C, C, K, groups=C)``, so its parameters load from a PyTorch state dict unchanged."""

    def __init__(self, channels, kernel_size, stride=1, padding=0, bias=True):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size")
        self.channels, self.kernel_size, self.stride, self.padding = channels, (kh, kw), stride, padding
        self.weight = Parameter(creation.empty(channels, 1, kh, kw))
        self.bias = Parameter(creation.empty(channels)) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x):
        return F.depthwise_conv2d_channels_last(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self):
        return f"{self.channels}, kernel_size={self.kernel_size}, padding={self.padding}, channels_last"


class PatchifyConv2dChannelsLast(Module):
    """Kernel == stride conv on (N, H, W, C) activations; weight (O, C, K, K) and bias (O,) as torch's
    ``Conv2d(C, O, K, stride=K)``."""

    def __init__(self, in_channels, out_channels, patch_size, bias=True):
        super().__init__()
        self.in_channels, self.out_channels, self.patch_size = in_channels, out_channels, patch_size
        self.weight = Parameter(creation.empty(out_channels, in_channels, patch_size, patch_size))
        self.bias = Parameter(creation.empty(out_channels)) if bias else None
        _default_init(self.weight, self.bias)

    def forward(self, x):
        return F.patchify_conv2d_channels_last(x, self.weight, self.bias)

    def extra_repr(self):
        return f"{self.in_channels}, {self.out_channels}, patch_size={self.patch_size}, channels_last"
