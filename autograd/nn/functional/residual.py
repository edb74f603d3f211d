"""The residual sum at the end of a ConvNeXt block: ``shortcut + drop_path(gamma * x)``, as one op.

Layer scale (Touvron et al., 2021) multiplies each channel of the branch x by a learned gamma; drop path
(stochastic depth, Huang et al., 2016) keeps the branch of a sample with probability 1 - p and scales it by
1 / (1 - p), or drops it. Both are per-channel or per-sample factors on x, so the op is one pass each way:

    out = shortcut + x * scale,   scale[n, c] = gamma[c] * s[n]
    d shortcut = d out,   d x = d out * scale,   d gamma = sum over n, h, w of d out * x * s[n]

The factors s[n] come from the helper ``F.drop_path`` uses (one number per sample from the generator, none
at p = 1), so a model gives the same numbers written either way, up to float rounding.
"""

from __future__ import annotations

from ...function import Function
from ...tensor import as_tensor
from .regularization import _check_p, _keep_factors


class ScaledResidual(Function):
    """out = shortcut + x * gamma[c] * s[n] (module docstring); gamma optional, s a fixed array or None.

    Fast path: ``autograd/kernels/cpu/residual.py`` (Numba) on NumPy arrays, one pass over memory each way
    instead of one per factor. On CuPy arrays this body runs: its few element-wise kernels are cheap there.
    """

    fast_paths = {"cpu": "autograd.kernels.cpu.residual"}

    def forward(self, shortcut, x, gamma, sample_scale):
        branch = x if gamma is None else x * gamma
        if sample_scale is not None:
            branch = branch * sample_scale.reshape((-1,) + (1,) * (x.ndim - 1))
        self.save_for_backward(x, gamma)
        self.sample_scale = sample_scale
        return shortcut + branch

    def backward(self, grad):
        x, gamma = self.saved
        grad_branch = grad  # d out / d (the branch before gamma) = grad * s[n] * gamma[c]
        if self.sample_scale is not None:
            grad_branch = grad * self.sample_scale.reshape((-1,) + (1,) * (x.ndim - 1))
        grad_gamma = None if gamma is None else (grad_branch * x).sum(axis=tuple(range(x.ndim - 1)))
        grad_x = grad_branch if gamma is None else grad_branch * gamma
        return grad, grad_x, grad_gamma

    def fast_forward(self, kernels, shortcut, x, gamma, sample_scale):
        self.sample_scale = sample_scale
        self.save_for_backward(x, gamma)
        return kernels.scaled_residual_forward(shortcut, x, gamma, sample_scale)

    def fast_backward(self, grad):
        x, gamma = self.saved
        need = self.needs_input_grad
        grad_x, grad_gamma = self.kernels.scaled_residual_backward(
            grad, x, gamma, self.sample_scale, need_x=need[1], need_gamma=need[2]
        )
        return grad, grad_x, grad_gamma


def residual_add(shortcut, x, gamma=None, drop_prob: float = 0.0, training: bool = False, generator=None):
    """``shortcut + drop_path(gamma * x, drop_prob, training)`` in one pass; x channels last, (N, ..., C).

    gamma: the layer scale, shape (C,), or None. The same as timm's ``shortcut + self.drop_path(self.ls(x))``.
    """
    _check_p("residual_add", drop_prob)
    shortcut, x = as_tensor(shortcut), as_tensor(x)
    if shortcut.shape != x.shape or x.ndim < 2:
        raise ValueError(
            f"residual_add: shortcut and x must have the same shape (N, ..., C), got "
            f"{shortcut.shape} and {x.shape}"
        )
    sample_scale = None
    if training and drop_prob > 0.0:
        sample_scale = _keep_factors((x.shape[0],), drop_prob, x.data, generator)
    if gamma is None:
        return ScaledResidual.apply(shortcut, x, None, sample_scale=sample_scale)
    gamma = as_tensor(gamma)
    if gamma.shape != (x.shape[-1],):
        raise ValueError(
            f"residual_add: gamma must have shape ({x.shape[-1]},) for x of shape {x.shape}, got "
            f"{gamma.shape}"
        )
    return ScaledResidual.apply(shortcut, x, gamma, sample_scale=sample_scale)
