"""Cross-entropy, step 4: the forward's row loops vectorised (today's kernels, the public functions).

Changes from step 3, in the forward (the backward is step 3's: it has no exp and no max):
- the row max kept in eight independent running maxima, so the loop is not one long dependency chain
  (LLVM does not vectorise a float max reduction by itself);
- the row sums compiled with fastmath={'reassoc'} only: LLVM may then change the order of the additions,
  which lets it add several lanes at once;
- exp in the precision of the logits: for float32 the branch-free polynomial
  ``autograd.kernels.cpu.fast_math.exp_float32``, which vectorises, where libm's exp is one opaque call
  per element; float64 keeps libm's.
"""

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from autograd.kernels.cpu.fast_math import exp_float32

from . import launch
from . import step2_fused_row_pass as step2
from . import step3_rows_across_threads as step3


def _exp(x):
    return math.exp(x)


@overload(_exp)
def _exp_overload(x):
    """exp in the precision of x: the vectorisable float32 version, or libm for float64."""
    if x == types.float32:
        return lambda x: exp_float32(x)
    return lambda x: math.exp(x)


@njit(cache=True, fastmath=False)
def _row_max(z, i):
    """max_k z_ik in eight running maxima. A nan in the row may be skipped here; it reaches the loss
    through exp(nan) = nan in the sum."""
    classes = z.shape[1]
    m0 = m1 = m2 = m3 = m4 = m5 = m6 = m7 = z[i, 0]
    end = classes - classes % 8
    for k in range(0, end, 8):
        m0 = max(m0, z[i, k])
        m1 = max(m1, z[i, k + 1])
        m2 = max(m2, z[i, k + 2])
        m3 = max(m3, z[i, k + 3])
        m4 = max(m4, z[i, k + 4])
        m5 = max(m5, z[i, k + 5])
        m6 = max(m6, z[i, k + 6])
        m7 = max(m7, z[i, k + 7])
    for k in range(end, classes):
        m0 = max(m0, z[i, k])
    return max(max(max(m0, m1), max(m2, m3)), max(max(m4, m5), max(m6, m7)))


@njit(cache=True, fastmath={"reassoc"}, error_model="numpy")
def _row_exp_sum(z, i, shift, probs):
    """probs[i, k] = exp(z_ik - shift); returns their sum in float64."""
    total = 0.0
    for k in range(z.shape[1]):
        e = _exp(z[i, k] - shift)
        probs[i, k] = e
        total += np.float64(e)
    return total


@njit(cache=True, fastmath={"reassoc"})
def _row_sum(z, i):
    total = 0.0
    for k in range(z.shape[1]):
        total += np.float64(z[i, k])
    return total


@njit(cache=True, fastmath={"reassoc"})
def _row_soft_target_sums(z, target, i, keep, spread):
    """sum_k q_ik and sum_k q_ik * z_ik, with q = keep * t + spread, in float64."""
    sum_q = 0.0
    sum_qz = 0.0
    for k in range(z.shape[1]):
        q = keep * np.float64(target[i, k]) + spread
        sum_q += q
        sum_qz += q * np.float64(z[i, k])
    return sum_q, sum_qz


@njit(cache=True, fastmath=False, error_model="numpy")
def _row_softmax(z, i, probs):
    """Write softmax(z_i) into probs[i]; return lse_i in float64. All -inf or any +inf or nan in the
    row gives nan, as in PyTorch."""
    m = _row_max(z, i)
    total = _row_exp_sum(z, i, m, probs)
    scale = np.float64(1.0) / total
    for k in range(z.shape[1]):
        probs[i, k] *= scale
    return np.float64(m) + math.log(total)


@njit(cache=True, fastmath=False, error_model="numpy")
def _forward_index_row(z, target, ignore_index, smoothing, loss, probs, i):
    """Loss of row i with a class-index target; returns 1 if the target is out of range."""
    classes = z.shape[1]
    t = target[i]
    if t == ignore_index or t < 0 or t >= classes:
        for k in range(classes):
            probs[i, k] = 0.0
        loss[i] = 0.0
        return 0 if t == ignore_index else 1
    lse = _row_softmax(z, i, probs)
    row_loss = (1.0 - smoothing) * (lse - np.float64(z[i, t]))
    if smoothing > 0.0:
        row_loss += smoothing * (lse - _row_sum(z, i) / classes)
    loss[i] = row_loss
    return 0


@njit(cache=True, fastmath=False, error_model="numpy")
def _forward_soft_row(z, target, smoothing, loss, probs, i):
    lse = _row_softmax(z, i, probs)
    sum_q, sum_qz = _row_soft_target_sums(z, target, i, 1.0 - smoothing, smoothing / z.shape[1])
    loss[i] = lse * sum_q - sum_qz


# Kernels: a parallel and a serial loop over the rows around each row function, as in step 3.


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def _forward_index_parallel(z, target, ignore_index, smoothing, loss, probs):
    invalid = 0
    for i in prange(z.shape[0]):
        invalid += _forward_index_row(z, target, ignore_index, smoothing, loss, probs, i)
    return invalid


@njit(cache=True, fastmath=False, error_model="numpy")
def _forward_index_serial(z, target, ignore_index, smoothing, loss, probs):
    invalid = 0
    for i in range(z.shape[0]):
        invalid += _forward_index_row(z, target, ignore_index, smoothing, loss, probs, i)
    return invalid


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def _forward_soft_parallel(z, target, smoothing, loss, probs):
    for i in prange(z.shape[0]):
        _forward_soft_row(z, target, smoothing, loss, probs, i)


@njit(cache=True, fastmath=False, error_model="numpy")
def _forward_soft_serial(z, target, smoothing, loss, probs):
    for i in range(z.shape[0]):
        _forward_soft_row(z, target, smoothing, loss, probs, i)


# The backward kernels are step 3's (serial ones from step 2).
SERIAL = launch.RowKernels(
    _forward_index_serial, _forward_soft_serial, step2.backward_index_serial, step2.backward_soft_serial
)
PARALLEL = launch.RowKernels(
    _forward_index_parallel,
    _forward_soft_parallel,
    step3.backward_index_parallel,
    step3.backward_soft_parallel,
)


def _kernels_for(size):
    return PARALLEL if size >= launch.PARALLEL_MIN_SIZE else SERIAL


def cross_entropy_forward(logits, target, label_smoothing=0.0, reduction="mean", ignore_index=-100):
    """Softmax cross-entropy, as torch.nn.functional.cross_entropy (without class weights).

    Args:
        logits: (N, K) float array (any strides).
        target: (N,) integer class indices, or (N, K) float class probabilities.
        label_smoothing: eps in [0, 1].
        reduction: "mean", "sum" or "none".
        ignore_index: class-index targets equal to it are skipped.

    Returns:
        loss: 0-d array for "mean"/"sum", (N,) for "none", in the dtype of the logits;
        probabilities: (N, K) softmax of the logits (rows of ignored samples are 0), to hand to
        cross_entropy_backward.

    Raises:
        IndexError: a class index outside [0, K) that is not ignore_index.
    """
    return launch.forward(_kernels_for, logits, target, label_smoothing, reduction, ignore_index)


def cross_entropy_backward(
    grad_loss, probabilities, target, label_smoothing=0.0, reduction="mean", ignore_index=-100
):
    """Gradient of cross_entropy_forward with respect to the logits.

    Args:
        grad_loss: gradient of the loss: scalar for "mean"/"sum", (N,) for "none".
        probabilities: (N, K) as returned by the forward.
        target, label_smoothing, reduction, ignore_index: as given to the forward.

    Returns:
        grad_logits (N, K) = (p * sum(q) - q) * grad_loss_i, divided by the sample count for "mean".
    """
    return launch.backward(
        _kernels_for, grad_loss, probabilities, target, label_smoothing, reduction, ignore_index
    )
