"""Lesson 07: LayerNorm against BatchNorm, GELU against ReLU.

Two of the paper's "micro design" changes (Section 2.6): ConvNeXt replaces BatchNorm with
LayerNorm, and ReLU with GELU. Both pairs look alike on paper. This lesson shows what actually
differs: which numbers a normalisation averages over (and so what it depends on), and how the two
activations and their derivatives behave around zero.

    python lessons/07_norms_and_activations.py --quick
    python lessons/07_norms_and_activations.py

Figures (in --out, default lessons/output/07/):
    norms.png          one batch before and after BatchNorm and LayerNorm, and the numbers each averages
    gelu_vs_relu.png   GELU, its tanh approximation and ReLU, with their derivatives (from backward)
"""

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import autograd as ag  # noqa: E402
from autograd import gradcheck  # noqa: E402
from autograd.nn import functional as F  # noqa: E402

parser = argparse.ArgumentParser(description="Lesson 07: LayerNorm vs BatchNorm, GELU vs ReLU")
parser.add_argument("--quick", action="store_true", help="small sizes (what CI runs)")
parser.add_argument(
    "--out",
    type=Path,
    default=Path(__file__).resolve().parent / "output" / "07",
    help="folder for the figures",
)
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def section(title):
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}")


# --------------------------------------------------------------------------------------------------
section("1. Same formula, different sets of numbers")
# --------------------------------------------------------------------------------------------------
# Both normalisations compute  y = (x - mean) / sqrt(var + eps) * weight + bias.  They differ in
# WHICH values share one mean and one variance. For an activation x of shape (N, C, H, W):
#   BatchNorm: one mean per channel, over the batch and all pixels (N*H*W values each);
#   LayerNorm, as ConvNeXt uses it: one mean per pixel of each image, over its C channels.
# (The original LayerNorm averaged over C*H*W; ConvNeXt's, like a Transformer's, over channels only.)
#
# A batch with two kinds of structure: every channel has its own scale, every image its own offset.
N, C, H, W = 4, 8, 4, 4
channel_scale = np.linspace(0.5, 4.0, C)
image_offset = np.array([-3.0, -1.0, 1.0, 3.0])
x = image_offset[:, None, None, None] + channel_scale[None, :, None, None] * rng.standard_normal((N, C, H, W))

# By hand, with keepdims so the statistics broadcast back (lesson 1, section 6):
eps = 1e-5
bn_mean = x.mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
bn_by_hand = (x - bn_mean) / np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)
ln_mean = x.mean(axis=1, keepdims=True)  # (N, 1, H, W)
ln_by_hand = (x - ln_mean) / np.sqrt(x.var(axis=1, keepdims=True) + eps)
print(f"x {x.shape}: BatchNorm statistics have shape {bn_mean.shape}, LayerNorm's {ln_mean.shape}")

# The engine: batch_norm in training mode, and layer_norm over the last axis of the channels-last
# tensor. Our ConvNeXt turns the image to (N, H, W, C) once, at the input, so every LayerNorm in it
# (blocks, stem, downsampling) acts on the last axis. The official code keeps NCHW and needs a
# "channels_first" LayerNorm for the stem and downsampling: F.layer_norm_channels_first is that form.
xt = ag.tensor(x)
bn = F.batch_norm(xt, None, None, training=True, eps=eps).numpy()
ln = F.layer_norm(xt.permute(0, 2, 3, 1), C, eps=eps).permute(0, 3, 1, 2).numpy()
print(f"F.batch_norm vs by hand: largest difference {np.abs(bn - bn_by_hand).max():.1e}")
print(f"F.layer_norm vs by hand: largest difference {np.abs(ln - ln_by_hand).max():.1e}")


def spread(values, axes):
    """Mean and std of `values` for every group that shares statistics along `axes`, as ranges."""
    means, stds = values.mean(axis=axes), values.std(axis=axes)
    return f"means in [{means.min():+.2f}, {means.max():+.2f}], stds in [{stds.min():.2f}, {stds.max():.2f}]"


for name, values in (("input", x), ("BatchNorm", bn), ("LayerNorm", ln)):
    print(f"    {name:9s} per channel: {spread(values, (0, 2, 3))}")
    print(f"    {'':9s} per pixel:   {spread(values, 1)}")
print("BatchNorm evens out the channels and keeps the images' offsets; LayerNorm removes each pixel's")
print(
    "offset and keeps the channels' relative scales (weight and bias, learned per channel, can restore any)."
)

# --------------------------------------------------------------------------------------------------
section("2. BatchNorm depends on the rest of the batch; LayerNorm does not")
# --------------------------------------------------------------------------------------------------
# Put the same image (x[0]) into two different batches and normalise.
other = rng.standard_normal((N - 1, C, H, W)) * 5.0
batch_a = ag.tensor(x)
batch_b = ag.tensor(np.concatenate([x[:1], other]))
for name, normalise in (
    ("BatchNorm", lambda t: F.batch_norm(t, None, None, training=True)),
    ("LayerNorm", lambda t: F.layer_norm(t.permute(0, 2, 3, 1), C).permute(0, 3, 1, 2)),
):
    first_a = normalise(batch_a).numpy()[0]
    first_b = normalise(batch_b).numpy()[0]
    print(
        f"{name}: image 0 normalised in batch A vs in batch B, largest difference "
        f"{np.abs(first_a - first_b).max():.3f}"
    )
# So BatchNorm behaves differently in training (batch statistics) and in evaluation (running
# averages collected during training), needs batches large enough for stable statistics, and ties
# the examples of a batch together. LayerNorm treats every image, and every pixel, on its own.
running_mean, running_var = ag.zeros(C, dtype=ag.float64), ag.ones(C, dtype=ag.float64)
for _ in range(30):  # thirty training batches of the same distribution
    F.batch_norm(ag.tensor(x[rng.permutation(N)]), running_mean, running_var, training=True, momentum=0.1)
alone = F.batch_norm(ag.tensor(x[:1]), running_mean, running_var, training=False).numpy()[0]
in_batch = F.batch_norm(batch_b, running_mean, running_var, training=False).numpy()[0]
print(
    f"BatchNorm in evaluation mode (running statistics after 30 training batches): image 0 alone vs in "
    f"batch B, largest difference {np.abs(alone - in_batch).max():.3f}"
)

# Their backward passes are checked like every op (lesson 4), in float64:
small = ag.tensor(rng.standard_normal((3, 4, 2, 2)), requires_grad=True)
weight = ag.tensor(rng.standard_normal(4), requires_grad=True)
bias = ag.tensor(rng.standard_normal(4), requires_grad=True)
print(
    "gradcheck batch_norm (training):",
    gradcheck(lambda t, w, b: F.batch_norm(t, None, None, w, b, training=True), [small, weight, bias]),
)
print(
    "gradcheck layer_norm (channels-last):",
    gradcheck(lambda t, w, b: F.layer_norm(t.permute(0, 2, 3, 1), 4, w, b), [small, weight, bias]),
)

# --------------------------------------------------------------------------------------------------
section("3. GELU against ReLU")
# --------------------------------------------------------------------------------------------------
#     relu(x) = max(x, 0)                    relu'(x) = 1 if x > 0 else 0
#     gelu(x) = x * Phi(x)                   gelu'(x) = Phi(x) + x * phi(x)
# with Phi the standard normal CDF and phi its density: GELU weights x by the probability that a
# standard normal value lies below it. Large positive x: about x. Large negative x: about 0. Near 0
# it is smooth, and slightly negative for x < 0 (its minimum is about -0.17). The derivatives below
# come from the engine's backward: with y = f(x) elementwise, d(sum y)/dx is f'(x) at every point.
points = 801 if args.quick else 4001
grid = np.linspace(-4.0, 4.0, points)
curves = {}
for name, fn in (
    ("ReLU", F.relu),
    ("GELU", F.gelu),
    ("GELU, tanh form", lambda t: F.gelu(t, approximate="tanh")),
):
    t = ag.tensor(grid, requires_grad=True)
    y = fn(t)
    y.sum().backward()
    curves[name] = (y.numpy(), t.grad.numpy())

gelu, gelu_derivative = curves["GELU"]
lowest = int(np.argmin(gelu))
print(f"{'x':>6s} {'relu':>8s} {'gelu':>8s} {'relu_':>8s} {'gelu_':>8s}   (_ = derivative)")
for value in (-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0):
    i = int(np.argmin(np.abs(grid - value)))
    row = (curves["ReLU"][0][i], gelu[i], curves["ReLU"][1][i], gelu_derivative[i])
    print(f"{value:6.1f} " + " ".join(f"{v + 0.0:8.4f}" for v in row))  # + 0.0 turns -0.0 into 0.0
phi = np.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi)
Phi = 0.5 * (1 + np.vectorize(math.erf)(grid / math.sqrt(2)))
print(
    f"GELU's minimum: {gelu[lowest]:.4f} at x = {grid[lowest]:.3f}; "
    f"its derivative is negative for x < {grid[lowest]:.3f}"
)
print(
    f"backward vs the formula Phi + x phi: largest difference "
    f"{np.abs(gelu_derivative - (Phi + grid * phi)).max():.1e}"
)
print(
    f"tanh form vs exact GELU: largest difference {np.abs(curves['GELU, tanh form'][0] - gelu).max():.1e} "
    f"(in value), {np.abs(curves['GELU, tanh form'][1] - gelu_derivative).max():.1e} (in derivative)"
)

# What changes for a layer's worth of pre-activations, x ~ N(0, 1):
samples = 100_000 if args.quick else 2_000_000
z = ag.tensor(rng.standard_normal(samples), requires_grad=True)
for name, fn in (("ReLU", F.relu), ("GELU", F.gelu)):
    z.zero_grad()
    out = fn(z)
    out.sum().backward()
    grads = z.grad.numpy()
    print(
        f"{name}: mean output {out.numpy().mean():.3f}, outputs < 0: {np.mean(out.numpy() < 0):5.1%}, "
        f"zero gradient: {np.mean(grads == 0):5.1%}, negative gradient: {np.mean(grads < 0):5.1%}"
    )
print("(exact values for N(0,1): mean relu = 1/sqrt(2 pi) = 0.399, mean gelu = 1/(2 sqrt(pi)) = 0.282)")
print(
    "ReLU passes no gradient at all through half of its inputs; "
    "GELU passes a little through almost every one."
)

# --------------------------------------------------------------------------------------------------
section("4. Figures")
# --------------------------------------------------------------------------------------------------
# Each panel shows the batch as a matrix: one row per (image, pixel), one column per channel.
# BatchNorm's statistics are taken down a column, LayerNorm's along a row.


def as_matrix(values):
    return values.transpose(0, 2, 3, 1).reshape(N * H * W, C)


fig, axes = plt.subplots(1, 3, figsize=(13, 6.4))
limit = np.abs(as_matrix(x)).max()
panels = (
    ("input x\n(channel scales differ, each image has an offset)", x, (-limit, limit)),
    ("after BatchNorm: one mean and std per channel,\ndown a whole column (green: one group)", bn, (-3, 3)),
    ("after LayerNorm: one mean and std per (image, pixel),\nalong one row (yellow: one group)", ln, (-3, 3)),
)
for ax, (title, values, (low, high)) in zip(axes, panels, strict=False):
    image = ax.imshow(as_matrix(values), cmap="RdBu_r", vmin=low, vmax=high, aspect="auto")
    for boundary in range(1, N):
        ax.axhline(boundary * H * W - 0.5, color="black", lw=1)
    ax.set_xticks(range(C))
    ax.set_xlabel("channel")
    ax.set_yticks([H * W * n + H * W / 2 - 0.5 for n in range(N)])
    ax.set_yticklabels([f"image {n}\n({H * W} pixels)" for n in range(N)], fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
axes[1].add_patch(plt.Rectangle((1.5, -0.5), 1, N * H * W, fill=False, edgecolor="#2a9d8f", lw=3))
axes[2].add_patch(plt.Rectangle((-0.5, 20.5), C, 1, fill=False, edgecolor="#f2b705", lw=3))
fig.suptitle(
    f"What BatchNorm and LayerNorm normalise over, for a batch of shape (N, C, H, W) = {x.shape}", fontsize=11
)
fig.tight_layout()
fig.savefig(args.out / "norms.png", dpi=120)
plt.close(fig)

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
styles = {"ReLU": ("tab:blue", "-"), "GELU": ("tab:red", "-"), "GELU, tanh form": ("black", ":")}
for name, (values, derivative) in curves.items():
    colour, line = styles[name]
    left.plot(grid, values, line, color=colour, lw=2 if line == "-" else 1.5, label=name)
    right.plot(grid, derivative, line, color=colour, lw=2 if line == "-" else 1.5, label=name)
left.plot(grid[lowest], gelu[lowest], "o", color="tab:red")
left.annotate(
    f"minimum {gelu[lowest]:.3f}\nat x = {grid[lowest]:.2f}",
    (grid[lowest], gelu[lowest]),
    xytext=(-3.8, 1.2),
    arrowprops=dict(arrowstyle="->", color="0.4"),
    fontsize=9,
)
left.set_title("activation f(x)")
right.set_title("derivative f'(x), from backward")
right.annotate(
    "ReLU: 0 for every x < 0\n(no gradient flows)",
    (-2.5, 0.0),
    xytext=(-3.9, 0.45),
    arrowprops=dict(arrowstyle="->", color="0.4"),
    fontsize=9,
)
for ax in (left, right):
    ax.axhline(0, color="0.5", lw=0.8)
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_xlabel("x")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left" if ax is right else "upper center")
right.set_ylim(-0.25, 1.25)
left.set_ylim(-0.5, 4.0)
fig.tight_layout()
fig.savefig(args.out / "gelu_vs_relu.png", dpi=120)
plt.close(fig)
print(f"wrote {args.out / 'norms.png'} and {args.out / 'gelu_vs_relu.png'}")
