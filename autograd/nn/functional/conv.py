"""2-D convolution: ``conv2d`` with PyTorch's semantics, computed by the fastest of three paths.

What every deep-learning library calls convolution is cross-correlation:

    out[n, o, i, j] = bias[o] + sum_{c, u, v} weight[o, c, u, v] * x_pad[n, g(o) * C/G + c, i*sh + u, j*sw + v]

Shapes: x (N, C, H, W); weight (O, C/G, KH, KW) for G groups; bias (O,); out (N, O, Ho, Wo) with
Ho = (H + 2 ph - KH) // sh + 1 and Wo likewise. Output channel o reads only the C/G input channels of
its group g(o) = o // (O/G).

The three paths (``conv2d`` picks one; all give the same numbers):
* ``Conv2dIm2col``, any conv: copy every KH x KW window into a row (im2col), then one matmul per group.
  Backward: dW = dout^T @ cols; dx, for stride 1, is itself a conv (of dout with the flipped kernel),
  otherwise dcols = dout @ W, scattered back where each column was read (col2im).
* ``PatchifyConv2d``, kernel == stride, no padding, one group (ConvNeXt's 4x4/s4 stem and 2x2/s2
  downsampling): the windows do not overlap, so cutting the image into patches is a reshape and the conv
  is a single matmul (Section 2.2 of the paper, "patchify stem").
* ``DepthwiseConv2d``, G == C == O (ConvNeXt's 7x7 ``dwconv``): one KH x KW filter per channel, a fused
  Numba kernel on the CPU (``autograd.kernels.cpu.depthwise_conv2d``) beside its NumPy reference.
"""

from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from ...function import Function
from ...kernels import dispatch
from ...tensor import as_tensor


def _pair(value, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"conv2d: {name} must be an int or a pair, got {value}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _sliding_windows(xp, x_pad, kh, kw, sh, sw, channels_last=False):
    """A view of every window, without copying: (N, C, Ho, Wo, KH, KW) of an NCHW ``x_pad``, or
    (N, Ho, Wo, C, KH, KW) of an NHWC one (``channels_last``)."""
    axes = (1, 2) if channels_last else (2, 3)
    if xp is np:
        windows = np.lib.stride_tricks.sliding_window_view(x_pad, (kh, kw), axis=axes)
    else:  # CuPy
        from cupy.lib.stride_tricks import sliding_window_view

        windows = sliding_window_view(x_pad, (kh, kw), axis=axes)
    return windows[:, ::sh, ::sw] if channels_last else windows[:, :, ::sh, ::sw]


def _im2col_channels_last(xp, x_nhwc, kh, kw, stride, padding, groups):
    """The rows of im2col from an (N, H, W, C) array: (cols, Ho, Wo), ``cols[g, (n, i, j), (u, v, c)]`` =
    x_pad[n, i*sh + u, j*sw + v, g*C/G + c]. Each row is KH x KW runs of contiguous channels, so the copy
    streams through memory (cut from NCHW, every element is gathered on its own: several times slower)."""
    (sh, sw), (ph, pw) = stride, padding
    n, h, w, c = x_nhwc.shape
    if ph or pw:
        x_pad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x_nhwc.dtype)
        x_pad[:, ph : ph + h, pw : pw + w, :] = x_nhwc
    else:  # no padding: the windows are cut from the (possibly transposed) view, copied once below
        x_pad = x_nhwc
    windows = _sliding_windows(xp, x_pad, kh, kw, sh, sw, channels_last=True)  # (N, Ho, Wo, C, KH, KW)
    ho, wo = windows.shape[1], windows.shape[2]
    cols = windows.reshape(n, ho, wo, groups, c // groups, kh, kw).transpose(3, 0, 1, 2, 5, 6, 4)
    return cols.reshape(groups, n * ho * wo, kh * kw * (c // groups)), ho, wo


class Conv2dIm2col(Function):
    """Any 2-D convolution as im2col + one matmul per group (see the module docstring).

    Backward, for the input: with stride 1 the gradient of a convolution is the convolution of the output's
    gradient, padded by (K - 1 - padding), with the kernel flipped and its in/out channels swapped; so it is
    im2col + matmul again. Otherwise (a stride, or padding wider than K - 1) the columns' gradient
    dout @ W^T is added back where each column was read (col2im).
    """

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), groups=1):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        cols, ho, wo = _im2col_channels_last(xp, x.transpose(0, 2, 3, 1), kh, kw, stride, padding, groups)
        # w_mat[g, (u, v, c), o']: the filters of group g, in the columns' order.
        w_mat = (
            weight.reshape(groups, o // groups, cg, kh, kw)
            .transpose(0, 3, 4, 2, 1)
            .reshape(groups, kh * kw * cg, o // groups)
        )
        out = cols @ w_mat  # (G, N*Ho*Wo, O/G)
        out = out.reshape(groups, n, ho, wo, o // groups).transpose(1, 0, 4, 2, 3).reshape(n, o, ho, wo)
        if bias is not None:
            out += bias.reshape(1, o, 1, 1)
        self.save_for_backward(cols, weight, w_mat)
        self.geometry = (x.shape, stride, padding, groups, ho, wo)
        return out

    def backward(self, grad):
        xp = get_array_module(grad)
        cols, weight, w_mat = self.saved
        x_shape, (sh, sw), (ph, pw), groups, ho, wo = self.geometry
        n, c, h, w = x_shape
        o, cg, kh, kw = weight.shape
        g2 = (
            grad.reshape(n, groups, o // groups, ho, wo)
            .transpose(1, 0, 3, 4, 2)
            .reshape(groups, n * ho * wo, -1)
        )
        grad_x = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            if (sh, sw) == (1, 1) and ph <= kh - 1 and pw <= kw - 1:  # a conv of dout with the flipped kernel
                grad_cols, _, _ = _im2col_channels_last(
                    xp, grad.transpose(0, 2, 3, 1), kh, kw, (1, 1), (kh - 1 - ph, kw - 1 - pw), groups
                )  # (G, N*H*W, (u, v, o'))
                flipped = weight.reshape(groups, o // groups, cg, kh, kw)[:, :, :, ::-1, ::-1]
                flipped = flipped.transpose(0, 3, 4, 1, 2).reshape(groups, kh * kw * (o // groups), cg)
                grad_x = (
                    (grad_cols @ flipped)
                    .reshape(groups, n, h, w, cg)
                    .transpose(1, 0, 4, 2, 3)
                    .reshape(n, c, h, w)
                )
            else:  # col2im: every tap adds its column back where it was read
                grad_cols = (g2 @ w_mat.transpose(0, 2, 1)).reshape(groups, n, ho, wo, kh, kw, cg)
                grad_pad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=grad.dtype)
                for u in range(kh):
                    for v in range(kw):
                        tap = grad_cols[:, :, :, :, u, v, :].transpose(1, 2, 3, 0, 4).reshape(n, ho, wo, c)
                        grad_pad[:, u : u + sh * ho : sh, v : v + sw * wo : sw, :] += tap
                grad_x = xp.ascontiguousarray(grad_pad[:, ph : ph + h, pw : pw + w, :].transpose(0, 3, 1, 2))
        if self.needs_input_grad[1]:
            grad_w = g2.transpose(0, 2, 1) @ cols  # (G, O/G, (u, v, c))
            grad_w = grad_w.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2).copy()
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            grad_b = grad.sum(axis=(0, 2, 3))
        return (grad_x, grad_w) if len(self.needs_input_grad) == 2 else (grad_x, grad_w, grad_b)


class PatchifyConv2d(Function):
    """A conv whose kernel equals its stride (no padding, one group): a reshape and one matmul."""

    def forward(self, x, weight, bias=None):
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        ho, wo = h // kh, w // kw
        x = x[:, :, : ho * kh, : wo * kw]  # rows and columns that no window reaches are dropped, as PyTorch
        patches = (
            x.reshape(n, c, ho, kh, wo, kw).transpose(0, 2, 4, 1, 3, 5).reshape(n * ho * wo, c * kh * kw)
        )
        w_mat = weight.reshape(o, c * kh * kw)
        out = patches @ w_mat.T
        if bias is not None:
            out += bias
        self.save_for_backward(patches, w_mat)
        self.geometry = (n, c, h, w, o, kh, kw, ho, wo)
        return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)

    def backward(self, grad):
        xp = get_array_module(grad)
        patches, w_mat = self.saved
        n, c, h, w, o, kh, kw, ho, wo = self.geometry
        g2 = grad.transpose(0, 2, 3, 1).reshape(n * ho * wo, o)
        grad_x = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            grad_x = (g2 @ w_mat).reshape(n, ho, wo, c, kh, kw).transpose(0, 3, 1, 4, 2, 5)
            grad_x = grad_x.reshape(n, c, ho * kh, wo * kw)
            if (ho * kh, wo * kw) != (h, w):
                grad_x = xp.pad(grad_x, ((0, 0), (0, 0), (0, h - ho * kh), (0, w - wo * kw)))
        if self.needs_input_grad[1]:
            grad_w = (g2.T @ patches).reshape(o, c, kh, kw)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            grad_b = g2.sum(axis=0)
        return (grad_x, grad_w) if len(self.needs_input_grad) == 2 else (grad_x, grad_w, grad_b)


class DepthwiseConv2d(Function):
    """One KH x KW filter per channel (groups == channels): the Numba or CUDA kernel, or the reference."""

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
        c, _, kh, kw = weight.shape
        filters = weight.reshape(c, kh, kw)
        self.kernels = dispatch.kernels("depthwise_conv2d", x, filters)
        self.has_bias = bias is not None
        self.options = (stride, padding)
        self.save_for_backward(x, filters)
        return self.kernels.depthwise_conv2d_nchw_forward(x, filters, bias, stride, padding)

    def backward(self, grad):
        x, filters = self.saved
        stride, padding = self.options
        grad_x, grad_w, grad_b = self.kernels.depthwise_conv2d_nchw_backward(
            x, filters, grad, stride, padding, self.has_bias
        )
        grad_w = grad_w.reshape(filters.shape[0], 1, *filters.shape[1:])
        return (grad_x, grad_w, grad_b) if self.has_bias else (grad_x, grad_w)


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
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    _check_conv_arguments(x, weight, bias, stride, padding, groups)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    o, _, kh, kw = weight.shape
    if groups == 1 and (kh, kw) == stride and padding == (0, 0):
        return PatchifyConv2d.apply(*tensors)
    if groups == x.shape[1] == o:
        return DepthwiseConv2d.apply(*tensors, stride=stride, padding=padding)
    return Conv2dIm2col.apply(*tensors, stride=stride, padding=padding, groups=groups)


def conv2d_im2col(x, weight, bias=None, stride=1, padding=0, groups=1):
    """``conv2d`` forced through the general im2col path (the reference the other paths are tested against)."""
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    _check_conv_arguments(x, weight, bias, stride, padding, groups)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return Conv2dIm2col.apply(*tensors, stride=stride, padding=padding, groups=groups)


# -- channels-last forms, for models that keep activations as (N, H, W, C) ------------------------
# ConvNeXt's block is friendliest in channels-last: LayerNorm and both Linears act on the last axis.
# These take the weights in PyTorch's layout (so parameters keep their official shapes) and NHWC
# activations, and never transpose an activation.


class DepthwiseConv2dChannelsLast(Function):
    """Depthwise conv of x (N, H, W, C) with weight (C, 1, KH, KW): the channel loop is innermost."""

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
        filters = weight.reshape(weight.shape[0], *weight.shape[2:]).transpose(1, 2, 0)  # (KH, KW, C)
        self.kernels = dispatch.kernels("depthwise_conv2d", x, filters)
        self.has_bias = bias is not None
        self.options = (stride, padding)
        self.weight_shape = weight.shape
        self.save_for_backward(x, filters)
        return self.kernels.depthwise_conv2d_nhwc_forward(x, filters, bias, stride, padding)

    def backward(self, grad):
        x, filters = self.saved
        stride, padding = self.options
        grad_x, grad_w, grad_b = self.kernels.depthwise_conv2d_nhwc_backward(
            x, filters, grad, stride, padding, self.has_bias
        )
        grad_w = grad_w.transpose(2, 0, 1).reshape(self.weight_shape)
        return (grad_x, grad_w, grad_b) if self.has_bias else (grad_x, grad_w)


class PatchifyConv2dChannelsLast(Function):
    """Kernel == stride conv of x (N, H, W, C) with weight (O, C, K, K): (N, H/K, W/K, O), one matmul."""

    def forward(self, x, weight, bias=None):
        n, h, w, c = x.shape
        o, _, kh, kw = weight.shape
        ho, wo = h // kh, w // kw
        x = x[:, : ho * kh, : wo * kw]
        patches = (
            x.reshape(n, ho, kh, wo, kw, c).transpose(0, 1, 3, 2, 4, 5).reshape(n * ho * wo, kh * kw * c)
        )
        w_mat = weight.transpose(0, 2, 3, 1).reshape(o, kh * kw * c)  # patch order (u, v, c)
        out = patches @ w_mat.T
        if bias is not None:
            out += bias
        self.save_for_backward(patches, w_mat)
        self.geometry = (n, h, w, c, o, kh, kw, ho, wo)
        return out.reshape(n, ho, wo, o)

    def backward(self, grad):
        xp = get_array_module(grad)
        patches, w_mat = self.saved
        n, h, w, c, o, kh, kw, ho, wo = self.geometry
        g2 = grad.reshape(n * ho * wo, o)
        grad_x = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            grad_x = (
                (g2 @ w_mat)
                .reshape(n, ho, wo, kh, kw, c)
                .transpose(0, 1, 3, 2, 4, 5)
                .reshape(n, ho * kh, wo * kw, c)
            )
            if (ho * kh, wo * kw) != (h, w):
                grad_x = xp.pad(grad_x, ((0, 0), (0, h - ho * kh), (0, w - wo * kw), (0, 0)))
        if self.needs_input_grad[1]:
            grad_w = (g2.T @ patches).reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
        if len(self.needs_input_grad) > 2 and self.needs_input_grad[2]:
            grad_b = g2.sum(axis=0)
        return (grad_x, grad_w) if len(self.needs_input_grad) == 2 else (grad_x, grad_w, grad_b)


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
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    _check_conv_arguments(x.permute(0, 3, 1, 2), weight, bias, stride, padding, c)
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return DepthwiseConv2dChannelsLast.apply(*tensors, stride=stride, padding=padding)


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
    tensors = (x, weight) if bias is None else (x, weight, bias)
    return PatchifyConv2dChannelsLast.apply(*tensors)
