"""Depthwise 2-D convolution (groups == channels) on the CPU: a chapter of Numba kernels, one idea a step.

The chapter, in reading order (STEPS below maps a step name to its entry functions):

    geometry.py                   shared by every step: argument checks, output size, the split into tasks
    step1_plain_loops.py          1 plain loops: the formula as loops, one thread, bounds tests for padding
    step2_threads.py              2 threads: (image, row block) tasks in prange, grad_x as a gather,
                                    grad_w/grad_b in float64 partials per fixed chunk (deterministic)
    step3_wide_rows.py            3 wide rows: rows copied into a zeroed buffer with shared padding, so
                                    each tap is one unit-stride loop; stride-1 grad_x is a forward pass
    step4_lane_loops.py           4 (inner loops): 16 channels in the vector lanes, 8 pixels x 7 taps
    step4_forward.py              4 channel blocks, forward: the kernel in use for NHWC
    step4_backward.py             4 channel blocks, backward (grad_x, grad_w, grad_b)
    nchw_plane_loops.py           the NCHW layout (inner loops): the taps of a kernel row fused
    nchw_planes.py                the NCHW layout: one plane at a time (tiny planes go to step 4)

The math they compute is the op's own body, ``DepthwiseConv2d`` in ``autograd/nn/functional/conv.py``
(``F.depthwise_conv2d_channels_last`` for NHWC, ``F.conv2d(..., groups=C)`` for NCHW); the tests run every
step through that op and compare it with the body.

Steps 1-3 implement the NHWC entry points depthwise_conv2d_nhwc_forward and depthwise_conv2d_nhwc_backward;
the last step also carries the NCHW ones, and it is what the public names of this package are.

Math (cross-correlation, as in PyTorch). One KH x KW filter per channel c, stride (sh, sw), zero padding
(ph, pw), output size Ho = (H + 2*ph - KH)//sh + 1, Wo = (W + 2*pw - KW)//sw + 1:

    out[n, c, i, j] = b[c] + sum_{kh, kw} w[c, kh, kw] * xpad[n, c, i*sh + kh, j*sw + kw]

where xpad is x with ph zero rows above/below and pw zero columns left/right. Backward, for g = dL/dout:

    grad_w[c, kh, kw] = sum_{n, i, j} g[n, c, i, j] * xpad[n, c, i*sh + kh, j*sw + kw]
    grad_b[c]         = sum_{n, i, j} g[n, c, i, j]
    grad_xpad[n, c, i*sh + kh, j*sw + kw] += w[c, kh, kw] * g[n, c, i, j]      (then crop the padding)

For stride 1 and ph <= KH-1, pw <= KW-1 the last line is itself a correlation ("full" convolution):
grad_x = corr(pad(g, KH-1-ph, KW-1-pw), flip(w)), so it reuses the forward kernel.

Layouts and shapes:
    NCHW (PyTorch):       x (N, C, H, W), weight (C, KH, KW), bias (C,), out (N, C, Ho, Wo)
    NHWC (channels-last): x (N, H, W, C), weight (KH, KW, C), bias (C,), out (N, Ho, Wo, C)
float32 and float64 both work (Numba compiles one specialisation per dtype). Every step accepts any kernel
size, padding >= 0 (per axis) and stride >= 1; the tuned paths of step 4 are stride 1 (7-wide kernels
fastest). Stride 2 and paddings > K-1 use simpler strided / scatter loops there (correct, not tuned).

Shared-padding "wide row" trick. An image is copied into a zeroed buffer with row stride S = W + pw:
the pw zero columns between two rows serve as right padding of one row and left padding of the next.
For stride 1, output pixel (i, j) then reads buffer pixel (i + kh)*S + j + kw: every tap is a constant
shift of ONE long flat loop over q = i*S + j (columns j >= Wo are junk, dropped on copy-out).

Parallelisation (numba prange): NHWC over (image, block of output rows) tasks, NCHW over chunks of (n, c)
planes. Weight/bias gradients are reductions: each parallel chunk owns a float64 partial buffer and the
partials are summed afterwards in a fixed order. Chunk counts depend only on the shapes, never on the
number of threads, so results are bit-for-bit deterministic whatever the thread count.
fastmath (step 4 and NCHW): only 'contract' (fused multiply-add: removes a rounding) and, in the NCHW
gradient dot products, 'reassoc' (several vector partial sums: a different, not worse, summation order,
fixed for a given build). No 'nnan'/'ninf': NaN and inf propagate as in IEEE arithmetic.
One exception, of the wide-row grad_w (step 3 and NCHW): its dot products run over whole wide rows, junk
columns (g = 0) included, so a NaN or inf in x can give NaN (0 * inf) in a tap whose windows never meet
it, where the op's body keeps a finite value. Outputs and grad_x match the body exactly in this respect.
"""

from types import SimpleNamespace

from . import step1_plain_loops, step2_threads, step3_wide_rows
from .nchw_planes import depthwise_conv2d_nchw_backward, depthwise_conv2d_nchw_forward
from .step4_backward import depthwise_conv2d_nhwc_backward
from .step4_forward import depthwise_conv2d_nhwc_forward


def _nhwc_step(module):
    return SimpleNamespace(
        depthwise_conv2d_nhwc_forward=module.depthwise_conv2d_nhwc_forward,
        depthwise_conv2d_nhwc_backward=module.depthwise_conv2d_nhwc_backward,
    )


STEPS = {
    "1 plain loops": _nhwc_step(step1_plain_loops),
    "2 threads": _nhwc_step(step2_threads),
    "3 wide rows": _nhwc_step(step3_wide_rows),
    "4 channel blocks": SimpleNamespace(
        depthwise_conv2d_nhwc_forward=depthwise_conv2d_nhwc_forward,
        depthwise_conv2d_nhwc_backward=depthwise_conv2d_nhwc_backward,
        depthwise_conv2d_nchw_forward=depthwise_conv2d_nchw_forward,
        depthwise_conv2d_nchw_backward=depthwise_conv2d_nchw_backward,
    ),
}
