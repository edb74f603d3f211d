"""CIFAR-10 from its official archives: 60,000 32x32 colour images in 10 classes.

The official site (https://www.cs.toronto.edu/~kriz/cifar.html) publishes the same images in two formats;
both are read here, as the archive (any tar compression) or as its extracted folder:

* ``cifar-10-binary.tar.gz`` -> ``cifar-10-batches-bin/``: ``data_batch_1.bin`` ... ``data_batch_5.bin``
  (training) and ``test_batch.bin``, each 10,000 records of 3,073 bytes: one label byte (0..9), then the
  1,024 red, 1,024 green and 1,024 blue bytes of a 32x32 image, row by row; ``batches.meta.txt`` holds the
  class names, one a line. We check each ``.bin`` file against its published MD5, so this format is
  verified even when the archive was recompressed (the shared copy is ``.tar.xz``).
* ``cifar-10-python.tar.gz`` -> ``cifar-10-batches-py/``: the same batches as Python pickles (written by
  Python 2: read them with ``encoding="bytes"``), each a dict with ``b"data"``, a (10000, 3072) uint8 array
  in the same channel-major layout, and ``b"labels"``; ``batches.meta`` holds ``b"label_names"``.

Why the pickle format is handled with care: unpickling can run any code the file's author chose. So the
whole archive's MD5 must equal the official one before anything in it is unpickled (``trust_archive=True``
turns this off, for an archive you built yourself), and even then the unpickler accepts only the few
globals a NumPy array needs, so a malicious pickle fails instead of running (an extracted folder, which has
no published archive checksum, relies on that restricted unpickler and the shape checks below).

Whatever the source, the records are checked: 10,000 per batch file (``RECORDS_PER_FILE``), labels 0..9, a
file size that is a whole number of records. A truncated or corrupt archive raises ``DataError`` naming the
file; nothing returns a silently wrong data set.

``load_cifar10`` finds the data (``find_cifar10``), downloads the official binary archive if asked and
nothing is found, and caches the decoded arrays as ``.npy`` (see ``cache.py``): the first load of the xz
archive takes about 11 s, later loads well under a second.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .archive import archive_names, find_first, is_archive, iter_archive
from .cache import decoded_dir, load_arrays, save_arrays
from .download import cache_dir, default_data_dir, file_digest
from .download import download as download_file
from .errors import ChecksumError, DataError, DataNotFoundError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

BINARY_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
BINARY_ARCHIVE_MD5 = "c32a1d4ab5d03f1284b67883e8d87530"
PYTHON_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BINARY_FILE_MD5 = {
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}

BINARY_FOLDER = "cifar-10-batches-bin"
PYTHON_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_BATCH = "test_batch"
RECORDS_PER_FILE = 10_000
IMAGE_BYTES = 3 * 32 * 32
RECORD_BYTES = 1 + IMAGE_BYTES

# Searched in this order: folders before archives (nothing to decompress), the binary format before the
# pickles (no code to guard against).
KNOWN_NAMES = (
    [BINARY_FOLDER] + archive_names("cifar-10-binary") + [PYTHON_FOLDER] + archive_names("cifar-10-python")
)


@dataclass
class Cifar10:
    """CIFAR-10 as arrays: images (N, 32, 32, 3) uint8 (height, width, RGB), labels (N,) int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    source: Path


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, strings and NumPy arrays; refuses every other global, so no code runs."""

    _core = getattr(np, "_core", None) or np.core  # NumPy 2 renamed numpy.core to numpy._core
    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"): _core.multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _core.multiarray._reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol 2
    }

    def find_class(self, module, name):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch holds "
                f"only arrays, lists and strings"
            )
        return self._allowed[(module, name)]


def _unpickle(data: bytes, name: str) -> dict:
    try:
        return _ArrayOnlyUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:
        raise DataError(f"{name}: not a CIFAR-10 pickle ({type(error).__name__}: {error})") from None


def _check_labels(labels: np.ndarray, name: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        bad = int(np.flatnonzero((labels < 0) | (labels >= len(CLASSES)))[0])
        raise DataError(f"{name}: record {bad} has label {labels[bad]}, expected 0..{len(CLASSES) - 1}")


def _check_count(count: int, name: str, trust_archive: bool) -> None:
    if not trust_archive and count != RECORDS_PER_FILE:
        raise DataError(
            f"{name}: {count} records, expected {RECORDS_PER_FILE} (a truncated or foreign file; "
            f"pass trust_archive=True for a data set you built)"
        )


def decode_binary_batch(data: bytes, name: str, trust_archive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One ``.bin`` file -> images (N, 32, 32, 3) uint8 and labels (N,) int64."""
    if len(data) % RECORD_BYTES:
        raise DataError(
            f"{name}: {len(data)} bytes is not a whole number of {RECORD_BYTES}-byte records (truncated?)"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    _check_count(len(records), name, trust_archive)
    labels = records[:, 0].astype(np.int64)
    _check_labels(labels, name)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def decode_python_batch(data: bytes, name: str, trust_archive: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (N, 32, 32, 3) uint8 and labels (N,) int64. Check the source first."""
    batch = _unpickle(data, name)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(
            f"{name}: expected a dict with b'data' and b'labels', found {type(batch).__name__}"
            + (f" with keys {sorted(batch)}" if isinstance(batch, dict) else "")
        )
    pixels = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != IMAGE_BYTES:
        raise DataError(f"{name}: data is {pixels.dtype} {pixels.shape}, expected uint8 (N, {IMAGE_BYTES})")
    if labels.shape != (len(pixels),):
        raise DataError(f"{name}: {labels.size} labels for {len(pixels)} images")
    _check_count(len(pixels), name, trust_archive)
    _check_labels(labels, name)
    return np.ascontiguousarray(pixels.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)), labels


def _class_names(meta: bytes | None, binary: bool, name: str) -> tuple[str, ...]:
    if meta is None:
        return CLASSES
    if binary:
        names = [line.strip() for line in meta.decode("utf-8", "replace").splitlines() if line.strip()]
    else:
        names = [n.decode("utf-8") for n in _unpickle(meta, name).get(b"label_names", [])]
    if len(names) != len(CLASSES):
        raise DataError(f"{name}: {len(names)} class names, expected {len(CLASSES)}")
    return tuple(names)


def _read_members(source: Path, progress: bool) -> tuple[dict[str, bytes], str]:
    """The batch files of an archive or folder by file name, and the format: "binary" or "python"."""
    wanted = {f"{b}.bin" for b in TRAIN_BATCHES + (TEST_BATCH,)} | {"batches.meta.txt"}
    wanted |= set(TRAIN_BATCHES + (TEST_BATCH,)) | {"batches.meta"}
    files: dict[str, dict[str, bytes]] = {BINARY_FOLDER: {}, PYTHON_FOLDER: {}}

    def folder_and_file(member: str) -> tuple[str, str]:
        parts = member.replace("\\", "/").split("/")
        return (parts[-2] if len(parts) > 1 else ""), parts[-1]

    if source.is_dir():
        folder = source
        if source.name not in files:  # a data folder that holds the batches folder
            folder = find_first([source], [BINARY_FOLDER, PYTHON_FOLDER]) or source
        kind = BINARY_FOLDER if (folder / "data_batch_1.bin").exists() else PYTHON_FOLDER
        for name in wanted:
            if (folder / name).is_file():
                files[kind][name] = (folder / name).read_bytes()
    else:

        def is_wanted(member):
            folder, name = folder_and_file(member)
            return folder in files and name in wanted

        for member, data in iter_archive(source, is_wanted, progress=progress):
            if data is not None:
                folder, name = folder_and_file(member)
                files[folder][name] = data
    if any(name.endswith(".bin") for name in files[BINARY_FOLDER]):
        return files[BINARY_FOLDER], "binary"
    if files[PYTHON_FOLDER]:
        return files[PYTHON_FOLDER], "python"
    raise DataError(
        f"{source}: no CIFAR-10 batches found (expected {BINARY_FOLDER}/data_batch_1.bin ... or "
        f"{PYTHON_FOLDER}/data_batch_1 ...)"
    )


def read_cifar10(source, trust_archive: bool = False, progress: bool = True) -> Cifar10:
    """Decode CIFAR-10 from an archive or extracted folder of either official format (no cache).

    Args:
        source: ``cifar-10-binary.tar.gz`` / ``cifar-10-python.tar.gz`` (any tar compression), a
            ``cifar-10-batches-bin`` / ``cifar-10-batches-py`` folder, or a folder holding one of those.
        trust_archive: skip the checks that the files are the official ones (archive or per-file MD5 and
            10,000 records per batch), for a data set you built. Labels and record sizes are still checked.
        progress: show a progress bar while reading an archive.

    Raises:
        ChecksumError: a file that is not the official one (the pickle archive is then not unpickled).
        DataError: a truncated or corrupt archive, a missing batch, or records of the wrong size or label.
    """
    source = Path(source)
    if not source.exists():
        raise DataNotFoundError(f"{source}: no such file or folder")
    files, kind = _read_members(source, progress)
    expected = (
        [f"{b}.bin" for b in TRAIN_BATCHES + (TEST_BATCH,)]
        if kind == "binary"
        else list(TRAIN_BATCHES + (TEST_BATCH,))
    )
    missing = [name for name in expected if name not in files]
    if missing:
        raise DataError(
            f"{source}: missing {', '.join(missing)} (an incomplete CIFAR-10 {kind} archive or folder)"
        )
    # An extracted pickle folder has no published checksum: the restricted unpickler is what guards it.
    if kind == "python" and not trust_archive and not source.is_dir():
        actual = file_digest(source, "md5")
        if actual != PYTHON_ARCHIVE_MD5:
            raise ChecksumError(
                f"{source}: MD5 {actual}, expected the official cifar-10-python.tar.gz's "
                f"{PYTHON_ARCHIVE_MD5}. Not unpickling it, since unpickling can run code from the "
                f"file. For an archive you built yourself, pass trust_archive=True."
            )
    if kind == "binary" and not trust_archive:
        for name in expected:
            actual = hashlib.md5(files[name]).hexdigest()
            if actual != BINARY_FILE_MD5[name]:
                raise ChecksumError(
                    f"{source}: {name} has MD5 {actual}, expected the official "
                    f"{BINARY_FILE_MD5[name]} (corrupt, or not the official CIFAR-10; pass "
                    f"trust_archive=True for a data set you built)"
                )
    decode = decode_binary_batch if kind == "binary" else decode_python_batch
    meta_name = "batches.meta.txt" if kind == "binary" else "batches.meta"
    classes = _class_names(files.get(meta_name), kind == "binary", f"{source}: {meta_name}")
    splits = []
    for names in (expected[:-1], expected[-1:]):
        decoded = [decode(files[name], f"{source}: {name}", trust_archive) for name in names]
        splits.append(
            (
                np.concatenate([images for images, _ in decoded]),
                np.concatenate([labels for _, labels in decoded]),
            )
        )
    (train_images, train_labels), (test_images, test_labels) = splits
    return Cifar10(train_images, train_labels, test_images, test_labels, classes, source)


def find_cifar10(data_dir=None) -> Path | None:
    """The first CIFAR-10 archive or folder (``KNOWN_NAMES``) in ``data_dir`` (or ``$TINYCONVNEXT_DATA``),
    then in the cache folder where ``download=True`` puts it; None if there is none."""
    return find_first([default_data_dir(data_dir), cache_dir()], KNOWN_NAMES)


def require_cifar10(data_dir) -> Path:
    """The CIFAR-10 archive or folder in ``data_dir`` (or ``data_dir`` itself, when it is one). A folder the
    user named that lacks it is a mistake to report, not a reason to download: ``DataNotFoundError`` names
    the folder and what was expected there."""
    data_dir = Path(data_dir).expanduser()
    if is_archive(data_dir) or (data_dir.name in KNOWN_NAMES and data_dir.exists()):
        return data_dir
    found = find_first([data_dir], KNOWN_NAMES)
    if found is None:
        raise DataNotFoundError(
            f"CIFAR-10 not found in {data_dir}: expected cifar-10-binary.tar.gz or cifar-10-python.tar.gz "
            f"(any tar compression, e.g. .tar.xz), or the extracted {BINARY_FOLDER}/ or {PYTHON_FOLDER}/"
        )
    return found


def _find_or_download(data_dir, download: bool, progress: bool) -> Path:
    """``data_dir`` if it is a CIFAR-10 archive or batches folder itself, else the one ``find_cifar10``
    finds, else (with ``download``) the downloaded official binary archive."""
    if data_dir is not None and (is_archive(data_dir) or Path(data_dir).name in KNOWN_NAMES):
        source = Path(data_dir)
    else:
        source = find_cifar10(data_dir)
    if source is None:
        if not download:
            searched = [str(p) for p in (default_data_dir(data_dir), cache_dir()) if p is not None]
            raise DataNotFoundError(
                f"CIFAR-10 not found in {' or '.join(searched)} (looked for "
                f"{', '.join(KNOWN_NAMES)}); set TINYCONVNEXT_DATA, pass data_dir, "
                f"or pass download=True"
            )
        source = download_file(
            BINARY_URL, cache_dir() / "cifar-10-binary.tar.gz", md5=BINARY_ARCHIVE_MD5, progress=progress
        )
    return source


def _to_arrays(data: Cifar10) -> dict[str, np.ndarray]:
    """The arrays of ``data`` that the cache keeps, by name."""
    return {
        "train_images": data.train_images,
        "train_labels": data.train_labels,
        "test_images": data.test_images,
        "test_labels": data.test_labels,
        "classes": np.array(data.classes),
    }


def _from_arrays(arrays: dict[str, np.ndarray], source: Path) -> Cifar10:
    """The ``Cifar10`` of the cached ``arrays`` (``_to_arrays``'s) decoded from ``source``."""
    return Cifar10(
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        tuple(str(c) for c in arrays["classes"]),
        source,
    )


def load_cifar10(
    data_dir=None,
    *,
    download: bool = False,
    cache: bool = True,
    trust_archive: bool = False,
    mmap: bool = False,
    progress: bool = True,
) -> Cifar10:
    """CIFAR-10, found in ``data_dir`` / ``$TINYCONVNEXT_DATA`` / the cache folder, or downloaded.

    Args:
        data_dir: a folder holding one of ``KNOWN_NAMES``, or an archive or batches folder itself.
        download: if nothing is found, download the official binary archive into ``cache_dir()``.
        cache: keep the decoded arrays as ``.npy`` in ``cache_dir()/decoded`` and load them from there
            next time (keyed by the source's path, size and modification time).
        trust_archive: see ``read_cifar10``.
        mmap: memory-map the cached arrays (read-only) instead of reading them into memory.
        progress: show progress bars (download, archive reading).

    Returns:
        ``Cifar10`` with train (50,000) and test (10,000) images (N, 32, 32, 3) uint8 and int64 labels.
    """
    source = _find_or_download(data_dir, download, progress)
    if not cache:
        return read_cifar10(source, trust_archive=trust_archive, progress=progress)
    folder = decoded_dir("cifar10", source, trusted=trust_archive)
    cached = load_arrays(folder, mmap=mmap)
    if cached is not None:
        arrays, _ = cached
        return _from_arrays(arrays, source)
    data = read_cifar10(source, trust_archive=trust_archive, progress=progress)
    try:
        save_arrays(folder, _to_arrays(data), info={"source": str(source)})
    except OSError as error:
        warnings.warn(f"could not cache decoded CIFAR-10 in {folder}: {error}", stacklevel=2)
    return data
