"""Convolution as matrix products: im2col for any convolution, and the patchify convolution of the stem.

Both turn the windows of the input into the rows of a matrix, so that the whole convolution is one matrix
product per group (BLAS sgemm), and its backward pass is two more:

    cols[(n, i, j), (u, v, c)] = x_pad[n, i*sh + u, j*sw + v, c]        (one row per output pixel)
    out = cols @ W_mat,   dW_mat = cols^T @ dout,   dcols = dout @ W_mat^T (added back where each was read)

* ``Conv2dIm2col`` copies every window into its row (im2col), for any kernel, stride, padding and groups.
* ``PatchifyConv2d`` is the case kernel == stride, no padding (ConvNeXt's 4x4/s4 stem and 2x2/s2
  downsampling, the paper's Section 2.2): the windows do not overlap, so cutting the image into patches is
  a reshape, and its backward pass is the reverse reshape.

Rows are cut from the channels-last (N, H, W, C) layout: each row is then KH x KW runs of contiguous
channels, and the copy streams through memory. An NCHW input is viewed channels-last by a transpose.
Neither op has a fast kernel: the matrix products are already BLAS.
"""

from __future__ import annotations

from ...backend import get_array_module
from ...function import Function
from ...utils import sliding_windows


def im2col(xp, x_nhwc, kh, kw, stride, padding, groups):
    """The rows of im2col from an (N, H, W, C) array: (cols, Ho, Wo), with
    ``cols[g, (n, i, j), (u, v, c)] = x_pad[n, i*sh + u, j*sw + v, g*C/G + c]``."""
    (sh, sw), (ph, pw) = stride, padding
    n, h, w, c = x_nhwc.shape
    if ph or pw:
        x_pad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=x_nhwc.dtype)
        x_pad[:, ph : ph + h, pw : pw + w, :] = x_nhwc
    else:  # no padding: the windows are cut from the (possibly transposed) view, copied once below
        x_pad = x_nhwc
    windows = sliding_windows(xp, x_pad, kh, kw, sh, sw, channels_last=True)  # (N, Ho, Wo, C, KH, KW)
    ho, wo = windows.shape[1], windows.shape[2]
    cols = windows.reshape(n, ho, wo, groups, c // groups, kh, kw).transpose(3, 0, 1, 2, 5, 6, 4)
    return cols.reshape(groups, n * ho * wo, kh * kw * (c // groups)), ho, wo


class Conv2dIm2col(Function):
    """Any 2-D convolution of x (N, C, H, W) as im2col + one matmul per group (see the module docstring).

    Backward, for the input: with stride 1 the gradient of a convolution is the convolution of the output's
    gradient, padded by (K - 1 - padding), with the kernel flipped and its in/out channels swapped; so it is
    im2col + matmul again. Otherwise (a stride, or padding wider than K - 1) the columns' gradient
    dout @ W^T is added back where each column was read (col2im).
    """

    def forward(self, x, weight, bias, stride, padding, groups):
        xp = get_array_module(x)
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        cols, ho, wo = im2col(xp, x.transpose(0, 2, 3, 1), kh, kw, stride, padding, groups)
        # w_mat[g, (u, v, c), o']: the filters of group g, in the columns' order.
        w_mat = weight.reshape(groups, o // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1)
        w_mat = w_mat.reshape(groups, kh * kw * cg, o // groups)
        out = cols @ w_mat  # (G, N*Ho*Wo, O/G)
        out = out.reshape(groups, n, ho, wo, o // groups).transpose(1, 0, 4, 2, 3).reshape(n, o, ho, wo)
        if bias is not None:
            out += bias.reshape(1, o, 1, 1)
        self.save_for_backward(cols, weight, w_mat)
        self.geometry = (x.shape, stride, padding, groups, ho, wo)
        return out

    def backward(self, grad):
        cols, weight, w_mat = self.saved
        x_shape, stride, padding, groups, ho, wo = self.geometry
        n, o = grad.shape[:2]
        g2 = (
            grad.reshape(n, groups, o // groups, ho, wo)
            .transpose(1, 0, 3, 4, 2)
            .reshape(groups, n * ho * wo, -1)
        )
        grad_x = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            grad_x = self._input_grad(grad, g2, weight, w_mat)
        if self.needs_input_grad[1]:
            o, cg, kh, kw = weight.shape
            grad_w = g2.transpose(0, 2, 1) @ cols  # (G, O/G, (u, v, c))
            grad_w = grad_w.reshape(o, kh, kw, cg).transpose(0, 3, 1, 2).copy()
        if self.needs_input_grad[2]:
            grad_b = grad.sum(axis=(0, 2, 3))
        return grad_x, grad_w, grad_b

    def _input_grad(self, grad, g2, weight, w_mat):
        xp = get_array_module(grad)
        (n, c, h, w), (sh, sw), (ph, pw), groups, ho, wo = self.geometry
        o, cg, kh, kw = weight.shape
        if (sh, sw) == (1, 1) and ph <= kh - 1 and pw <= kw - 1:  # a conv of dout with the flipped kernel
            full = (kh - 1 - ph, kw - 1 - pw)
            grad_cols, _, _ = im2col(xp, grad.transpose(0, 2, 3, 1), kh, kw, (1, 1), full, groups)
            flipped = weight.reshape(groups, o // groups, cg, kh, kw)[:, :, :, ::-1, ::-1]
            flipped = flipped.transpose(0, 3, 4, 1, 2).reshape(groups, kh * kw * (o // groups), cg)
            grad_x = (grad_cols @ flipped).reshape(groups, n, h, w, cg)
            return grad_x.transpose(1, 0, 4, 2, 3).reshape(n, c, h, w)
        # col2im: every tap adds its column back where it was read
        grad_cols = (g2 @ w_mat.transpose(0, 2, 1)).reshape(groups, n, ho, wo, kh, kw, cg)
        grad_pad = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=grad.dtype)
        for u in range(kh):
            for v in range(kw):
                tap = grad_cols[:, :, :, :, u, v, :].transpose(1, 2, 3, 0, 4).reshape(n, ho, wo, c)
                grad_pad[:, u : u + sh * ho : sh, v : v + sw * wo : sw, :] += tap
        return xp.ascontiguousarray(grad_pad[:, ph : ph + h, pw : pw + w, :].transpose(0, 3, 1, 2))


class PatchifyConv2d(Function):
    """A conv whose kernel equals its stride (no padding, one group): a reshape and one matmul.

    x (N, H, W, C) with ``channels_last``, else (N, C, H, W); weight (O, C, K, K); out in x's layout.
    Rows and columns that no patch reaches are dropped, as PyTorch does.
    """

    def forward(self, x, weight, bias, channels_last):
        x_nhwc = x if channels_last else x.transpose(0, 2, 3, 1)
        n, h, w, c = x_nhwc.shape
        o, _, kh, kw = weight.shape
        ho, wo = h // kh, w // kw
        patches = x_nhwc[:, : ho * kh, : wo * kw].reshape(n, ho, kh, wo, kw, c).transpose(0, 1, 3, 2, 4, 5)
        patches = patches.reshape(n * ho * wo, kh * kw * c)
        w_mat = weight.transpose(0, 2, 3, 1).reshape(o, kh * kw * c)  # patch order (u, v, c)
        out = patches @ w_mat.T
        if bias is not None:
            out += bias
        self.save_for_backward(patches, w_mat)
        self.geometry = (n, h, w, c, o, kh, kw, ho, wo, channels_last)
        out = out.reshape(n, ho, wo, o)
        return out if channels_last else out.transpose(0, 3, 1, 2)

    def backward(self, grad):
        xp = get_array_module(grad)
        patches, w_mat = self.saved
        n, h, w, c, o, kh, kw, ho, wo, channels_last = self.geometry
        g2 = (grad if channels_last else grad.transpose(0, 2, 3, 1)).reshape(n * ho * wo, o)
        grad_x = grad_w = grad_b = None
        if self.needs_input_grad[0]:
            grad_x = (g2 @ w_mat).reshape(n, ho, wo, kh, kw, c).transpose(0, 1, 3, 2, 4, 5)
            grad_x = grad_x.reshape(n, ho * kh, wo * kw, c)
            if (ho * kh, wo * kw) != (h, w):
                grad_x = xp.pad(grad_x, ((0, 0), (0, h - ho * kh), (0, w - wo * kw), (0, 0)))
            grad_x = grad_x if channels_last else grad_x.transpose(0, 3, 1, 2)
        if self.needs_input_grad[1]:
            grad_w = (g2.T @ patches).reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
        if self.needs_input_grad[2]:
            grad_b = g2.sum(axis=0)
        return grad_x, grad_w, grad_b
