r"""Training ConvNeXt: the loop, its recipe (the paper's Section 2.1 at small scale), checkpoints and records.

    python -m tinyconvnext.train --dataset cifar10 --model convnext_cifar_atto --epochs 30
    python -m tinyconvnext.train --dataset imagenette --model convnext_atto --image-size 128 --epochs 20
    python -m tinyconvnext.train --dataset imagenette --model resnet18d --optimizer sgd --lr 0.1 \
        --weight-decay 5e-4

Recipe: AdamW (no decay on biases, norms and layer-scale gammas), or SGD with Nesterov momentum for the
ResNet-D baselines (``--optimizer sgd``), linear warmup then cosine decay per step,
label smoothing, optional mixup/cutmix, RandAugment and random erasing, stochastic depth, gradient
clipping, and an EMA of the weights evaluated beside them.
Every epoch appends to ``metrics.jsonl``/``metrics.csv``, redraws ``curves.png`` and writes
``checkpoint.npz`` atomically (model, optimizer, EMA, random states, epoch and step). ``--resume`` continues
exactly where the checkpoint stopped. Ctrl-C saves and exits; a loss that turns NaN or inf stops the run
and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

import autograd as ag
from autograd import nn, optim
from autograd import random as ag_random
from autograd.backend import cupy_available
from autograd.memory import retain_freed_memory
from autograd.nn import functional as F
from autograd.nn.utils import clip_grad_norm_

from . import augment
from .checkpoint import load_checkpoint, save_checkpoint
from .curves import append_metrics, plot_curves, truncate_metrics
from .ema import ModelEma
from .evaluate import evaluate
from .images import IMAGENET_MEAN, IMAGENET_STD
from .interrupt import ctrl_c_deferred
from .loader import BatchLoader
from .model import NORM_LAYERS, STEM_TYPES
from .parallel import DataParallel, batch_slices
from .variants import RESNET_VARIANTS, available_models, create_model
from .weights import num_classes_of


@dataclasses.dataclass
class TrainConfig:
    dataset: str = "cifar10"
    model: str = "convnext_cifar_atto"
    epochs: int = 30
    batch_size: int = 128
    lr: float = 4e-3
    min_lr: float = 1e-5
    weight_decay: float = (
        0.05  # AdamW: decoupled (lr * wd * p); SGD: an L2 term in the gradient, as PyTorch's
    )
    optimizer: str = "adamw"  # "adamw", or "sgd" (momentum, Nesterov by default) for the ResNet baselines
    momentum: float = 0.9  # SGD only
    nesterov: bool = True  # SGD only
    warmup_epochs: float = 1.0
    drop_path: float = 0.1
    label_smoothing: float = 0.1
    mixup: float = 0.0
    cutmix: float = 0.0
    rand_augment: int = 0  # magnitude; 0 = off
    # smallest area kept by RandomResizedCrop (ImageNet-style data); fastai's Imagenette runs use 0.35
    crop_scale: float = 0.08
    random_erasing: float = 0.0
    ema_decay: float = 0.0  # 0 = no EMA
    ema_eval_every: int = (
        1  # evaluate the EMA weights every N epochs and after the last; 0 = after the last only
    )
    # After the last epoch, recompute BatchNorm's statistics with the final weights over this many training
    # batches, at most one epoch's ("precise BN", Wu & Johnson 2021; autograd.nn.precise_bn); 0 = keep the
    # running averages.
    precise_bn_batches: int = 0
    grad_clip: float = 0.0  # 0 = no clipping
    layer_scale: float = 1e-6
    depths: str = ""  # e.g. "2,2,6,2": override the variant's depths ("" keeps them)
    dims: str = ""  # e.g. "64,128,256,512": override the variant's widths
    patch_size: int = 0  # override the stem's patch size (0 keeps it)
    kernel_size: int = 0  # override the blocks' depthwise kernel (7 in the paper; 0 keeps it)
    # the stem: "patch" (the paper's), timm's "overlap", "overlap_tiered", "overlap_act", or ResNet-D's "deep"
    stem_type: str = "patch"
    norm_layer: str = (
        "layer"  # "layer" (the paper's LayerNorm) or "batch" (BatchNorm: the roadmap's "BN -> LN" undone)
    )
    stem_norm_layer: str | None = None  # the stem's norm when it differs from norm_layer (None: the same)
    image_size: int = 32
    # Evaluation at another size than training (FixRes, Touvron et al. 2019: random-resized crops make objects
    # look larger in training than in a centred test crop): 0 = image_size. eval_crop_pct: the centre crop's
    # share of the resized short side (timm's crop_pct) for data sets of larger images.
    eval_image_size: int = 0
    eval_crop_pct: float = 0.875
    # Progressive resizing (fast.ai, FFCV): training images start at progressive_size px and grow linearly
    # to image_size by epoch progressive_epochs (rounded down to the network's stride); 0 = off.
    progressive_size: int = 0
    progressive_epochs: float = 0.0
    # How CIFAR-like images get smaller: "resize" (each augmented 32x32 crop scaled down whole: objects
    # look smaller than at test time) or "crop" (a random crop of the smaller side at full scale, so the
    # objects keep the size they have in the 32x32 test images: FixRes's point about apparent object size).
    progressive_mode: str = "resize"
    seed: int = 0
    data: str | None = None
    out: str = "runs/cifar10"
    resume: bool = False
    time_budget: float = 0.0  # minutes; 0 = none
    stop_after: int = 0  # end this invocation after this many epochs (resume later); 0 = run to the end
    backend: str = "numpy"
    subset: int = 0  # train on N images drawn at random (tests, quick looks); 0 = all
    eval_subset: int = 0  # evaluate on N test images drawn at random; 0 = all
    eval_batch_size: int = 256
    tta: bool = False  # after the last epoch, also evaluate with horizontal-flip test-time augmentation
    tta_shift: int = 0  # with --tta, also average over views moved this many pixels (tinyconvnext.evaluate)
    processes: int = 1  # data-parallel worker processes on the CPU, one thread each (parallel.py); 0 = auto
    progress: bool = True


PROGRESSIVE_MODES = ("resize", "crop")
OPTIMIZERS = ("adamw", "sgd")


class NonFiniteLoss(RuntimeError):
    pass


class BackendUnavailable(RuntimeError):
    pass


def device_for(backend: str) -> str:
    """The device of a backend ('numpy': 'cpu', 'cupy': 'cuda'), checked before any data is loaded."""
    if backend not in ("numpy", "cupy"):
        raise ValueError(f"unknown backend {backend!r}: expected 'numpy' or 'cupy'")
    if backend == "cupy" and not cupy_available():
        reason = (
            "CuPy is not installed (pip install cupy-cuda12x, for CUDA 12)"
            if importlib.util.find_spec("cupy") is None
            else "CuPy is installed but sees no GPU"
        )
        raise BackendUnavailable(f"--backend cupy needs CuPy and an NVIDIA GPU: {reason}")
    return "cuda" if backend == "cupy" else "cpu"


# -- data --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class ImageDataset:
    """What the training loop needs: images (an (N, H, W, 3) uint8 array, or any sequence of (H, W, 3)
    uint8 arrays), integer labels, and class names."""

    train_images: object
    train_labels: np.ndarray
    test_images: object
    test_labels: np.ndarray
    classes: list


def load_dataset(config) -> ImageDataset:
    """The data set named by ``config.dataset``, found in --data, $TINYCONVNEXT_DATA or the cache, or
    downloaded."""
    if config.dataset == "cifar10":
        from .data.cifar import load_cifar10

        data = load_cifar10(config.data, download=True, progress=config.progress)
        return ImageDataset(
            data.train_images, data.train_labels, data.test_images, data.test_labels, list(data.classes)
        )
    if config.dataset == "imagenette":
        from .data.imagenette import load_imagenette

        data = load_imagenette(config.data, download=True, progress=config.progress)
        return ImageDataset(data.train, data.train.labels, data.val, data.val.labels, list(data.classes))
    raise ValueError(f"unknown dataset {config.dataset!r}: expected 'cifar10' or 'imagenette'")


def build_model(config, num_classes, drop_path_rate=0.0):
    """The configured variant, with any depths/dims/patch-size/kernel-size/stem overrides (for a ResNet:
    depths and dims, its widths)."""
    overrides = {}
    if config.depths:
        overrides["depths"] = tuple(int(v) for v in config.depths.split(","))
    if config.model in RESNET_VARIANTS:
        convnext_only = [
            flag
            for flag, value in (
                ("--patch-size", config.patch_size),
                ("--kernel-size", config.kernel_size),
                ("--stem-type", config.stem_type != "patch"),
                ("--norm-layer", config.norm_layer != "layer"),
                ("--stem-norm-layer", config.stem_norm_layer),
            )
            if value
        ]
        if convnext_only:
            raise ValueError(
                f"{config.model} is a ResNet: {', '.join(convnext_only)} set(s) a ConvNeXt option"
            )
        if config.dims:
            overrides["widths"] = tuple(int(v) for v in config.dims.split(","))
        return create_model(config.model, num_classes=num_classes, drop_path_rate=drop_path_rate, **overrides)
    if config.dims:
        overrides["dims"] = tuple(int(v) for v in config.dims.split(","))
    if config.patch_size:
        overrides["patch_size"] = config.patch_size
    if config.kernel_size:
        overrides["kernel_size"] = config.kernel_size
    if config.stem_type != "patch":
        overrides["stem_type"] = config.stem_type
    if config.norm_layer != "layer":
        overrides["norm_layer"] = config.norm_layer
    if config.stem_norm_layer:
        overrides["stem_norm_layer"] = config.stem_norm_layer
    return create_model(
        config.model,
        num_classes=num_classes,
        drop_path_rate=drop_path_rate,
        layer_scale_init_value=config.layer_scale,
        **overrides,
    )


def build_optimizer(config, model):
    """AdamW (PyTorch's semantics) or SGD with momentum; either way no weight decay on biases, norm weights
    and layer-scale gammas (``optim.weight_decay_groups``)."""
    groups = optim.weight_decay_groups(model.named_parameters(), config.weight_decay)
    if config.optimizer == "adamw":
        return optim.AdamW(groups, lr=config.lr)
    if config.optimizer == "sgd":
        return optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")


def _subset(images, labels, n, seed):
    """n images drawn at random (fixed by the seed; data sets are often sorted by class), in their order."""
    chosen = np.sort(np.random.default_rng([seed, 7]).permutation(len(labels))[:n])
    if isinstance(images, np.ndarray):
        return images[chosen], labels[chosen]
    return [images[int(i)] for i in chosen], labels[chosen]


def normalization(config):
    return (
        (augment.CIFAR10_MEAN, augment.CIFAR10_STD)
        if config.dataset == "cifar10"
        else (IMAGENET_MEAN, IMAGENET_STD)
    )


def model_stride(config) -> int:
    """The configured network's ``min_input_size``: its stem's patch times 2 for every later stage. Under
    progressive resizing the training images' side stays a multiple of it."""
    return build_model(config, num_classes=1).min_input_size


def progressive_stride(config) -> int:
    """The stride that ``train_image_size`` rounds to (1 when progressive resizing is off), after clear
    errors for a ramp the network cannot take: its sizes must be multiples of the network's stride."""
    if not config.progressive_size:  # off (--progressive-size 0 turns train_cifar.py's ramp off)
        return 1
    stride = model_stride(config)
    if not (0 < config.progressive_size <= config.image_size) or config.progressive_size % stride:
        raise ValueError(
            f"--progressive-size must be a multiple of the network's stride ({stride} for "
            f"{config.model}) between {stride} and --image-size {config.image_size}, "
            f"got {config.progressive_size}"
        )
    if config.image_size % stride:
        raise ValueError(
            f"progressive resizing ends at --image-size, which must then be a multiple of the "
            f"network's stride ({stride} for {config.model}), got {config.image_size}"
        )
    if config.progressive_epochs <= 0:
        raise ValueError(
            f"--progressive-size needs --progressive-epochs > 0 (the epoch by which the images "
            f"reach --image-size), got {config.progressive_epochs}"
        )
    return stride


def train_image_size(config, epoch: int, stride: int) -> int:
    """The side of the training images in ``epoch`` (counted from 0): ``image_size``, or under progressive
    resizing the linear ramp from ``progressive_size`` at epoch 0 to ``image_size`` at epoch
    ``progressive_epochs``, rounded down to a multiple of the network's ``stride`` (as FFCV rounds to 32)."""
    if not config.progressive_size or epoch >= config.progressive_epochs:
        return config.image_size
    size = (
        config.progressive_size
        + (config.image_size - config.progressive_size) * epoch / config.progressive_epochs
    )
    return int(size + 1e-9) // stride * stride  # 1e-9: a product like 127.99999 is the multiple 128


def eval_size(config) -> int:
    """The side of the test images: --eval-image-size, or the training size --image-size."""
    return config.eval_image_size or config.image_size


def make_batch_functions(config, train_x, train_y, test_x, test_y, num_classes, mean, std):
    """The per-batch pipelines: (indices, rng) -> (inputs, targets) for training and for evaluation.
    ``train_batch`` takes the epoch's image side as ``side`` (progressive resizing; default image_size);
    evaluation is always at ``eval_size(config)``."""
    size, test_size = config.image_size, eval_size(config)
    if not 0.0 < config.crop_scale <= 1.0:
        raise ValueError(
            f"--crop-scale must be in (0, 1] (the smallest fraction of the image a crop keeps), "
            f"got {config.crop_scale}"
        )
    if not 0.0 < config.eval_crop_pct <= 1.0:
        raise ValueError(
            f"--eval-crop-pct must be in (0, 1] (the centre crop's share of the resized short side), "
            f"got {config.eval_crop_pct}"
        )

    if config.progressive_mode not in PROGRESSIVE_MODES:
        raise ValueError(
            f"--progressive-mode must be one of {', '.join(PROGRESSIVE_MODES)}, "
            f"got {config.progressive_mode!r}"
        )

    def images_at(store, indices):
        return [store[int(i)] for i in indices]

    def train_batch(indices, rng, side=size):
        if isinstance(train_x, np.ndarray) and train_x.shape[1:3] == (
            size,
            size,
        ):  # CIFAR-like: already the size
            if config.progressive_mode == "crop":
                images = augment.random_crop_flip(train_x[indices], rng, size=side)
            else:
                images = augment.resize_images(augment.random_crop_flip(train_x[indices], rng), side)
        else:
            images = np.stack(
                [
                    augment.random_resized_crop(im, side, rng, scale=(config.crop_scale, 1.0))
                    for im in images_at(train_x, indices)
                ]
            )
        if config.rand_augment:
            images = np.stack([augment.rand_augment(im, rng, magnitude=config.rand_augment) for im in images])
        x = augment.to_float_nchw(images, mean, std)
        if config.random_erasing:
            augment.random_erasing(x, rng, config.random_erasing)
        labels = train_y[indices]
        if config.mixup or config.cutmix:
            return augment.mixup_cutmix(
                x, labels, num_classes, rng, config.mixup, config.cutmix, smoothing=config.label_smoothing
            )
        return x, labels

    def eval_batch(indices, rng):
        if isinstance(test_x, np.ndarray) and test_x.shape[1:3] == (size, size):  # CIFAR-like: resized whole
            images = augment.resize_images(test_x[indices], test_size)
        else:
            images = np.stack(
                [
                    augment.resize_center_crop(im, test_size, config.eval_crop_pct)
                    for im in images_at(test_x, indices)
                ]
            )
        return augment.to_float_nchw(images, mean, std), test_y[indices]

    return train_batch, eval_batch


def make_loaders(config, dataset: ImageDataset | None = None):
    """(train loader, test loader, number of classes) for the configured data set, subsets and pipeline."""
    data = dataset if dataset is not None else load_dataset(config)
    train_x, train_y = data.train_images, np.asarray(data.train_labels)
    test_x, test_y = data.test_images, np.asarray(data.test_labels)
    if config.subset:
        train_x, train_y = _subset(train_x, train_y, config.subset, config.seed)
    if config.eval_subset:
        test_x, test_y = _subset(test_x, test_y, config.eval_subset, config.seed)
    num_classes = len(data.classes)
    mean, std = normalization(config)
    train_batch, eval_batch = make_batch_functions(
        config, train_x, train_y, test_x, test_y, num_classes, mean, std
    )
    train_loader = BatchLoader(
        len(train_y), train_batch, config.batch_size, shuffle=True, drop_last=True, seed=config.seed
    )
    test_loader = BatchLoader(
        len(test_y), eval_batch, config.eval_batch_size, shuffle=False, seed=config.seed
    )
    return train_loader, test_loader, num_classes


# -- the loop ------------------------------------------------------------------------------------------
def forward_backward(model, x, y, device, label_smoothing):
    """One process's step before the optimizer: (mean loss, logits as NumPy), gradients in ``.grad``.
    ``y``: labels, or soft targets (mixup/cutmix) for which label smoothing is already in the targets."""
    logits = model(ag.tensor(x, device=device))
    target = ag.tensor(y, device=device)  # labels or soft targets, on the logits' device
    loss = F.cross_entropy(logits, target, label_smoothing=0.0 if y.ndim == 2 else label_smoothing)
    loss_value = float(loss.item())
    predictions = logits.numpy()  # read now, while the device is idle after .item()
    model.zero_grad()
    if math.isfinite(loss_value):
        loss.backward()
    return loss_value, predictions


def resolve_processes(config) -> int:
    """``--processes``, with 0 meaning "auto": one per usable CPU core for the NumPy backend (keeping at least
    16 images per process), 1 for CuPy. A run's numbers depend on its number of processes, as a PyTorch
    run's depend on its world size: pass --processes to reproduce a run on another machine."""
    if config.processes < 0:
        raise ValueError(f"--processes must be at least 1, or 0 for one per CPU core; got {config.processes}")
    if config.processes:
        return config.processes
    if config.backend != "numpy":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, config.batch_size // 16))


def _evaluates_ema(config, epoch: int) -> bool:
    """Whether the EMA weights are evaluated after ``epoch`` (numbered from 1): every ``ema_eval_every``
    epochs and after the last. (One evaluation of CIFAR-10's test set costs as much as 6% of an epoch.)"""
    every = config.ema_eval_every
    return epoch == config.epochs or (every > 0 and epoch % every == 0)


def precise_batchnorm(config, model, train_loader, side: int, device: str) -> int:
    """Recompute ``model``'s BatchNorm statistics with its final weights (``autograd.nn.precise_bn``) over
    ``--precise-bn-batches`` training batches (augmented as in training, at the last epoch's ``side``, drawn
    as one more epoch), each split into the slices that the data-parallel workers normalise separately in
    training. Returns the number of slices used."""
    bounds = batch_slices(config.batch_size, config.processes)

    def slices():
        for x, _ in itertools.islice(train_loader.epoch(config.epochs, side=side), config.precise_bn_batches):
            for a, b in bounds:
                yield x[a:b]

    return nn.recompute_batchnorm_statistics(model, slices(), device)


def train(config: TrainConfig, dataset: ImageDataset | None = None) -> dict:
    """Run (or resume) a training run; returns the last epoch's record. ``dataset`` overrides loading."""
    config = dataclasses.replace(config, processes=resolve_processes(config))  # recorded as resolved
    if config.processes > 1 and config.backend != "numpy":
        raise ValueError(
            f"--processes {config.processes} is data parallelism over CPU cores: use it with "
            f"--backend numpy, not {config.backend}"
        )
    if config.ema_eval_every < 0:
        raise ValueError(
            f"--ema-eval-every must be at least 0 (0: after the last epoch only), got {config.ema_eval_every}"
        )
    if config.precise_bn_batches < 0:
        raise ValueError(f"--precise-bn-batches must be at least 0 (0: off), got {config.precise_bn_batches}")
    if config.processes > config.batch_size:
        raise ValueError(
            f"--batch-size {config.batch_size} cannot be split over --processes {config.processes}"
        )
    device = device_for(config.backend)
    stride = progressive_stride(config)
    retain_freed_memory()  # reuse freed activations instead of faulting in fresh pages every step
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.npz"

    train_loader, test_loader, num_classes = make_loaders(config, dataset)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError(
            f"batch size {config.batch_size} is larger than the training set "
            f"({train_loader.num_items} images)"
        )
    total_steps = config.epochs * steps_per_epoch
    warmup_steps = int(round(config.warmup_epochs * steps_per_epoch))

    ag.manual_seed(config.seed)
    model = build_model(config, num_classes, config.drop_path)
    model.to(device)
    if config.precise_bn_batches and not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        raise ValueError(
            f"--precise-bn-batches recomputes BatchNorm statistics, but {config.model} with "
            f"--norm-layer {config.norm_layer} has no BatchNorm layer"
        )
    optimizer = build_optimizer(config, model)
    ema = ModelEma(model, config.ema_decay) if config.ema_decay else None
    # The model that evaluates the EMA weights is built now, so that its initialisation never draws from
    # the random generator between a checkpoint and the batches after it.
    ema_model = build_model(config, num_classes).to(device) if ema is not None else None
    start_epoch, start_batch, step, elapsed_before = 0, 0, 0, 0.0

    if config.resume and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path)
        if state["config"]["model"] != config.model or state["config"]["dataset"] != config.dataset:
            raise ValueError(
                f"{checkpoint_path} is a {state['config']['model']} run on {state['config']['dataset']}, "
                f"not {config.model} on {config.dataset}: use another --out"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
        ag_random.default_generator.set_state(state["rng"])
        start_epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
        elapsed_before = state.get("elapsed_seconds", 0.0)
        truncate_metrics(out, start_epoch)  # records of completed epochs only (numbered from 1)
        print(
            f"resumed from {checkpoint_path}: epoch {start_epoch}, batch {start_batch}, step {step}",
            flush=True,
        )
    elif checkpoint_path.exists() and not config.resume:
        raise FileExistsError(
            f"{checkpoint_path} exists: pass --resume to continue it, or choose another --out"
        )

    (out / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=2))

    def save(epoch, batch):
        state = {
            "config": dataclasses.asdict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": ag_random.default_generator.get_state(),
            "epoch": epoch,
            "batch": batch,
            "step": step,
            "elapsed_seconds": elapsed_before + time.perf_counter() - started,
        }
        if ema is not None:
            state["ema"] = ema.state_dict()
        save_checkpoint(checkpoint_path, state)

    started = time.perf_counter()
    record, lr = {}, config.lr
    model.train()
    resume_epoch, next_batch = start_epoch, start_batch  # where a checkpoint written now would resume
    parallel = None
    if config.processes > 1:  # after any resume: the workers start from the weights loaded above
        side = max(config.image_size, eval_size(config))  # the largest images the workers are sent
        parallel = DataParallel(
            model,
            functools.partial(build_model, config, num_classes, config.drop_path),
            config.processes,
            max(config.batch_size, config.eval_batch_size),
            (3, side, side),
            num_classes,
            seed=config.seed,
        )
    try:
        for epoch in range(start_epoch, config.epochs):
            resume_epoch = epoch
            first_batch = start_batch if epoch == start_epoch else 0
            epoch_start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
            side = train_image_size(config, epoch, stride)
            bar = tqdm(
                train_loader.epoch(epoch, first_batch, side=side),
                total=steps_per_epoch,
                initial=first_batch,
                desc=f"epoch {epoch + 1}/{config.epochs}",
                disable=not config.progress,
                leave=False,
            )
            out_of_time = False
            for batch_index, (x, y) in enumerate(bar, first_batch):
                lr = optim.cosine_with_warmup(step, total_steps, warmup_steps, config.lr, config.min_lr)
                optim.set_lr(optimizer, lr)
                if parallel is not None:
                    loss_value, logits = parallel.train_step(x, y, config.label_smoothing, step)
                else:
                    loss_value, logits = forward_backward(model, x, y, device, config.label_smoothing)
                if not math.isfinite(loss_value):
                    raise NonFiniteLoss(
                        f"the loss became {loss_value} at epoch {epoch + 1}, step {step}: stopping. "
                        f"The last good checkpoint is {checkpoint_path} (lower --lr, or clip "
                        "gradients with --grad-clip)"
                    )
                hard = y if y.ndim == 1 else y.argmax(axis=1)
                correct += int((logits.argmax(axis=1) == hard).sum())
                if config.grad_clip:
                    clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                if ema is not None:
                    ema.update(model)
                step += 1
                next_batch = batch_index + 1
                seen += len(hard)
                loss_sum += loss_value * len(hard)
                rate = seen / (time.perf_counter() - epoch_start)
                bar.set_postfix(
                    loss=f"{loss_sum / seen:.3f}",
                    acc=f"{correct / seen:.3f}",
                    img_s=f"{rate:.0f}",
                    lr=f"{lr:.2e}",
                )
                if (
                    config.time_budget
                    and elapsed_before + time.perf_counter() - started > 60 * config.time_budget
                ):
                    out_of_time = next_batch < steps_per_epoch
                    break
            bar.close()
            epoch_seconds = time.perf_counter() - epoch_start
            test_loss, test_acc = evaluate(model, test_loader, device, parallel)
            record = {
                "epoch": epoch + 1,
                "step": step,
                "lr": lr,
                "train_loss": loss_sum / max(seen, 1),
                "train_acc": correct / max(seen, 1),
                "test_loss": test_loss,
                "test_acc": test_acc,
                "epoch_seconds": epoch_seconds,
                "images_per_second": seen / epoch_seconds,
                "elapsed_seconds": elapsed_before + time.perf_counter() - started,
            }
            if config.progressive_size:
                record["image_size"] = side
            precise_bn = bool(config.precise_bn_batches) and epoch + 1 == config.epochs and not out_of_time
            if precise_bn:  # the numbers with the running averages are kept beside the recomputed ones
                record["test_loss_running_stats"], record["test_acc_running_stats"] = test_loss, test_acc
                precise_batchnorm(config, model, train_loader, side, device)
                if parallel is not None:
                    parallel.share_buffers()  # the workers evaluate with the recomputed statistics
                record["test_loss"], record["test_acc"] = evaluate(model, test_loader, device, parallel)
                record["elapsed_seconds"] = elapsed_before + time.perf_counter() - started
            if ema is not None and _evaluates_ema(config, epoch + 1):
                ema.copy_to(ema_model)
                if precise_bn:  # the averaged weights get statistics of their own
                    precise_batchnorm(config, ema_model, train_loader, side, device)
                    ema.copy_buffers(ema_model)
                record["test_acc_ema"] = evaluate(ema_model, test_loader, device)[1]
            if config.tta and epoch + 1 == config.epochs:
                record["test_loss_tta"], record["test_acc_tta"] = evaluate(
                    model, test_loader, device, parallel, flip=True, shift=config.tta_shift
                )
                record["elapsed_seconds"] = elapsed_before + time.perf_counter() - started
            with ctrl_c_deferred():  # the record, the curves and the checkpoint are written whole
                append_metrics(out, record)
                plot_curves(out, f"{config.model} on {config.dataset}")
                if not out_of_time:  # else resume inside this epoch
                    resume_epoch, next_batch = epoch + 1, 0
                save(resume_epoch, next_batch)
            print(json.dumps(record), flush=True)
            if config.time_budget and record["elapsed_seconds"] > 60 * config.time_budget:
                print(
                    f"time budget of {config.time_budget} minutes reached after epoch {epoch + 1}", flush=True
                )
                break
            if (
                config.stop_after
                and epoch + 1 - start_epoch >= config.stop_after
                and epoch + 1 < config.epochs
            ):
                print(
                    f"stopping after {config.stop_after} epoch(s) as asked; continue with --resume",
                    flush=True,
                )
                break
    except KeyboardInterrupt:
        save(resume_epoch, next_batch)
        print(
            f"\ninterrupted: saved {checkpoint_path} at epoch {resume_epoch + 1}, batch {next_batch}; "
            "continue with --resume",
            flush=True,
        )
        return record
    finally:
        if parallel is not None:
            parallel.close()
    return record


def load_trained_model(path, ema: bool = False):
    """(model, config) of a training run: ``path`` is its run folder (``--out``) or its ``checkpoint.npz``.
    ``ema=True`` loads the averaged weights (the run must have used ``--ema-decay``). The model is in eval
    mode."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"no training checkpoint at {path}: expected a run folder or its checkpoint.npz"
        )
    state = load_checkpoint(path)
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in state["config"].items() if k in known})
    if ema and "ema" not in state:
        raise ValueError(f"{path} holds no EMA weights (the run was trained without --ema-decay)")
    weights = state["ema"] if ema else state["model"]
    model = build_model(config, num_classes=num_classes_of(weights))
    model.load_state_dict(weights)
    return model.eval(), config


def build_parser(defaults: TrainConfig, prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--dataset", default=defaults.dataset, choices=["cifar10", "imagenette"])
    add("--model", default=defaults.model, choices=available_models())
    add("--backend", default=defaults.backend, choices=["numpy", "cupy"])
    add(
        "--data",
        default=defaults.data,
        help="folder holding the data set archives (default: $TINYCONVNEXT_DATA)",
    )
    add("--out", default=defaults.out, help="run folder: metrics, curves and checkpoint")
    add("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    add("--time-budget", type=float, default=defaults.time_budget, metavar="MINUTES")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.name in {"dataset", "model", "backend", "data", "out", "resume", "time_budget", "progress"}:
            continue
        default = getattr(defaults, field.name)
        if isinstance(default, bool):
            add(flag, action=argparse.BooleanOptionalAction, default=default)
        elif field.name == "stem_type":
            add(flag, default=default, choices=STEM_TYPES)
        elif field.name == "norm_layer":
            add(flag, default=default, choices=NORM_LAYERS)
        elif field.name == "stem_norm_layer":
            add(flag, default=default, choices=NORM_LAYERS, help="the stem's norm (default: --norm-layer's)")
        elif field.name == "progressive_mode":
            add(flag, default=default, choices=PROGRESSIVE_MODES)
        elif field.name == "optimizer":
            add(flag, default=default, choices=OPTIMIZERS)
        elif field.name == "layer_scale":  # None when not given: a ResNet refuses it only when it is given
            add(flag, type=float, default=None, help=f"ConvNeXt's layer-scale init (default {default})")
        else:
            add(flag, type=type(default), default=default)
    add("--no-progress", action="store_true", help="no progress bars")
    return parser


def config_from_args(defaults: TrainConfig, argv, prog) -> TrainConfig:
    parser = build_parser(defaults, prog)
    args = parser.parse_args(argv)
    if args.layer_scale is not None and args.model in RESNET_VARIANTS:
        parser.error(
            "--layer-scale sets the init of ConvNeXt's layer-scale gammas; "
            f"{args.model} is a ResNet and has none"
        )
    if args.layer_scale is None:
        args.layer_scale = defaults.layer_scale
    values = {k: v for k, v in vars(args).items() if k != "no_progress"}
    values["progress"] = not args.no_progress
    return TrainConfig(**values)


def main(argv=None, defaults: TrainConfig | None = None, prog="python -m tinyconvnext.train") -> int:
    config = config_from_args(defaults or TrainConfig(), argv, prog)
    try:
        train(config)
    except (NonFiniteLoss, BackendUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
