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

import math

import numpy as np
from common import lesson_setup, plt, save_figure, section

args = lesson_setup(
    "07", "LayerNorm vs BatchNorm, GELU vs ReLU"
)  # before the engine: a bad option exits at once

import autograd as ag  # noqa: E402
from autograd import gradcheck  # noqa: E402
from autograd.nn import functional as F  # noqa: E402

rng = np.random.default_rng(0)


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
section("3. LayerNorm's backward, derived by hand")
# --------------------------------------------------------------------------------------------------
# The engine's backward for layer_norm is a few lines of array math. Here is where they come from. Take
# one row x of length C (one pixel's channels), and write
#     mu = mean(x),   sigma = sqrt(mean((x - mu)^2) + eps),   xhat = (x - mu) / sigma,
#     y = gamma * xhat + beta.
# Backward receives dy = dL/dy and must return dx = dL/dx (and dgamma, dbeta).
#   * gamma and beta act elementwise: dbeta = sum of dy over the rows, dgamma = sum of dy * xhat over the
#     rows, and the gradient reaching xhat is  g = dy * gamma.
#   * xhat depends on x directly, and through mu and sigma, which depend on every entry of the row. So
#         dxhat_j / dx_i = (1/sigma) * ([i == j] - 1/C - xhat_i * xhat_j / C)
#     (d mu / dx_i = 1/C; d sigma / dx_i = (x_i - mu) / (C sigma) = xhat_i / C).
#   * Summing g_j times that over j:
#         dx = (1/sigma) * (g - mean(g) - xhat * mean(g * xhat))
#     with the means over the normalised axis. Reading it: the part of g that would shift every entry of the
#     row (its mean) and the part that would scale the row (along xhat) are removed, because normalising
#     undoes any shift or scaling of x; what is left is divided by sigma.


def layer_norm_backward_by_hand(x, gamma, dy, eps):
    """dx, dgamma, dbeta of y = layer_norm(x) * gamma + beta over the last axis, from the formula above."""
    mu = x.mean(axis=-1, keepdims=True)
    sigma = np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    xhat = (x - mu) / sigma
    g = dy * gamma
    dx = (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)) / sigma
    rows = tuple(range(x.ndim - 1))
    return dx, (dy * xhat).sum(axis=rows), dy.sum(axis=rows)


rows_x = rng.standard_normal((2, 3, 3, C)) * 2.0 + 1.0  # channels-last, as in the model
gamma_values = rng.standard_normal(C)
dy = rng.standard_normal(rows_x.shape)  # any upstream gradient: backward is linear in it
x_t = ag.tensor(rows_x, requires_grad=True)
gamma_t = ag.tensor(gamma_values, requires_grad=True)
beta_t = ag.tensor(np.zeros(C), requires_grad=True)
(F.layer_norm(x_t, C, gamma_t, beta_t, eps=eps) * ag.tensor(dy)).sum().backward()
by_hand = layer_norm_backward_by_hand(rows_x, gamma_values, dy, eps)
engine_grads = (x_t.grad, gamma_t.grad, beta_t.grad)
for name, mine, engine in zip(("dx", "dgamma", "dbeta"), by_hand, engine_grads, strict=True):
    difference = np.abs(mine - engine.numpy()).max()
    print(f"{name:6s} by hand vs the engine's backward: largest difference {difference:.1e}")
# Two properties the formula predicts: each row of dx sums to zero (a shift of x changes nothing) and is
# orthogonal to xhat (a scaling of x changes nothing; eps, added to the variance, leaves a small remainder).
xhat_rows = (rows_x - rows_x.mean(-1, keepdims=True)) / np.sqrt(rows_x.var(-1, keepdims=True) + eps)
print(
    f"rows of dx: largest |sum| {np.abs(by_hand[0].sum(-1)).max():.1e}, "
    f"largest |dx . xhat| {np.abs((by_hand[0] * xhat_rows).sum(-1)).max():.1e}"
)
# And the finite differences of lesson 4 agree with the engine, so all three agree:
print(
    "gradcheck layer_norm (the same function):",
    gradcheck(lambda t, w, b: F.layer_norm(t, C, w, b), [x_t, gamma_t, beta_t]),
)

# --------------------------------------------------------------------------------------------------
section("4. GELU against ReLU")
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
section("5. Figures")
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
save_figure(fig, "norms.png")

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
save_figure(fig, "gelu_vs_relu.png")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# 1. In section 2, put image 0 into a batch B of 64 images instead of 4. Predict whether BatchNorm's
#    difference between batch A and batch B grows or shrinks; then run and see.
# 2. In section 3, drop the last term (xhat * mean(g * xhat)) from the hand-written backward. Predict which
#    of the two printed properties breaks, and by how much dx then differs from the engine's.
# 3. Feed N(0, 1) samples shifted by -2 (section 4) to ReLU and GELU. Predict the share of zero gradients
#    for ReLU, and whether GELU's negative-gradient share rises or falls.
