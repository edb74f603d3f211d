"""Layer normalisation (Ba et al., 2016), in the two layouts ConvNeXt uses.

    mean, var over the normalised values (biased variance);  xhat = (x - mean) / sqrt(var + eps);
    y = weight * xhat + bias.
    Backward (g = dy * weight):  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
                                 dweight = sum(dy * xhat),  dbias = sum(dy).

* ``layer_norm``: over the last axes (``torch.nn.functional.layer_norm``). Inside ConvNeXt's blocks the
  tensor is channels-last, so this normalises the channels (Section 2.6, "Substituting BN with LN").
* ``layer_norm_channels_first``: over the channel axis C of an NCHW tensor, at every pixel; the stem and
  the downsampling layers use it (the official code's ``LayerNorm(data_format="channels_first")``).

Both run as one fused pass forward and one backward (Numba: ``autograd.kernels.cpu.layer_norm``; CUDA:
``autograd.kernels.cuda.layer_norm``), or as the plain reference beside the Numba kernels.

``batch_norm`` (Ioffe & Szegedy, 2015), for the ResNet baseline of the lessons, normalises each channel
over the batch instead:

    Training: each channel is normalised with the mean and biased variance of the batch,
        xhat = (x - mean) / sqrt(var + eps),   y = weight * xhat + bias,
    and the running statistics move towards the batch's: r = (1 - momentum) r + momentum * batch (the
    running variance takes the unbiased batch variance, as PyTorch). Evaluation uses the running statistics.
    Backward in training (m values per channel):
        dx = rstd / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),   dxhat = dy * weight.
    ConvNeXt replaces it with LayerNorm (Section 2.6); ``ConvNeXt(norm_layer="batch")`` puts it back, on
    channels-last activations (``channels_last=True``). Kernels: ``autograd.kernels.cpu.batch_norm`` (Numba,
    and the plain reference) and ``autograd.kernels.cuda.batch_norm``, in both layouts without transposing.
"""

from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from ...function import Function
from ...kernels import dispatch
from ...tensor import as_tensor


class LayerNorm(Function):
    """Normalise over the last ``normalized_ndim`` axes (see the module docstring)."""

    def forward(self, x, weight=None, bias=None, normalized_ndim=1, eps=1e-5):
        size = int(np.prod(x.shape[x.ndim - normalized_ndim :]))
        x2d = x.reshape(-1, size)
        w = None if weight is None else weight.reshape(size)
        b = None if bias is None else bias.reshape(size)
        self.kernels = dispatch.kernels("layer_norm", x)
        y, mean, rstd = self.kernels.layer_norm_forward(x2d, w, b, eps)
        self.save_for_backward(x2d, w, mean, rstd)
        self.shapes = (x.shape, None if weight is None else weight.shape)
        return y.reshape(x.shape)

    def backward(self, grad):
        x2d, w, mean, rstd = self.saved
        x_shape, w_shape = self.shapes
        needs_affine = w_shape is not None and any(self.needs_input_grad[1:])
        grad_x, grad_w, grad_b = self.kernels.layer_norm_backward(
            grad.reshape(x2d.shape), x2d, w, mean, rstd, needs_affine
        )
        if w_shape is None:
            return grad_x.reshape(x_shape)
        if not needs_affine:
            return grad_x.reshape(x_shape), None, None
        return grad_x.reshape(x_shape), grad_w.reshape(w_shape), grad_b.reshape(w_shape)


class LayerNormChannelsFirst(Function):
    """Normalise over axis 1 of (N, C, ...) at every other position (see the module docstring)."""

    def forward(self, x, weight=None, bias=None, eps=1e-6):
        self.kernels = dispatch.kernels("layer_norm", x)
        y, mean, rstd = self.kernels.layer_norm_channels_first_forward(x, weight, bias, eps)
        self.save_for_backward(x, weight, mean, rstd)
        return y

    def backward(self, grad):
        x, weight, mean, rstd = self.saved
        needs_affine = weight is not None and any(self.needs_input_grad[1:])
        grad_x, grad_w, grad_b = self.kernels.layer_norm_channels_first_backward(
            grad, x, weight, mean, rstd, needs_affine
        )
        if weight is None:
            return grad_x
        return grad_x, grad_w, grad_b


def _affine_tensors(name, weight, bias, shape, x):
    if (weight is None) != (bias is None):
        raise ValueError(f"{name}: give both weight and bias, or neither")
    if weight is None:
        return ()
    weight, bias = as_tensor(weight), as_tensor(bias)
    for label, t in (("weight", weight), ("bias", bias)):
        if t.shape != tuple(shape):
            raise ValueError(
                f"{name}: {label} must have shape {tuple(shape)} for input {x.shape}, got {t.shape}"
            )
    return weight, bias


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """As ``torch.nn.functional.layer_norm``: normalise over the trailing axes ``normalized_shape``."""
    x = as_tensor(x)
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k :] != normalized_shape:
        raise ValueError(f"layer_norm: input {x.shape} must end with normalized_shape {normalized_shape}")
    affine = _affine_tensors("layer_norm", weight, bias, normalized_shape, x)
    return LayerNorm.apply(x, *affine, normalized_ndim=k, eps=eps)


def layer_norm_channels_first(x, weight=None, bias=None, eps=1e-6):
    """LayerNorm over the channels C of (N, C, H, W) (ConvNeXt's ``channels_first`` LayerNorm)."""
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"layer_norm_channels_first expects input of shape (N, C, ...), got shape {x.shape}")
    affine = _affine_tensors("layer_norm_channels_first", weight, bias, (x.shape[1],), x)
    return LayerNormChannelsFirst.apply(x, *affine, eps=eps)


class BatchNorm(Function):
    """See the module docstring; ``running_mean``/``running_var`` arrays are updated in place."""

    def forward(
        self,
        x,
        weight=None,
        bias=None,
        running_mean=None,
        running_var=None,
        training=True,
        momentum=0.1,
        eps=1e-5,
        channels_last=False,
    ):
        xp = get_array_module(x)
        self.kernels = dispatch.kernels("batch_norm", x)
        if training:
            mean, var = self.kernels.batch_norm_statistics(x, channels_last)
            count = x.size // var.size
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (count / max(count - 1, 1))
        else:
            mean, var = running_mean, running_var
        rstd = (1.0 / xp.sqrt(var.astype(xp.float64) + eps)).astype(x.dtype)
        self.save_for_backward(x, weight, mean, rstd)
        self.options = (training, channels_last)
        return self.kernels.batch_norm_normalize(x, mean, rstd, weight, bias, channels_last)

    def backward(self, grad):
        x, weight, mean, rstd = self.saved
        training, channels_last = self.options
        needs_affine = weight is not None and any(self.needs_input_grad[1:])
        grad_x, grad_w, grad_b = self.kernels.batch_norm_backward(
            grad, x, weight, mean, rstd, training, channels_last, needs_affine
        )
        if weight is None:
            return grad_x
        return grad_x, grad_w, grad_b


def batch_norm(
    x,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training=False,
    momentum=0.1,
    eps=1e-5,
    channels_last=False,
):
    """As ``torch.nn.functional.batch_norm``: running statistics are Tensors (or None in training).

    ``channels_last=True`` takes (N, ..., C) input, as ConvNeXt's channels-last activations: the same
    numbers as ``batch_norm`` of the NCHW permutation, without permuting."""
    x = as_tensor(x)
    if x.ndim < 2:
        layout = "(N, ..., C)" if channels_last else "(N, C, ...)"
        raise ValueError(f"batch_norm expects input of shape {layout}, got shape {x.shape}")
    channels = x.shape[-1] if channels_last else x.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and tuple(t.shape) != (channels,):
            raise ValueError(
                f"batch_norm: {name} must have shape ({channels},) for input {x.shape}, got {tuple(t.shape)}"
            )
    if (weight is None) != (bias is None):
        raise ValueError("batch_norm: give both weight and bias, or neither")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm in evaluation mode needs running_mean and running_var")
    if training and x.size // channels < 2:
        raise ValueError(f"batch_norm in training needs more than one value per channel, got input {x.shape}")
    stats = {
        "running_mean": None if running_mean is None else running_mean.data,
        "running_var": None if running_var is None else running_var.data,
    }
    tensors = (x,) if weight is None else (x, as_tensor(weight), as_tensor(bias))
    return BatchNorm.apply(
        *tensors, training=training, momentum=momentum, eps=eps, channels_last=channels_last, **stats
    )
