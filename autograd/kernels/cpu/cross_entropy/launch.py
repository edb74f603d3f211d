"""Cross-entropy, host side shared by every step: argument checks, contiguous inputs, the reductions.

Every step provides its row kernels as a ``RowKernels``; ``forward`` and ``backward`` below do the rest
(the same for every step), so that two steps differ only in their kernels.

Kernel signatures (z: logits (N, K), probs: probabilities (N, K), loss: (N,) float64, grad_loss: (N,)):
    forward_index(z, target, ignore_index, smoothing, loss, probs) -> number of out-of-range targets
    forward_soft(z, target, smoothing, loss, probs)
    backward_index(grad_loss, probs, target, ignore_index, smoothing, grad_z)
    backward_soft(grad_loss, probs, target, smoothing, grad_z)
"""

from collections import namedtuple

import numpy as np

from autograd.kernels.cpu.common import float_dtype

REDUCTIONS = ("mean", "sum", "none")

# Below this many logits steps 3 and 4 run their serial kernels: waking the thread pool costs more than
# the work.
PARALLEL_MIN_SIZE = 1 << 15

RowKernels = namedtuple("RowKernels", "forward_index forward_soft backward_index backward_soft")


def check_options(label_smoothing, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")


def prepare(scores, target):
    """scores: logits or probabilities (N, K). Returns them contiguous, the target contiguous, whether
    the target is soft, and the float dtype."""
    scores = np.asarray(scores)
    target = np.asarray(target)
    if scores.ndim != 2:
        raise ValueError(f"logits must have shape (N, K), got {scores.shape}")
    dtype = float_dtype(scores)
    scores = np.ascontiguousarray(scores, dtype=dtype)
    soft = np.issubdtype(target.dtype, np.floating)
    if soft:
        if target.shape != scores.shape:
            raise ValueError(f"soft targets must have the logits' shape {scores.shape}, got {target.shape}")
        target = np.ascontiguousarray(target, dtype=dtype)
    else:
        if target.shape != scores.shape[:1]:
            raise ValueError(f"class-index targets must have shape ({scores.shape[0]},), got {target.shape}")
        target = np.ascontiguousarray(target, dtype=np.int64)
    return scores, target, soft, dtype


def valid_count(target, soft, ignore_index):
    """The number of samples that count in a "mean": all of them for soft targets."""
    if soft:
        return target.shape[0]
    return target.shape[0] - int(np.count_nonzero(target == ignore_index))


def forward(kernels_for, logits, target, label_smoothing, reduction, ignore_index):
    """cross_entropy_forward with the row kernels ``kernels_for(number of logits)`` of a step."""
    check_options(label_smoothing, reduction)
    z, target, soft, dtype = prepare(logits, target)
    kernels = kernels_for(z.size)
    loss = np.empty(z.shape[0], np.float64)
    probs = np.empty_like(z)
    if soft:
        kernels.forward_soft(z, target, float(label_smoothing), loss, probs)
    else:
        invalid = kernels.forward_index(z, target, int(ignore_index), float(label_smoothing), loss, probs)
        if invalid:
            raise IndexError(f"{invalid} target(s) out of range [0, {z.shape[1]})")
    if reduction == "none":
        return loss.astype(dtype), probs
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / np.float64(valid_count(target, soft, ignore_index))
    return np.asarray(total, dtype), probs


def _row_scales(grad_loss, rows, target, soft, reduction, ignore_index, dtype):
    """The gradient of the loss for each row, (rows,) in ``dtype``."""
    if reduction == "none":
        return np.ascontiguousarray(grad_loss, dtype=dtype).reshape(rows)
    g = float(np.asarray(grad_loss).reshape(()))
    if reduction == "mean":
        count = valid_count(target, soft, ignore_index)
        g = g / count if count else 0.0  # all samples ignored: every row's gradient is 0
    return np.full(rows, g, dtype)


def backward(kernels_for, grad_loss, probabilities, target, label_smoothing, reduction, ignore_index):
    """cross_entropy_backward with the row kernels ``kernels_for(number of logits)`` of a step."""
    check_options(label_smoothing, reduction)
    probs, target, soft, dtype = prepare(probabilities, target)
    scale = _row_scales(grad_loss, probs.shape[0], target, soft, reduction, ignore_index, dtype)
    kernels = kernels_for(probs.size)
    grad_z = np.empty_like(probs)
    if soft:
        kernels.backward_soft(scale, probs, target, float(label_smoothing), grad_z)
    else:
        kernels.backward_index(scale, probs, target, int(ignore_index), float(label_smoothing), grad_z)
    return grad_z
