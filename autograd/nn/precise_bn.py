"""Recomputing BatchNorm's population statistics with the final weights ("precise BN").

In training, BatchNorm keeps running averages ``r <- (1 - m) r + m * batch_stat`` (m = 0.1): an average over
the last ~1/m batches, taken while the weights were still changing, and noisy when each batch is small.
Wu & Johnson (2021, "Rethinking 'Batch' in BatchNorm", Section 3) show that evaluation improves when the
statistics are instead recomputed once training is over: freeze the weights, run N training batches through
the network in training mode, and take the plain mean of their batch statistics (Detectron2's PreciseBN,
``torch.optim.swa_utils.update_bn``). Here::

    running_mean = mean over batches of the batch means
    running_var  = mean over batches of the (unbiased) batch variances

which is BatchNorm2d with ``momentum=None`` (the k-th batch weighted 1/k), started from zero batches.
"""

from __future__ import annotations

from ..creation import tensor
from ..function import no_grad
from .layers import BatchNorm2d


def recompute_batchnorm_statistics(model, batches, device: str = "cpu") -> int:
    """Replace the running statistics of every ``BatchNorm2d`` in ``model`` by their mean over ``batches``
    (an iterable of input arrays, each normalised as one batch, as in training). Only the BatchNorm layers
    run in training mode, so dropout and drop-path stay off; no graph is built and the weights are untouched.
    Returns the number of batches used. If ``batches`` is empty or raises, the statistics are left as they
    were. The training/eval modes, momenta and ``num_batches_tracked`` counters are restored afterwards."""
    norms = [m for m in model.modules() if isinstance(m, BatchNorm2d)]
    if not norms:
        return 0
    saved = [
        (
            m.momentum,
            m.training,
            m.running_mean.data.copy(),
            m.running_var.data.copy(),
            m.num_batches_tracked.data.copy(),
        )
        for m in norms
    ]
    model_was_training = model.training
    count, finished = 0, False
    try:
        model.eval()
        for m in norms:
            m.train()
            m.momentum = None  # the mean over all batches, not an exponential average
            m.num_batches_tracked.data = m.num_batches_tracked.data * 0
        with no_grad():
            for x in batches:
                model(tensor(x, device=device))
                count += 1
        finished = True
    finally:
        model.train(model_was_training)
        for m, (momentum, training, mean, var, tracked) in zip(norms, saved, strict=False):
            m.momentum, m.training = momentum, training
            m.num_batches_tracked.data = tracked
            if count == 0 or not finished:  # nothing seen, or stopped part-way: keep the old statistics
                m.running_mean.data, m.running_var.data = mean, var
    return count
