"""Softmax cross-entropy over logits: fused Numba CPU kernels beside their plain references (which run
on NumPy and CuPy arrays alike: they take the array module of their inputs).

Math, for logits z of shape (N, K), label smoothing eps in [0, 1] and lse_i = log sum_k exp(z_ik):

    p_ik     = exp(z_ik - lse_i)                          (softmax)
    q_i      = target distribution of sample i:
               class indices y (N,):       q_i = (1 - eps) * onehot(y_i) + eps / K
               soft targets t (N, K):      q_i = (1 - eps) * t_i + eps / K
    loss_i   = -sum_k q_ik * log p_ik = lse_i * sum_k q_ik - sum_k q_ik * z_ik
    dloss_i / dz_ik = p_ik * sum_k q_ik - q_ik            (sum_k q_ik = 1 for class indices)

Reductions follow torch.nn.functional.cross_entropy (without class weights) exactly:
- class indices: samples whose target equals ignore_index have loss 0 and gradient 0; "mean" divides by
  the number of the other samples (nan when there are none);
- soft targets: "mean" divides by N; ignore_index does not apply.

Numerical stability: with m_i = max_k z_ik, e_ik = exp(z_ik - m_i) <= 1, s_i = sum_k e_ik (float64),
lse_i = m_i + log s_i and p_ik = e_ik / s_i. One exp per logit: the forward writes e into the
probability array, then scales it; the backward reads the saved probabilities and does no exp.

Parallelisation: one row per task, over threads with prange; inputs with fewer than _PARALLEL_MIN_SIZE
logits go to a serial kernel, since waking the thread pool costs more than the work. float32 uses the
vectorisable exp written in autograd.kernels.cpu.gelu; float64 uses libm's. Row sums are done in helpers
compiled with fastmath={'reassoc'} only (changes the summation order, lets LLVM vectorise the sum).
Kernels use error_model='numpy' (no ZeroDivisionError check, which blocks vectorisation).
"""

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from autograd.backend import get_array_module
from autograd.kernels.cpu.gelu import _exp_float32

REDUCTIONS = ("mean", "sum", "none")

# Below this many logits the serial kernels are used.
_PARALLEL_MIN_SIZE = 1 << 15


def _exp(x):
    return math.exp(x)


@overload(_exp)
def _exp_overload(x):
    """exp in the precision of x: the vectorisable float32 version, or libm for float64."""
    if x == types.float32:
        return lambda x: _exp_float32(x)
    return lambda x: math.exp(x)


# --------------------------------------------------------------------------------------------------------
# Row functions. They take whole arrays and a row index: views made inside a parallel loop and handed to
# a function would be reference counted on every call, with all threads writing the same counter.
# --------------------------------------------------------------------------------------------------------


@njit(cache=True, fastmath=False)
def _row_max(z, i):
    """max_k z_ik, kept in eight independent running maxima so the loop is not one long dependency
    chain (LLVM does not vectorise a float max reduction). A nan in the row may be skipped here; it
    reaches the loss through exp(nan) = nan in the sum."""
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


@njit(cache=True, fastmath=False, error_model="numpy")
def _backward_index_row(grad_loss, probs, target, ignore_index, smoothing, grad_z, i):
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
def _backward_soft_row(grad_loss, probs, target, smoothing, grad_z, i):
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


# --------------------------------------------------------------------------------------------------------
# Kernels: a parallel and a serial loop over rows around each row function
# --------------------------------------------------------------------------------------------------------


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


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def _backward_index_parallel(grad_loss, probs, target, ignore_index, smoothing, grad_z):
    for i in prange(probs.shape[0]):
        _backward_index_row(grad_loss, probs, target, ignore_index, smoothing, grad_z, i)


@njit(cache=True, fastmath=False, error_model="numpy")
def _backward_index_serial(grad_loss, probs, target, ignore_index, smoothing, grad_z):
    for i in range(probs.shape[0]):
        _backward_index_row(grad_loss, probs, target, ignore_index, smoothing, grad_z, i)


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def _backward_soft_parallel(grad_loss, probs, target, smoothing, grad_z):
    for i in prange(probs.shape[0]):
        _backward_soft_row(grad_loss, probs, target, smoothing, grad_z, i)


@njit(cache=True, fastmath=False, error_model="numpy")
def _backward_soft_serial(grad_loss, probs, target, smoothing, grad_z):
    for i in range(probs.shape[0]):
        _backward_soft_row(grad_loss, probs, target, smoothing, grad_z, i)


# --------------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------------


def _check_options(label_smoothing, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")


def _prepare(scores, target):
    """scores: logits or probabilities (N, K). Returns them contiguous, the target contiguous, whether
    the target is soft, and the float dtype."""
    scores = np.asarray(scores)
    target = np.asarray(target)
    if scores.ndim != 2:
        raise ValueError(f"logits must have shape (N, K), got {scores.shape}")
    dtype = np.float32 if scores.dtype == np.float32 else np.float64
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


def _valid_count(target, soft, ignore_index):
    if soft:
        return target.shape[0]
    return target.shape[0] - int(np.count_nonzero(target == ignore_index))


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
    _check_options(label_smoothing, reduction)
    z, target, soft, dtype = _prepare(logits, target)
    rows = z.shape[0]
    loss = np.empty(rows, np.float64)
    probs = np.empty_like(z)
    parallel = z.size >= _PARALLEL_MIN_SIZE
    if soft:
        kernel = _forward_soft_parallel if parallel else _forward_soft_serial
        kernel(z, target, float(label_smoothing), loss, probs)
    else:
        kernel = _forward_index_parallel if parallel else _forward_index_serial
        invalid = kernel(z, target, int(ignore_index), float(label_smoothing), loss, probs)
        if invalid:
            raise IndexError(f"{invalid} target(s) out of range [0, {z.shape[1]})")
    if reduction == "none":
        return loss.astype(dtype), probs
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / np.float64(_valid_count(target, soft, ignore_index))
    return np.asarray(total, dtype), probs


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
    _check_options(label_smoothing, reduction)
    probs, target, soft, dtype = _prepare(probabilities, target)
    rows = probs.shape[0]
    if reduction == "none":
        scale = np.ascontiguousarray(grad_loss, dtype=dtype).reshape(rows)
    else:
        g = float(np.asarray(grad_loss).reshape(()))
        if reduction == "mean":
            count = _valid_count(target, soft, ignore_index)
            g = g / count if count else 0.0  # all samples ignored: every row's gradient is 0
        scale = np.full(rows, g, dtype)
    grad_z = np.empty_like(probs)
    parallel = probs.size >= _PARALLEL_MIN_SIZE
    if soft:
        kernel = _backward_soft_parallel if parallel else _backward_soft_serial
        kernel(scale, probs, target, float(label_smoothing), grad_z)
    else:
        kernel = _backward_index_parallel if parallel else _backward_index_serial
        kernel(scale, probs, target, int(ignore_index), float(label_smoothing), grad_z)
    return grad_z


def _target_distribution_reference(target, classes, label_smoothing, ignore_index, xp):
    """q (N, K) in float64 (zero rows for ignored samples) and the mask of samples that count, as arrays
    of the array module xp."""
    target = xp.asarray(target)
    if np.issubdtype(target.dtype, np.floating):
        q = xp.asarray(target, xp.float64)
        valid = xp.ones(q.shape[0], bool)
    else:
        valid = target != ignore_index
        q = xp.zeros((target.shape[0], classes))
        q[xp.nonzero(valid)[0], target[valid]] = 1.0
    q = (1.0 - label_smoothing) * q + label_smoothing / classes
    return q * valid[:, None], valid


def cross_entropy_forward_reference(logits, target, label_smoothing=0.0, reduction="mean", ignore_index=-100):
    """Plain twin of cross_entropy_forward (float64 inside), on the array module of the logits (NumPy
    or CuPy)."""
    xp = get_array_module(logits)
    dtype = np.float32 if xp.asarray(logits).dtype == np.float32 else np.float64
    z = xp.asarray(logits, xp.float64)
    m = z.max(axis=1, keepdims=True)
    log_p = z - (m + xp.log(xp.exp(z - m).sum(axis=1, keepdims=True)))
    q, valid = _target_distribution_reference(target, z.shape[1], label_smoothing, ignore_index, xp)
    loss = -(q * log_p).sum(axis=1)
    probs = xp.exp(log_p) * valid[:, None]
    if reduction == "none":
        return loss.astype(dtype), probs.astype(dtype)
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / valid.sum()  # nan when every sample is ignored, as in PyTorch
    return xp.asarray(total, dtype), probs.astype(dtype)


def cross_entropy_backward_reference(
    grad_loss, probabilities, target, label_smoothing=0.0, reduction="mean", ignore_index=-100
):
    """Plain twin of cross_entropy_backward (float64 inside), on the array module of the probabilities."""
    xp = get_array_module(probabilities)
    dtype = np.float32 if xp.asarray(probabilities).dtype == np.float32 else np.float64
    p = xp.asarray(probabilities, xp.float64)
    q, valid = _target_distribution_reference(target, p.shape[1], label_smoothing, ignore_index, xp)
    grad = p * q.sum(axis=1, keepdims=True) - q
    if reduction == "none":
        scale = xp.asarray(grad_loss, xp.float64).reshape(-1)
    else:
        scale = xp.full(p.shape[0], float(xp.asarray(grad_loss).reshape(())))
        if reduction == "mean":
            count = int(valid.sum())
            scale = scale / count if count else scale * 0.0
    return (grad * scale[:, None]).astype(dtype)
