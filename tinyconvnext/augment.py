"""Data augmentation on uint8 images, and mixing of whole batches (the paper's recipe, Section 2.1).

Per image or per batch, every function takes a NumPy ``Generator``, so a run is reproducible from its seed.
* CIFAR: ``random_crop_flip`` (4-pixel zero padding, random 32x32 crop, or a smaller one, horizontal flip:
  a fresh coin per image, or airbench's ``alternating_flips``).
* ImageNet style: ``random_resized_crop`` (a random area 8-100% and aspect 3/4-4/3, resized) and
  ``resize_center_crop`` for evaluation.
* ``resize_images``: a whole batch to a smaller side (progressive resizing of CIFAR images, pipeline.py).
* ``rand_augment`` (Cubuk et al., 2020): N random operations of magnitude M, on a PIL image.
* ``random_erasing`` (Zhong et al., 2020): a random rectangle of a normalised image replaced by noise.
* ``mixup`` (Zhang et al., 2018) / ``cutmix`` (Yun et al., 2019) with label smoothing: mix each sample
  with the batch reversed; the targets become soft and still sum to 1.
* ``tta_views``: test-time augmentation, the shifted and mirrored views of a normalised NCHW batch.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

CIFAR10_MEAN = np.array([0.4914, 0.4822, 0.4465], dtype=np.float32)
CIFAR10_STD = np.array([0.2470, 0.2435, 0.2616], dtype=np.float32)


def to_float_nchw(images_uint8: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float32, scaled to [0, 1] and standardised per channel."""
    x = images_uint8.astype(np.float32) * np.float32(1 / 255)
    x -= mean
    x /= std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def random_crop_flip(
    images: np.ndarray,
    rng: np.random.Generator,
    padding: int = 4,
    flip: bool = True,
    size: int | None = None,
    mirrored: np.ndarray | None = None,
) -> np.ndarray:
    """A random size x size crop of each zero-padded image (torchvision's RandomCrop(size, padding=4); size
    defaults to the images' side), then a coin-flip horizontal mirror, or the mirror of exactly the images
    that ``mirrored`` (B booleans, e.g. ``alternating_flips``) marks. images: (B, H, W, C) uint8. A crop
    smaller than the image keeps the objects' scale (Krizhevsky et al. 2012 trained on 24x24 crops of
    CIFAR)."""
    b, height, width, _ = images.shape
    h, w = (size, size) if size is not None else (height, width)
    if size is not None and not 0 < size <= min(height, width) + 2 * padding:
        raise ValueError(
            f"random_crop_flip: the crop side must be in 1..{min(height, width) + 2 * padding} "
            f"(the padded image), got {size}"
        )
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    top = rng.integers(0, height + 2 * padding - h + 1, size=b)
    left = rng.integers(0, width + 2 * padding - w + 1, size=b)
    rows = top[:, None] + np.arange(h)  # (B, H)
    cols = left[:, None] + np.arange(w)  # (B, W)
    if mirrored is None and flip:
        mirrored = rng.random(b) < 0.5
    if mirrored is not None:
        cols[mirrored] = cols[mirrored, ::-1]
    return padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


def first_epoch_flips(num_images: int, seed: int) -> np.ndarray:
    """One coin per image of the training set, drawn once from the run's seed: which images
    ``alternating_flips`` mirrors in the even epochs (0, 2, ...)."""
    # (seed, 0, 0, 2): a stream no other draw of a run uses (its batches draw from (seed, epoch, batch, 1))
    return np.random.default_rng([seed, 0, 0, 2]).random(num_images) < 0.5


def alternating_flips(first_flips: np.ndarray, indices: np.ndarray, epoch: int) -> np.ndarray:
    """Which of the images ``indices`` to mirror in ``epoch`` (counted from 0) under alternating flips
    (Jordan 2024, airbench): the first epoch's coin, inverted in every odd epoch. Every image is seen once
    mirrored and once not in every two consecutive epochs, where fresh coins show half of them the same
    way both times. It depends on the seed and the epoch only, so a resume repeats it."""
    return first_flips[indices] ^ bool(epoch % 2)


def random_resized_crop(
    image: np.ndarray,
    size: int,
    rng: np.random.Generator,
    scale=(0.08, 1.0),
    ratio=(3 / 4, 4 / 3),
    flip: bool = True,
) -> np.ndarray:
    """torchvision's RandomResizedCrop(size) + RandomHorizontalFlip on one (H, W, 3) uint8 image."""
    h, w = image.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            break
    else:  # fall back to a central crop with the aspect clamped into range
        in_ratio = w / h
        cw, ch = (
            (w, int(round(w / ratio[0])))
            if in_ratio < ratio[0]
            else ((int(round(h * ratio[1])), h) if in_ratio > ratio[1] else (w, h))
        )
        cw, ch = min(cw, w), min(ch, h)
        top, left = (h - ch) // 2, (w - cw) // 2
    crop = Image.fromarray(image[top : top + ch, left : left + cw]).resize((size, size), Image.BILINEAR)
    out = np.asarray(crop)
    return out[:, ::-1] if flip and rng.random() < 0.5 else out


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """(B, H, W, C) uint8 -> (B, size, size, C): each image resized whole, bilinear with antialiasing (PIL's,
    as torchvision's Resize((size, size), antialias=True)). The images keep all their content at a smaller
    scale, which is what progressive resizing trains on (fast.ai's DAWNBench runs, FFCV's ResNet recipes)."""
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(
            f"resize_images expects (B, H, W, C) uint8 images, got {images.shape} {images.dtype}"
        )
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in images])


def resize_center_crop(image: np.ndarray, size: int, crop_pct: float = 0.875) -> np.ndarray:
    """Evaluation: short side to size / crop_pct (bicubic), then the central size x size."""
    from .images import center_crop, resize_short_side

    resized = resize_short_side(Image.fromarray(image), int(math.floor(size / crop_pct)))
    return np.asarray(center_crop(resized, size))


# -- RandAugment --------------------------------------------------------------------------------------
_FILL = (128, 128, 128)


def _level(magnitude, maximum, rng, signed=True):
    value = magnitude / 10.0 * maximum
    return -value if signed and rng.random() < 0.5 else value


def _affine(image, matrix):
    return image.transform(image.size, Image.AFFINE, matrix, resample=Image.BILINEAR, fillcolor=_FILL)


_RAND_AUGMENT_OPS = {
    "AutoContrast": lambda img, m, rng: ImageOps.autocontrast(img),
    "Equalize": lambda img, m, rng: ImageOps.equalize(img),
    "Invert": lambda img, m, rng: ImageOps.invert(img),
    "Rotate": lambda img, m, rng: img.rotate(_level(m, 30, rng), resample=Image.BILINEAR, fillcolor=_FILL),
    "Posterize": lambda img, m, rng: ImageOps.posterize(img, max(1, 8 - int(_level(m, 4, rng, False)))),
    "Solarize": lambda img, m, rng: ImageOps.solarize(img, 256 - int(_level(m, 256, rng, False))),
    "SolarizeAdd": lambda img, m, rng: Image.fromarray(
        np.where(
            np.asarray(img) < 128,
            np.clip(np.asarray(img).astype(np.int16) + int(_level(m, 110, rng, False)), 0, 255),
            np.asarray(img),
        ).astype(np.uint8)
    ),
    "Color": lambda img, m, rng: ImageEnhance.Color(img).enhance(1 + _level(m, 0.9, rng)),
    "Contrast": lambda img, m, rng: ImageEnhance.Contrast(img).enhance(1 + _level(m, 0.9, rng)),
    "Brightness": lambda img, m, rng: ImageEnhance.Brightness(img).enhance(1 + _level(m, 0.9, rng)),
    "Sharpness": lambda img, m, rng: ImageEnhance.Sharpness(img).enhance(1 + _level(m, 0.9, rng)),
    "ShearX": lambda img, m, rng: _affine(img, (1, _level(m, 0.3, rng), 0, 0, 1, 0)),
    "ShearY": lambda img, m, rng: _affine(img, (1, 0, 0, _level(m, 0.3, rng), 1, 0)),
    "TranslateX": lambda img, m, rng: _affine(img, (1, 0, _level(m, 0.45, rng) * img.size[0], 0, 1, 0)),
    "TranslateY": lambda img, m, rng: _affine(img, (1, 0, 0, 0, 1, _level(m, 0.45, rng) * img.size[1])),
}


def rand_augment(
    image: np.ndarray,
    rng: np.random.Generator,
    num_ops: int = 2,
    magnitude: float = 9.0,
    magnitude_std: float = 0.5,
) -> np.ndarray:
    """RandAugment on one (H, W, 3) uint8 image: ``num_ops`` operations drawn uniformly, each applied with
    probability 0.5 at a magnitude drawn from N(magnitude, magnitude_std) clipped to [0, 10] (timm's
    "rand-m9-mstd0.5", the paper's setting)."""
    img = Image.fromarray(image)
    names = list(_RAND_AUGMENT_OPS)
    for k in rng.choice(len(names), size=num_ops):
        if rng.random() < 0.5:
            m = float(
                np.clip(rng.normal(magnitude, magnitude_std) if magnitude_std > 0 else magnitude, 0, 10)
            )
            img = _RAND_AUGMENT_OPS[names[k]](img, m, rng)
    return np.asarray(img)


def random_erasing(
    batch: np.ndarray,
    rng: np.random.Generator,
    probability: float = 0.25,
    scale=(0.02, 1 / 3),
    ratio=(0.3, 3.3),
) -> np.ndarray:
    """Erase a random rectangle of each normalised (B, C, H, W) image with probability p, filling it with
    standard normal noise per pixel (timm's mode "pixel"). In place; returns the batch."""
    b, c, h, w = batch.shape
    for i in range(b):
        if rng.random() >= probability:
            continue
        for _ in range(10):
            area = h * w * rng.uniform(*scale)
            aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
            eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if eh < h and ew < w:
                top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
                batch[i, :, top : top + eh, left : left + ew] = rng.standard_normal((c, eh, ew)).astype(
                    batch.dtype
                )
                break
    return batch


# -- mixing whole batches --------------------------------------------------------------------------------
def smooth_one_hot(labels: np.ndarray, num_classes: int, smoothing: float = 0.0) -> np.ndarray:
    """(B,) labels -> (B, K) targets: 1 - smoothing + smoothing/K on the label, smoothing/K elsewhere."""
    off = smoothing / num_classes
    targets = np.full((len(labels), num_classes), off, dtype=np.float32)
    targets[np.arange(len(labels)), labels] = 1.0 - smoothing + off
    return targets


def mixup_cutmix(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    rng: np.random.Generator,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    switch_prob: float = 0.5,
    smoothing: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Mix each sample of a normalised (B, C, H, W) batch with the batch reversed (as timm's Mixup).

    With probability ``switch_prob`` (when both are enabled) CutMix pastes a box of the partner image
    covering a fraction 1 - lam of the area (lam ~ Beta(cutmix_alpha, cutmix_alpha), then set to the box's
    true area); otherwise MixUp blends the two images with lam ~ Beta(mixup_alpha, mixup_alpha). Targets:
    lam * smoothed(label) + (1 - lam) * smoothed(partner's label), each row summing to 1.
    Returns new arrays (images, soft targets).
    """
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or rng.random() < switch_prob)
    partner = images[::-1]
    if use_cutmix:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        h, w = images.shape[2:]
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        top, bottom = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
        left, right = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
        mixed = images.copy()
        mixed[:, :, top:bottom, left:right] = partner[:, :, top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (h * w)
    elif mixup_alpha > 0:
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        mixed = (lam * images + (1 - lam) * partner).astype(images.dtype)
    else:
        mixed, lam = images.copy(), 1.0
    one_hot = smooth_one_hot(labels, num_classes, smoothing)
    targets = lam * one_hot + (1 - lam) * one_hot[::-1]
    return mixed, targets.astype(np.float32)


def tta_views(x: np.ndarray, flip: bool = False, shift: int = 0) -> list[np.ndarray]:
    """The views of an NCHW batch that TTA averages over, each C-contiguous and of ``x``'s shape: ``x``;
    with ``shift=s``, ``x`` moved ``s`` pixels down-right and ``s`` pixels up-left (reflection fills the
    uncovered border); with ``flip``, the mirror image of each of those. 1, 2, 3 or 6 views."""
    if x.ndim != 4:
        raise ValueError(f"tta_views expects an NCHW batch, got an array of shape {x.shape}")
    height, width = x.shape[2:]
    if shift < 0 or shift >= min(height, width):
        raise ValueError(
            f"shift must be in [0, {min(height, width)}) pixels for {height}x{width} images, got {shift}"
        )
    views = [x]
    if shift:
        padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)), mode="reflect")
        views.append(padded[:, :, :height, :width])  # content moved down and right
        views.append(padded[:, :, 2 * shift :, 2 * shift :])  # up and left
    if flip:
        views += [view[..., ::-1] for view in views]
    return [np.ascontiguousarray(view) for view in views]
