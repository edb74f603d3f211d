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
from ...kernels import dispatch
from ...ops.softmax import stable_logsumexp
from ...tensor import Tensor, as_tensor


class CrossEntropy(Function):
    """Fused softmax + cross-entropy (see the module docstring). Inputs: logits, and soft targets if any."""

    def forward(
        self, logits, soft_target=None, labels=None, label_smoothing=0.0, reduction="mean", ignore_index=-100
    ):
        target = labels if soft_target is None else soft_target
        self.kernels = dispatch.kernels("cross_entropy", logits, target)
        loss, probabilities = self.kernels.cross_entropy_forward(
            logits, target, label_smoothing, reduction, ignore_index
        )
        self.save_for_backward(logits, target, probabilities)
        self.options = (label_smoothing, reduction, ignore_index)
        return loss

    def backward(self, grad):
        logits, target, probabilities = self.saved
        label_smoothing, reduction, ignore_index = self.options
        grad_logits = self.kernels.cross_entropy_backward(
            grad, probabilities, target, label_smoothing, reduction, ignore_index
        )
        if len(self.needs_input_grad) == 1:
            return grad_logits
        grad_target = None
        if self.needs_input_grad[1]:
            xp = get_array_module(logits)
            scale = (
                grad
                if reduction == "none"
                else xp.full(logits.shape[0], grad / (logits.shape[0] if reduction == "mean" else 1.0))
            )
            log_p = logits - stable_logsumexp(logits, axis=1)
            grad_target = (-(1.0 - label_smoothing) * log_p * scale.reshape(-1, 1)).astype(logits.dtype)
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
                f"cross_entropy: soft targets must have the logits' shape {(n, k)}, got {tuple(target_array.shape)}"
            )
        options = dict(label_smoothing=label_smoothing, reduction=reduction, ignore_index=ignore_index)
        return CrossEntropy.apply(logits, as_tensor(target, like=logits), **options)
    if not np.issubdtype(target_array.dtype, np.integer):
        raise ValueError(
            f"cross_entropy: target must hold integer labels or float probabilities, got dtype {target_array.dtype}"
        )
    if tuple(target_array.shape) != (n,):
        raise ValueError(
            f"cross_entropy: labels must have shape ({n},) for logits {(n, k)}, got {tuple(target_array.shape)}"
        )
    labels = target_array.astype(np.int64, copy=False)
    if device_of(labels) != logits.device:
        raise ValueError(
            f"cross_entropy: the labels are on {device_of(labels)} but the logits on {logits.device}; "
            f"move them with .to({logits.device!r}) first"
        )
    return CrossEntropy.apply(
        logits, labels=labels, label_smoothing=label_smoothing, reduction=reduction, ignore_index=ignore_index
    )
