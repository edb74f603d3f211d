"""Lesson 14: what the network learned. Stem filters, depthwise kernels, and the effective receptive field.

A trained ConvNeXt is a few million numbers. Some of them can be looked at directly: the stem's
patchify filters are tiny images, and each depthwise conv kernel is a 7x7 picture of how one channel
mixes its neighbourhood. And one can ask the network, through its gradients, which input pixels a
feature actually depends on: its *effective* receptive field (Luo et al., 2016, "Understanding the
Effective Receptive Field in Deep Convolutional Neural Networks"), the tool RepLKNet and the ConvNeXt
line of work use to argue for large kernels.

The lesson compares a trained model with the same architecture at its random initialisation. The
trained model is any run you already have (`--run DIR`: a run folder of train_cifar.py, or its
checkpoint.npz, read by `load_trained_model`); only without --run does the lesson train a small one.

    python lessons/14_what_the_network_learned.py --quick            # trains a small model briefly (~1 min)
    python lessons/14_what_the_network_learned.py                    # a longer training here (~6 min)
    python lessons/14_what_the_network_learned.py --run runs/cifar10 # the model train_cifar.py trained

CIFAR-10 is looked for in $TINYCONVNEXT_DATA, else in ../shared/data beside the repository, else in
the download cache; the lesson downloads nothing. It needs real images (the receptive fields are
averaged over them): without CIFAR-10 it says so and exits 0.

Figures (in --out, default lessons/output/14/):
    stem_filters.png        the stem's patchify filters (colour patches), trained and at initialisation
    depthwise_kernels.png   the first block's 7x7 depthwise kernels, trained and at initialisation
    erf.png                 the effective receptive field of a centre unit after each stage
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from common import find_cifar10, lesson_setup, plt, save_figure, section


def saved_run(text):
    """A training run to inspect: its folder (with checkpoint.npz) or the checkpoint file itself."""
    path = Path(text)
    if not (path / "checkpoint.npz").is_file() and not (path.is_file() and path.suffix == ".npz"):
        raise argparse.ArgumentTypeError(
            f"expected a training run folder holding checkpoint.npz, or a checkpoint .npz file, got '{text}'"
        )
    return path


def run_option(parser):
    parser.add_argument(
        "--run",
        type=saved_run,
        default=None,
        help="a saved training run (train_cifar.py --out, or its checkpoint.npz) to inspect; "
        "without it the lesson trains a small model first",
    )


# Options first, before the heavy imports: a bad value exits at once.
args = lesson_setup("14", "what the network learned", run_option)

import autograd as ag  # noqa: E402
from tinyconvnext.train import (  # noqa: E402
    ImageDataset,
    TrainConfig,
    build_model,
    load_trained_model,
    normalization,
    train,
)

lesson_start = time.perf_counter()


# --------------------------------------------------------------------------------------------------
section("1. A trained model, and the same model untrained")
# --------------------------------------------------------------------------------------------------
cifar, data_dir = find_cifar10("averages over real images, so it stops here")
if cifar is None:
    sys.exit(0)
dataset = ImageDataset(
    cifar.train_images, cifar.train_labels, cifar.test_images, cifar.test_labels, list(cifar.classes)
)

if args.run is not None:
    trained, config = load_trained_model(args.run)
    print(
        f"loaded the model of the run in {args.run}: {config.model}, "
        f"depths {trained.depths}, widths {trained.dims}"
    )
else:
    # Quick: a narrow CIFAR ConvNeXt for two epochs on 2,048 images (about a minute). Full: the project's
    # convnext_cifar_atto for 8 epochs on 10,000 images. A run of train_cifar.py (--run) is better still.
    config = TrainConfig(
        dataset="cifar10",
        model="convnext_cifar_atto",
        depths="1,1,2,1" if args.quick else "",
        dims="32,64,128,256" if args.quick else "",
        epochs=2 if args.quick else 8,
        batch_size=64,
        lr=4e-3,
        warmup_epochs=0.5,
        drop_path=0.0,
        layer_scale=0.1,
        label_smoothing=0.1,
        subset=2048 if args.quick else 10000,
        eval_subset=500 if args.quick else 2000,
        out=str(args.out / "run"),
        progress=False,
        seed=0,
    )
    if Path(config.out).exists():
        shutil.rmtree(config.out)  # an earlier run of this lesson
    record = train(config, dataset=dataset)
    trained, _ = load_trained_model(config.out)
    print(
        f"trained {config.model} (depths {trained.depths}, widths {trained.dims}) "
        f"for {config.epochs} epochs on "
        f"{config.subset:,d} images: {record['test_acc']:.1%} test accuracy"
    )
ag.manual_seed(config.seed)
untrained = build_model(
    config, num_classes=trained.head.weight.shape[0]
).eval()  # the same architecture, freshly initialised
models = {"trained": trained, "at initialisation": untrained}
if config.stem_init == "whiten":  # train_cifar.py's default: the run began from other stem filters
    print(
        "this run's stem began from filters that whiten the image patches (--stem-init whiten, "
        "tinyconvnext/whitening.py); 'at initialisation' below shows the random draw they replaced"
    )

# --------------------------------------------------------------------------------------------------
section("2. The stem's filters")
# --------------------------------------------------------------------------------------------------
# The stem is one conv with kernel = stride = p (a "patchify" layer, lesson 5): each of its filters is
# a p x p x 3 colour patch, and its output channel is the dot product of that patch with each
# non-overlapping p x p patch of the image. Trained filters become colour and edge detectors (the
# official ConvNeXt-T's 4x4 filters show oriented edges and colour blobs); random ones are noise.
# We draw each filter rescaled to [0, 1] so that its pattern, not its size, shows.
stem_weights = {name: m.downsample_layers[0][0].weight.numpy() for name, m in models.items()}  # (C, 3, p, p)
count = min(32, stem_weights["trained"].shape[0])
fig, axes = plt.subplots(2, count, figsize=(count * 0.5 + 1, 2.6))
for row, (name, weights) in enumerate(stem_weights.items()):
    for i in range(count):
        patch = weights[i].transpose(1, 2, 0)
        patch = (patch - patch.min()) / (np.ptp(patch) + 1e-12)
        axes[row, i].imshow(patch, interpolation="nearest")
        axes[row, i].axis("off")
    axes[row, 0].set_title(name, fontsize=8, loc="left")
fig.suptitle(f"stem filters ({weights.shape[2]}x{weights.shape[3]}x3 each), the first {count}")
save_figure(fig, "stem_filters.png", dpi=100)
for name, weights in stem_weights.items():
    flat = weights.reshape(weights.shape[0], -1)
    # How "colour" against "grey" a filter is: the share of its energy in the mean over R, G, B.
    grey = (
        np.linalg.norm(weights.mean(axis=1), axis=(1, 2)) ** 2
        * 3
        / (np.linalg.norm(flat, axis=1) ** 2 + 1e-12)
    )
    print(
        f"{name:>18s}: filter norms {np.linalg.norm(flat, axis=1).mean():.3f} on average; "
        f"share of each filter's energy that is colour-blind (the same for R, G, B): {grey.mean():.2f}"
    )

# --------------------------------------------------------------------------------------------------
section("3. The depthwise kernels: do 7x7 kernels use their outer taps?")


# --------------------------------------------------------------------------------------------------
# Each channel of a depthwise conv has its own 7x7 kernel (lesson 6). A kernel that only used its
# centre would be a 1x1 conv; one that uses its outer rings sees further. We measure the mean |w| on
# each ring (distance 0 = centre, 3 = the outermost ring of 24 taps) of the first block's kernels.
def ring_profile(kernels):
    k = kernels.shape[-1]
    r = np.maximum(*np.abs(np.mgrid[:k, :k] - k // 2))  # Chebyshev distance from the centre
    return [float(np.abs(kernels[..., r == d]).mean()) for d in range(k // 2 + 1)]


kernels = {name: m.stages[0][0].dwconv.weight.numpy()[:, 0] for name, m in models.items()}  # (C, 7, 7)
for name, weight in kernels.items():
    profile = ring_profile(weight)
    print(
        f"{name:>18s}: mean |w| by ring "
        + ", ".join(f"{d}: {v:.4f}" for d, v in enumerate(profile))
        + f"   (outer / centre {profile[-1] / profile[0]:.2f})"
    )
count = min(16, kernels["trained"].shape[0])
fig, axes = plt.subplots(2, count, figsize=(count * 0.75 + 1, 2.8))
for row, (name, weight) in enumerate(kernels.items()):
    scale = np.abs(weight[:count]).max()
    for i in range(count):
        axes[row, i].imshow(weight[i], cmap="RdBu_r", vmin=-scale, vmax=scale)
        axes[row, i].axis("off")
    axes[row, 0].set_title(name, fontsize=8, loc="left")
fig.suptitle(f"first block's 7x7 depthwise kernels, one per channel (red > 0 > blue), the first {count}")
save_figure(fig, "depthwise_kernels.png", dpi=100)

# --------------------------------------------------------------------------------------------------
section("4. The effective receptive field")


# --------------------------------------------------------------------------------------------------
# The theoretical receptive field of a unit counts every input pixel that *can* reach it: the stem
# sees p x p pixels, and each 7x7 conv after a total stride s adds 6 s pixels. The effective one
# weighs each pixel by how much it *does* matter: |d unit / d pixel|. We take the unit at the centre
# of each stage's output, sum its channels after a ReLU (as RepLKNet's ERF code does: a plain sum
# right after a LayerNorm is constant, so its gradient would miss the residual path), backpropagate
# to the input image, and average the absolute gradient over real test images and colour channels.
def theoretical_rf(model, stage):
    rf, stride = model.patch_size, model.patch_size
    for i in range(stage + 1):
        if i > 0:
            rf, stride = rf + stride, stride * 2  # the 2x2 stride-2 downsampling conv
        rf += model.depths[i] * (model.stages[i][0].dwconv.kernel_size[0] - 1) * stride
    return rf


def effective_rf(model, images, stage):
    x = ag.tensor(images, requires_grad=True)
    h = x.permute(0, 2, 3, 1)  # the model's inside is channels-last (lesson 8)
    for i in range(stage + 1):
        h = model.stages[i](model.downsample_layers[i](h))
    centre = h[:, h.shape[1] // 2, h.shape[2] // 2, :]
    centre.relu().sum().backward()
    return np.abs(x.grad.numpy()).mean(axis=(0, 1))  # (H, W)


def smallest_window(erf, share):
    """The side of the smallest square window, anywhere in the image, holding ``share`` of the ERF's mass."""
    total = (
        np.pad(erf, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    )  # an integral image: any window's sum in 4 lookups
    for k in range(1, min(erf.shape) + 1):
        sums = total[k:, k:] - total[:-k, k:] - total[k:, :-k] + total[:-k, :-k]
        if sums.max() >= share * total[-1, -1]:
            return k
    return min(erf.shape)


mean, std = normalization(config)  # the per-channel statistics the model was trained with
n_images = 32 if args.quick else 128
images = ((cifar.test_images[:n_images] / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
stages = len(trained.depths)
fig, axes = plt.subplots(2, stages, figsize=(3 * stages, 6.3))
for row, (name, model) in enumerate(models.items()):
    for stage in range(stages):
        erf = effective_rf(model, images, stage)
        side = smallest_window(erf, 0.9)
        print(
            f"{name:>18s}, after stage {stage + 1}: theoretical field {theoretical_rf(model, stage)} px wide "
            f"(the image is {erf.shape[1]}); "
            f"90% of the gradient within a {side}x{side} px square"
        )
        shown = np.log1p(erf / erf.max() * 100)  # log scale, as RepLKNet draws it: faint tails show
        axes[row, stage].imshow(shown, cmap="magma")
        axes[row, stage].set_title(f"{name}\nstage {stage + 1}: 90% within {side}x{side} px", fontsize=9)
        axes[row, stage].axis("off")
fig.suptitle("effective receptive field of the centre unit (mean |gradient| over test images, log scale)")
save_figure(fig, "erf.png", dpi=100)
# What to look for. Early stages: 90% of the gradient sits on the few pixels straight below the unit
# (the stem's 2x2 patch, 4x4 after one downsampling), although the theoretical field is far larger:
# each block adds its branch to an identity path (and layer scale starts that branch small), so a
# unit is first of all its own patch. Luo et al. found the same for any deep net: the effective field
# is a small, Gaussian-like part of the theoretical one. Later stages: training spreads the field out;
# compare the trained row with the untrained one at stages 3 and 4. With a well-trained model
# (--run runs/cifar10) the difference is larger.
print(f"\nthe whole lesson took {time.perf_counter() - lesson_start:.0f} s")

# --------------------------------------------------------------------------------------------------
section("Try this")
# --------------------------------------------------------------------------------------------------
# 1. Run with --run on a finished train_cifar.py run. Predict whether the outer ring of the depthwise
#    kernels (section 3) carries more or less weight than after this lesson's short training; then compare.
# 2. Without --run, train for 1 epoch instead of 2 (epochs in the TrainConfig). Predict whether the stem's
#    filters move towards the colour-blind share of the untrained ones, and what the test accuracy does.
# 3. Average the receptive field over 4 images instead of 32 (n_images). Predict how the picture changes
#    (noisier, or a different shape?), then run and see which.
