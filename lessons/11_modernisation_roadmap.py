"""Lesson 11: the paper's modernisation roadmap (its Figure 2), reproduced at small scale on CIFAR-10.

ConvNeXt was not designed from nothing. Section 2 of the paper starts from a ResNet-50 trained with a
modern recipe and changes one design decision at a time, measuring ImageNet accuracy and FLOPs after
each: the stage ratio, a "patchify" stem, depthwise convolution and more width (ResNeXt), the inverted
bottleneck, a larger kernel, and the micro design (GELU, fewer activations and norms, LayerNorm,
separate downsampling layers). Figure 2 of the paper draws that walk as a column of bars.

`tinyconvnext.roadmap` holds the same walk for 32x32 images: `roadmap_steps()` gives 13 configs, each
one change from the one before, and `RoadmapNet` builds any of them. This lesson counts what each
step costs, trains every step with the same budget and recipe, and draws our Figure 2.

    python lessons/11_modernisation_roadmap.py --quick   # tiny networks, 512 images, 2 epochs: about a minute
    python lessons/11_modernisation_roadmap.py           # width 16, all 50,000 images, 2 epochs each: ~1 hour

The quick mode only shows the machinery: tiny networks on 512 images are mostly noise. The full
mode is the experiment: docs/roadmap.md holds one run of it (with --subset 15000, 36 minutes).
CIFAR-10 is looked for in $TINYCONVNEXT_DATA, else in
../shared/data beside the repository, else in the download cache; the lesson downloads nothing.
Without the data it counts and draws the costs, and stops before training (exit status 0).

Figures (in --out, default lessons/output/11/):
    roadmap_costs.png   parameters and multiply-adds of every step
    roadmap.png         test accuracy of every step, bars like the paper's Figure 2 (needs CIFAR-10)
It also writes roadmap.json (every step's config, costs and results) there.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import autograd as ag  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext.data import DataNotFoundError, load_cifar10  # noqa: E402
from tinyconvnext.flops import traced_macs  # noqa: E402
from tinyconvnext.roadmap import RoadmapNet, roadmap_steps  # noqa: E402
from tinyconvnext.train import ImageDataset, TrainConfig, evaluate, make_loaders  # noqa: E402

parser = argparse.ArgumentParser(description="Lesson 11: the modernisation roadmap at small scale")
parser.add_argument("--quick", action="store_true", help="tiny networks, 512 images, 2 epochs (what CI runs)")
parser.add_argument(
    "--out",
    type=Path,
    default=Path(__file__).resolve().parent / "output" / "11",
    help="folder for the figures and roadmap.json",
)
parser.add_argument("--width", type=int, default=None, help="stage-1 inner width of the baseline (full: 16)")
parser.add_argument("--epochs", type=int, default=None, help="epochs per step (full: 2)")
parser.add_argument("--subset", type=int, default=None, help="training images, 0 = all (full: all)")
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
REPOSITORY = Path(__file__).resolve().parents[1]
lesson_start = time.perf_counter()


def section(title):
    print(f"\n{'=' * 100}\n{title}\n{'=' * 100}", flush=True)


# --------------------------------------------------------------------------------------------------
section("1. The walk: thirteen networks, each one change from the last")
# --------------------------------------------------------------------------------------------------
# The paper's ResNet-50 has bottleneck blocks (1x1 conv down to 64 channels, 3x3 conv, 1x1 conv up to
# 256), BatchNorm and ReLU after every conv, a 7x7 stride-2 stem with max pooling, and 3, 4, 6, 3
# blocks per stage. Our baseline is the same design for 32x32 images: a 3x3 stem with 2x2 max pooling
# (16x16 after the stem, as the 2x2 patchify stem of our CIFAR ConvNeXt gives), and 2, 3, 4, 2 blocks
# (roughly the paper's ratio at two thirds of its depth). With width 32 the last step is exactly
# convnext_cifar_femto (widths 48-384) without layer scale; a test in tests/model/test_roadmap.py
# copies its weights into tinyconvnext.ConvNeXt and gets the same logits.
width = args.width or (4 if args.quick else 16)
depths, final_depths = ((1, 1, 2, 1), (1, 1, 3, 1)) if args.quick else ((2, 3, 4, 2), (2, 2, 6, 2))
steps = roadmap_steps(width=width, depths=depths, final_depths=final_depths)
costs = []
print(f"baseline width {width}, depths {depths} -> {final_depths}\n")
print(f"    {'step':<26s} {'what changed':<46s} {'parameters':>11s} {'MACs':>8s}")
previous = None
for name, config in steps:
    model = RoadmapNet(config, num_classes=10)
    params, macs = model.num_parameters(), traced_macs(model, 32)
    changed = (
        ""
        if previous is None
        else ", ".join(
            f"{f.name}={getattr(config, f.name)}"
            for f in dataclasses.fields(config)
            if getattr(config, f.name) != getattr(previous, f.name)
        )
    )
    costs.append(dict(step=name, params=params, macs=macs, config=dataclasses.asdict(config)))
    print(f"    {name:<26s} {changed:<46s} {params / 1e6:10.3f}M {macs / 1e6:7.1f}M")
    previous = config
# What to notice, as in the paper: the depthwise conv cuts the multiply-adds almost in half (the
# spatial conv now costs K*K per channel instead of K*K*C), and widening by 1.5x buys them back; the
# inverted bottleneck *lowers* the cost, because the stride-2 projection shortcuts now run on the
# narrow width; moving the depthwise conv up lowers it again (it now runs on d channels, not 4d), so
# the 7x7 kernel costs little; the micro design changes nothing but the separate downsampling layers.

# --------------------------------------------------------------------------------------------------
section("2. The first and last blocks, side by side")
# --------------------------------------------------------------------------------------------------
# Both are RoadmapBlocks: three convs, a norm and an activation after some of them, and a residual sum.
# The ResNet block squeezes (4d -> d), convolves densely, expands; the ConvNeXt block convolves each
# channel on its own with a 7x7 kernel, normalises once, expands (d -> 4d) and squeezes back, with one
# GELU between the two 1x1 convs. The 1x1 convs are the Linear layers of lesson 8.
first_model, last_model = RoadmapNet(steps[0][1]), RoadmapNet(steps[-1][1])
print("the baseline's second stage, first block (it also halves the resolution):")
print(first_model.stages[1][0])
print("\nthe last step's second stage, first block (downsampling has its own layer before it):")
print(last_model.stages[1][0])

fig, (ax_params, ax_macs) = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
names = [c["step"] for c in costs][::-1]
ax_params.barh(names, [c["params"] / 1e6 for c in costs][::-1], color="#8fb3d9")
ax_params.set_xlabel("parameters (millions)")
ax_macs.barh(names, [c["macs"] / 1e6 for c in costs][::-1], color="#d9a98f")
ax_macs.set_xlabel("multiply-adds per 32x32 image (millions)")
fig.suptitle(f"The roadmap's costs (baseline width {width}, depths {depths})")
fig.tight_layout()
fig.savefig(args.out / "roadmap_costs.png", dpi=100)
plt.close(fig)
print(f"\nwrote {args.out / 'roadmap_costs.png'}")

# --------------------------------------------------------------------------------------------------
section("3. The data")
# --------------------------------------------------------------------------------------------------
candidates = [os.environ.get("TINYCONVNEXT_DATA"), REPOSITORY.parent / "shared" / "data"]
data_dir = next((Path(c) for c in candidates if c and Path(c).is_dir()), None)
(args.out / "roadmap.json").write_text(json.dumps({"steps": costs}, indent=1))
try:
    cifar = load_cifar10(data_dir, download=False, progress=False)
except DataNotFoundError:
    looked = (
        f"{data_dir} and the download cache"
        if data_dir
        else "the download cache (no $TINYCONVNEXT_DATA, no ../shared/data)"
    )
    print(f"CIFAR-10 not found in {looked}: this lesson stops here, before training.")
    sys.exit(0)
dataset = ImageDataset(
    cifar.train_images, cifar.train_labels, cifar.test_images, cifar.test_labels, list(cifar.classes)
)
subset = args.subset if args.subset is not None else (512 if args.quick else 0)
epochs = args.epochs or 2
# One recipe for every step, as the paper trains every step with its modern recipe. The loaders are
# the training program's: random crop with 4-pixel padding and flips, batches fixed by the seed, so
# every network sees the same images in the same order.
config = TrainConfig(
    dataset="cifar10",
    batch_size=32 if args.quick else 128,
    lr=4e-3,
    min_lr=1e-5,
    weight_decay=0.05,
    warmup_epochs=0.3,
    label_smoothing=0.1,
    subset=subset,
    eval_subset=500 if args.quick else 0,
    eval_batch_size=250,
    seed=0,
    progress=False,
)
train_loader, test_loader, _ = make_loaders(config, dataset)
print(
    f"{train_loader.num_items:,d} training images, {test_loader.num_items:,d} test images; "
    f"{epochs} epoch(s) of "
    f"{len(train_loader)} batches of {config.batch_size} per step; AdamW lr {config.lr:g}, weight decay "
    f"{config.weight_decay:g}, warmup {config.warmup_epochs:g} epoch then cosine, label smoothing "
    f"{config.label_smoothing:g}"
)


# --------------------------------------------------------------------------------------------------
section("4. Training every step with the same budget")


# --------------------------------------------------------------------------------------------------
# The loop is the heart of tinyconvnext.train.train without its bookkeeping (checkpoints, EMA, metrics
# files): the learning rate from the schedule, forward, loss, backward, one AdamW step.
def train_and_test(model):
    optimizer = optim.AdamW(
        optim.weight_decay_groups(model.named_parameters(), config.weight_decay), lr=config.lr
    )
    total = epochs * len(train_loader)
    warmup = int(round(config.warmup_epochs * len(train_loader)))
    step, started = 0, time.perf_counter()
    model.train()
    for epoch in range(epochs):
        for x, y in train_loader.epoch(epoch):
            optim.set_lr(optimizer, optim.cosine_with_warmup(step, total, warmup, config.lr, config.min_lr))
            loss = F.cross_entropy(model(ag.tensor(x)), ag.tensor(y), label_smoothing=config.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
    seconds = time.perf_counter() - started
    _, accuracy = evaluate(model, test_loader, "cpu")  # the training program's evaluation, in eval mode
    return accuracy, float(loss.item()), seconds


results = []
for (name, step_config), cost in zip(steps, costs, strict=False):
    ag.manual_seed(0)  # the same initial draw for every network
    accuracy, last_loss, seconds = train_and_test(RoadmapNet(step_config, num_classes=10))
    results.append(
        dict(
            cost,
            test_acc=accuracy,
            last_train_loss=last_loss,
            train_seconds=seconds,
            images_per_second=epochs * len(train_loader) * config.batch_size / seconds,
        )
    )
    print(
        f"    {name:<26s} test accuracy {accuracy:6.1%}   last loss {last_loss:.3f}   "
        f"{seconds:6.1f} s ({results[-1]['images_per_second']:.0f} images/s)",
        flush=True,
    )

run = dict(
    width=width,
    depths=depths,
    final_depths=final_depths,
    epochs=epochs,
    training_images=train_loader.num_items,
    test_images=test_loader.num_items,
    recipe=dataclasses.asdict(config),
    steps=results,
    seconds=time.perf_counter() - lesson_start,
)
(args.out / "roadmap.json").write_text(json.dumps(run, indent=1))

# --------------------------------------------------------------------------------------------------
section("5. Our Figure 2")
# --------------------------------------------------------------------------------------------------
# The paper's bars are ImageNet top-1 after 300 epochs; ours are CIFAR-10 after a few minutes each, so
# read them as a sketch: one seed, a short budget. A step that helps a network trained for 300 epochs
# on 1.3 million images (a larger kernel, fewer norms) need not help one trained for minutes.
fig, ax = plt.subplots(figsize=(9, 6.5))
accuracies = np.array([r["test_acc"] for r in results]) * 100
colors = ["#b0b0b0"] + [
    "#5b8fd9" if a > accuracies[i] else "#d97a5b" if a < accuracies[i] else "#b0b0b0"
    for i, a in enumerate(accuracies[1:])
]
y = np.arange(len(results))[::-1]
ax.barh(y, accuracies, color=colors)
for yi, r, a in zip(y, results, accuracies, strict=False):
    ax.text(a + 0.3, yi, f"{a:.1f}%  ({r['macs'] / 1e6:.1f}M MACs)", va="center", fontsize=9)
ax.set_yticks(y)
ax.set_yticklabels([r["step"] for r in results])
low, high = accuracies.min(), accuracies.max()
ax.set_xlim(max(0, low - 5), high + 8)
ax.set_xlabel(f"CIFAR-10 test accuracy (%), {epochs} epoch(s) on {train_loader.num_items:,d} images each")
ax.set_title("The modernisation roadmap at small scale\n(blue: better than the step before, orange: worse)")
fig.tight_layout()
fig.savefig(args.out / "roadmap.png", dpi=100)
plt.close(fig)
print(f"wrote {args.out / 'roadmap.png'} and {args.out / 'roadmap.json'}")
print("\n| step | parameters | MACs | test accuracy | change |\n| --- | --- | --- | --- | --- |")
for i, r in enumerate(results):
    change = "" if i == 0 else f"{100 * (r['test_acc'] - results[i - 1]['test_acc']):+.1f}"
    print(
        f"| {r['step']} | {r['params'] / 1e6:.2f}M | {r['macs'] / 1e6:.1f}M | "
        f"{100 * r['test_acc']:.1f}% | {change} |"
    )
print(
    f"\nbaseline {accuracies[0]:.1f}% -> last step {accuracies[-1]:.1f}%; the whole lesson took "
    f"{time.perf_counter() - lesson_start:.0f} s"
)
