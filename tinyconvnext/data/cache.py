"""The decoded-array cache: data sets decoded once, then loaded from ``.npy`` files in seconds.

Decoding an archive (decompressing, checking, unpacking records or JPEGs) takes from seconds to minutes;
loading the same arrays from ``.npy`` files takes well under a second. Each decoded data set gets a folder
``cache_dir()/decoded/<dataset>-<key>/`` where the key hashes the source's identity (resolved path, size and
modification time of the archive, or of every file of an extracted folder) and the decoding options, so a
changed source or option decodes again instead of loading stale arrays.

* Arrays are plain ``.npy`` files loaded with ``allow_pickle=False``: loading a cache never runs code.
* Every file is written to a temporary name and renamed with ``os.replace``; ``manifest.json``, which lists
  each array's shape and dtype, is written last. A folder without a manifest, or whose arrays disagree
  with it, is an unfinished or damaged cache: it is ignored and decoded again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .download import cache_dir

CACHE_FORMAT = 1
MANIFEST = "manifest.json"


def source_identity(path) -> str:
    """A short hash of what the source is: its resolved path, size and mtime (every file's, for a folder)."""
    path = Path(path).resolve()
    parts = [str(path)]
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = file.stat()
            parts.append(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}")
    else:
        stat = path.stat()
        parts.append(f"{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def decoded_dir(dataset: str, source, **options) -> Path:
    """The cache folder of ``dataset`` decoded from ``source`` with ``options``."""
    description = "|".join(
        [f"format={CACHE_FORMAT}", source_identity(source)]
        + [f"{name}={options[name]}" for name in sorted(options)]
    )
    return cache_dir() / "decoded" / f"{dataset}-{hashlib.sha256(description.encode()).hexdigest()[:16]}"


def temporary_beside(path: Path) -> Path:
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    return Path(name)


def save_npy(path, array: np.ndarray) -> None:
    """``np.save`` to a temporary name, then an atomic rename to ``path``."""
    path = Path(path)
    temporary = temporary_beside(path)
    try:
        with open(temporary, "wb") as file:
            np.save(file, np.asarray(array), allow_pickle=False)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def uint8_npy_header(length: int) -> bytes:
    """The ``.npy`` header of a 1-D uint8 array of ``length`` bytes.

    Its size does not depend on ``length`` (NumPy pads the first dimension to room for 21 digits, so that
    files can grow): a file can be written with the header for 0 and get the final one at the end.
    """
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|u1", "fortran_order": False, "shape": (length,)})
    return buffer.getvalue()


def save_arrays(
    folder,
    arrays: dict[str, np.ndarray],
    info: dict | None = None,
    written: dict[str, np.ndarray] | None = None,
) -> None:
    """Save ``arrays`` as ``folder/NAME.npy`` and then the manifest (listing them and ``written``).

    ``written`` names arrays already saved in the folder by the caller (large ones streamed to disk).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        save_npy(folder / f"{name}.npy", array)
    listed = {**(written or {}), **arrays}
    manifest = {
        "format": CACHE_FORMAT,
        "info": info or {},
        "arrays": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in listed.items()},
    }
    temporary = temporary_beside(folder / MANIFEST)
    try:
        temporary.write_text(json.dumps(manifest, indent=1))
        os.replace(temporary, folder / MANIFEST)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_arrays(folder, mmap: bool = False) -> tuple[dict[str, np.ndarray], dict] | None:
    """The arrays and info of a finished cache folder, or ``None`` if it is absent, unfinished or damaged."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        warnings.warn(
            f"{folder / MANIFEST}: unreadable cache manifest ({error}); decoding again", stacklevel=2
        )
        return None
    arrays = {}
    try:
        for name, spec in manifest["arrays"].items():
            array = np.load(folder / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
            if list(array.shape) != spec["shape"] or str(array.dtype) != spec["dtype"]:
                raise ValueError(
                    f"{name}.npy is {array.dtype} {list(array.shape)}, the manifest says "
                    f"{spec['dtype']} {spec['shape']}"
                )
            arrays[name] = array
    except (OSError, ValueError, KeyError, TypeError) as error:
        warnings.warn(f"{folder}: damaged cache ({error}); decoding again", stacklevel=2)
        return None
    return arrays, manifest.get("info", {})
