"""Layer normalisation (Ba et al., 2016), in the two layouts ConvNeXt uses.

    mean, var over the normalised values (biased variance);  xhat = (x - mean) / sqrt(var + eps);
    y = weight * xhat + bias.
    Backward (g = dy * weight):  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
                                 dweight = sum(dy * xhat),  dbias = sum(dy).

* ``layer_norm``: over the last axes (``torch.nn.functional.layer_norm``). Inside ConvNeXt's blocks the
  tensor is channels-last, so this normalises the channels (Section 2.6, "Substituting BN with LN").
* ``layer_norm_channels_first``: over the channel axis C of an NCHW tensor, at every pixel; the stem and
  the downsampling layers use it (the official code's ``LayerNorm(data_format="channels_first")``).

Both are one op, ``LayerNorm``, whose axes depend on the layout.

``batch_norm`` (Ioffe & Szegedy, 2015), for the ResNet baseline of the lessons, normalises each channel
over the batch instead:

    Training: each channel is normalised with the mean and biased variance of the batch,
        xhat = (x - mean) / sqrt(var + eps),   y = weight * xhat + bias,
    and the running statistics move towards the batch's: r = (1 - momentum) r + momentum * batch (the
    running variance takes the unbiased batch variance, as PyTorch). Evaluation uses the running statistics.
    Backward in training (m values per channel):
        dx = rstd / m * (m * dxhat - sum(dxhat) - xhat * sum(dxhat * xhat)),   dxhat = dy * weight.
    ConvNeXt replaces it with LayerNorm (Section 2.6); ``ConvNeXt(norm_layer="batch")`` puts it back, on
    channels-last activations (``channels_last=True``).
"""

from __future__ import annotations

import math

from ...backend import get_array_module
from ...function import Function
from ...tensor import as_tensor


def _normalized_axes(x, normalized_ndim, channels_first):
    """The axes a LayerNorm averages over, and the shape its weight and bias broadcast in."""
    axes = (1,) if channels_first else tuple(range(x.ndim - normalized_ndim, x.ndim))
    return axes, tuple(x.shape[a] if a in axes else 1 for a in range(x.ndim))


class LayerNorm(Function):
    """Normalise over the last ``normalized_ndim`` axes, or over axis 1 of (N, C, ...) with ``channels_first``
    (see the module docstring). Computed in float64, returned in x's dtype.

    Fast paths: the Numba kernels of ``autograd/kernels/cpu/layer_norm/`` on NumPy arrays, the CUDA kernels of
    ``autograd/kernels/cuda/layer_norm.py`` on CuPy arrays: one pass over the data each way, in either layout.
    """

    fast_paths = {"cpu": "autograd.kernels.cpu.layer_norm", "cuda": "autograd.kernels.cuda.layer_norm"}

    def forward(self, x, weight, bias, normalized_ndim, eps, channels_first):
        xp = get_array_module(x)
        axes, shape = _normalized_axes(x, normalized_ndim, channels_first)
        x64 = x.astype(xp.float64)
        mean = x64.mean(axis=axes, keepdims=True)
        rstd = 1.0 / xp.sqrt(((x64 - mean) ** 2).mean(axis=axes, keepdims=True) + eps)
        xhat = (x64 - mean) * rstd
        self.save_for_backward(xhat, rstd, weight)
        self.axes, self.shape = axes, shape
        y = xhat if weight is None else xhat * weight.reshape(shape) + bias.reshape(shape)
        return y.astype(x.dtype)

    def backward(self, grad):
        xhat, rstd, weight = self.saved
        dy = grad.astype(xhat.dtype)
        g = dy if weight is None else dy * weight.reshape(self.shape)
        mean_g, mean_gx = (
            g.mean(axis=self.axes, keepdims=True),
            (g * xhat).mean(axis=self.axes, keepdims=True),
        )
        grad_x = (rstd * (g - mean_g - xhat * mean_gx)).astype(grad.dtype)
        if weight is None:
            return grad_x, None, None
        others = tuple(a for a in range(xhat.ndim) if a not in self.axes)
        grad_w = (dy * xhat).sum(axis=others).reshape(weight.shape).astype(grad.dtype)
        return grad_x, grad_w, dy.sum(axis=others).reshape(weight.shape).astype(grad.dtype)

    def fast_forward(self, kernels, x, weight, bias, normalized_ndim, eps, channels_first):
        if channels_first:
            y, mean, rstd = kernels.layer_norm_channels_first_forward(x, weight, bias, eps)
        else:  # the kernels see (rows, normalised values)
            size = math.prod(x.shape[x.ndim - normalized_ndim :])
            w, b = (None, None) if weight is None else (weight.reshape(size), bias.reshape(size))
            y, mean, rstd = kernels.layer_norm_forward(x.reshape(-1, size), w, b, eps)
        self.save_for_backward(x, weight, mean, rstd)
        self.channels_first = channels_first
        self.rows = None if channels_first else (-1, size)
        return y.reshape(x.shape)

    def fast_backward(self, grad):
        x, weight, mean, rstd = self.saved
        needs_affine = weight is not None and any(self.needs_input_grad[1:])
        if self.channels_first:
            backward = self.kernels.layer_norm_channels_first_backward
            grad_x, grad_w, grad_b = backward(grad, x, weight, mean, rstd, needs_affine)
        else:
            w = None if weight is None else weight.reshape(-1)
            backward = self.kernels.layer_norm_backward
            grads = backward(grad.reshape(self.rows), x.reshape(self.rows), w, mean, rstd, needs_affine)
            grad_x, grad_w, grad_b = grads
        if not needs_affine:
            return grad_x.reshape(x.shape), None, None
        return grad_x.reshape(x.shape), grad_w.reshape(weight.shape), grad_b.reshape(weight.shape)


def _affine_tensors(name, weight, bias, shape, x):
    if (weight is None) != (bias is None):
        raise ValueError(f"{name}: give both weight and bias, or neither")
    if weight is None:
        return None, None
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
    return LayerNorm.apply(x, *affine, normalized_ndim=k, eps=eps, channels_first=False)


def layer_norm_channels_first(x, weight=None, bias=None, eps=1e-6):
    """LayerNorm over the channels C of (N, C, H, W) (ConvNeXt's ``channels_first`` LayerNorm)."""
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"layer_norm_channels_first expects input of shape (N, C, ...), got shape {x.shape}")
    affine = _affine_tensors("layer_norm_channels_first", weight, bias, (x.shape[1],), x)
    return LayerNorm.apply(x, *affine, normalized_ndim=1, eps=eps, channels_first=True)


class BatchNorm(Function):
    """See the module docstring; ``running_mean``/``running_var`` arrays are updated in place in training.
    The channel axis is 1, or the last one with ``channels_last``. Computed in float64, returned in x's dtype.

    Fast paths: the Numba kernels of ``autograd/kernels/cpu/batch_norm/`` on NumPy arrays, the CUDA kernels
    of ``autograd/kernels/cuda/batch_norm.py`` on CuPy arrays: both layouts as they lie, without transposing.
    """

    fast_paths = {"cpu": "autograd.kernels.cpu.batch_norm", "cuda": "autograd.kernels.cuda.batch_norm"}

    def forward(self, x, weight, bias, running_mean, running_var, training, momentum, eps, channels_last):
        xp = get_array_module(x)
        channel_axis = x.ndim - 1 if channels_last else 1
        axes = tuple(a for a in range(x.ndim) if a != channel_axis)
        shape = tuple(x.shape[a] if a == channel_axis else 1 for a in range(x.ndim))
        x64 = x.astype(xp.float64)
        if training:
            mean, var = x64.mean(axis=axes), x64.var(axis=axes)
            _update_running_statistics(running_mean, running_var, mean, var, x.size // var.size, momentum)
        else:
            mean, var = running_mean.astype(xp.float64), running_var.astype(xp.float64)
        rstd = 1.0 / xp.sqrt(var + eps)
        xhat = (x64 - mean.reshape(shape)) * rstd.reshape(shape)
        self.save_for_backward(xhat, rstd.reshape(shape), weight)
        self.axes, self.shape, self.training = axes, shape, training
        y = xhat if weight is None else xhat * weight.reshape(shape) + bias.reshape(shape)
        return y.astype(x.dtype)

    def backward(self, grad):
        xhat, rstd, weight = self.saved
        dy = grad.astype(xhat.dtype)
        dxhat = dy if weight is None else dy * weight.reshape(self.shape)
        if self.training:  # the batch's mean and variance depend on x too
            mean_d, mean_dx = (
                dxhat.mean(axis=self.axes, keepdims=True),
                (dxhat * xhat).mean(self.axes, keepdims=True),
            )
            grad_x = rstd * (dxhat - mean_d - xhat * mean_dx)
        else:
            grad_x = dxhat * rstd
        if weight is None:
            return grad_x.astype(grad.dtype), None, None
        grad_w, grad_b = (dy * xhat).sum(axis=self.axes), dy.sum(axis=self.axes)
        return grad_x.astype(grad.dtype), grad_w.astype(grad.dtype), grad_b.astype(grad.dtype)

    def fast_forward(
        self, kernels, x, weight, bias, running_mean, running_var, training, momentum, eps, channels_last
    ):
        xp = get_array_module(x)
        if training:
            mean, var = kernels.batch_norm_statistics(x, channels_last)
            _update_running_statistics(running_mean, running_var, mean, var, x.size // var.size, momentum)
        else:
            mean, var = running_mean, running_var
        rstd = (1.0 / xp.sqrt(var.astype(xp.float64) + eps)).astype(x.dtype)
        self.save_for_backward(x, weight, mean, rstd)
        self.options = (training, channels_last)
        return kernels.batch_norm_normalize(x, mean, rstd, weight, bias, channels_last)

    def fast_backward(self, grad):
        x, weight, mean, rstd = self.saved
        training, channels_last = self.options
        needs_affine = weight is not None and any(self.needs_input_grad[1:])
        backward = self.kernels.batch_norm_backward
        return backward(grad, x, weight, mean, rstd, training, channels_last, needs_affine)


def _update_running_statistics(running_mean, running_var, mean, var, count, momentum):
    """r = (1 - momentum) r + momentum * batch, in place; the variance unbiased (x count / (count - 1))."""
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * mean
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += momentum * var * (count / max(count - 1, 1))


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
    weight, bias = (None, None) if weight is None else (as_tensor(weight), as_tensor(bias))
    options = dict(training=training, momentum=momentum, eps=eps, channels_last=channels_last)
    return BatchNorm.apply(x, weight, bias, **stats, **options)
