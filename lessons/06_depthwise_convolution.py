"""Lesson 06: depthwise convolution, the op's own body and the kernel chapter's steps.

ConvNeXt mixes information across space with a 7x7 DEPTHWISE convolution: one 7x7 filter per
channel, each channel filtered on its own (groups = channels). Mixing across channels is left to
the 1x1 layers that follow (the paper's Section 2.3, "ResNeXt-ify", and 2.5, "large kernel sizes").

The op `DepthwiseConv2d` (autograd/nn/functional/conv.py) computes it in its own body, plain NumPy:
49 shifted multiply-adds over the whole batch, one per filter tap. It also names fast paths, Numba
kernels on the CPU, which `Function.apply` runs instead unless one switch turns them off. Those kernels
are a chapter of their own (autograd/kernels/cpu/depthwise_conv2d/), told as steps that each add one
idea. This lesson shows the body, then runs every step, checks it against the body and times it.
The activations are channels-last (N, H, W, C), as in ConvNeXt's block.

    python lessons/06_depthwise_convolution.py --quick    # times only the first and the last step
    python lessons/06_depthwise_convolution.py

No figure: the timings are a printed table, and a bar chart of the same numbers would add nothing.
"""

import inspect
import re
import textwrap
import time

import numpy as np
from common import lesson_setup, section

# Options first, before the engine and its Numba kernels are imported: a bad option is refused at once.
args = lesson_setup("06", "depthwise convolution, the op's body and its kernels")

import autograd as ag  # noqa: E402
from autograd import kernels  # noqa: E402
from autograd.kernels.cpu.depthwise_conv2d import STEPS  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from autograd.nn.functional.conv import DepthwiseConv2d  # noqa: E402

rng = np.random.default_rng(0)
K, STRIDE, PADDING = 7, (1, 1), (3, 3)  # ConvNeXt's dwconv: 7x7, stride 1, "same" padding


def random_problem(shape, dtype=np.float32):
    """x (N, H, W, C), weight (KH, KW, C) as the kernels take it, bias (C,), upstream gradient."""
    c = shape[3]
    x = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal((K, K, c)) * 0.1).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)  # stride 1, "same" padding: out has x's shape
    return x, w, b, g


def op_weight(w):
    """(KH, KW, C) -> (C, 1, KH, KW), PyTorch's layout, which the op takes."""
    return np.ascontiguousarray(w.transpose(2, 0, 1)[:, None])


def run_body(x, w, b, g):
    """The op's own body (fast paths off), forward and backward: (out, grad_x, grad_w (KH, KW, C), grad_b)."""
    xt, wt, bt = (ag.tensor(a, requires_grad=True) for a in (x, op_weight(w), b))
    with kernels.use_reference():
        out = F.depthwise_conv2d_channels_last(xt, wt, bt, padding=PADDING)
        out.backward(ag.tensor(g))
    grad_w = wt.grad.numpy()[:, 0].transpose(1, 2, 0)
    return out.numpy(), xt.grad.numpy(), grad_w, bt.grad.numpy()


def run_step(step, x, w, b, g):
    """One step of the kernel chapter, forward and backward: (out, grad_x, grad_w (KH, KW, C), grad_b)."""
    out = step.depthwise_conv2d_nhwc_forward(x, w, b, STRIDE, PADDING)
    return (out, *step.depthwise_conv2d_nhwc_backward(x, w, g, STRIDE, PADDING, True))


def time_body(x, w, b, g):
    """Seconds for the forward and for the backward of the op's own body, through the engine."""
    xt, wt, bt = (ag.tensor(a, requires_grad=True) for a in (x, op_weight(w), b))
    upstream = ag.tensor(g)
    with kernels.use_reference():
        start = time.perf_counter()
        out = F.depthwise_conv2d_channels_last(xt, wt, bt, padding=PADDING)
        middle = time.perf_counter()
        out.backward(upstream)
    return middle - start, time.perf_counter() - middle


def time_step(step, x, w, b, g):
    """Seconds for the forward and for the backward of one step."""
    start = time.perf_counter()
    step.depthwise_conv2d_nhwc_forward(x, w, b, STRIDE, PADDING)
    middle = time.perf_counter()
    step.depthwise_conv2d_nhwc_backward(x, w, g, STRIDE, PADDING, True)
    return middle - start, time.perf_counter() - middle


def relative_errors(results, exact):
    """Largest error of each of (out, grad_x, grad_w, grad_b), relative to the largest exact value."""
    return [np.abs(r - e).max() / np.abs(e).max() for r, e in zip(results, exact, strict=True)]


# --------------------------------------------------------------------------------------------------
section("1. What depthwise means, in parameters and arithmetic")
# --------------------------------------------------------------------------------------------------
# A dense conv from C to C channels has C*C filters: every output channel looks at every input
# channel. Depthwise keeps only the C filters on the diagonal. Weight shape (C, 1, 7, 7), groups=C.
channels, size = 96, 56  # ConvNeXt-T, stage 1, at 224x224 input
dense_weights, depthwise_weights = channels * channels * K * K, channels * K * K
print(f"7x7 conv, {channels} -> {channels} channels, on {size}x{size} pixels:")
for name, weights in (("dense", dense_weights), ("depthwise", depthwise_weights)):
    print(
        f"    {name:10s} {weights:9,d} weights, {weights * size * size / 1e6:7.1f} M multiply-adds per image"
    )
print(f"Depthwise does {channels}x fewer. Each input number now meets only 49 weights, so the work is")
print("few multiply-adds per number read: depthwise conv is limited by memory traffic, not by arithmetic.")

# --------------------------------------------------------------------------------------------------
section("2. The definition, as loops, against the engine")
# --------------------------------------------------------------------------------------------------
#     out[n, i, j, c] = b[c] + sum_{u, v} w[u, v, c] * xpad[n, i + u, j + v, c]      (stride 1, pad 3)


def depthwise_loops(x, w, b):
    n_images, height, width, n_channels = x.shape
    xpad = np.pad(x, ((0, 0), (PADDING[0],) * 2, (PADDING[1],) * 2, (0, 0)))
    out = np.empty_like(x)
    for n in range(n_images):
        for i in range(height):
            for j in range(width):
                for c in range(n_channels):
                    out[n, i, j, c] = b[c] + np.sum(w[:, :, c] * xpad[n, i : i + K, j : j + K, c])
    return out


x, w, b, _ = random_problem((2, 10, 10, 4))
loops = depthwise_loops(x, w, b)
start = time.perf_counter()
engine = F.depthwise_conv2d_channels_last(ag.tensor(x), ag.tensor(op_weight(w)), ag.tensor(b), padding=3)
first_engine_call = time.perf_counter() - start
with kernels.use_reference():
    body = F.depthwise_conv2d_channels_last(ag.tensor(x), ag.tensor(op_weight(w)), ag.tensor(b), padding=3)
print(f"x {x.shape} (N, H, W, C), 7x7 filters, padding 3, largest difference from the loops:")
print(
    f"    F.depthwise_conv2d_channels_last, as it runs by default: {np.abs(loops - engine.numpy()).max():.1e}"
)
print(
    f"    the same with the fast paths switched off:                {np.abs(loops - body.numpy()).max():.1e}"
)
print(f"The engine's first call took {first_engine_call:.2f} s: Numba compiled its kernel (or loaded it from")
print("its on-disk cache). Section 3 says which code ran in each case.")

# --------------------------------------------------------------------------------------------------
section("3. The op's own body: 49 whole-array multiply-adds")
# --------------------------------------------------------------------------------------------------
# Turn the loops inside out: instead of visiting each output pixel and summing its 49 taps, visit
# each of the 49 taps and add its contribution to EVERY output pixel at once, with one NumPy
# expression over a shifted view of the padded input. This is DepthwiseConv2d.forward, verbatim:
print(inspect.getsource(DepthwiseConv2d.forward))
# An NCHW input is viewed channels-last by a transpose, so the one body serves both layouts.
# DepthwiseConv2d.backward sits right beneath it, with the same loop over taps: the weight gradient of a
# tap is sum(grad * shifted input), and the input gradient gets w * grad added back at the shifted place
# (col2im of lesson 5, without the columns):
print(inspect.getsource(DepthwiseConv2d.backward))
# The class also names its fast paths, one kernel module per device:
print(f"DepthwiseConv2d.fast_paths = {DepthwiseConv2d.fast_paths}")
# Function.apply asks autograd.kernels which module suits the input arrays. When there is one, it
# calls fast_forward (and later fast_backward) instead of the body; they hand the same arrays to the
# kernels, after putting the weight in the layout the kernels want:
print(inspect.getsource(DepthwiseConv2d.fast_forward))
chosen = kernels.kernel_for(DepthwiseConv2d, (x,))
with kernels.use_reference():
    switched_off = kernels.kernel_for(DepthwiseConv2d, (x,))
print("What runs DepthwiseConv2d here:")
print(f"    NumPy arrays (cpu): {chosen.__name__ if chosen else 'its own body'}")
print("    CuPy arrays (cuda): the CUDA kernels of autograd.kernels.cuda.depthwise_conv2d (lesson 13)")
print(f"    inside `with autograd.kernels.use_reference():` {switched_off or 'its own body'}")
print("The one switch turns every fast path off: use_reference() for a block, set_enabled(False), or")
print("AUTOGRAD_KERNELS=reference in the environment. `python -m autograd.kernels` lists every op's paths.")

# --------------------------------------------------------------------------------------------------
section("4. Why the body is slow")
# --------------------------------------------------------------------------------------------------
# Each tap of the body is a full trip through memory: read a shifted view of the input, write the
# product to a temporary, read the output and the temporary, write the output back. A batch of
# ConvNeXt-T stage-1 activations is larger than the CPU's caches, so the arithmetic units mostly wait.
# A kernel instead computes each output pixel's 49 taps while its inputs are in cache, and writes it once.
batch = 8
stage1 = batch * channels * size * size * 4
print(f"forward of {batch} images at stage 1 ({stage1 / 1e6:.1f} MB of float32 activations):")
print(f"    the body moves about 49 taps x 5 passes x {stage1 / 1e6:.1f} MB = {49 * 5 * stage1 / 1e9:.1f} GB")
print(f"    a kernel needs about 2 x {stage1 / 1e6:.1f} MB: read the input once, write the output once")

# --------------------------------------------------------------------------------------------------
section("5. The kernel chapter, step by step, each checked against the body")
# --------------------------------------------------------------------------------------------------
# autograd/kernels/cpu/depthwise_conv2d/ tells the kernel as steps, in the manner of llm.c's dev/cuda:
# each step file starts with a docstring saying what it adds, and STEPS maps a step's name to its two
# entry points (channels-last, weight (KH, KW, C)). The last step is what the engine runs.
# C = 20 is not a multiple of 16 on purpose: step 4 puts 16 channels in the vector lanes, so its last
# block is partly empty. H != W catches a swapped axis.
check_shape = (2, 13, 11, 20)
last_step = list(STEPS)[-1]
if chosen is None:  # AUTOGRAD_KERNELS=reference: the engine runs the body; the steps still run on their own
    print("The fast paths are switched off, so the engine runs the op's body; the steps are called directly.")
else:
    same = chosen.depthwise_conv2d_nhwc_forward is STEPS[last_step].depthwise_conv2d_nhwc_forward
    print(f"Is the engine's CPU kernel step {last_step!r}? {same}.")
print(f"Every step is checked against the body on x {check_shape} (N, H, W, C), float32; differences are")
print("relative to the largest value.")


def step_story(step):
    """The titles of the step's module docstrings, and the first sentence of the forward's."""
    modules = [
        inspect.getmodule(f)
        for f in (step.depthwise_conv2d_nhwc_forward, step.depthwise_conv2d_nhwc_backward)
    ]
    titles = list(dict.fromkeys(inspect.getdoc(m).split("\n\n")[0] for m in modules))
    text = " ".join(inspect.getdoc(modules[0]).split("\n\n")[1].split())
    return titles, re.split(r"(?<=\.)\s", text, maxsplit=1)[0]


problem = random_problem(check_shape)
body_results = run_body(*problem)
tolerance = 1e-5  # relative to the largest value; float32 rounding is 6e-8 per operation
first_calls = {}
for name, step in STEPS.items():
    titles, sentence = step_story(step)
    print(f"\nstep {name!r}")
    for title in titles:
        print(textwrap.fill(title, 100, initial_indent="    ", subsequent_indent="    "))
    print(textwrap.fill(sentence, 100, initial_indent="      ", subsequent_indent="      "))
    first_calls[name] = time_step(step, *problem)
    errors = relative_errors(run_step(step, *problem), body_results)
    shown = ", ".join(
        f"{q} {e:.0e}" for q, e in zip(("out", "grad x", "grad w", "grad b"), errors, strict=True)
    )
    print(f"    largest difference from the body: {shown}")
    assert max(errors) < tolerance, f"step {name!r} differs from the op's body by {max(errors):.1e}"
print(f"\nEvery step agrees with the body within {tolerance:.0e}.")
print("First call of each step in this process: Numba compiles it, or loads it from its on-disk cache")
print("(autograd/kernels/cpu/depthwise_conv2d/__pycache__); a function already run by section 2 is warm:")
for name, (forward_s, backward_s) in first_calls.items():
    print(f"    {name:18s} forward {forward_s:6.2f} s   backward {backward_s:6.2f} s")

# --------------------------------------------------------------------------------------------------
section("6. Equal? Every path against a float64 answer")
# --------------------------------------------------------------------------------------------------
# The body and the steps add the same products in different orders (step 4 with fused multiply-adds,
# the steps' weight gradients in float64 partial sums), so they cannot agree bit for bit. The right
# question is whether each is as close to the exact answer as float32 allows; the exact answer is the
# body run in float64.
accuracy_shape = (2, 28, 28, 96) if args.quick else (8, 56, 56, 96)
problem = random_problem(accuracy_shape)
exact = run_body(*(a.astype(np.float64) for a in problem))
rows = {"op body (NumPy)": run_body(*problem)}
rows.update({f"step {name}": run_step(step, *problem) for name, step in STEPS.items()})
print(f"x {accuracy_shape}, float32, largest error relative to the largest value of the float64 answer:")
print(f"    {'':22s} {'out':>8s} {'grad x':>8s} {'grad w':>8s} {'grad b':>8s}")
for name, results in rows.items():
    print(f"    {name:22s}" + "".join(f" {e:8.1e}" for e in relative_errors(results, exact)))
print("float32 keeps 24 bits (6e-8): every path is within a few units of its rounding, so their")
print("differences are rounding, not bugs. The steps add up their weight and bias gradients in float64")
print("partial sums; the body sums them in float32, hence its larger grad w and grad b errors.")

# --------------------------------------------------------------------------------------------------
section("7. Timing: the body, then the steps, one after another")
# --------------------------------------------------------------------------------------------------
repeats = 3 if args.quick else 5
shapes = (
    [("stage 1", (2, 56, 56, 96))]
    if args.quick
    else [("stage 1", (8, 56, 56, 96)), ("stage 2", (8, 28, 28, 192)), ("stage 3", (8, 14, 14, 384))]
)
timed_steps = [list(STEPS)[0], list(STEPS)[-1]] if args.quick else list(STEPS)


def best_times(time_once, *arguments):
    """Best of `repeats` (forward seconds, backward seconds) of time_once(*arguments)."""
    times = [time_once(*arguments) for _ in range(repeats)]
    return min(t[0] for t in times), min(t[1] for t in times)


if args.quick:
    print(
        f"--quick: the body and steps {timed_steps[0]!r} and {timed_steps[-1]!r} only "
        f"(all {len(STEPS)} without --quick)."
    )
print(f"Best of {repeats}, float32, 7x7, padding 3, warm (first calls above). The machine's cores may be")
print("shared with other work: trust the ratios more than the milliseconds.")
# Where few cores are free, step 2 may be no faster than step 1: threads help only as far as there are
# idle cores, and its backward's gather tests, for every input pixel, which taps reach it. Steps 3 and 4
# change how memory is walked (unit-stride rows, then 16 channels per vector), which pays on any machine.
for label, shape in shapes:
    x, w, b, g = random_problem(shape)
    times = {"op body": best_times(time_body, x, w, b, g)}
    for name in timed_steps:
        times[f"step {name}"] = best_times(time_step, STEPS[name], x, w, b, g)
    body_forward, body_backward = times["op body"]
    head = f"{label}, x {shape} (N, H, W, C)"
    print(f"\n    {head:40s} {'forward':>9s} {'backward':>9s} {'speed-up (fwd, bwd)':>20s}")
    for path, (forward_s, backward_s) in times.items():
        print(
            f"    {path:40s} {forward_s * 1e3:7.1f}ms {backward_s * 1e3:7.1f}ms   "
            f"{body_forward / forward_s:10.1f}x {body_backward / backward_s:8.1f}x"
        )
    bytes_moved = 2 * x.nbytes  # read the input, write the output: the least any forward can do
    last_forward = times[f"step {timed_steps[-1]}"][0]
    print(
        f"    the last step's forward moves at least {bytes_moved / 1e6:.1f} MB: "
        f"{bytes_moved / last_forward / 1e9:.1f} GB/s effective"
    )

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# Change one thing, predict the result, then run and see.
# 1. Run the lesson with AUTOGRAD_KERNELS=reference in the environment. Predict what section 3 prints for
#    "NumPy arrays (cpu)", and whether section 5's checks of the steps still pass (do the steps need it?).
# 2. In section 6, make the problem float64: random_problem(accuracy_shape, np.float64). Predict each
#    path's error against the float64 answer (the body's, and the steps'), then run and see.
# 3. In section 7, time every step, not only the first and the last (timed_steps = list(STEPS)). Predict
#    whether step 2 (threads) beats step 1 on a machine whose few cores are busy with other work; then read
#    the comment above the timing loop.
