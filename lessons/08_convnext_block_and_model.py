"""Lesson 08: the ConvNeXt block, and the whole model built from it.

Lessons 5 to 7 built the parts: patchify and depthwise convolutions, LayerNorm, GELU. A ConvNeXt
block puts them in one order (the paper's Figure 4):

    x + drop_path(gamma * Linear_4d->d(GELU(Linear_d->4d(LayerNorm(dwconv7x7(x))))))

and the model stacks blocks in four stages of falling resolution and rising width, with a patchify
stem in front, small downsampling layers between the stages and a classifier head at the end.

This lesson runs one block step by step on a small tensor, shows why our activations are kept
channels-last inside the network, traces an image through a whole model, counts parameters and
multiply-adds stage by stage (`tinyconvnext.flops.stage_costs`) and times a forward pass.

    python lessons/08_convnext_block_and_model.py --quick
    python lessons/08_convnext_block_and_model.py

Figures (in --out, default lessons/output/08/):
    architecture.png   ConvNeXt-T as boxes: stem, stages (depth x width), downsampling, head, with
                       parameters and multiply-adds; below it, the inside of one block
"""

import time

import numpy as np
from common import lesson_setup, plt, save_figure, section
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

args = lesson_setup(
    "08", "the ConvNeXt block and model"
)  # before the heavy imports: a bad option exits at once

import autograd as ag  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext import VARIANTS, Block, create_model  # noqa: E402
from tinyconvnext.flops import count_flops, stage_costs  # noqa: E402

rng = np.random.default_rng(0)
ag.manual_seed(0)


# --------------------------------------------------------------------------------------------------
section("1. One block, step by step")
# --------------------------------------------------------------------------------------------------
# A batch of 2 feature maps of 8x8 pixels and 16 channels, laid out (N, H, W, C): channels last,
# as every activation inside our model (section 2 says why).
dim = 16
block = Block(dim)
x = ag.tensor(rng.standard_normal((2, 8, 8, dim)).astype(np.float32))


def describe(step, tensor, note=""):
    values = tensor.numpy()
    print(f"    {step:28s} {str(tensor.shape):16s} mean |value| {np.abs(values).mean():9.2e}   {note}")


print(f"Block({dim}): {block.num_parameters():,d} parameters")
with ag.no_grad():
    describe("input x", x)
    h = block.dwconv(x)
    describe("dwconv 7x7 (depthwise)", h, "space is mixed, each channel on its own")
    h = block.norm(h)
    per_pixel = h.numpy()
    describe(
        "LayerNorm",
        h,
        f"per pixel over {dim} channels: mean {np.abs(per_pixel.mean(-1)).max():.0e}, "
        f"std {per_pixel.std(-1).mean():.3f}",
    )
    h = block.pwconv1(h)
    describe("pwconv1: Linear d -> 4d", h, "channels are mixed, 4x wider (the inverted bottleneck)")
    h = block.act(h)
    describe(
        "GELU", h, f"the one activation of the block; smallest value {h.numpy().min():.3f} (GELU >= -0.17)"
    )
    h = block.pwconv2(h)
    describe("pwconv2: Linear 4d -> d", h, "back to the block's width")
    h = h * block.gamma
    describe("* gamma (layer scale)", h, f"gamma starts at {block.gamma.numpy()[0]:g} for every channel")
    by_hand = x + h  # drop_path is the identity here (rate 0, and in eval mode always)
    describe("x + branch (residual)", by_hand)
    out = block(x)
print(
    f"block(x) against the steps above: largest difference {np.abs(out.numpy() - by_hand.numpy()).max():.1e}"
)
print(f"block(x) against x itself: largest difference {np.abs(out.numpy() - x.numpy()).max():.1e}")
# With gamma = 1e-6 a freshly built block is the identity to six digits: a network of 18 blocks
# starts as a short path from stem to head, and each block learns how much of its branch to add
# (layer scale, from CaiT; the paper's Section 2.6 keeps it at 1e-6).

print("\nwhere the parameters are, for width d (a depthwise kernel of K x K = 49 taps):")
layers = [
    ("dwconv  (d, 1, 7, 7) + bias", 49 * dim + dim, block.dwconv),
    ("norm    weight, bias", 2 * dim, block.norm),
    ("pwconv1 (4d, d) + bias", 4 * dim * dim + 4 * dim, block.pwconv1),
    ("pwconv2 (d, 4d) + bias", 4 * dim * dim + dim, block.pwconv2),
]
for name, formula, layer in layers:
    print(f"    {name:30s} formula {formula:6,d}   counted {layer.num_parameters():6,d}")
print(f"    {'gamma   (d,)':30s} formula {dim:6,d}   counted {block.gamma.size:6,d}")
print(
    f"    {'total   8 d^2 + 58 d':30s} formula {8 * dim * dim + 58 * dim:6,d}   "
    f"counted {block.num_parameters():6,d}"
)
# Multiply-adds per pixel: 49 d for the depthwise conv, 8 d^2 for the two Linears. From d = 96 on,
# the pointwise layers do more than 90% of the arithmetic: the 7x7 kernel is cheap because it is
# depthwise.
for d in (16, 96, 768):
    print(
        f"    width {d:4d}: multiply-adds per pixel {49 * d + 8 * d * d:10,d}, "
        f"of which pointwise {8 * d * d / (49 * d + 8 * d * d):.0%}"
    )

# --------------------------------------------------------------------------------------------------
section("2. Why channels-last inside")
# --------------------------------------------------------------------------------------------------
# LayerNorm normalises the channels of each pixel, and both Linears mix the channels of each pixel.
# With (N, H, W, C) those C numbers are neighbours in memory (the channel stride is one element),
# and a Linear is one matrix product of the (N*H*W, C) rows with the weight. With (N, C, H, W) the
# same C numbers lie H*W elements apart.
nchw = x.permute(0, 3, 1, 2).numpy().copy()
print(
    f"channel stride: NHWC {x.numpy().strides[3] // 4} element, NCHW {nchw.strides[1] // 4} elements "
    f"(= H * W)"
)
# A Linear on the channel axis is exactly a 1x1 convolution of the NCHW layout: the same numbers.
with ag.no_grad():
    as_linear = block.pwconv1(x).numpy()
    weight_1x1 = ag.tensor(block.pwconv1.weight.numpy().reshape(4 * dim, dim, 1, 1))
    as_conv = F.conv2d(ag.tensor(nchw), weight_1x1, block.pwconv1.bias).numpy().transpose(0, 2, 3, 1)
print(
    f"pwconv1 as a Linear on NHWC against a 1x1 conv on NCHW: largest difference "
    f"{np.abs(as_linear - as_conv).max():.1e}"
)
# The official code keeps NCHW between blocks and permutes inside each one: to NHWC before the
# LayerNorm, back to NCHW after gamma. We permute once, after the model's input, and the
# depthwise conv has a kernel written for the channels-last layout. The parameters keep PyTorch's
# shapes (dwconv weight (d, 1, 7, 7)), so official checkpoints load unchanged (lesson 9).
depths = VARIANTS["convnext_tiny"]["depths"]
print(
    f"ConvNeXt-T has {sum(depths)} blocks: the official layout permutes (and copies) an activation "
    f"{2 * sum(depths)} times per forward pass, ours once"
)

# --------------------------------------------------------------------------------------------------
section("3. Drop path: a block that is sometimes skipped")
# --------------------------------------------------------------------------------------------------
# Stochastic depth (used in training, lesson 11): for each IMAGE of the batch, the whole branch is
# dropped with probability p, and kept branches are scaled by 1 / (1 - p), so the expected output
# is unchanged. In eval mode nothing is dropped. To make the branch visible, gamma starts at 1 here.
ag.manual_seed(1)
dropping = Block(dim, drop_path=0.5, layer_scale_init_value=1.0)
batch = ag.tensor(rng.standard_normal((8, 4, 4, dim)).astype(np.float32))
with ag.no_grad():
    branch_eval = dropping.eval()(batch).numpy() - batch.numpy()
    branch_train = dropping.train()(batch).numpy() - batch.numpy()
ratios = [np.abs(t).sum() / np.abs(e).sum() for t, e in zip(branch_train, branch_eval, strict=False)]
print("branch in training / branch in eval, per image of a batch of 8, p = 0.5:")
print("    " + "  ".join(f"{r:.2f}" for r in ratios))
print("0 = the image skipped this block; 2 = kept and scaled by 1 / (1 - 0.5)")

# --------------------------------------------------------------------------------------------------
section("4. The whole model: an image traced through it")
# --------------------------------------------------------------------------------------------------
# Stem: a 4x4 patchify conv with stride 4, then LayerNorm. Four stages of blocks; between them a
# LayerNorm and a 2x2 conv with stride 2 halve the resolution and double the width. Head: average
# over all pixels, LayerNorm, Linear to the classes. In the code: model.downsample_layers[0] is the
# stem, downsample_layers[1..3] the downsampling layers, model.stages[0..3] the stages.
timed_name = "convnext_atto" if args.quick else "convnext_tiny"
model = create_model(timed_name).eval()
image = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
print(f"{timed_name}: depths {model.depths}, widths {model.dims}, {model.num_parameters():,d} parameters")
with ag.no_grad():
    h = ag.tensor(image)
    print(f"    {'input (NCHW, as PyTorch)':40s} {h.shape}")
    h = h.permute(0, 2, 3, 1)
    print(f"    {'permuted once to NHWC':40s} {h.shape}")
    for i, (downsample, stage) in enumerate(zip(model.downsample_layers, model.stages, strict=False)):
        h = downsample(h)
        name = "stem: 4x4 conv, stride 4; LayerNorm" if i == 0 else f"downsample {i}: LayerNorm; 2x2 conv, /2"
        print(f"    {name:40s} {h.shape}")
        h = stage(h)
        print(f"    {f'stage {i}: {len(stage)} blocks of width {model.dims[i]}':40s} {h.shape}")
    pooled = model.norm(h.mean(axis=(1, 2)))
    print(f"    {'global average; LayerNorm':40s} {pooled.shape}")
    logits = model.head(pooled)
    print(f"    {'head: Linear':40s} {logits.shape}")
    print(
        f"the trace against model(image): largest difference "
        f"{np.abs(logits.numpy() - model(image).numpy()).max():.1e}"
    )

# --------------------------------------------------------------------------------------------------
section("5. Parameters and multiply-adds, stage by stage")
# --------------------------------------------------------------------------------------------------
# stage_costs counts multiply-adds (what papers call FLOPs) of the convolutions and Linears; norms,
# GELU and additions are left out, as fvcore does. A block of width d at r x r pixels costs
# r^2 (49 d + 8 d^2). The paper gives ConvNeXt-T as 28M parameters and 4.5G FLOPs.
tiny = create_model("convnext_tiny")


def print_costs(model, image_size, title):
    rows = stage_costs(model, image_size)
    total_macs, total_params = sum(r["macs"] for r in rows), sum(r["params"] for r in rows)
    print(
        f"{title}: {total_params / 1e6:.2f}M parameters (model.num_parameters(): "
        f"{model.num_parameters() / 1e6:.2f}M), {total_macs / 1e9:.3f} G multiply-adds per image"
    )
    print(
        f"    {'part':13s} {'pixels':>8s} {'parameters':>12s} {'share':>6s} "
        f"{'multiply-adds':>15s} {'share':>6s}"
    )
    for r in rows:
        print(
            f"    {r['part']:13s} {r['side']:>3d} x{r['side']:>3d} {r['params']:12,d} "
            f"{r['params'] / total_params:6.1%} "
            f"{r['macs']:15,d} {r['macs'] / total_macs:6.1%}"
        )
    return rows


tiny_rows = print_costs(tiny, 224, "convnext_tiny at 224 x 224, 1000 classes")
# Stage 2 holds 9 of the 18 blocks at 14 x 14: almost half the arithmetic. The parameters sit where
# the width is largest: 8 d^2 per block at d = 768 makes stage 3 half the model, while its 7 x 7
# pixels make it cheap to run.

print("\nthe CIFAR variants (32 x 32 images, 10 classes, a 2x2 stem instead of 4x4):")
print(f"    {'model':22s} {'depths':14s} {'widths':20s} {'parameters':>11s} {'M multiply-adds':>16s}")
cifar_models = {}
for name in ("convnext_cifar_atto", "convnext_cifar_femto", "convnext_cifar_pico", "convnext_cifar_nano"):
    cifar_models[name] = create_model(name, num_classes=10)
    config = VARIANTS[name]
    print(
        f"    {name:22s} {str(config['depths']):14s} {str(config['dims']):20s} "
        f"{cifar_models[name].num_parameters() / 1e6:10.2f}M "
        f"{count_flops(cifar_models[name], 32) / 1e6:16.1f}"
    )
cifar_rows = print_costs(
    cifar_models["convnext_cifar_atto"], 32, "\nconvnext_cifar_atto at 32 x 32, 10 classes"
)

# --------------------------------------------------------------------------------------------------
section("6. Timing one forward pass")
# --------------------------------------------------------------------------------------------------
# Batch 1, 224 x 224, under no_grad (no graph is recorded). The first call also compiles or loads
# the Numba kernels, so it is reported apart. A multiply-add is 2 floating-point operations.
# The model is timed as the prediction and training code run it, after model.fuse(): each Block becomes
# a FusedBlock with the same modules and parameters whose pwconv1 + GELU and residual add are one op
# each (F.linear_gelu, F.residual_add): the same numbers in fewer passes over memory.
model.fuse()
repeats = 3 if args.quick else 5
times = []
for _ in range(repeats + 1):
    start = time.perf_counter()
    with ag.no_grad():
        model(image)
    times.append(time.perf_counter() - start)
macs = count_flops(model, 224)
best = min(times[1:])
print(
    f"{timed_name}, batch 1, 224 x 224, float32: first call {times[0] * 1e3:.0f} ms, "
    f"best of {repeats} after it "
    f"{best * 1e3:.0f} ms"
)
print(
    f"    {macs / 1e9:.2f} G multiply-adds -> {2 * macs / best / 1e9:.1f} GFLOP/s "
    "on this machine's shared cores"
)

# --------------------------------------------------------------------------------------------------
section("7. Figures")
# --------------------------------------------------------------------------------------------------
colours = {
    "stem": "#ffd166",
    "stage": "#a8dadc",
    "downsample": "#f4a261",
    "head": "#cdb4db",
    "input": "#e9ecef",
}


def box(ax, x, y, width, height, text, colour, fontsize=8):
    ax.add_patch(
        FancyBboxPatch(
            (x, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colour,
            edgecolor="0.3",
        )
    )
    ax.text(x + width / 2, y, text, ha="center", va="center", fontsize=fontsize)


def arrow(ax, x0, y0, x1, y1, **kwargs):
    ax.add_patch(
        FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10, color="0.3", **kwargs)
    )


def count(value, unit):
    return f"{value / 1e6:.2f}M {unit}" if value >= 1e5 else f"{value / 1e3:.1f}K {unit}"


fig, (ax_model, ax_block) = plt.subplots(2, 1, figsize=(15, 7.4), gridspec_kw=dict(height_ratios=[1.5, 1]))
by_part = {r["part"]: r for r in tiny_rows}
parts = [("input", "image\n3 x 224 x 224", None, 1.0, 0.9)]
for i, (depth, width) in enumerate(zip(tiny.depths, tiny.dims, strict=False)):
    side = by_part[f"stage {i}"]["side"]
    if i == 0:
        parts.append(("stem", "stem\n4x4 conv /4\nLayerNorm", by_part["stem"], 1.0, 0.9))
    else:
        parts.append(("downsample", "LayerNorm\n2x2 conv /2", by_part[f"downsample {i}"], 0.9, 0.9))
    parts.append(
        (
            "stage",
            f"stage {i}\n{depth} x Block({width})\n{side} x {side} x {width}",
            by_part[f"stage {i}"],
            0.7 + 0.22 * depth,
            0.7 + 0.45 * np.log2(width / 96),
        )
    )
parts.append(("head", "head\naverage\nLayerNorm\nLinear 768 -> 1000", by_part["head"], 1.3, 1.1))
x_pos, gap = 0.0, 0.35
for kind, text, row, width, height in parts:
    box(ax_model, x_pos, 0, width, height, text, colours[kind])
    if row is not None:
        ax_model.text(
            x_pos + width / 2,
            -height / 2 - 0.12,
            f"{count(row['params'], 'params')}\n{count(row['macs'], 'MACs')}",
            ha="center",
            va="top",
            fontsize=7.5,
            color="0.2",
        )
    if x_pos > 0:
        arrow(ax_model, x_pos - gap, 0, x_pos, 0)
    x_pos += width + gap
ax_model.text(x_pos - gap / 2, 0, "logits\n1000", ha="left", va="center", fontsize=8)
ax_model.set_xlim(-0.2, x_pos + 0.6)
ax_model.set_ylim(-1.55, 1.1)
ax_model.axis("off")
total_tiny_macs = sum(r["macs"] for r in tiny_rows)
ax_model.set_title(
    f"ConvNeXt-T: {tiny.num_parameters() / 1e6:.1f}M parameters, {total_tiny_macs / 1e9:.2f} G "
    f"multiply-adds (MACs) per 224 x 224 image (box width ~ depth, height ~ log width)",
    fontsize=11,
)

steps = [
    ("input x\nd channels", colours["input"]),
    ("dwconv 7x7\ndepthwise, d", colours["stage"]),
    ("LayerNorm\n(channels)", colours["stem"]),
    ("pwconv1\nLinear d -> 4d", colours["downsample"]),
    ("GELU", colours["head"]),
    ("pwconv2\nLinear 4d -> d", colours["downsample"]),
    ("x gamma\n(layer scale)", colours["stem"]),
    ("drop path\n(training)", colours["input"]),
]
x_pos, width = 0.0, 1.25
for i, (text, colour) in enumerate(steps):
    box(ax_block, x_pos, 0, width, 0.9, text, colour, fontsize=8.5)
    if i:
        arrow(ax_block, x_pos - 0.4, 0, x_pos, 0)
    x_pos += width + 0.4
plus = x_pos
ax_block.text(
    plus,
    0,
    "+",
    ha="center",
    va="center",
    fontsize=13,
    bbox=dict(boxstyle="circle,pad=0.2", facecolor="white", edgecolor="0.3"),
)
arrow(ax_block, x_pos - 0.4, 0, plus - 0.2, 0)
ax_block.plot([width / 2, width / 2, plus], [0.45, 0.85, 0.85], color="0.3", lw=1.2)
arrow(ax_block, plus, 0.85, plus, 0.22)
ax_block.text(
    plus / 2, 0.93, "residual: the input is added back unchanged", ha="center", fontsize=8.5, color="0.3"
)
arrow(ax_block, plus + 0.22, 0, plus + 0.7, 0)
ax_block.text(plus + 0.75, 0, "out\nd channels", ha="left", va="center", fontsize=8.5)
ax_block.text(
    plus / 2,
    -0.72,
    "per pixel: 49 d + 8 d^2 multiply-adds, 8 d^2 + 58 d parameters; activations stay "
    "(N, H, W, C) throughout",
    ha="center",
    fontsize=8.5,
    color="0.2",
)
ax_block.set_xlim(-0.2, plus + 2.0)
ax_block.set_ylim(-0.95, 1.15)
ax_block.axis("off")
ax_block.set_title("one ConvNeXt block (the paper's Figure 4)", fontsize=11)
save_figure(fig, "architecture.png", dpi=110)

# (The costs by part are the tables of section 5: a bar chart of them would only repeat those numbers.)

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# 1. In section 1, build `Block(dim, kernel_size=3)` instead of the 7x7 one. Predict how many parameters the
#    block loses per channel (49 - 9 = 40), so the new formula; then run and check the printed count.
# 2. In section 4, trace a 64 x 64 image instead of 224 x 224. Predict the shape after the stem and after
#    each stage (a 7x7 kernel on a 2 x 2 map at the last stage: what does it still see?), then run.
# 3. In section 3, set drop_path=0.2 and the batch to 1,000 images. Predict the share of zeros among the
#    ratios and the value of the others (1 / 0.8); print their mean and see it settle near 1.
