"""Lesson 11: training a ConvNeXt on CIFAR-10, and the recipe behind it.

Lessons 1 to 9 built the network and checked every part of it; lesson 10 wrote the optimisers and a
loop by hand. What makes a ConvNeXt good is also
how it is trained: the paper's Section 2.1 shows that a modern recipe alone (AdamW, a long warmup and
cosine schedule, label smoothing, stochastic depth, an average of the weights, heavy augmentation)
lifts a plain ResNet-50 from 76.1% to 78.8% on ImageNet before any change to the architecture.

This lesson explains the parts of that recipe with numbers, shows the training engine's own loop
(`tinyconvnext.engine.train_one_epoch`), then runs `tinyconvnext.train.train`
for a few epochs on real CIFAR-10 images with a small ConvNeXt and prints what it records. The
project's real run (train_cifar.py, about an hour on two cores) uses the same loop.

    python lessons/11_training_cifar10.py --quick    # 1,024 images, 3 epochs: well under a minute
    python lessons/11_training_cifar10.py            # 5,000 images, 6 epochs: a few minutes

CIFAR-10 is looked for in $TINYCONVNEXT_DATA, else in ../shared/data beside the repository, else in
the download cache (~/.cache/tinyconvnext); the lesson downloads nothing. Without the data it
explains the recipe, draws the schedule, and stops before training (exit status 0).

Figures (in --out, default lessons/output/11/):
    lr_schedule.png   the learning rate at every step: linear warmup, then half a cosine
    curves.png        loss and accuracy per epoch, as the training run draws it (copied from the run
                      folder --out/run/, which also holds metrics.jsonl, metrics.csv and checkpoint.npz)
"""

import inspect
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from common import find_cifar10, lesson_setup, plt, save_figure, section

args = lesson_setup(
    "11", "training ConvNeXt on CIFAR-10"
)  # before the heavy imports: a bad option exits at once

import autograd as ag  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.nn import functional as F  # noqa: E402
from tinyconvnext import create_model  # noqa: E402
from tinyconvnext.engine import forward_backward, train_one_epoch  # noqa: E402
from tinyconvnext.train import ImageDataset, TrainConfig, train  # noqa: E402

lesson_start = time.perf_counter()


# --------------------------------------------------------------------------------------------------
section("1. The recipe: the paper's, and ours at small scale")
# --------------------------------------------------------------------------------------------------
# The model is convnext_cifar_atto (a 2x2 stem for 32x32 images, lesson 8) made smaller still: one
# or two blocks per stage and narrow widths, so that an epoch takes seconds on two cores.
config = TrainConfig(
    dataset="cifar10",
    model="convnext_cifar_atto",
    depths="1,1,2,1",
    dims="32,64,128,256",
    epochs=3 if args.quick else 6,
    batch_size=64,
    lr=4e-3,
    min_lr=1e-5,
    weight_decay=0.05,
    warmup_epochs=0.5,
    drop_path=0.1,
    label_smoothing=0.1,
    ema_decay=0.9 if args.quick else 0.98,
    subset=1024 if args.quick else 5000,
    eval_subset=500 if args.quick else 1000,
    out=str(args.out / "run"),
    progress=False,
    seed=0,
)
steps_per_epoch = config.subset // config.batch_size  # the last, incomplete batch is dropped
total_steps = config.epochs * steps_per_epoch
warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))
recipe = [  # (setting, the paper's ImageNet-1k recipe (its Table A.1 for ConvNeXt-T), this run)
    ("optimizer", "AdamW", "AdamW"),
    ("peak learning rate", "4e-3", f"{config.lr:g}"),
    ("weight decay", "0.05", f"{config.weight_decay:g}"),
    ("batch size", "4096", f"{config.batch_size}"),
    ("epochs", "300", f"{config.epochs}"),
    ("warmup (linear)", "20 epochs", f"{config.warmup_epochs:g} epoch = {warmup_steps} steps"),
    ("schedule after warmup", "cosine", "cosine"),
    ("label smoothing", "0.1", f"{config.label_smoothing:g}"),
    ("stochastic depth (drop path)", "0.1", f"{config.drop_path:g}"),
    ("layer scale init", "1e-6", f"{config.layer_scale:g}"),
    ("EMA of the weights", "0.9999", f"{config.ema_decay:g}"),
    ("mixup / cutmix", "0.8 / 1.0", "off"),
    ("RandAugment / random erasing", "(9, 0.5) / 0.25", "off"),
    ("training images", "1.28 M", f"{config.subset:,d}"),
]
print(f"    {'setting':30s} {'paper, ImageNet-1k':22s} this run")
for setting, paper, ours in recipe:
    print(f"    {setting:30s} {paper:22s} {ours}")
# The augmentations are off here: on a thousand images and three epochs the network has not yet
# learned the training set, so there is nothing for them to regularise (they are in
# tinyconvnext/augment.py, switched on by TrainConfig.mixup, .cutmix, .rand_augment, .random_erasing).

# --------------------------------------------------------------------------------------------------
section("2. AdamW: decoupled weight decay, and what it is not applied to")
# --------------------------------------------------------------------------------------------------
# AdamW (Loshchilov and Hutter) shrinks each weight by lr * weight_decay * w at every step, apart
# from the Adam update, instead of adding weight_decay * w to the gradient (where Adam's scaling
# would weaken it for weights with large gradients). Biases, norm weights and the layer-scale gammas
# are not decayed: pulling them towards 0 would fight the normalisation, not the overfitting.
ag.manual_seed(0)
model = create_model(
    config.model,
    num_classes=10,
    drop_path_rate=config.drop_path,
    depths=(1, 1, 2, 1),
    dims=(32, 64, 128, 256),
)
groups = optim.weight_decay_groups(model.named_parameters(), config.weight_decay)
for group in groups:
    print(
        f"    weight decay {group['weight_decay']:<5g}: {len(group['params']):3d} tensors, "
        f"{sum(p.size for p in group['params']):9,d} numbers"
    )

# --------------------------------------------------------------------------------------------------
section("3. The learning rate: linear warmup, then half a cosine")
# --------------------------------------------------------------------------------------------------
# At the start the weights are random and Adam's moment estimates are built from a few steps: big
# steps then can throw the network somewhere it does not recover from. So the rate climbs linearly
# to its peak, then falls along half a cosine to min_lr, set again before every step.
schedule = [
    optim.cosine_with_warmup(step, total_steps, warmup_steps, config.lr, config.min_lr)
    for step in range(total_steps)
]
print(f"{config.epochs} epochs x {steps_per_epoch} steps = {total_steps} steps, {warmup_steps} of warmup")
for step in sorted({0, warmup_steps // 2, warmup_steps - 1, warmup_steps, total_steps // 2, total_steps - 1}):
    print(f"    step {step:4d}: lr {schedule[step]:.2e}")

paper_epochs, paper_warmup, paper_steps = 300, 20, 312  # 1.28 M images / 4096 per batch = 312 steps
paper_schedule = [
    optim.cosine_with_warmup(step, paper_epochs * paper_steps, paper_warmup * paper_steps, 4e-3, 1e-6)
    for step in range(0, paper_epochs * paper_steps, paper_steps // 4)
]
fig, (ax_ours, ax_paper) = plt.subplots(1, 2, figsize=(12, 4))
ax_ours.plot(np.arange(total_steps), schedule, color="#e76f51")
for epoch in range(1, config.epochs):
    ax_ours.axvline(epoch * steps_per_epoch, color="0.8", lw=0.8)
ax_ours.axvspan(0, warmup_steps, color="#ffd166", alpha=0.4, label=f"warmup: {warmup_steps} steps")
ax_ours.set(
    xlabel="step (grey lines: epochs)",
    ylabel="learning rate",
    title=f"this run: {config.epochs} epochs of {steps_per_epoch} steps",
)
ax_paper.plot(np.arange(len(paper_schedule)) / 4, paper_schedule, color="#2a9d8f")
ax_paper.axvspan(0, paper_warmup, color="#ffd166", alpha=0.4, label=f"warmup: {paper_warmup} epochs")
ax_paper.set(xlabel="epoch", ylabel="learning rate", title="the paper: 300 epochs of 312 steps (batch 4096)")
for ax in (ax_ours, ax_paper):
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
fig.suptitle(
    "optim.cosine_with_warmup: linear warmup to the peak, then half a cosine down to min_lr", fontsize=11
)
save_figure(fig, "lr_schedule.png", dpi=110)

# --------------------------------------------------------------------------------------------------
section("4. Label smoothing: a target that is never quite certain")
# --------------------------------------------------------------------------------------------------
# With eps = 0.1 and K = 10 classes the target puts 1 - eps + eps/K = 0.91 on the true class and
# eps/K = 0.01 on each other one. Plain cross-entropy keeps falling as the true logit grows without
# bound; the smoothed one has a minimum, at a finite margin, so the network is not pushed to ever
# larger logits (overconfidence) on images it already classifies right.
print(f"    {'true logit s (others 0)':24s} {'loss, eps = 0':>14s} {'loss, eps = 0.1':>16s}")
for margin in (0.0, 2.0, 4.5, 7.0, 10.0, 20.0):
    logits = ag.tensor(np.array([[margin] + [0.0] * 9]))
    plain = F.cross_entropy(logits, np.array([0])).item()
    smoothed = F.cross_entropy(logits, np.array([0]), label_smoothing=0.1).item()
    print(f"    {margin:24.1f} {plain:14.4f} {smoothed:16.4f}")
print(f"    the smoothed minimum is at s = log(0.91 / 0.01) = {np.log(0.91 / 0.01):.2f}")

# --------------------------------------------------------------------------------------------------
section("5. Stochastic depth and the EMA")
# --------------------------------------------------------------------------------------------------
# Drop path (lesson 8, section 3) skips a block's branch for random images of the batch, more
# often the deeper the block: the rate rises linearly from 0 at the first block to drop_path at
# the last. A network trained this way behaves like an ensemble of shallower ones.
rates = [getattr(block.drop_path, "p", 0.0) for stage in model.stages for block in stage]
print("drop-path rate per block: " + ", ".join(f"{rate:.3f}" for rate in rates))
# The EMA keeps a second copy of the weights, ema = decay * ema + (1 - decay) * weights after every
# step: an average over about 1 / (1 - decay) recent steps, smoother than the last weights. The
# paper evaluates it (decay 0.9999: ~10,000 of its ~94,000 steps); our short run needs a much
# shorter memory, or the average would still be mostly the random initial weights.
print(
    f"EMA decay {config.ema_decay:g}: averages over about {1 / (1 - config.ema_decay):.0f} of this run's "
    f"{total_steps} steps; the paper's 0.9999 over about 10,000 of {paper_epochs * paper_steps:,d}"
)

# --------------------------------------------------------------------------------------------------
section("6. The loop: the training engine's own code")
# --------------------------------------------------------------------------------------------------
# Lesson 10 ended with a loop of a few lines: forward, loss, zero_grad, backward, step. The trainer's loop is
# that loop with the recipe around it. Here it is, from tinyconvnext/engine.py (the official ConvNeXt code
# keeps the same two functions in its engine.py). forward_backward is one process's forward, loss and
# backward; train_one_epoch sets the learning rate from the schedule before every step, clips the
# gradients, steps the optimizer, updates the EMA and keeps the running loss and accuracy. train() below
# builds the model, the optimizer and the data from the config and calls train_one_epoch once per epoch,
# then evaluates and writes the records.
for function in (forward_backward, train_one_epoch):
    print(inspect.getsource(function))

# --------------------------------------------------------------------------------------------------
section("7. The data")
# --------------------------------------------------------------------------------------------------
cifar, data_dir = find_cifar10("stops here, before training")
if cifar is None:
    sys.exit(0)
print(
    f"CIFAR-10 from {cifar.source}: {len(cifar.train_labels):,d} training and "
    f"{len(cifar.test_labels):,d} test "
    f"images, {cifar.train_images.shape[1:]} {cifar.train_images.dtype}"
)
print(f"classes: {', '.join(cifar.classes)}")
print(
    f"this run trains on {config.subset:,d} of them (drawn at random, fixed by the seed) and tests on "
    f"{config.eval_subset:,d} test images; "
    "each training batch is randomly cropped (4-pixel padding) and flipped"
)
config.data = str(data_dir) if data_dir else None
dataset = ImageDataset(
    cifar.train_images, cifar.train_labels, cifar.test_images, cifar.test_labels, list(cifar.classes)
)

# --------------------------------------------------------------------------------------------------
section("8. Training")
# --------------------------------------------------------------------------------------------------
# train() builds the model and AdamW from the config, and per step: sets the lr from the schedule,
# runs forward, cross-entropy with label smoothing, backward, the AdamW step and the EMA update.
# After each epoch it evaluates the weights and the EMA on the test images, appends a record to
# metrics.jsonl and metrics.csv, redraws curves.png and saves checkpoint.npz (a run can be resumed).
# It prints each record as one JSON line.
run_dir = Path(config.out)
if run_dir.exists():
    shutil.rmtree(run_dir)  # an earlier run of this lesson: train() refuses to overwrite a checkpoint
train_start = time.perf_counter()
train(config, dataset=dataset)
train_seconds = time.perf_counter() - train_start

# --------------------------------------------------------------------------------------------------
section("9. The records")
# --------------------------------------------------------------------------------------------------
records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
print(
    f"    {'epoch':>5s} {'lr at end':>10s} {'train loss':>11s} {'train acc':>10s} {'test loss':>10s} "
    f"{'test acc':>9s} {'EMA acc':>8s} {'images/s':>9s}"
)
for r in records:
    print(
        f"    {r['epoch']:5d} {r['lr']:10.2e} {r['train_loss']:11.3f} {r['train_acc']:10.1%} "
        f"{r['test_loss']:10.3f} "
        f"{r['test_acc']:9.1%} {r['test_acc_ema']:8.1%} {r['images_per_second']:9.0f}"
    )
last = records[-1]
print(
    f"after {last['step']} steps ({config.epochs} x {config.subset:,d} images): {last['test_acc']:.1%} of "
    f"{config.eval_subset} test images right, against 10% for guessing; training took {train_seconds:.0f} s"
)
# The training accuracy is measured on augmented images, with drop path on, while the weights were
# still changing: it is not directly comparable with the test accuracy, which can be higher early on.
# Loss values include label smoothing, so even a perfect classifier would not reach 0: with eps = 0.1
# and 10 classes the least possible loss is about 0.50.
print(f"files of the run in {run_dir}: {', '.join(sorted(p.name for p in run_dir.iterdir()))}")
shutil.copyfile(run_dir / "curves.png", args.out / "curves.png")
print(f"copied {run_dir / 'curves.png'} to {args.out / 'curves.png'}")
print(f"the whole lesson took {time.perf_counter() - lesson_start:.0f} s")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# 1. Set label_smoothing=0.0 in the config. Predict how the last training loss moves (it has no floor of
#    about 0.50 any more) and whether the test accuracy changes much in three epochs; then run.
# 2. Set warmup_epochs=0 and lr=1e-2. Predict the first epoch's training loss against this run's; look at
#    the records for a loss that rises before it falls.
# 3. Set ema_decay=0.999 (a memory of about 1,000 steps, longer than the whole run). Predict the EMA's
#    test accuracy against the plain weights' after the last epoch, and say why.
