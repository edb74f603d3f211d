"""Softmax cross-entropy on the CPU: Numba kernels in four steps, from plain loops to the ones in use.

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

The steps (``STEPS``, in story order; every step implements cross_entropy_forward and
cross_entropy_backward, with the signatures of the public functions):
1 plain loops           the formulas row by row: max, log-sum-exp, loss, then p with a second exp.
2 fused row pass        one exp per logit, written into the probabilities and scaled; closed-form losses;
                        the backward reads the saved probabilities and does no exp.
3 rows across threads   step 2's rows over Numba's threads (prange), serial below a size.
4 vectorised rows       the forward's row loops vectorised: eight running maxima, reassociated sums,
                        a float32 polynomial exp. Today's kernels: the public functions are step 4's.

The host side shared by every step (checks, reductions) is in ``launch.py``. The plain math, which every
step is tested against, is the op's own body: ``CrossEntropy`` in ``autograd/nn/functional/loss.py``.
"""

from types import SimpleNamespace

from . import step1_plain_loops, step2_fused_row_pass, step3_rows_across_threads, step4_vectorised_rows
from .launch import PARALLEL_MIN_SIZE, REDUCTIONS
from .step4_vectorised_rows import cross_entropy_backward, cross_entropy_forward


def _entry_points(step):
    return SimpleNamespace(
        cross_entropy_forward=step.cross_entropy_forward, cross_entropy_backward=step.cross_entropy_backward
    )


STEPS = {
    "1 plain loops": _entry_points(step1_plain_loops),
    "2 fused row pass": _entry_points(step2_fused_row_pass),
    "3 rows across threads": _entry_points(step3_rows_across_threads),
    "4 vectorised rows": _entry_points(step4_vectorised_rows),
}

__all__ = [
    "PARALLEL_MIN_SIZE",
    "REDUCTIONS",
    "STEPS",
    "cross_entropy_backward",
    "cross_entropy_forward",
]
