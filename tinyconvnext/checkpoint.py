"""Training checkpoints: everything needed to continue a run exactly, in a file that runs no code.

A checkpoint is an ``.npz`` of arrays (model, EMA and optimizer state, by dotted name) plus one entry,
``__meta__``, holding JSON text (epoch, step, configuration, optimizer hyper-parameters, random generator
states, metrics so far). It is read with ``allow_pickle=False``, and written atomically: a temporary file in
the same folder, flushed to disk, then renamed over the old checkpoint. A crash mid-write leaves the
previous checkpoint intact. Arrays on the GPU (CuPy) are copied to the host as they are saved; loading
gives NumPy arrays, which ``load_state_dict`` methods move to their model's device.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from autograd.backend import device_of, to_numpy

META_KEY = "__meta__"


def flatten(tree: dict, prefix: str = "") -> tuple[dict, object]:
    """Split a nested dict into {dotted name: array} and a JSON-able skeleton with the other values."""
    arrays, skeleton = {}, {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if device_of(value) != "cpu":  # a CuPy array: save its values from the host
            value = to_numpy(value)
        if isinstance(value, dict):
            sub_arrays, sub_skeleton = flatten(value, f"{name}/")
            arrays.update(sub_arrays)
            skeleton[str(key)] = sub_skeleton
        elif isinstance(value, np.ndarray) and value.ndim > 0:
            arrays[name] = value
            skeleton[str(key)] = {"__array__": name}
        elif isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
            skeleton[str(key)] = value.item()
        else:
            skeleton[str(key)] = value
    return arrays, skeleton


def unflatten(skeleton, arrays):
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__array__"}:
            return arrays[skeleton["__array__"]]
        return {key: unflatten(value, arrays) for key, value in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten(v, arrays) for v in skeleton]
    return skeleton


def save_checkpoint(path, state: dict) -> Path:
    """Write a nested dict of arrays and JSON values atomically."""
    arrays, skeleton = flatten(state)
    arrays[META_KEY] = np.frombuffer(json.dumps(skeleton).encode("utf-8"), dtype=np.uint8)
    return write_npz_atomically(path, arrays)


def _mode_for(path: Path) -> int:
    """The permissions ``path`` gets: those of the file it replaces, else those of a plain ``open(path,
    "w")`` (0o666 less the process's umask, which can only be read by setting it)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path, write) -> Path:
    """``write(file)`` into a temporary file in ``path``'s folder, flushed to disk, then renamed over
    ``path``: a reader sees the old file or the new one, never half of one, and a failure (a full disk, an
    exception in ``write``) leaves the old file as it was. The file gets the permissions of the one it
    replaces, or of a file written with ``open``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)  # mkstemp's file is private (0o600); the file it becomes need not be
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_npz_atomically(path, arrays: dict) -> Path:
    """``np.savez`` of ``arrays``, written atomically (``write_atomically``)."""
    return write_atomically(path, lambda f: np.savez(f, **arrays))


def write_text_atomically(path, text: str) -> Path:
    """UTF-8 text, written atomically (``write_atomically``)."""
    return write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by ``save_checkpoint``; a damaged file raises ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        skeleton = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
        if not isinstance(skeleton, dict):
            raise ValueError(f"its {META_KEY} is not a JSON object")
        return unflatten(skeleton, arrays)  # a KeyError: an array that __meta__ names is missing
    except (ValueError, OSError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(
            f"cannot read checkpoint {path}: truncated or corrupt ({type(error).__name__}: {error})"
        ) from None
