"""Lesson 06: depthwise convolution, the plain NumPy reference against the fused Numba kernel.

ConvNeXt mixes information across space with a 7x7 DEPTHWISE convolution: one 7x7 filter per
channel, each channel filtered on its own (groups = channels). Mixing across channels is left to
the 1x1 layers that follow (the paper's Section 2.3, "ResNeXt-ify", and 2.5, "large kernel sizes").

The engine computes it in two ways, chosen in one place (`autograd.kernels.dispatch`):
* the reference, plain NumPy: 49 shifted multiply-adds over the whole batch, one per filter tap;
* the fast kernel, Numba: one pass over each channel's image that accumulates all 49 taps at once.
This lesson shows the reference, checks that both agree, times them and explains the difference.

    python lessons/06_depthwise_convolution.py --quick
    python lessons/06_depthwise_convolution.py

Figure (in --out, default lessons/output/06/):
    depthwise_times.png   forward and backward time, reference against fast kernel, per shape
"""

import argparse
import inspect
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import autograd as ag  # noqa: E402
from autograd.kernels.cpu.depthwise_conv2d import (  # noqa: E402
    depthwise_conv2d_nchw_backward_reference,
    depthwise_conv2d_nchw_forward_reference,
)
from autograd.kernels.dispatch import use_reference  # noqa: E402
from autograd.nn import functional as F  # noqa: E402

parser = argparse.ArgumentParser(
    description="Lesson 06: depthwise convolution, reference against fast kernel"
)
parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (what CI runs)")
parser.add_argument(
    "--out",
    type=Path,
    default=Path(__file__).resolve().parent / "output" / "06",
    help="folder for the figure",
)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def section(title):
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


# --------------------------------------------------------------------------------------------------
section("1. What depthwise means, in parameters and arithmetic")
# --------------------------------------------------------------------------------------------------
# A dense conv from C to C channels has C*C filters: every output channel looks at every input
# channel. Depthwise keeps only the C filters on the diagonal. Weight shape (C, 1, 7, 7), groups=C.
channels, size, k = 96, 56, 7  # ConvNeXt-T, stage 1, at 224x224 input
dense_weights, depthwise_weights = channels * channels * k * k, channels * k * k
print(f"7x7 conv, {channels} -> {channels} channels, on {size}x{size} pixels:")
print(
    f"    dense:     {dense_weights:9,d} weights, {dense_weights * size * size / 1e6:7.1f} M multiply-adds per image"
)
print(
    f"    depthwise: {depthwise_weights:9,d} weights, {depthwise_weights * size * size / 1e6:7.1f} M multiply-adds per image "
    f"({channels}x fewer)"
)
print("Few multiply-adds per number read: depthwise conv is limited by memory traffic, not by arithmetic.")
print("That decides how it must be computed (section 4).")

# --------------------------------------------------------------------------------------------------
section("2. The definition, as loops, against the engine")
# --------------------------------------------------------------------------------------------------
#     out[n, c, i, j] = b[c] + sum_{u, v} w[c, u, v] * xpad[n, c, i + u, j + v]      (stride 1, pad 3)


def depthwise_loops(x, w, b, padding):
    n_images, n_channels, height, width = x.shape
    kh, kw = w.shape[1:]
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = height + 2 * padding - kh + 1, width + 2 * padding - kw + 1
    out = np.empty((n_images, n_channels, ho, wo), dtype=x.dtype)
    for n in range(n_images):
        for c in range(n_channels):
            for i in range(ho):
                for j in range(wo):
                    out[n, c, i, j] = b[c] + np.sum(w[c] * xpad[n, c, i : i + kh, j : j + kw])
    return out


x = rng.standard_normal((2, 4, 10, 10)).astype(np.float32)
w = rng.standard_normal((4, 7, 7)).astype(np.float32)
b = rng.standard_normal(4).astype(np.float32)
loops = depthwise_loops(x, w, b, padding=3)
start = time.perf_counter()  # the first call of the fast kernel in this process: see section 6
engine = F.conv2d(ag.tensor(x), ag.tensor(w.reshape(4, 1, 7, 7)), ag.tensor(b), padding=3, groups=4).numpy()
first_forward = time.perf_counter() - start
print(
    f"x {x.shape}, 7x7 filters, padding 3: loops vs F.conv2d(groups=4) largest difference "
    f"{np.abs(loops - engine).max():.1e}"
)

# --------------------------------------------------------------------------------------------------
section("3. The reference: 49 whole-array multiply-adds")
# --------------------------------------------------------------------------------------------------
# Turn the loops inside out: instead of visiting each output pixel and summing its 49 taps, visit
# each of the 49 taps and add its contribution to EVERY output pixel at once, with one NumPy
# expression over a shifted view of the padded input. This is the engine's reference, verbatim:
print(inspect.getsource(depthwise_conv2d_nchw_forward_reference))
# Its backward (depthwise_conv2d_nchw_backward_reference) has the same shape: for every tap, the
# input gradient gets weight * grad added at the shifted place, and the weight gradient of that tap
# is sum(grad * shifted input).

# --------------------------------------------------------------------------------------------------
section("4. Why the reference is slow, and what the fused kernel does instead")
# --------------------------------------------------------------------------------------------------
# Each tap of the reference is a full trip through memory: read a shifted view of the input, write
# the product to a temporary, read the output and the temporary, write the output back. For a batch
# of ConvNeXt-T stage-1 activations (8 images: 9.6 MB) that is 49 x ~5 x 9.6 MB, about 2.4 GB of
# traffic for 118 M multiply-adds: the arithmetic units mostly wait for memory.
#
# The fast kernel (autograd/kernels/cpu/depthwise_conv2d.py) turns it around again, per channel:
#   * one (image, channel) plane at a time is copied into a small zero-padded buffer that stays in
#     the CPU's cache (a 56x56 float32 plane is 12.5 KB);
#   * the padded rows are laid end to end as one long row, so every tap is a constant shift of it;
#     7 or 14 taps are applied in a single loop over the whole plane, with one load and one store of
#     the accumulator per group, and LLVM turns that loop into fused multiply-add vector instructions;
#   * planes are independent, so they are shared among the cores (numba prange).
# Input and output cross main memory once. The backward has the same structure; the weight
# gradient sums per plane into float64 partial sums.
batch = 8
stage1 = batch * channels * size * size * 4
print(
    f"reference forward, {batch} images at stage 1: about 49 taps x 5 passes x {stage1 / 1e6:.1f} MB = "
    f"{49 * 5 * stage1 / 1e9:.1f} GB moved; fused: about 2 x {stage1 / 1e6:.1f} MB"
)

# --------------------------------------------------------------------------------------------------
section("5. Equal? Both against a float64 answer")
# --------------------------------------------------------------------------------------------------
# The two float32 paths add the same products in different orders (and the fast one with fused
# multiply-adds), so they cannot agree bit for bit. The right question is whether each is as close
# to the exact answer as float32 allows; the exact answer is the reference run in float64.
shape = (2, 96, 28, 28) if args.quick else (8, 96, 56, 56)
x = rng.standard_normal(shape).astype(np.float32)
w = (rng.standard_normal((shape[1], 7, 7)) * 0.1).astype(np.float32)
b = rng.standard_normal(shape[1]).astype(np.float32)
upstream = rng.standard_normal(shape).astype(np.float32)


def run(reference):
    """Forward and backward through F.conv2d: (out, grad_x, grad_w, grad_b) as float64 arrays."""
    xt = ag.tensor(x, requires_grad=True)
    wt = ag.tensor(w.reshape(-1, 1, 7, 7), requires_grad=True)
    bt = ag.tensor(b, requires_grad=True)
    with use_reference(reference):
        out = F.conv2d(xt, wt, bt, padding=3, groups=shape[1])
        out.backward(ag.tensor(upstream))
    return [
        t.astype(np.float64)
        for t in (out.numpy(), xt.grad.numpy(), wt.grad.numpy().reshape(w.shape), bt.grad.numpy())
    ]


start = time.perf_counter()
fast = run(reference=False)  # includes the first call of the fast backward
first_forward_backward = time.perf_counter() - start
reference = run(reference=True)
x64, w64, b64, g64 = (a.astype(np.float64) for a in (x, w, b, upstream))
exact_out = depthwise_conv2d_nchw_forward_reference(x64, w64, b64, 1, 3)
exact = [exact_out, *depthwise_conv2d_nchw_backward_reference(x64, w64, g64, 1, 3)]
print(f"x {shape}, float32, largest error relative to the largest value:")
print(f"    {'':8s} {'fast vs reference':>18s} {'fast vs float64':>16s} {'reference vs float64':>21s}")
for name, f_, r_, e_ in zip(("out", "grad x", "grad w", "grad b"), fast, reference, exact, strict=False):
    scale = np.abs(e_).max()
    print(
        f"    {name:8s} {np.abs(f_ - r_).max() / scale:18.1e} {np.abs(f_ - e_).max() / scale:16.1e} "
        f"{np.abs(r_ - e_).max() / scale:21.1e}"
    )
print("float32 has 24 bits of precision (6e-8): both paths are within a few units of its rounding, and")
print("neither is systematically worse. Their difference is the rounding, not a bug.")

# --------------------------------------------------------------------------------------------------
section("6. Timing")
# --------------------------------------------------------------------------------------------------
# The first fast call in a process pays for Numba: compiling the kernels (several seconds) or, when
# an earlier run left them in the on-disk cache (autograd/kernels/cpu/__pycache__), loading them.
print(
    f"first fast forward in this process: {first_forward:.2f} s; first fast forward + backward: "
    f"{first_forward_backward:.2f} s (compile or cache load included; the timings below are warm)"
)

repeats = 3 if args.quick else 7
shapes = (
    [("stage 1", (2, 96, 56, 56))]
    if args.quick
    else [("stage 1", (16, 96, 56, 56)), ("stage 2", (16, 192, 28, 28)), ("stage 3", (16, 384, 14, 14))]
)


def best_times(x, w, b, g, reference):
    """Best-of-`repeats` seconds for the forward and for the backward of F.conv2d, depthwise 7x7."""
    forward, backward = [], []
    channels = x.shape[1]
    for _ in range(repeats):
        xt = ag.tensor(x, requires_grad=True)
        wt = ag.tensor(w, requires_grad=True)
        bt = ag.tensor(b, requires_grad=True)
        with use_reference(reference):
            start = time.perf_counter()
            out = F.conv2d(xt, wt, bt, padding=3, groups=channels)
            middle = time.perf_counter()
            out.backward(g)
            end = time.perf_counter()
        forward.append(middle - start)
        backward.append(end - middle)
    return min(forward), min(backward)


results = {}
print(
    f"best of {repeats}, float32, 7x7, padding 3 (the machine's cores are shared: trust ratios more than ms)"
)
print(f"    {'shape':26s} {'':9s} {'reference':>10s} {'fast':>9s} {'speed-up':>9s}")
for label, shape in shapes:
    x = rng.standard_normal(shape).astype(np.float32)
    w = (rng.standard_normal((shape[1], 1, 7, 7)) * 0.1).astype(np.float32)
    b = np.zeros(shape[1], np.float32)
    g = ag.tensor(rng.standard_normal(shape).astype(np.float32))
    reference_times = best_times(x, w, b, g, reference=True)
    fast_times = best_times(x, w, b, g, reference=False)
    results[f"{label}\n{shape}"] = (reference_times, fast_times)
    for i, direction in enumerate(("forward", "backward")):
        print(
            f"    {label + ' ' + str(shape):26s} {direction:9s} {reference_times[i] * 1e3:8.1f}ms "
            f"{fast_times[i] * 1e3:7.1f}ms {reference_times[i] / fast_times[i]:8.1f}x"
        )
    bytes_moved = 2 * x.nbytes  # read the input, write the output: the least any forward can do
    print(
        f"    {'':26s} fast forward moves at least {bytes_moved / 1e6:.0f} MB: "
        f"{bytes_moved / fast_times[0] / 1e9:.1f} GB/s effective"
    )

# --------------------------------------------------------------------------------------------------
section("7. Figure")
# --------------------------------------------------------------------------------------------------
fig, axes = plt.subplots(1, 2, figsize=(5 + 2.5 * len(results), 4.8))
labels = list(results)
positions = np.arange(len(labels))
for ax, index, direction in ((axes[0], 0, "forward"), (axes[1], 1, "backward")):
    reference_ms = [results[label][0][index] * 1e3 for label in labels]
    fast_ms = [results[label][1][index] * 1e3 for label in labels]
    ax.bar(positions - 0.17, reference_ms, 0.32, label="reference: 49 NumPy multiply-adds", color="#adb5bd")
    ax.bar(positions + 0.17, fast_ms, 0.32, label="fast: fused Numba kernel", color="#e76f51")
    top = max(reference_ms)
    for position, r, f in zip(positions, reference_ms, fast_ms, strict=False):
        ax.text(position - 0.17, r + top * 0.01, f"{r:.1f} ms", ha="center", va="bottom", fontsize=8)
        ax.text(
            position + 0.17,
            f + top * 0.01,
            f"{f:.1f} ms\n{r / f:.0f}x faster",
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold",
        )
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylim(0, top * 1.25)
    ax.set_ylabel("time (ms)")
    ax.set_title(f"depthwise 7x7, {direction} (float32, best of {repeats})", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
fig.tight_layout()
fig.savefig(args.out / "depthwise_times.png", dpi=120)
plt.close(fig)
print(f"wrote {args.out / 'depthwise_times.png'}")
