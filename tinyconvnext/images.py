"""Reading images into RGB arrays, and the official evaluation preprocessing.

Any image Pillow reads becomes 8-bit RGB: greyscale is repeated over the three channels, transparency is
composited onto white, CMYK and palette images are converted, and 16-bit or float images are scaled
into 0..255 first (Pillow's own conversion would clip them).

Evaluation preprocessing of the official ConvNeXt (and of timm at crop_pct 0.875): resize the short side
to 256 with bicubic interpolation, crop the central 224x224, scale to [0, 1] and normalise with the
ImageNet mean and standard deviation. ``Preprocessing`` holds those four numbers for a model whose weights
say otherwise (a CIFAR model: 32 pixels and CIFAR's mean and std); weight files record it (weights.py).

An image with more pixels than Pillow allows (``Image.MAX_IMAGE_PIXELS``; a "decompression bomb": a small
file that would fill the memory) is refused like any unreadable image, with its name: Pillow itself refuses
one over twice its limit and only warns about one over its limit, which is taken as the same refusal here.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


class ImageReadError(ValueError):
    """An image file that is missing, truncated, not an image, or too large to decode safely."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Evaluation preprocessing: short side to ``resize`` (bicubic), centre crop ``crop`` x ``crop``, scale to
    [0, 1], subtract ``mean`` and divide by ``std`` per channel (RGB)."""

    resize: int = 256
    crop: int = 224
    mean: tuple[float, ...] = tuple(IMAGENET_MEAN.tolist())
    std: tuple[float, ...] = tuple(IMAGENET_STD.tolist())

    def with_sizes(self, crop: int | None = None, resize: int | None = None) -> Preprocessing:
        """These numbers with another crop and/or short side (a new crop alone keeps the ratio of the short
        side to the crop); a crop larger than the short side is refused."""
        crop = crop or self.crop
        resize = resize or (self.resize if crop == self.crop else round(crop * self.resize / self.crop))
        if crop > resize:
            raise ValueError(
                f"a centre crop of {crop} is larger than the short side {resize}: "
                "expected a crop of at most the short side"
            )
        return dataclasses.replace(self, crop=crop, resize=resize)

    def describe(self) -> str:
        mean, std = (", ".join(f"{v:.4f}" for v in values) for values in (self.mean, self.std))
        return f"short side {self.resize}, centre crop {self.crop}, mean ({mean}), std ({std})"


IMAGENET_EVAL = Preprocessing()


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def load_rgb(path) -> Image.Image:
    """Open and fully decode an image as RGB; a missing or corrupt file, or one over Pillow's pixel limit
    (``Image.MAX_IMAGE_PIXELS``), raises ``ImageReadError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # Pillow only warns between its limit and twice it
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageReadError(f"{path}: too many pixels to decode safely ({error})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f"{path}: not a readable image ({type(error).__name__}: {error})") from None


def resize_short_side(image: Image.Image, size: int, resample=Image.BICUBIC) -> Image.Image:
    w, h = image.size
    if w <= h:
        new = (size, max(1, round(h * size / w)))
    else:
        new = (max(1, round(w * size / h)), size)
    return image.resize(new, resample) if new != (w, h) else image


def center_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    left, top = int(round((w - size) / 2.0)), int(round((h - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def normalize(array_uint8: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32, scaled to [0, 1] and standardised per channel."""
    x = array_uint8.astype(np.float32) / 255.0
    return ((x - mean) / std).transpose(2, 0, 1)


def eval_transform(
    image: Image.Image, resize: int = 256, crop: int = 224, mean=IMAGENET_MEAN, std=IMAGENET_STD
):
    """The official evaluation preprocessing (by default), as (3, crop, crop) float32."""
    pixels = np.asarray(center_crop(resize_short_side(to_rgb(image), resize), crop))
    return normalize(pixels, np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32))


def preprocess(image: Image.Image, preprocessing: Preprocessing = IMAGENET_EVAL) -> np.ndarray:
    """``eval_transform`` with the numbers of ``preprocessing``: (3, crop, crop) float32."""
    p = preprocessing
    return eval_transform(image, p.resize, p.crop, p.mean, p.std)
