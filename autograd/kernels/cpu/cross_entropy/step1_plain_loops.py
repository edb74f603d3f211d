"""Cross-entropy, step 1: plain loops, one row after another, the formulas as written.

For each row i: m = max_k z_ik, lse = m + log sum_k exp(z_ik - m) (shifting by the max keeps every exp
at most 1, so none overflows), loss_i = sum_k q_ik (lse - z_ik), and p_ik = exp(z_ik - lse), a second
exp per logit. The backward reads p and builds q again: dz_ik = grad_loss_i (p_ik sum_k q_ik - q_ik).
"""

import math

from numba import njit

from . import launch


@njit(cache=True)
def _log_sum_exp(z, i):
    """log sum_k exp(z_ik), shifted by the row's max so that no exp overflows."""
    m = z[i, 0]
    for k in range(1, z.shape[1]):
        m = max(m, z[i, k])
    total = 0.0
    for k in range(z.shape[1]):
        total += math.exp(z[i, k] - m)
    return m + math.log(total)


@njit(cache=True)
def forward_index(z, target, ignore_index, smoothing, loss, probs):
    """Class-index targets: q_ik = (1 - eps) [k == y_i] + eps / K. Ignored and out-of-range rows get
    loss 0 and probabilities 0; returns the number of out-of-range targets."""
    rows, classes = z.shape
    invalid = 0
    for i in range(rows):
        t = target[i]
        if t == ignore_index or t < 0 or t >= classes:
            for k in range(classes):
                probs[i, k] = 0.0
            loss[i] = 0.0
            if t != ignore_index:
                invalid += 1
            continue
        lse = _log_sum_exp(z, i)
        row_loss = 0.0
        for k in range(classes):
            q = smoothing / classes
            if k == t:
                q += 1.0 - smoothing
            row_loss += q * (lse - z[i, k])
            probs[i, k] = math.exp(z[i, k] - lse)
        loss[i] = row_loss
    return invalid


@njit(cache=True)
def forward_soft(z, target, smoothing, loss, probs):
    """Soft targets: q_ik = (1 - eps) t_ik + eps / K."""
    rows, classes = z.shape
    for i in range(rows):
        lse = _log_sum_exp(z, i)
        row_loss = 0.0
        for k in range(classes):
            q = (1.0 - smoothing) * target[i, k] + smoothing / classes
            row_loss += q * (lse - z[i, k])
            probs[i, k] = math.exp(z[i, k] - lse)
        loss[i] = row_loss


@njit(cache=True)
def backward_index(grad_loss, probs, target, ignore_index, smoothing, grad_z):
    """dz_ik = grad_loss_i (p_ik - q_ik), since sum_k q_ik = 1; 0 in ignored rows."""
    rows, classes = probs.shape
    for i in range(rows):
        t = target[i]
        ignored = t == ignore_index or t < 0 or t >= classes
        for k in range(classes):
            if ignored:
                grad_z[i, k] = 0.0
                continue
            q = smoothing / classes
            if k == t:
                q += 1.0 - smoothing
            grad_z[i, k] = grad_loss[i] * (probs[i, k] - q)


@njit(cache=True)
def backward_soft(grad_loss, probs, target, smoothing, grad_z):
    """dz_ik = grad_loss_i (p_ik sum_k q_ik - q_ik): soft targets need not sum to 1."""
    rows, classes = probs.shape
    for i in range(rows):
        sum_q = 0.0
        for k in range(classes):
            sum_q += (1.0 - smoothing) * target[i, k] + smoothing / classes
        for k in range(classes):
            q = (1.0 - smoothing) * target[i, k] + smoothing / classes
            grad_z[i, k] = grad_loss[i] * (probs[i, k] * sum_q - q)


KERNELS = launch.RowKernels(forward_index, forward_soft, backward_index, backward_soft)


def _kernels_for(size):
    return KERNELS


def cross_entropy_forward(logits, target, label_smoothing=0.0, reduction="mean", ignore_index=-100):
    return launch.forward(_kernels_for, logits, target, label_smoothing, reduction, ignore_index)


def cross_entropy_backward(
    grad_loss, probabilities, target, label_smoothing=0.0, reduction="mean", ignore_index=-100
):
    return launch.backward(
        _kernels_for, grad_loss, probabilities, target, label_smoothing, reduction, ignore_index
    )
