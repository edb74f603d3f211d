"""Softmax cross-entropy on the GPU, forward and backward: one thread per sample (row of logits).

Math as in ``autograd.kernels.cpu.cross_entropy`` and torch.nn.functional.cross_entropy: with
m = max_k z_k, s = sum_k exp(z_k - m) and lse = m + log s, p_k = exp(z_k - lse); the target distribution
q = (1 - eps) onehot(y) + eps / K (or (1 - eps) t + eps / K for soft targets t);
loss = lse sum_k q_k - sum_k q_k z_k; dloss/dz_k = p_k sum q - q_k. Row sums are in double. Samples whose
class index equals ignore_index have loss 0, probabilities 0 and gradient 0; an index outside [0, K)
marks its row in ``out_of_range`` and the wrapper raises IndexError.

Thread mapping: thread i (grid-stride) owns row i: it makes its passes over the K logits of that row
(max, sum of exponentials, probabilities, target sums) and writes that row's loss, probabilities and
gradients, which no other thread touches. A batch has few rows of few classes, so this op is tiny next to
the network, and one thread per row keeps it simple. The sum of the losses over the rows is the second
step of the reduction, ``xp.sum`` in the wrapper: no atomics or shared memory, so the emulator can run it.
"""

from __future__ import annotations

import numpy as np

from ...backend import get_array_module
from ..cpu.common import float_dtype
from ..cpu.cross_entropy.launch import check_options
from .source import CudaSource

SOURCE = CudaSource(
    "cross_entropy",
    r"""
/* Write softmax(z_i) into probs_i and return lse_i = log sum_k exp z_ik (row i of z, K classes). */
__device__ double row_softmax(const scalar_t* z, scalar_t* probs, long long i, long long K) {
    double m = z[i * K];
    for (long long k = 1; k < K; ++k) m = z[i * K + k] > m ? (double)z[i * K + k] : m;
    double s = 0.0;
    for (long long k = 0; k < K; ++k) s += exp(z[i * K + k] - m);
    double lse = m + log(s);
    for (long long k = 0; k < K; ++k) probs[i * K + k] = (scalar_t)exp(z[i * K + k] - lse);
    return lse;
}

extern "C" __global__ void cross_entropy_forward_index(const scalar_t* z,
                                                       const long long* target,
                                                       double* loss,
                                                       scalar_t* probs,
                                                       int* out_of_range,
                                                       long long N,
                                                       long long K,
                                                       long long ignore_index,
                                                       double smoothing) {
    GRID_STRIDE_LOOP(i, N) {
        long long t = target[i];
        out_of_range[i] = t != ignore_index && (t < 0 || t >= K);
        if (t == ignore_index || t < 0 || t >= K) {
            for (long long k = 0; k < K; ++k) probs[i * K + k] = 0;
            loss[i] = 0.0;
            continue;
        }
        double lse = row_softmax(z, probs, i, K);
        double row_loss = (1.0 - smoothing) * (lse - z[i * K + t]);
        if (smoothing > 0.0) {
            double sum_z = 0.0;
            for (long long k = 0; k < K; ++k) sum_z += z[i * K + k];
            row_loss += smoothing * (lse - sum_z / K);
        }
        loss[i] = row_loss;
    }
}

extern "C" __global__ void cross_entropy_forward_soft(const scalar_t* z,
                                                      const scalar_t* target,
                                                      double* loss,
                                                      scalar_t* probs,
                                                      long long N,
                                                      long long K,
                                                      double smoothing) {
    GRID_STRIDE_LOOP(i, N) {
        double lse = row_softmax(z, probs, i, K);
        double sum_q = 0.0, sum_qz = 0.0;
        for (long long k = 0; k < K; ++k) {
            double q = (1.0 - smoothing) * target[i * K + k] + smoothing / K;
            sum_q += q;
            sum_qz += q * z[i * K + k];
        }
        loss[i] = lse * sum_q - sum_qz;
    }
}

extern "C" __global__ void cross_entropy_backward_index(const scalar_t* grad_loss,
                                                        const scalar_t* probs,
                                                        const long long* target,
                                                        scalar_t* grad_z,
                                                        long long N,
                                                        long long K,
                                                        long long ignore_index,
                                                        double smoothing) {
    GRID_STRIDE_LOOP(i, N) {
        long long t = target[i];
        bool skip = t == ignore_index || t < 0 || t >= K;
        double scale = skip ? 0.0 : (double)grad_loss[i];
        for (long long k = 0; k < K; ++k) {
            double q = smoothing / K + (k == t ? 1.0 - smoothing : 0.0);
            grad_z[i * K + k] = (scalar_t)(skip ? 0.0 : scale * (probs[i * K + k] - q));
        }
    }
}

extern "C" __global__ void cross_entropy_backward_soft(const scalar_t* grad_loss,
                                                       const scalar_t* probs,
                                                       const scalar_t* target,
                                                       scalar_t* grad_z,
                                                       long long N,
                                                       long long K,
                                                       double smoothing) {
    GRID_STRIDE_LOOP(i, N) {
        double sum_q = 0.0;
        for (long long k = 0; k < K; ++k) sum_q += (1.0 - smoothing) * target[i * K + k] + smoothing / K;
        double scale = grad_loss[i];
        for (long long k = 0; k < K; ++k) {
            double q = (1.0 - smoothing) * target[i * K + k] + smoothing / K;
            grad_z[i * K + k] = (scalar_t)(scale * (probs[i * K + k] * sum_q - q));
        }
    }
}
""",
)


def _prepare(xp, scores, target):
    """Scores (N, K) contiguous in float32/64, the target contiguous, whether it is soft, and the dtype."""
    if scores.ndim != 2:
        raise ValueError(f"logits must have shape (N, K), got {scores.shape}")
    dtype = float_dtype(scores)
    scores = xp.ascontiguousarray(scores, dtype=dtype)
    soft = target.dtype.kind == "f"
    if soft:
        if target.shape != scores.shape:
            raise ValueError(f"soft targets must have the logits' shape {scores.shape}, got {target.shape}")
        return scores, xp.ascontiguousarray(target, dtype=dtype), True, dtype
    if target.shape != scores.shape[:1]:
        raise ValueError(f"class-index targets must have shape ({scores.shape[0]},), got {target.shape}")
    return scores, xp.ascontiguousarray(target, dtype=np.int64), False, dtype


def _valid_count(target, soft, ignore_index):
    """How many samples count in a "mean": all of them with soft targets, else those not ignored."""
    return target.shape[0] if soft else int((target != ignore_index).sum())


def cross_entropy_forward(logits, target, label_smoothing=0.0, reduction="mean", ignore_index=-100):
    """loss (0-d for "mean"/"sum", (N,) for "none") and the softmax probabilities (N, K) for the backward."""
    check_options(label_smoothing, reduction)
    xp = get_array_module(logits, target)
    z, target, soft, dtype = _prepare(xp, logits, target)
    N, K = z.shape
    loss = xp.empty(N, xp.float64)
    probs = xp.empty_like(z)
    if soft:
        SOURCE.launch(
            "cross_entropy_forward_soft", N, (z, target, loss, probs, N, K, float(label_smoothing)), dtype
        )
    else:
        out_of_range = xp.empty(N, xp.int32)
        SOURCE.launch(
            "cross_entropy_forward_index",
            N,
            (z, target, loss, probs, out_of_range, N, K, int(ignore_index), float(label_smoothing)),
            dtype,
        )
        invalid = int(out_of_range.sum())
        if invalid:
            raise IndexError(f"{invalid} target(s) out of range [0, {K})")
    if reduction == "none":
        return loss.astype(dtype), probs
    total = loss.sum()
    if reduction == "mean":
        count = _valid_count(target, soft, ignore_index)
        total = total / count if count else total * np.nan
    return total.astype(dtype), probs


def cross_entropy_backward(
    grad_loss, probabilities, target, label_smoothing=0.0, reduction="mean", ignore_index=-100
):
    """grad_logits (N, K) = (p sum(q) - q) grad_loss_i, divided by the sample count for "mean"."""
    check_options(label_smoothing, reduction)
    xp = get_array_module(probabilities, target)
    probs, target, soft, dtype = _prepare(xp, probabilities, target)
    N, K = probs.shape
    if reduction == "none":
        scale = xp.ascontiguousarray(grad_loss, dtype=dtype).reshape(N)
    else:
        scale = xp.broadcast_to(xp.asarray(grad_loss, dtype=dtype).reshape(()), (N,))
        if reduction == "mean":
            count = _valid_count(target, soft, ignore_index)
            scale = scale / count if count else scale * 0  # all samples ignored: every gradient is 0
        scale = xp.ascontiguousarray(scale, dtype=dtype)
    grad_z = xp.empty_like(probs)
    if soft:
        SOURCE.launch(
            "cross_entropy_backward_soft",
            N,
            (scale, probs, target, grad_z, N, K, float(label_smoothing)),
            dtype,
        )
    else:
        SOURCE.launch(
            "cross_entropy_backward_index",
            N,
            (scale, probs, target, grad_z, N, K, int(ignore_index), float(label_smoothing)),
            dtype,
        )
    return grad_z
