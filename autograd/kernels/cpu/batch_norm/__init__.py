"""Batch normalisation (Ioffe & Szegedy, 2015): Numba CPU kernels, written as steps from the plain loop to
the one used.

Math, per channel c over its m values (every sample and position of the batch):

    mean = sum x / m,   var = sum (x - mean)^2 / m        (biased; training uses the batch's, evaluation
    rstd = 1 / sqrt(var + eps)                             the running statistics)
    y    = (x - mean) * rstd * w + b

Backward, with dy the incoming gradient and xhat = (x - mean) * rstd:

    dw = sum dy * xhat,   db = sum dy
    training:    dx = w * rstd * (dy - db / m - xhat * dw / m)   (the statistics depend on x)
    evaluation:  dx = w * rstd * dy                              (they are constants)

Two layouts: channels last, (N, ..., C) viewed as (rows, C) (``ConvNeXt(norm_layer="batch")``'s blocks),
and channels first, (N, C, *spatial) viewed as (N, C, S) (the stem and downsampling layers, ResNets).
``batch_norm_statistics``, ``batch_norm_normalize`` and ``batch_norm_backward`` take both
(``channels_last``), in two steps (``STEPS``):

- step 1, plain loops (step1_plain_loops.py): one body for both layouts, one channel after another, in
  float64, on one thread.
- step 2, per-layout threads (step2_both_layouts.py, with step2_channels_last.py and
  step2_channels_first.py): for each layout, kernels that read memory in order, without transposing,
  spread over threads; sums added in a fixed order (the result does not depend on the thread count),
  and the backward reduced to one pair of per-channel sums and one elementwise pass. The one used.

Sums are taken in float64 even for float32 input, the variance in a second pass over (x - mean)^2.

The plain math these kernels must reproduce is the body of the op ``BatchNorm``
(autograd/nn/functional/norm.py): the tests check every step against it.
"""

from types import SimpleNamespace

from autograd.kernels.cpu.batch_norm import step1_plain_loops
from autograd.kernels.cpu.batch_norm.step2_both_layouts import (
    batch_norm_backward,
    batch_norm_normalize,
    batch_norm_statistics,
)

STEPS = {
    "1 plain loops": SimpleNamespace(
        batch_norm_statistics=step1_plain_loops.batch_norm_statistics,
        batch_norm_normalize=step1_plain_loops.batch_norm_normalize,
        batch_norm_backward=step1_plain_loops.batch_norm_backward,
    ),
    "2 per-layout threads": SimpleNamespace(
        batch_norm_statistics=batch_norm_statistics,
        batch_norm_normalize=batch_norm_normalize,
        batch_norm_backward=batch_norm_backward,
    ),
}

__all__ = [
    "STEPS",
    "batch_norm_backward",
    "batch_norm_normalize",
    "batch_norm_statistics",
]
