"""2-D convolution: ``conv2d`` with PyTorch's semantics, and ConvNeXt's depthwise convolution.

What every deep-learning library calls convolution is cross-correlation:

    out[n, o, i, j] = bias[o] + sum_{c, u, v} weight[o, c, u, v] * x_pad[n, g(o) C/G + c, i*sh + u, j*sw + v]

Shapes: x (N, C, H, W); weight (O, C/G, KH, KW) for G groups; bias (O,); out (N, O, Ho, Wo) with
Ho = (H + 2 ph - KH) // sh + 1 and Wo likewise. Output channel o reads only the C/G input channels of
its group g(o) = o // (O/G).

``conv2d`` computes it by one of three ops, which give the same numbers:
* ``DepthwiseConv2d`` (below), G == C == O: one KH x KW filter per channel (ConvNeXt's 7x7 ``dwconv``);
* ``PatchifyConv2d`` (``conv_im2col.py``), kernel == stride, no padding, one group: a reshape and a matmul;
* ``Conv2dIm2col`` (``conv_im2col.py``), any other conv: every window copied into a row, then matmuls.
The channels-last forms (``depthwise_conv2d_channels_last``, ``patchify_conv2d_channels_last``) run the same
ops on (N, H, W, C) activations, with the weights in PyTorch's layout: ConvNeXt's block keeps its activations
channels-last, where LayerNorm and both Linears act on the last axis.
"""

from __future__ import annotations

from ...backend import get_array_module
from ...function import Function
from ...tensor import as_tensor
from ...utils import conv_output_size, pair
from .conv_im2col import Conv2dIm2col, PatchifyConv2d


class DepthwiseConv2d(Function):
    """One KH x KW filter per channel (groups == C == O), written channels-last (N, H, W, C):

        out[n, i, j, c] = bias[c] + sum_{u, v} w[c, u, v] * x_pad[n, i*sh + u, j*sw + v, c]
        dw[c, u, v] = sum_{n, i, j} dout[n, i, j, c] * x_pad[n, i*sh + u, j*sw + v, c]
        dx_pad[n, i*sh + u, j*sw + v, c] += w[c, u, v] * dout[n, i, j, c]     (then the padding cut off)
        dbias[c] = sum_{n, i, j} dout[n, i, j, c]

    One tap (u, v) is one shifted multiply-add over the whole batch. An NCHW input (``channels_last=False``)
    is viewed channels-last by a transpose, so this one body serves both layouts.
    weight (C, 1, KH, KW), as PyTorch's; bias (C,) or None.

    Fast paths: the Numba kernels of ``autograd/kernels/cpu/depthwise_conv2d/`` on NumPy arrays, the CUDA
    kernels of ``autograd/kernels/cuda/depthwise_conv2d.py`` on CuPy arrays; both read either layout as it is.
    """

    fast_paths = {
        "cpu": "autograd.kernels.cpu.depthwise_conv2d",
        "cuda": "autograd.kernels.cuda.depthwise_conv2d",
    }

    def forward(self, x, weight, bias, stride, padding, channels_last):
        xp = get_array_module(x)
        x = x if channels_last else x.transpose(0, 2, 3, 1)
        (sh, sw), (ph, pw) = stride, padding
        n, h, w, c = x.shape
        kh, kw = weight.shape[2:]
        ho, wo = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        x_pad = xp.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
        filters = weight.reshape(c, kh, kw)
        out = xp.zeros((n, ho, wo, c), dtype=x.dtype)
        for u in range(kh):
            for v in range(kw):
                out += filters[:, u, v] * x_pad[:, u : u + sh * ho : sh, v : v + sw * wo : sw, :]
        if bias is not None:
            out += bias
        self.save_for_backward(x_pad, filters)
        self.geometry = (h, w, stride, padding, channels_last, bias is not None)
        return out if channels_last else xp.ascontiguousarray(out.transpose(0, 3, 1, 2))

    def backward(self, grad):
        xp = get_array_module(grad)
        x_pad, filters = self.saved
        h, w, (sh, sw), (ph, pw), channels_last, has_bias = self.geometry
        grad = grad if channels_last else grad.transpose(0, 2, 3, 1)
        ho, wo = grad.shape[1:3]
        grad_pad, grad_w = xp.zeros_like(x_pad), xp.zeros_like(filters)
        for u in range(filters.shape[1]):
            for v in range(filters.shape[2]):
                tap = (slice(None), slice(u, u + sh * ho, sh), slice(v, v + sw * wo, sw))
                grad_w[:, u, v] = (grad * x_pad[tap]).sum(axis=(0, 1, 2))
                grad_pad[tap] += filters[:, u, v] * grad
        grad_x = grad_pad[:, ph : ph + h, pw : pw + w, :]
        grad_x = grad_x if channels_last else grad_x.transpose(0, 3, 1, 2)
        grad_b = grad.sum(axis=(0, 1, 2)) if has_bias else None
        return xp.ascontiguousarray(grad_x), grad_w[:, None], grad_b

    def fast_forward(self, kernels, x, weight, bias, stride, padding, channels_last):
        c, _, kh, kw = weight.shape
        filters = weight.reshape(c, kh, kw)  # the kernels take (C, KH, KW) for NCHW, (KH, KW, C) for NHWC
        if channels_last:
            filters = filters.transpose(1, 2, 0)
            out = kernels.depthwise_conv2d_nhwc_forward(x, filters, bias, stride, padding)
        else:
            out = kernels.depthwise_conv2d_nchw_forward(x, filters, bias, stride, padding)
        self.save_for_backward(x, filters)
        self.geometry = (stride, padding, channels_last, bias is not None, weight.shape)
        return out

    def fast_backward(self, grad):
        x, filters = self.saved
        stride, padding, channels_last, has_bias, weight_shape = self.geometry
        if channels_last:
            grads = self.kernels.depthwise_conv2d_nhwc_backward(x, filters, grad, stride, padding, has_bias)
            grad_x, grad_w, grad_b = grads
            grad_w = grad_w.transpose(2, 0, 1)
        else:
            grads = self.kernels.depthwise_conv2d_nchw_backward(x, filters, grad, stride, padding, has_bias)
            grad_x, grad_w, grad_b = grads
        return grad_x, grad_w.reshape(weight_shape), grad_b


def depthwise_conv2d_channels_last(x, weight, bias=None, stride=1, padding=0):
    """Depthwise conv of a channels-last batch: x (N, H, W, C), weight (C, 1, KH, KW) -> (N, Ho, Wo, C).

    The same numbers as ``conv2d(x.permute(0, 3, 1, 2), weight, bias, stride, padding, groups=C)``
    permuted back to channels-last.
    """
    x, weight, bias = _channels_last_arguments("depthwise_conv2d_channels_last", x, weight, bias)
    c = x.shape[3]
    if weight.shape[:2] != (c, 1):
        raise ValueError(
            f"depthwise_conv2d_channels_last: weight must be ({c}, 1, KH, KW) for input {x.shape}, "
            f"got {weight.shape}"
        )
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    _check_conv_arguments(x.permute(0, 3, 1, 2), weight, bias, stride, padding, c)
    return DepthwiseConv2d.apply(x, weight, bias, stride=stride, padding=padding, channels_last=True)


def conv2d(x, weight, bias=None, stride=1, padding=0, groups=1):
    """2-D convolution of an NCHW batch, as ``torch.nn.functional.conv2d`` (without dilation).

    Args:
        x: (N, C, H, W). weight: (O, C/groups, KH, KW). bias: (O,) or None.
        stride, padding: an int or a pair (height, width). groups: C and O must both be divisible by it.
    Returns:
        (N, O, Ho, Wo), Ho = (H + 2 padding - KH) // stride + 1.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    _check_conv_arguments(x, weight, bias, stride, padding, groups)
    o, _, kh, kw = weight.shape
    if groups == 1 and (kh, kw) == stride and padding == (0, 0):
        return PatchifyConv2d.apply(x, weight, bias, channels_last=False)
    if groups == x.shape[1] == o:
        return DepthwiseConv2d.apply(x, weight, bias, stride=stride, padding=padding, channels_last=False)
    return Conv2dIm2col.apply(x, weight, bias, stride=stride, padding=padding, groups=groups)


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0, groups=1):
    """``conv2d`` forced through the general im2col path (the other paths are tested against it)."""
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    _check_conv_arguments(x, weight, bias, stride, padding, groups)
    return Conv2dIm2col.apply(x, weight, bias, stride=stride, padding=padding, groups=groups)


def patchify_conv2d_channels_last(x, weight, bias=None):
    """Conv with kernel == stride and no padding on a channels-last batch: x (N, H, W, C), weight (O, C, K, K)
    -> (N, H // K, W // K, O). The stem (K = 4) and the downsampling layers (K = 2) of ConvNeXt."""
    x, weight, bias = _channels_last_arguments("patchify_conv2d_channels_last", x, weight, bias)
    if weight.shape[1] != x.shape[3]:
        raise ValueError(
            f"patchify_conv2d_channels_last: weight {weight.shape} expects {weight.shape[1]} input "
            f"channels, but the input {x.shape} has {x.shape[3]}"
        )
    kh, kw = weight.shape[2:]
    if x.shape[1] < kh or x.shape[2] < kw:
        raise ValueError(
            f"patchify_conv2d_channels_last: input {x.shape} is smaller than the patch {(kh, kw)}"
        )
    return PatchifyConv2d.apply(x, weight, bias, channels_last=True)


def _check_conv_arguments(x, weight, bias, stride, padding, groups):
    if x.ndim != 4:
        raise ValueError(f"conv2d expects input of shape (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d expects weight of shape (O, C/groups, KH, KW), got shape {weight.shape}")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if groups < 1 or c % groups or o % groups:
        raise ValueError(
            f"conv2d: groups={groups} must divide both the input channels ({c}, input {x.shape}) "
            f"and the output channels ({o}, weight {weight.shape})"
        )
    if cg != c // groups:
        raise ValueError(
            f"conv2d: weight {weight.shape} expects {cg * groups} input channels for groups={groups}, "
            f"but the input {x.shape} has {c}"
        )
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"conv2d: bias must have shape ({o},) for weight {weight.shape}, got {bias.shape}")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"conv2d: stride must be >= 1 and padding >= 0, got stride={stride}, padding={padding}"
        )
    ho = conv_output_size(h, kh, stride[0], padding[0])
    wo = conv_output_size(w, kw, stride[1], padding[1])
    if ho < 1 or wo < 1:
        raise ValueError(
            f"conv2d: input {x.shape} with padding {padding} is smaller than the kernel {(kh, kw)}; "
            f"the output would be {ho}x{wo}"
        )
    if x.device != weight.device:
        raise ValueError(f"conv2d: input is on {x.device} but weight is on {weight.device}")


def _channels_last_arguments(name, x, weight, bias):
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    if x.ndim != 4:
        raise ValueError(f"{name} expects input of shape (N, H, W, C), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(
            f"{name} expects a weight in PyTorch's layout (O, C/groups, KH, KW), got shape {weight.shape}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"{name}: bias must have shape ({weight.shape[0]},) for weight {weight.shape}, got {bias.shape}"
        )
    return x, weight, bias
