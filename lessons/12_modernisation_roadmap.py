"""Lesson 12: the paper's modernisation roadmap (its Figure 2), reproduced at small scale on CIFAR-10.

ConvNeXt was not designed from nothing. Section 2 of the paper starts from a ResNet-50 trained with a
modern recipe and changes one design decision at a time, measuring ImageNet accuracy and FLOPs after
each: the stage ratio, a "patchify" stem, depthwise convolution and more width (ResNeXt), the inverted
bottleneck, a larger kernel, and the micro design (GELU, fewer activations and norms, LayerNorm,
separate downsampling layers). Figure 2 of the paper draws that walk as a column of bars.

`tinyconvnext.roadmap` holds the same walk for 32x32 images: `roadmap_steps()` gives 13 configs, each
one change from the one before, and `RoadmapNet` builds any of them. This lesson counts what each
step costs, trains every step with the same budget and recipe, and draws our Figure 2.

    python lessons/12_modernisation_roadmap.py --quick   # tiny networks, 512 images, 2 epochs: about a minute
    python lessons/12_modernisation_roadmap.py           # the committed walk: its table and figure
    python lessons/12_modernisation_roadmap.py --train-missing   # train what the walk lacks first (hours)

The full mode draws from the committed walk, docs/roadmap_results.json (``tinyconvnext.roadmap_walk``: the
paper's Figure 2 groups, three seeds each, one recipe and budget on all 50,000 training images): each
network's mean +- sd, each step's change with its 95% interval, the FLOPs beside them, instead of training
for hours. ``--train-missing`` first trains the networks and seeds the file lacks, through the runner (no
prompt; ``--epochs`` sets the budget when nothing is recorded yet). Without the file, and without
``--train-missing``, the full mode trains all 13 networks once itself (width 16, 2 epochs each: ~1 hour).

The quick mode only shows the machinery: tiny networks on 512 images are mostly noise, and several of
them learn nothing but one class. The lesson says so: it flags every network that predicts one class for
every image, and prints the committed full run (the table in docs/roadmap.md, read from the file) beside
the quick numbers. The full mode is the experiment.
CIFAR-10 is looked for in $TINYCONVNEXT_DATA, else in
../shared/data beside the repository, else in the download cache; the lesson downloads nothing.
Without the data it counts and draws the costs, and stops before training (exit status 0).

Figures (in --out, default lessons/output/12/):
    roadmap_costs.png   parameters and multiply-adds of every step
    roadmap.png         test accuracy of every step, bars like the paper's Figure 2 (needs CIFAR-10)
It also writes roadmap.json (every step's config, costs and results) there.
"""

import dataclasses
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
from common import find_cifar10, lesson_setup, plt, save_figure, section

from tinyconvnext.cli import non_negative_int, positive_int


def roadmap_options(parser):
    parser.add_argument(
        "--width", type=positive_int, default=None, help="stage-1 inner width of the baseline (full: 16)"
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="epochs per step (full: 2)")
    parser.add_argument(
        "--subset", type=non_negative_int, default=None, help="training images, 0 = all (full: all)"
    )
    parser.add_argument(
        "--train-missing",
        action="store_true",
        help="full mode: train the walk's missing networks and seeds into --results first (hours)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "docs" / "roadmap_results.json",
        help="the walk's results file (tinyconvnext.roadmap_walk), read in full mode",
    )


# Options first, before the heavy imports: a bad value exits at once.
args = lesson_setup("12", "the modernisation roadmap at small scale", roadmap_options)

import autograd as ag  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext.flops import traced_macs  # noqa: E402
from tinyconvnext.roadmap import RoadmapNet, roadmap_steps  # noqa: E402
from tinyconvnext.train import ImageDataset, TrainConfig, evaluate, make_loaders  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[1]
FULL_RUN = REPOSITORY / "docs" / "roadmap.md"  # the committed full run: its table of results
lesson_start = time.perf_counter()


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
save_figure(fig, "roadmap_costs.png", dpi=100)


# --------------------------------------------------------------------------------------------------
# The full mode's experiment is the committed walk (tinyconvnext.roadmap_walk): the paper's groups, three
# seeds each, one recipe and one budget on the whole training set. It took hours, so it is done once, its
# results committed; the lesson reads them. A step counts as a gain or a loss only where the 95% interval
# of its change excludes 0: one seed cannot tell a step from the noise of the initial draw.
def committed_walk():
    from tinyconvnext import roadmap_walk

    results = roadmap_walk.load_results(args.results)
    recipe = (
        roadmap_walk.recipe_for(args.epochs, args.width or 16)
        if args.epochs
        else roadmap_walk.main_recipe(results)
    )
    if args.train_missing:
        if recipe is None:
            print(
                "lesson 12: --train-missing needs --epochs (the budget): nothing is recorded yet",
                file=sys.stderr,
            )
            sys.exit(2)
        cifar, data_dir = find_cifar10("cannot train the missing networks")
        if cifar is None:
            sys.exit(0)
        networks = roadmap_walk.network_names("groups")
        runs = args.out / "runs"
        roadmap_walk.walk(
            networks, [0, 1, 2], recipe, args.results, runs, str(data_dir) if data_dir else None
        )
        results = roadmap_walk.load_results(args.results)
    print(roadmap_walk.report(results, recipe))
    table = roadmap_walk.accuracies_by_network(results, recipe or {})
    if not table:
        print(f"no results with this recipe in {args.results}: nothing to draw")
        return
    costs = {r["network"]: r["flops"] for r in results if r.get("recipe") == recipe}
    names = list(table)
    stats = [roadmap_walk.mean_and_sd(list(table[name].values())) for name in names]
    colors = ["#b0b0b0"]
    for before, after in zip(names, names[1:], strict=False):
        label = roadmap_walk.verdict(roadmap_walk.difference_interval(table[before], table[after]))
        colors.append({"gain": "#5b8fd9", "loss": "#d97a5b"}.get(label, "#b0b0b0"))
    fig, ax = plt.subplots(figsize=(9, 1 + 0.7 * len(names)))
    y = np.arange(len(names))[::-1]
    means = np.array([mean for mean, _ in stats])
    sds = np.array([0.0 if np.isnan(sd) else sd for _, sd in stats])
    ax.barh(y, means, xerr=sds, color=colors, capsize=4)
    for yi, name, mean, sd in zip(y, names, means, sds, strict=True):
        ax.text(
            mean + sd + 0.3, yi, f"{mean:.1f} +- {sd:.1f}%  ({costs[name] / 1e6:.1f}M FLOPs)", va="center"
        )
    labels = [roadmap_walk.GROUP_OF.get(name) or name for name in names]
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.set_xlim(max(0, means.min() - 10), means.max() + 12)
    ax.set_xlabel(f"CIFAR-10 test accuracy (%), mean +- sd over seeds, {recipe['epochs']} epochs each")
    ax.set_title("The roadmap walk (blue: gain, orange: loss, grey: not distinguishable at 95%)")
    save_figure(fig, "roadmap.png", dpi=100)


if not args.quick and (args.results.exists() or args.train_missing):
    section("3. The committed walk: several seeds per network, one recipe, one budget")
    committed_walk()
    print(f"the whole lesson took {time.perf_counter() - lesson_start:.0f} s")
    sys.exit(0)

# --------------------------------------------------------------------------------------------------
section("3. The data")
# --------------------------------------------------------------------------------------------------
(args.out / "roadmap.json").write_text(json.dumps({"steps": costs}, indent=1))
cifar, data_dir = find_cifar10("stops here, before training")
if cifar is None:
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
    outputs = []  # (logits, labels) per batch: which classes the network predicts, not only how often right
    _, accuracy = evaluate(model, test_loader, "cpu", outputs=outputs)  # the training program's evaluation
    predicted = np.concatenate([logits.argmax(axis=1) for logits, _ in outputs])
    return accuracy, float(loss.item()), seconds, np.bincount(predicted, minlength=10) / len(predicted)


results = []
for (name, step_config), cost in zip(steps, costs, strict=False):
    ag.manual_seed(0)  # the same initial draw for every network
    accuracy, last_loss, seconds, shares = train_and_test(RoadmapNet(step_config, num_classes=10))
    results.append(
        dict(
            cost,
            test_acc=accuracy,
            last_train_loss=last_loss,
            train_seconds=seconds,
            images_per_second=epochs * len(train_loader) * config.batch_size / seconds,
            top_class_share=float(shares.max()),
            one_class=bool(shares.max() == 1.0),
        )
    )
    flag = "   ONE CLASS for every image" if results[-1]["one_class"] else ""
    print(
        f"    {name:<26s} test accuracy {accuracy:6.1%}   last loss {last_loss:.3f}   "
        f"{seconds:6.1f} s ({results[-1]['images_per_second']:.0f} images/s)   "
        f"most-predicted class: {shares.max():.0%} of the images{flag}",
        flush=True,
    )
# A network that puts every test image in one class scores that class's share of the test set whatever
# it saw: its accuracy says nothing about its design. Several networks scoring exactly the same
# accuracy is the sign of it.

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
# on 1.3 million images (a larger kernel, fewer norms) need not help one trained for minutes. A hatched
# bar is a network that predicts one class for every image.
fig, ax = plt.subplots(figsize=(9, 6.5))
accuracies = np.array([r["test_acc"] for r in results]) * 100
colors = ["#b0b0b0"] + [
    "#5b8fd9" if a > accuracies[i] else "#d97a5b" if a < accuracies[i] else "#b0b0b0"
    for i, a in enumerate(accuracies[1:])
]
y = np.arange(len(results))[::-1]
bars = ax.barh(y, accuracies, color=colors)
for bar, yi, r, a in zip(bars, y, results, accuracies, strict=True):
    note = "  ONE CLASS" if r["one_class"] else ""
    bar.set_hatch("//" if r["one_class"] else None)
    ax.text(a + 0.3, yi, f"{a:.1f}%  ({r['macs'] / 1e6:.1f}M MACs){note}", va="center", fontsize=9)
ax.set_yticks(y)
ax.set_yticklabels([r["step"] for r in results])
ax.set_xlim(max(0, accuracies.min() - 5), accuracies.max() + 12)
ax.set_xlabel(f"CIFAR-10 test accuracy (%), {epochs} epoch(s) on {train_loader.num_items:,d} images each")
ax.set_title("The modernisation roadmap at small scale\n(blue: better than the step before, orange: worse)")
save_figure(fig, "roadmap.png", dpi=100)

# --------------------------------------------------------------------------------------------------
section("6. What these numbers can support, beside the committed full run")
# --------------------------------------------------------------------------------------------------
# The full run's table is read from docs/roadmap.md (the file is the record; it is redone when the
# experiment is), by the names of its columns.


def full_run_accuracies(path):
    """{step name: test accuracy %} from the first Markdown table of `path` with a "step" column and a
    "test acc" column; {} when the file or such a table is missing."""
    if not path.exists():
        return {}
    rows = [line.strip().strip("|").split("|") for line in path.read_text(encoding="utf-8").splitlines()]
    for index, cells in enumerate(rows):
        header = [cell.strip().lower() for cell in cells]
        if "step" in header and any(h.startswith("test acc") for h in header):
            step_at = header.index("step")
            acc_at = next(i for i, h in enumerate(header) if h.startswith("test acc"))
            table = {}
            for row in rows[index + 2 :]:
                if len(row) <= max(step_at, acc_at) or not re.match(r"^\s*[\d.]+", row[acc_at]):
                    break
                table[row[step_at].strip().strip('"')] = float(re.match(r"^\s*([\d.]+)", row[acc_at])[1])
            return table
    return {}


full = full_run_accuracies(FULL_RUN)
print(f"| step | parameters | MACs | this run: test acc | one class? | full run ({FULL_RUN.name}) |")
print("| --- | --- | --- | --- | --- | --- |")
for r in results:
    full_acc = full.get(r["step"].strip('"'))
    print(
        f"| {r['step']} | {r['params'] / 1e6:.2f}M | {r['macs'] / 1e6:.1f}M | {100 * r['test_acc']:.1f}% | "
        f"{'yes' if r['one_class'] else ''} | {'' if full_acc is None else f'{full_acc:.2f}%'} |"
    )
one_class = [r["step"] for r in results if r["one_class"]]
print(f"\nthis run: baseline {accuracies[0]:.1f}% -> last step {accuracies[-1]:.1f}%")
if full:
    first, last = list(full.values())[0], list(full.values())[-1]
    print(f"full run ({FULL_RUN.relative_to(REPOSITORY)}): baseline {first:.2f}% -> last step {last:.2f}%")
else:
    print(f"(no full-run table found in {FULL_RUN}: run the full mode to make one)")
if one_class:
    print(
        f"{len(one_class)} of {len(results)} networks predict one class for every test image "
        f"({', '.join(one_class)}): their accuracy is that class's share of the test set, not a measure of "
        "their design."
    )
if args.quick or one_class:
    print(
        "These numbers cannot support the roadmap's claim either way: too few images and steps to learn "
        "more than a class or two. Read the full run's column for the experiment."
    )
print(f"the whole lesson took {time.perf_counter() - lesson_start:.0f} s")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# 1. Run with --quick --subset 2048 --epochs 3. Predict how many networks still predict one class, and
#    whether the baseline-to-last-step difference has the same sign as the full run's.
# 2. In roadmap_steps' output, the depthwise step cuts the MACs almost in half. Predict by how much the
#    "width x1.5" step raises them again (1.5^2 for the dense 1x1 convs), then check the first table.
# 3. Train only the baseline and the last step with a larger learning rate (config.lr = 1e-2). Predict which
#    one suffers more, the network with BatchNorm after every conv or the one with a single LayerNorm.
