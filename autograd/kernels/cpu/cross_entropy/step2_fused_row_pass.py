"""Cross-entropy, step 2: one exp per logit, the probabilities kept for the backward, closed-form losses.

Changes from step 1:
- softmax in one pass after the max: e_ik = exp(z_ik - m) goes straight into the probability array while
  s = sum_k e_ik is added up (in float64), then the row is scaled by 1 / s. One exp per logit instead of
  two; lse = m + log s.
- the loss without a loop over q: loss_i = lse_i sum_k q_ik - sum_k q_ik z_ik, which for a class index is
  (1 - eps)(lse - z_iy) + eps (lse - mean_k z_ik).
- the backward builds no q per element: dz_ik = g_i p_ik - g_i eps / K, then subtract g_i (1 - eps) at the
  target; it does no exp, since the forward saved the probabilities.

The row functions take whole arrays and a row index (so that step 3 can call them from threads: a view
made in a parallel loop and passed to a function is reference counted on every call, with all threads
writing the same counter). error_model='numpy': a float division by zero gives inf or nan as in NumPy,
and the loops carry no ZeroDivisionError check (such a check keeps LLVM from vectorising step 4's loops).
"""

import math

import numpy as np
from numba import njit

from . import launch


@njit(cache=True, fastmath=False, error_model="numpy")
def row_softmax(z, i, probs):
    """Write softmax(z_i) into probs[i]; return lse_i in float64. All -inf or any +inf or nan in the
    row gives nan, as in PyTorch."""
    classes = z.shape[1]
    m = z[i, 0]
    for k in range(1, classes):
        m = max(m, z[i, k])
    total = 0.0
    for k in range(classes):
        e = math.exp(z[i, k] - m)
        probs[i, k] = e
        total += np.float64(e)
    scale = np.float64(1.0) / total
    for k in range(classes):
        probs[i, k] *= scale
    return np.float64(m) + math.log(total)


@njit(cache=True, fastmath=False, error_model="numpy")
def forward_index_row(z, target, ignore_index, smoothing, loss, probs, i):
    """Loss of row i with a class-index target; returns 1 if the target is out of range."""
    classes = z.shape[1]
    t = target[i]
    if t == ignore_index or t < 0 or t >= classes:
        for k in range(classes):
            probs[i, k] = 0.0
        loss[i] = 0.0
        return 0 if t == ignore_index else 1
    lse = row_softmax(z, i, probs)
    row_loss = (1.0 - smoothing) * (lse - np.float64(z[i, t]))
    if smoothing > 0.0:
        row_sum = 0.0
        for k in range(classes):
            row_sum += np.float64(z[i, k])
        row_loss += smoothing * (lse - row_sum / classes)
    loss[i] = row_loss
    return 0


@njit(cache=True, fastmath=False, error_model="numpy")
def forward_soft_row(z, target, smoothing, loss, probs, i):
    """Loss of row i with soft targets: q = (1 - eps) t + eps / K, sums in float64."""
    lse = row_softmax(z, i, probs)
    keep = 1.0 - smoothing
    spread = smoothing / z.shape[1]
    sum_q = 0.0
    sum_qz = 0.0
    for k in range(z.shape[1]):
        q = keep * np.float64(target[i, k]) + spread
        sum_q += q
        sum_qz += q * np.float64(z[i, k])
    loss[i] = lse * sum_q - sum_qz


@njit(cache=True, fastmath=False, error_model="numpy")
def backward_index_row(grad_loss, probs, target, ignore_index, smoothing, grad_z, i):
    classes = probs.shape[1]
    t = target[i]
    if t == ignore_index or t < 0 or t >= classes:
        for k in range(classes):
            grad_z[i, k] = 0.0
        return
    scale = grad_loss[i]
    spread = scale * (smoothing / classes)
    for k in range(classes):
        grad_z[i, k] = scale * probs[i, k] - spread
    grad_z[i, t] -= scale * (1.0 - smoothing)


@njit(cache=True, fastmath=False, error_model="numpy")
def backward_soft_row(grad_loss, probs, target, smoothing, grad_z, i):
    classes = probs.shape[1]
    keep = 1.0 - smoothing
    spread = smoothing / classes
    sum_q = 0.0
    for k in range(classes):
        sum_q += keep * np.float64(target[i, k]) + spread
    scale = grad_loss[i]
    scaled_sum_q = scale * sum_q
    for k in range(classes):
        grad_z[i, k] = probs[i, k] * scaled_sum_q - scale * (keep * target[i, k] + spread)


# Kernels: a loop over the rows around each row function.


@njit(cache=True, fastmath=False, error_model="numpy")
def forward_index_serial(z, target, ignore_index, smoothing, loss, probs):
    invalid = 0
    for i in range(z.shape[0]):
        invalid += forward_index_row(z, target, ignore_index, smoothing, loss, probs, i)
    return invalid


@njit(cache=True, fastmath=False, error_model="numpy")
def forward_soft_serial(z, target, smoothing, loss, probs):
    for i in range(z.shape[0]):
        forward_soft_row(z, target, smoothing, loss, probs, i)


@njit(cache=True, fastmath=False, error_model="numpy")
def backward_index_serial(grad_loss, probs, target, ignore_index, smoothing, grad_z):
    for i in range(probs.shape[0]):
        backward_index_row(grad_loss, probs, target, ignore_index, smoothing, grad_z, i)


@njit(cache=True, fastmath=False, error_model="numpy")
def backward_soft_serial(grad_loss, probs, target, smoothing, grad_z):
    for i in range(probs.shape[0]):
        backward_soft_row(grad_loss, probs, target, smoothing, grad_z, i)


KERNELS = launch.RowKernels(
    forward_index_serial, forward_soft_serial, backward_index_serial, backward_soft_serial
)


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
