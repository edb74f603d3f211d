"""Layer normalisation: Numba CPU kernels, written as steps from the plain loop to the one used.

Math (one normalised group of D values x_1..x_D, weight w, bias b):

    mean = sum_j x_j / D
    var  = sum_j (x_j - mean)^2 / D             (biased, as in PyTorch)
    rstd = 1 / sqrt(var + eps)
    xhat = (x - mean) * rstd
    y    = xhat * w + b

Backward, with dy the incoming gradient and g = dy * w:

    dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))
    dw = sum over groups of dy * xhat
    db = sum over groups of dy

Rows ("channels last"): x is a 2-D view (rows, D), normalised over the last axis; mean and rstd have shape
(rows,). ``layer_norm_forward`` and ``layer_norm_backward``, in three steps (``STEPS``):

- step 1, plain loops (step1_plain_loops.py): the formula, row after row, every pass its own loop
  (mean, then variance; the two means of the backward, then dx, then dw and db), all in float64.
- step 2, fused passes (step2_fused_passes.py): the sums in float64 helpers that LLVM may vectorise
  (fastmath={'reassoc'} only), the elementwise loops in the input dtype, the backward in two passes
  over a row instead of four.
- step 3, rows across threads (step3_rows_across_threads.py): rows spread over threads; dw and db
  summed per chunk of rows into float64 partials added in a fixed order, so they do not depend on the
  thread count. The one used.

Channels first (channels_first.py): x is (N, C, *spatial), e.g. NCHW, normalised over C at every position;
mean and rstd have shape (N, *spatial). ``layer_norm_channels_first_forward`` and
``layer_norm_channels_first_backward`` loop over C outside and over a block of contiguous positions inside,
with no transpose; they have no separate steps, and belong to the last step of ``STEPS``.

Statistics are accumulated in float64 even for float32 input, the variance in a second pass over
(x - mean)^2. Numba's on-disk cache does not follow imports across modules: after editing the helpers of
step 2, clear the ``__pycache__`` of this package so step 3 is compiled again with them.

The plain math these kernels must reproduce is the body of the op ``LayerNorm``
(autograd/nn/functional/norm.py): the tests check every step against it.
"""

from types import SimpleNamespace

from autograd.kernels.cpu.layer_norm import step1_plain_loops, step2_fused_passes
from autograd.kernels.cpu.layer_norm.channels_first import (
    layer_norm_channels_first_backward,
    layer_norm_channels_first_forward,
)
from autograd.kernels.cpu.layer_norm.step3_rows_across_threads import layer_norm_backward, layer_norm_forward

STEPS = {
    "1 plain loops": SimpleNamespace(
        layer_norm_forward=step1_plain_loops.layer_norm_forward,
        layer_norm_backward=step1_plain_loops.layer_norm_backward,
    ),
    "2 fused passes": SimpleNamespace(
        layer_norm_forward=step2_fused_passes.layer_norm_forward,
        layer_norm_backward=step2_fused_passes.layer_norm_backward,
    ),
    "3 rows across threads": SimpleNamespace(
        layer_norm_forward=layer_norm_forward,
        layer_norm_backward=layer_norm_backward,
        layer_norm_channels_first_forward=layer_norm_channels_first_forward,
        layer_norm_channels_first_backward=layer_norm_channels_first_backward,
    ),
}

__all__ = [
    "STEPS",
    "layer_norm_backward",
    "layer_norm_channels_first_backward",
    "layer_norm_channels_first_forward",
    "layer_norm_forward",
]
