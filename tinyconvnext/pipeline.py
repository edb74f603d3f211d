"""The data pipeline of a training run: the data set, the augmented batches, their loaders and image sizes.

Training batches are augmented as the configuration asks (crops and flips, RandAugment, random erasing,
mixup/cutmix) at the epoch's image side (progressive resizing); test batches are resized, centre-cropped
for larger images, and normalised the same way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import autograd as ag

from . import augment
from .build import build_fused_model, build_model
from .config import FLIP_MODES, PROGRESSIVE_MODES
from .images import IMAGENET_MEAN, IMAGENET_STD
from .loader import BatchLoader
from .whitening import whiten_stem


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
    """The data set named by ``config.dataset``, found in --data (which must hold it), else in
    $TINYCONVNEXT_DATA or the cache, else downloaded."""
    if config.dataset == "cifar10":
        from .data.cifar import load_cifar10, require_cifar10

        if config.data is not None:  # a folder named by --data must hold it: no download then
            require_cifar10(config.data)
        data = load_cifar10(config.data, download=True, progress=config.progress)
        return ImageDataset(
            data.train_images, data.train_labels, data.test_images, data.test_labels, list(data.classes)
        )
    if config.dataset == "imagenette":
        from .data.imagenette import load_imagenette, require_imagenette

        if config.data is not None:
            require_imagenette(config.data)
        data = load_imagenette(config.data, download=True, progress=config.progress)
        return ImageDataset(data.train, data.train.labels, data.val, data.val.labels, list(data.classes))
    raise ValueError(f"unknown dataset {config.dataset!r}: expected 'cifar10' or 'imagenette'")


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


# -- image sizes -------------------------------------------------------------------------------------
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


def fit_progressive_size(config, given: set):
    """(config, note): a ``progressive_size`` that came from the defaults (not in ``given``, the flags given
    on the command line) and does not fit the network's stride, moved to the multiple of the stride below
    it (or to the stride itself), or with progressive resizing off when no multiple fits below
    ``image_size``; ``note`` says so in one line
    (None when nothing changed). A ``--progressive-size`` that was given is left for ``progressive_stride``
    to refuse."""
    size = config.progressive_size
    if not size or "progressive_size" in given:
        return config, None
    stride, image_size = model_stride(config), config.image_size
    if size % stride == 0 and stride <= size <= image_size and image_size % stride == 0:
        return config, None
    fitted = max(stride, min(size, image_size - 1) // stride * stride)  # the nearest multiple below it
    if fitted < image_size and image_size % stride == 0:
        note = f"starting progressive resizing at {fitted} px instead"
    else:
        fitted, note = 0, "progressive resizing is off"
    note = (
        f"the default --progressive-size {size} does not fit {config.model} (its sizes must be multiples "
        f"of its stride, {stride} px, up to --image-size {image_size}): {note}"
    )
    return dataclasses.replace(config, progressive_size=fitted), note


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


# -- batches -----------------------------------------------------------------------------------------
def _check_pipeline(config) -> None:
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
    if config.flip not in FLIP_MODES:
        raise ValueError(f"--flip must be one of {', '.join(FLIP_MODES)}, got {config.flip!r}")
    if config.progressive_mode not in PROGRESSIVE_MODES:
        raise ValueError(
            f"--progressive-mode must be one of {', '.join(PROGRESSIVE_MODES)}, "
            f"got {config.progressive_mode!r}"
        )


def _is_small(images, size: int) -> bool:
    """CIFAR-like: one array of images already at the configured side (cropped and flipped, not resized)."""
    return isinstance(images, np.ndarray) and images.shape[1:3] == (size, size)


def _crops(config, images, indices, rng, side, mirrored=None):
    """The training crops of the chosen images, at ``side`` px, as a (B, side, side, 3) uint8 array, each
    mirrored on a coin flip, or exactly those that ``mirrored`` marks (alternating flips)."""
    if _is_small(images, config.image_size):
        if config.progressive_mode == "crop":
            return augment.random_crop_flip(images[indices], rng, size=side, mirrored=mirrored)
        return augment.resize_images(augment.random_crop_flip(images[indices], rng, mirrored=mirrored), side)
    scale, coin = (config.crop_scale, 1.0), mirrored is None
    crops = np.stack(
        [augment.random_resized_crop(images[int(i)], side, rng, scale=scale, flip=coin) for i in indices]
    )
    if mirrored is not None:
        crops[mirrored] = crops[mirrored, :, ::-1]
    return crops


def make_batch_functions(config, train_x, train_y, test_x, test_y, num_classes, mean, std):
    """The per-batch pipelines: (indices, rng) -> (inputs, targets) for training and for evaluation.
    ``train_batch`` takes the epoch's image side as ``side`` (progressive resizing; default image_size)
    and the ``epoch`` (counted from 0), which alternating flips follow; evaluation is always at
    ``eval_size(config)``."""
    size, test_size = config.image_size, eval_size(config)
    _check_pipeline(config)
    first_flips = augment.first_epoch_flips(len(train_y), config.seed) if config.flip == "alternate" else None

    def train_batch(indices, rng, side=size, epoch=0):
        mirrored = None if first_flips is None else augment.alternating_flips(first_flips, indices, epoch)
        images = _crops(config, train_x, indices, rng, side, mirrored)
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
        if _is_small(test_x, size):  # CIFAR-like: resized whole
            images = augment.resize_images(test_x[indices], test_size)
        else:
            crop = config.eval_crop_pct
            images = np.stack([augment.resize_center_crop(test_x[int(i)], test_size, crop) for i in indices])
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
        len(train_y),
        train_batch,
        config.batch_size,
        shuffle=True,
        drop_last=True,
        seed=config.seed,
        pass_epoch=True,
    )
    test_loader = BatchLoader(
        len(test_y), eval_batch, config.eval_batch_size, shuffle=False, seed=config.seed
    )
    return train_loader, test_loader, num_classes


def whitening_sample(config, dataset: ImageDataset) -> np.ndarray:
    """The training images that ``--stem-init whiten`` computes its filters from (whitening.py), drawn at
    random from the seed (within the --subset, if any) and normalised as the batches are, as an (N, 3, H, W)
    float32 array: up to 5,000 of a CIFAR-like set at their own side; up to 500 of an ImageNet-style one
    (decoded one by one), resized and centre-cropped to --image-size, already hundreds of patches each."""
    images, labels = dataset.train_images, np.asarray(dataset.train_labels)
    if config.subset:
        images, labels = _subset(images, labels, config.subset, config.seed)
    small = _is_small(images, config.image_size)
    count = min(len(labels), 5000 if small else 500)
    # (seed, 0, 0, 3): a stream no other draw of a run uses (its batches draw from (seed, epoch, batch, 1))
    chosen = np.sort(np.random.default_rng([config.seed, 0, 0, 3]).permutation(len(labels))[:count])
    if small:
        picked = images[chosen]
    else:
        size, crop = config.image_size, config.eval_crop_pct
        picked = np.stack([augment.resize_center_crop(images[int(i)], size, crop) for i in chosen])
    mean, std = normalization(config)
    return augment.to_float_nchw(picked, mean, std)


def initial_model(config, dataset: ImageDataset, num_classes: int, fused: bool = True):
    """The network a run starts from: drawn from ``config.seed``, built as the run trains it (``fused``; the
    unfused ``build_model`` has the same weights), with ``config.drop_path``, and with ``--stem-init whiten``
    its stem's first filters whitened on ``dataset``'s images (``whitening_sample``). train.py starts here,
    and so do the PyTorch twin (bench/torch_twin_cifar.py) and its test. A resume then loads its weights."""
    ag.manual_seed(config.seed)
    build = build_fused_model if fused else build_model
    model = build(config, num_classes, config.drop_path)
    if config.stem_init == "whiten":
        whiten_stem(model, whitening_sample(config, dataset))
    return model
