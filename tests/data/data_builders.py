"""Small data sets in the official layouts, built by the tests: CIFAR-10 (binary and pickle) and
Imagenette."""

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from tinyconvnext.data import cifar

CIFAR_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
RECORDS = 4  # per batch file


def md5(path_or_bytes) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return hashlib.md5(data).hexdigest()


def make_tar(folder: Path, archive: Path) -> Path:
    """``folder`` (with its name as the top folder) as a tar with the compression its suffix names."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    mode = {".gz": "w:gz", ".tgz": "w:gz", ".xz": "w:xz", ".bz2": "w:bz2", ".tar": "w"}[archive.suffix]
    with tarfile.open(archive, mode) as tar:
        tar.add(folder, arcname=folder.name)
    return archive


# --- CIFAR-10 ---------------------------------------------------------------------------------------------


def cifar_batches(seed=0):
    """{file: (images (N, 32, 32, 3) uint8, labels (N,) int64)} for the six batch files."""
    rng = np.random.default_rng(seed)
    return {
        name: (
            rng.integers(0, 256, (RECORDS, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, 10, RECORDS).astype(np.int64),
        )
        for name in CIFAR_FILES
    }


def channel_major(images):
    """(N, 32, 32, 3) -> (N, 3072): all red bytes, then green, then blue, as both official formats store."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_binary_folder(root: Path, batches) -> Path:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, (images, labels) in batches.items():
        records = np.concatenate([labels.astype(np.uint8)[:, None], channel_major(images)], axis=1)
        (folder / f"{name}.bin").write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(cifar.CLASSES) + "\n\n")
    return folder


def write_python_folder(root: Path, batches) -> Path:
    """Pickles shaped like the official (Python 2) ones; protocol 2 as they used."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, (images, labels) in batches.items():
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in labels],
            b"data": channel_major(images),
            b"filenames": [f"{i}.png".encode() for i in range(len(labels))],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [c.encode() for c in cifar.CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


# --- Imagenette ---------------------------------------------------------------------------------------------


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def noise_image(width, height, mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "CMYK": 4}[mode]
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode=mode)


# (path below the root, JPEG kind): three classes, one greyscale and one CMYK image, one corrupt file
NETTE_FILES = [
    ("train/n01440764/a.JPEG", ("RGB", 40, 30)),
    ("train/n01440764/b.JPEG", ("L", 24, 48)),
    ("train/n02102040/c.JPEG", ("RGB", 32, 32)),
    ("train/n02102040/broken.JPEG", "corrupt"),
    ("train/n03888257/d.JPEG", ("CMYK", 50, 20)),
    ("val/n01440764/e.JPEG", ("RGB", 20, 36)),
    ("val/n03888257/f.JPEG", ("RGB", 64, 48)),
]


def write_imagenette_folder(root: Path, name="imagenette2-160") -> Path:
    folder = root / name
    for seed, (relative, kind) in enumerate(NETTE_FILES):
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "corrupt":
            path.write_bytes(jpeg_bytes(noise_image(30, 30))[:200])  # a JPEG cut after its header
        else:
            mode, width, height = kind
            path.write_bytes(jpeg_bytes(noise_image(width, height, mode, seed)))
    (folder / "noisy_imagenette.csv").write_text("path,noisy_labels_0,is_valid\n")
    return folder
