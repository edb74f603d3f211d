"""Cross-entropy of softmax probabilities against class labels or soft targets, fused with the softmax.

For logits z (N, K), target distribution q (one-hot labels or soft targets, smoothed to
(1 - eps) q + eps / K) and lse = log sum_k exp z_k:
    loss_i = -sum_k q_ik log softmax(z_i)_k = lse_i sum_k q_ik - sum_k q_ik z_ik
    d loss_i / d z_ik = softmax(z_i)_k sum_k q_ik - q_ik            (softmax - q for labels)
    d loss_i / d t_ik = -(1 - eps) log softmax(z_i)_k               (soft targets only)
Computing the loss from logits in one pass is both stable (log-sum-exp after subtracting the max) and
cheap: the forward's softmax probabilities are all the backward needs.
Soft targets are what mixup and cutmix produce.
"""

from __future__ import annotations

import numpy as np

from ...backend import device_of, get_array_module
from ...function import Function
from ...ops.softmax import stable_logsumexp
from ...tensor import Tensor, as_tensor


def _target_distribution(xp, target, classes, label_smoothing, ignore_index):
    """q (N, K) in float64, smoothed, zero rows for ignored samples; and the mask of samples that count."""
    if target.dtype.kind == "f":  # soft targets
        q, valid = target.astype(xp.float64), xp.ones(target.shape[0], dtype=bool)
    else:
        valid = target != ignore_index
        q = xp.zeros((target.shape[0], classes))
        q[xp.nonzero(valid)[0], target[valid]] = 1.0
    q = (1.0 - label_smoothing) * q + label_smoothing / classes
    return q * valid[:, None], valid


class CrossEntropy(Function):
    """Softmax + cross-entropy of logits (N, K) against labels or soft targets (see the module docstring).
    Computed in float64, returned in the logits' dtype. Inputs: the logits and the soft targets (None when
    the target is integer labels, which come as an option: they have no gradient).

    Fast paths: the Numba kernels of ``autograd/kernels/cpu/cross_entropy/`` on NumPy arrays, the CUDA
    kernels of ``autograd/kernels/cuda/cross_entropy.py`` on CuPy arrays: one pass over each row each way.
    """

    fast_paths = {"cpu": "autograd.kernels.cpu.cross_entropy", "cuda": "autograd.kernels.cuda.cross_entropy"}

    def forward(self, logits, soft_target, labels, label_smoothing, reduction, ignore_index):
        xp = get_array_module(logits)
        z = logits.astype(xp.float64)
        log_p = z - stable_logsumexp(z, axis=1)
        target = labels if soft_target is None else soft_target
        q, valid = _target_distribution(xp, target, z.shape[1], label_smoothing, ignore_index)
        loss = -(q * log_p).sum(axis=1)
        self.save_for_backward(log_p, q, valid)
        self.options = (label_smoothing, reduction)
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                loss = loss.sum() / valid.sum()  # nan when every sample is ignored, as in PyTorch
        return xp.asarray(loss, dtype=logits.dtype)

    def backward(self, grad):
        xp = get_array_module(grad)
        log_p, q, valid = self.saved
        label_smoothing, reduction = self.options
        scale = self._per_sample_scale(xp, grad, reduction, valid)
        grad_logits = (xp.exp(log_p) * q.sum(axis=1, keepdims=True) - q) * scale  # (softmax - q) for labels
        grad_target = -(1.0 - label_smoothing) * log_p * scale
        return grad_logits.astype(grad.dtype), grad_target.astype(grad.dtype)

    @staticmethod
    def _per_sample_scale(xp, grad, reduction, valid):
        """d total / d loss_i as a column: grad itself for "none", grad / (samples that count) for "mean"."""
        if reduction == "none":
            return grad.astype(xp.float64).reshape(-1, 1)
        count = int(valid.sum()) if reduction == "mean" else 1
        return xp.full((valid.shape[0], 1), float(grad) / count if count else 0.0)

    def fast_forward(self, kernels, logits, soft_target, labels, label_smoothing, reduction, ignore_index):
        target = labels if soft_target is None else soft_target
        options = (label_smoothing, reduction, ignore_index)
        loss, probabilities = kernels.cross_entropy_forward(logits, target, *options)
        self.save_for_backward(logits, target, probabilities)
        self.options = options
        return loss

    def fast_backward(self, grad):
        logits, target, probabilities = self.saved
        label_smoothing, reduction, ignore_index = self.options
        grad_logits = self.kernels.cross_entropy_backward(grad, probabilities, target, *self.options)
        grad_target = None
        if self.needs_input_grad[1]:  # soft targets that want a gradient: -(1 - eps) log softmax, scaled
            xp = get_array_module(logits)
            every_sample = xp.ones(logits.shape[0], dtype=bool)  # soft targets: no sample is ignored
            scale = self._per_sample_scale(xp, grad, reduction, every_sample)
            log_p = logits - stable_logsumexp(logits, axis=1)
            grad_target = (-(1.0 - label_smoothing) * log_p * scale).astype(logits.dtype)
        return grad_logits, grad_target


def cross_entropy(
    logits, target, label_smoothing: float = 0.0, reduction: str = "mean", ignore_index: int = -100
):
    """As ``torch.nn.functional.cross_entropy`` for (N, K) logits (no class weights).

    Args:
        logits: (N, K) unnormalised scores.
        target: (N,) integer labels, or (N, K) class probabilities (each row summing to 1).
        label_smoothing: eps in [0, 1]: the target becomes (1 - eps) target + eps / K.
        reduction: "mean" (over the labelled samples), "sum" or "none" (per sample).
        ignore_index: samples with this label count neither in the loss nor in the mean.
    """
    logits = as_tensor(logits)
    target_array = target.data if isinstance(target, Tensor) else np.asarray(target)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, K), got shape {logits.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    n, k = logits.shape
    if np.issubdtype(target_array.dtype, np.floating):
        if tuple(target_array.shape) != (n, k):
            raise ValueError(
                f"cross_entropy: soft targets must have the logits' shape {(n, k)}, got "
                f"{tuple(target_array.shape)}"
            )
        options = dict(label_smoothing=label_smoothing, reduction=reduction, ignore_index=ignore_index)
        return CrossEntropy.apply(logits, as_tensor(target, like=logits), labels=None, **options)
    if not np.issubdtype(target_array.dtype, np.integer):
        raise ValueError(
            "cross_entropy: target must hold integer labels or float probabilities, got dtype "
            f"{target_array.dtype}"
        )
    if tuple(target_array.shape) != (n,):
        raise ValueError(
            f"cross_entropy: labels must have shape ({n},) for logits {(n, k)}, got "
            f"{tuple(target_array.shape)}"
        )
    labels = target_array.astype(np.int64, copy=False)
    if device_of(labels) != logits.device:
        raise ValueError(
            f"cross_entropy: the labels are on {device_of(labels)} but the logits on {logits.device}; "
            f"move them with .to({logits.device!r}) first"
        )
    return CrossEntropy.apply(
        logits,
        None,
        labels=labels,
        label_smoothing=label_smoothing,
        reduction=reduction,
        ignore_index=ignore_index,
    )
