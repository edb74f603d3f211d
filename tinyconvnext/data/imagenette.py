"""Imagenette: ten easy ImageNet classes (fast.ai), decoded to uint8 arrays and cached.

Official archives (https://github.com/fastai/imagenette), in the ImageFolder layout
``<root>/train/<wnid>/*.JPEG`` (9,469 images) and ``<root>/val/<wnid>/*.JPEG`` (3,925), read as the ``.tgz``
(any tar compression) or as the extracted folder:

* ``imagenette2-160.tgz`` (root ``imagenette2-160/``): short side 160 px, ~94 MiB;
* ``imagenette2-320.tgz`` (``imagenette2-320/``): short side 320 px;
* ``imagenette2.tgz`` (``imagenette2/``): the full-size ImageNet JPEGs.

Classes are numbered in sorted wnid order, the official one (``CLASSES``: n01440764 tench ...
n03888257 parachute). No checksums are published for these archives, so a download cannot be verified
against one; instead the gzip CRC catches a damaged or truncated stream (a clear ``DataError`` naming the
archive), and the number of images per split must equal the official counts (``check_counts``).

Decoding (``imagenette_decode.py``): each JPEG is decoded with Pillow to RGB and resized so that its short
side is ``size``, by worker processes that write the pixels straight into each split's ``.npy`` file. An
image Pillow cannot decode is skipped; one warning at the end names every skipped file (and why), and
``Imagenette.skipped`` lists them.

Decoded sets are cached as ``.npy`` in ``cache_dir()/decoded`` (see ``cache.py``): the 160 px set takes
about 7 s to decode on two cores (13 s on one), 3 s to read back from the cache (1.3 GiB), and no time at
all with ``mmap=True``.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .archive import archive_names, find_first, is_archive, iter_archive
from .cache import decoded_dir, load_arrays, save_arrays
from .download import cache_dir, default_data_dir
from .download import download as download_file
from .errors import DataError, DataNotFoundError
from .imagenette_decode import (  # noqa: F401  (CHUNK_IMAGES, decode_image, decode_chunk: importable here too)
    CHUNK_IMAGES,
    decode_all,
    decode_chunk,
    decode_image,
    default_workers,
    finish_pixel_file,
    index_arrays,
    pixel_targets,
)

CLASSES = (
    ("n01440764", "tench"),
    ("n02102040", "English springer"),
    ("n02979186", "cassette player"),
    ("n03000684", "chain saw"),
    ("n03028079", "church"),
    ("n03394916", "French horn"),
    ("n03417042", "garbage truck"),
    ("n03425413", "gas pump"),
    ("n03445777", "golf ball"),
    ("n03888257", "parachute"),
)
WNIDS = tuple(wnid for wnid, _ in CLASSES)
SPLITS = ("train", "val")
EXPECTED_COUNTS = {"train": 9469, "val": 3925}

# variant -> (root folder and archive stem, short side of its JPEGs; None = original ImageNet sizes)
VARIANTS = {"160": ("imagenette2-160", 160), "320": ("imagenette2-320", 320), "full": ("imagenette2", None)}
URLS = {
    variant: f"https://s3.amazonaws.com/fast-ai-imageclas/{root}.tgz"
    for variant, (root, _) in VARIANTS.items()
}

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
_MEMBER = re.compile(r"(?:^|/)(train|val)/(n\d{8})/([^/]+)$")


@dataclass
class ImageSet:
    """Images of different sizes in one flat array: ``images[i]`` is ``pixels[o:o + h*w*3].reshape(h, w, 3)``
    with ``(o, h, w) = index[i]``; ``labels[i]`` is its class, ``names[i]`` its path in the archive.

    Indexed like an array of images (``images[i]`` is an (H, W, 3) uint8 view), as CIFAR-10's
    ``train_images`` is, with the labels beside it.
    """

    pixels: np.ndarray
    index: np.ndarray
    labels: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> np.ndarray:
        offset, height, width = (int(v) for v in self.index[i])
        return self.pixels[offset : offset + height * width * 3].reshape(height, width, 3)


@dataclass
class Imagenette:
    """The train and val splits decoded at short side ``size``; label k is ``classes[k]`` (``wnids[k]``)."""

    train: ImageSet
    val: ImageSet
    size: int
    source: Path
    classes: tuple[str, ...] = tuple(name for _, name in CLASSES)
    wnids: tuple[str, ...] = WNIDS
    skipped: tuple[str, ...] = field(default_factory=tuple)


def _parse_member(name: str) -> tuple[str, str, str] | None:
    """``(split, wnid, relative name)`` of an image path in the ImageFolder layout, else None."""
    match = _MEMBER.search(name.replace("\\", "/"))
    if match is None or not match.group(3).lower().endswith(IMAGE_SUFFIXES):
        return None
    split, wnid, file = match.groups()
    return split, wnid, f"{split}/{wnid}/{file}"


def _label(wnid: str, name: str, source) -> int:
    if wnid not in WNIDS:
        raise DataError(
            f"{source}: {name} is in class folder {wnid}, expected one of the ten Imagenette wnids"
        )
    return WNIDS.index(wnid)


def _image_root(folder: Path) -> Path:
    """The folder holding train/ and val/: ``folder`` itself or its one Imagenette subfolder."""
    if (folder / "train").is_dir() or (folder / "val").is_dir():
        return folder
    found = find_first([folder], [root for root, _ in VARIANTS.values()])
    if found is None or not found.is_dir():
        raise DataError(f"{folder}: no train/ or val/ folder (expected the Imagenette ImageFolder layout)")
    return found


def _iter_images(source: Path):
    """Yield ``(split, label, name, JPEG bytes)`` for every image of an archive or folder."""
    if source.is_dir():
        root = _image_root(source)
        for split in SPLITS:
            for path in sorted((root / split).glob("*/*")):
                parsed = _parse_member(path.relative_to(root).as_posix())
                if parsed is not None and path.is_file():
                    split_name, wnid, name = parsed
                    yield split_name, _label(wnid, name, source), name, path.read_bytes()
        return
    for member, data in iter_archive(source, lambda m: _parse_member(m) is not None):
        if data is not None:
            split, wnid, name = _parse_member(member)
            yield split, _label(wnid, name, source), name, data


def list_imagenette(source) -> dict[str, list[str]]:
    """The image names (``train/<wnid>/<file>``) of each split of an archive or folder, without decoding."""
    source = Path(source)
    found = {split: [] for split in SPLITS}
    if source.is_dir():
        root = _image_root(source)
        members = (p.relative_to(root).as_posix() for split in SPLITS for p in (root / split).glob("*/*"))
    else:
        members = (member for member, _ in iter_archive(source, lambda m: False))
    for member in members:
        parsed = _parse_member(member)
        if parsed is not None:
            found[parsed[0]].append(parsed[2])
    return {split: sorted(names) for split, names in found.items()}


def _warn_skipped(source: Path, results) -> None:
    """One warning naming every image that could not be decoded (attributed to ``_decode_into``'s caller)."""
    errors = [f"{name} ({error})" for _, _, name, _, _, _, error in results if error is not None]
    if errors:
        shown = "; ".join(errors[:20]) + (f"; and {len(errors) - 20} more" if len(errors) > 20 else "")
        warnings.warn(
            f"{source}: skipped {len(errors)} unreadable image(s) of {len(results)}: {shown}",
            stacklevel=3,
        )


def _check_counts(source: Path, results) -> None:
    """Raise ``DataError`` unless each split holds the official number of images (skipped ones included)."""
    counts = {split: sum(result[0] == split for result in results) for split in SPLITS}
    if counts != EXPECTED_COUNTS:
        raise DataError(
            f"{source}: found {counts['train']} train and {counts['val']} val images, expected "
            f"{EXPECTED_COUNTS['train']} and {EXPECTED_COUNTS['val']} (truncated, or not an "
            f"official Imagenette archive; pass check_counts=False for a subset you built)"
        )


def _decode_into(
    source: Path, size: int, folder: Path, workers: int, progress: bool, check_counts: bool
) -> tuple[dict[str, np.ndarray], list[str]]:
    """Decode every image of ``source`` into ``folder/<split>_pixels.npy``; return the small arrays (index,
    labels, names of each split) and the names of the skipped images."""
    targets = pixel_targets(folder, SPLITS)
    bar = tqdm(
        total=sum(EXPECTED_COUNTS.values()) if check_counts else None,
        unit="img",
        desc=f"decoding {source.name} at {size} px",
        disable=not progress,
    )
    try:
        results, pixel_bytes = decode_all(_iter_images(source), size, targets, workers, bar)
        bar.close()
        _warn_skipped(source, results)
        if check_counts:
            _check_counts(source, results)
        arrays = {}
        for number, split in enumerate(SPLITS):
            finish_pixel_file(targets[split], pixel_bytes[number], folder / f"{split}_pixels.npy")
            arrays.update(index_arrays(results, split))
        return arrays, sorted(name for _, _, name, _, _, _, error in results if error is not None)
    finally:
        bar.close()
        for path, _ in targets.values():
            Path(path).unlink(missing_ok=True)


def _assemble(arrays, size, source, skipped) -> Imagenette:
    sets = {
        split: ImageSet(
            arrays[f"{split}_pixels"],
            arrays[f"{split}_index"],
            arrays[f"{split}_labels"],
            arrays[f"{split}_names"],
        )
        for split in SPLITS
    }
    return Imagenette(sets["train"], sets["val"], size, Path(source), skipped=tuple(skipped))


def read_imagenette(
    source, size: int = 160, *, workers: int | None = None, progress: bool = True, check_counts: bool = True
) -> Imagenette:
    """Decode Imagenette from an archive or extracted folder into memory (no cache); see
    ``load_imagenette``."""
    source = Path(source)
    if not source.exists():
        raise DataNotFoundError(f"{source}: no such file or folder")
    with tempfile.TemporaryDirectory(prefix="imagenette-") as folder:
        arrays, skipped = _decode_into(
            source, size, Path(folder), workers or default_workers(), progress, check_counts
        )
        for split in SPLITS:
            arrays[f"{split}_pixels"] = np.load(Path(folder) / f"{split}_pixels.npy", allow_pickle=False)
    return _assemble(arrays, size, source, skipped)


def _preferred_variants(size: int) -> list[str]:
    """Variants whose JPEGs are at least ``size`` on the short side, smallest first; then the others."""
    native = {variant: short or 10**9 for variant, (_, short) in VARIANTS.items()}
    large_enough = sorted((v for v in VARIANTS if native[v] >= size), key=native.get)
    return large_enough + sorted((v for v in VARIANTS if native[v] < size), key=native.get, reverse=True)


def find_imagenette(data_dir=None, size: int = 160, variant: str | None = None) -> Path | None:
    """An Imagenette archive or folder in ``data_dir`` (or ``$TINYCONVNEXT_DATA``), then in the cache folder.

    Without ``variant`` ("160", "320" or "full"), the smallest one whose images are at least ``size`` px
    is preferred (no upsampling), then the largest of the others.
    """
    names = []
    for choice in [variant] if variant else _preferred_variants(size):
        root = VARIANTS[choice][0]
        names += [root] + archive_names(root)
    return find_first([default_data_dir(data_dir), cache_dir()], names)


def require_imagenette(data_dir, size: int = 160) -> Path:
    """The Imagenette archive or folder in ``data_dir`` (or ``data_dir`` itself, when it is one), as
    ``load_imagenette`` would pick it for ``size``; a folder the user named that lacks it is reported
    (``DataNotFoundError`` naming the folder and the expected names), not a reason to download."""
    data_dir = Path(data_dir).expanduser()
    roots = [root for root, _ in VARIANTS.values()]
    if (
        is_archive(data_dir)
        or (data_dir / "train").is_dir()
        or (data_dir.name in roots and data_dir.exists())
    ):
        return data_dir
    found = find_first(
        [data_dir], [n for v in _preferred_variants(size) for n in archive_names(VARIANTS[v][0])] + roots
    )
    if found is None:
        raise DataNotFoundError(
            f"Imagenette not found in {data_dir}: expected {', '.join(r + '.tgz' for r in roots)} "
            f"(any tar compression), or one of them extracted ({'/, '.join(roots)}/)"
        )
    return found


def _find_or_download(data_dir, size: int, variant: str | None, download: bool, progress: bool) -> Path:
    """``data_dir`` if it is an Imagenette archive or folder itself, else the one ``find_imagenette`` finds,
    else (with ``download``) the downloaded archive of ``variant`` or of the best variant for ``size``."""
    if data_dir is not None and (
        is_archive(data_dir)
        or (Path(data_dir) / "train").is_dir()
        or Path(data_dir).name in [root for root, _ in VARIANTS.values()]
    ):
        source = Path(data_dir)
    else:
        source = find_imagenette(data_dir, size, variant)
    if source is None:
        choice = variant or _preferred_variants(size)[0]
        root = VARIANTS[choice][0]
        if not download:
            raise DataNotFoundError(
                f"Imagenette not found (looked for {root}.tgz or {root}/ in "
                f"{data_dir or os.environ.get('TINYCONVNEXT_DATA') or '-'} and {cache_dir()}); "
                f"set TINYCONVNEXT_DATA, pass data_dir, or pass download=True"
            )
        source = download_file(URLS[choice], cache_dir() / f"{root}.tgz", progress=progress)
    return source


def _decode_to_cache(source: Path, size: int, folder: Path, workers: int, progress: bool, check_counts: bool):
    """Decode ``source`` into the cache folder ``folder``: the pixel files, the small arrays, the manifest."""
    arrays, skipped = _decode_into(source, size, folder, workers, progress, check_counts)
    written = {f"{split}_pixels": np.load(folder / f"{split}_pixels.npy", mmap_mode="r") for split in SPLITS}
    save_arrays(folder, arrays, info={"source": str(source), "skipped": skipped}, written=written)


def load_imagenette(
    data_dir=None,
    size: int = 160,
    *,
    variant: str | None = None,
    download: bool = False,
    cache: bool = True,
    mmap: bool = False,
    workers: int | None = None,
    progress: bool = True,
    check_counts: bool = True,
) -> Imagenette:
    """Imagenette decoded at short side ``size``, from the cache, a local archive/folder or a download.

    Args:
        data_dir: a folder holding ``imagenette2-160.tgz`` (or -320, or ``imagenette2.tgz``, any tar
            compression, or the extracted folders); or such an archive or folder itself. Default:
            ``$TINYCONVNEXT_DATA``, then ``cache_dir()``.
        size: short side in pixels after resizing (bicubic, aspect ratio kept).
        variant: "160", "320" or "full" to insist on one archive; default: the best one found for ``size``.
        download: if nothing is found, download the variant's official archive into ``cache_dir()`` (no
            checksum is published for it: the gzip CRC and the image counts are what check it).
        cache: keep the decoded arrays as ``.npy`` in ``cache_dir()/decoded`` and load them from there.
        mmap: memory-map the cached arrays (read-only) rather than reading them into memory (the 160 px
            set is about 1.3 GiB of pixels).
        workers: decoding processes (default: one per available core; 1 decodes in this process).
        check_counts: require the official 9,469 train and 3,925 val images (counting skipped ones).

    Returns:
        ``Imagenette`` with ``train`` and ``val`` ``ImageSet``s, ``classes``, ``wnids``, ``skipped``.
    """
    source = _find_or_download(data_dir, size, variant, download, progress)
    if not cache:
        return read_imagenette(source, size, workers=workers, progress=progress, check_counts=check_counts)
    folder = decoded_dir("imagenette", source, size=size, check_counts=check_counts)
    cached = load_arrays(folder, mmap=mmap)
    if cached is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            warnings.warn(
                f"cannot cache decoded Imagenette in {folder} ({error}); decoding into memory", stacklevel=2
            )
            return read_imagenette(
                source, size, workers=workers, progress=progress, check_counts=check_counts
            )
        _decode_to_cache(source, size, folder, workers or default_workers(), progress, check_counts)
        cached = load_arrays(folder, mmap=mmap)
        if cached is None:
            raise DataError(f"{folder}: the cache just written cannot be read back")
    arrays, info = cached
    return _assemble(arrays, size, source, info.get("skipped", []))
