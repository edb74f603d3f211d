"""Cross-entropy, step 3: the rows split across threads.

Changes from step 2: the loop over rows becomes a prange, so Numba's threads each take a share of the
rows; every row is still computed by one thread alone, with the row functions of step 2, so the numbers
do not depend on the thread count. Inputs with fewer than ``launch.PARALLEL_MIN_SIZE`` logits keep
step 2's serial kernels, since waking the thread pool costs more than the work. The out-of-range count
is a prange reduction (``invalid +=``), which Numba combines across threads.
"""

from numba import njit, prange

from . import launch
from .step2_fused_row_pass import KERNELS as SERIAL
from .step2_fused_row_pass import backward_index_row, backward_soft_row, forward_index_row, forward_soft_row


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def forward_index_parallel(z, target, ignore_index, smoothing, loss, probs):
    invalid = 0
    for i in prange(z.shape[0]):
        invalid += forward_index_row(z, target, ignore_index, smoothing, loss, probs, i)
    return invalid


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def forward_soft_parallel(z, target, smoothing, loss, probs):
    for i in prange(z.shape[0]):
        forward_soft_row(z, target, smoothing, loss, probs, i)


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def backward_index_parallel(grad_loss, probs, target, ignore_index, smoothing, grad_z):
    for i in prange(probs.shape[0]):
        backward_index_row(grad_loss, probs, target, ignore_index, smoothing, grad_z, i)


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def backward_soft_parallel(grad_loss, probs, target, smoothing, grad_z):
    for i in prange(probs.shape[0]):
        backward_soft_row(grad_loss, probs, target, smoothing, grad_z, i)


PARALLEL = launch.RowKernels(
    forward_index_parallel, forward_soft_parallel, backward_index_parallel, backward_soft_parallel
)


def _kernels_for(size):
    return PARALLEL if size >= launch.PARALLEL_MIN_SIZE else SERIAL


def cross_entropy_forward(logits, target, label_smoothing=0.0, reduction="mean", ignore_index=-100):
    return launch.forward(_kernels_for, logits, target, label_smoothing, reduction, ignore_index)


def cross_entropy_backward(
    grad_loss, probabilities, target, label_smoothing=0.0, reduction="mean", ignore_index=-100
):
    return launch.backward(
        _kernels_for, grad_loss, probabilities, target, label_smoothing, reduction, ignore_index
    )
