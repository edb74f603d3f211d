"""Reading and writing ``.safetensors`` weight files with NumPy alone (no PyTorch, no code execution).

A safetensors file is 8 bytes (the header's length, little-endian), a JSON header ({name: {"dtype", "shape",
"data_offsets"}, "__metadata__": {str: str}}), then the raw bytes of every tensor. The header is checked
against the file before anything else is read, so that a truncated file, a header that promises more bytes
than the file has, or tensors of a non-float dtype (but BatchNorm's integer batch count) are refused with one
line naming the file and the problem; then ``safetensors.numpy`` reads the arrays.

Files we write carry official names and, in ``__metadata__``, what is needed to use them: the variant, the
number of classes and the evaluation preprocessing (``resize``, ``image_size``, ``mean``, ``std``).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from autograd.backend import to_numpy

from .checkpoint import write_atomically

FLOAT_DTYPES = ("F16", "F32", "F64")
# The one integer tensor a state dict holds: BatchNorm's count of batches seen (PyTorch's int64 buffer).
INTEGER_BUFFER, INTEGER_DTYPES = ".num_batches_tracked", ("I64", "I32")


class SafetensorsError(ValueError):
    """A ``.safetensors`` file that is truncated, corrupt, or holds something that is not float weights."""


def _read_header(path: Path) -> dict:
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SafetensorsError(f"cannot read {path}: {size} bytes is too short for a safetensors file")
        header_size = int.from_bytes(prefix, "little")
        if 8 + header_size > size:
            raise SafetensorsError(
                f"cannot read {path}: its header claims {header_size} bytes but the file has only {size}: "
                "truncated or not a safetensors file"
            )
        text = f.read(header_size)
    try:
        header = json.loads(text.decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (UnicodeDecodeError, ValueError) as error:
        raise SafetensorsError(f"cannot read {path}: corrupt header ({error})") from None
    _check_tensors(path, header, size - 8 - header_size)
    return header


def _whole_numbers(value) -> bool:
    """A JSON list of integers of at least 0 (``true`` is no number here)."""
    return isinstance(value, list) and all(type(v) is int and v >= 0 for v in value)


def _check_tensors(path: Path, header: dict, data_size: int) -> None:
    """Every entry is a float tensor, its shape and offsets whole numbers, whose bytes lie inside the file."""
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise SafetensorsError(f"cannot read {path}: corrupt header entry {name!r}")
        offsets, shape = entry["data_offsets"], entry["shape"]
        if not (_whole_numbers(offsets) and len(offsets) == 2 and offsets[0] <= offsets[1]):
            raise SafetensorsError(
                f"cannot read {path}: tensor {name!r} has data_offsets {offsets!r}: expected [begin, end], "
                "two whole numbers"
            )
        if not _whole_numbers(shape):
            raise SafetensorsError(
                f"cannot read {path}: tensor {name!r} has shape {shape!r}: expected a list of whole numbers"
            )
        integer_buffer = name.endswith(INTEGER_BUFFER) and entry["dtype"] in INTEGER_DTYPES
        if entry["dtype"] not in FLOAT_DTYPES and not integer_buffer:
            raise SafetensorsError(
                f"{path}: tensor {name!r} has dtype {entry['dtype']}; weights must be one of "
                f"{', '.join(FLOAT_DTYPES)} (BF16 too needs converting to F32 first; only BatchNorm's "
                f"{INTEGER_BUFFER[1:]} may be an integer)"
            )
        end = entry["data_offsets"][1]
        if end > data_size:
            raise SafetensorsError(
                f"cannot read {path}: tensor {name!r} ends at byte {end} of the data, which has only "
                f"{data_size}: the file is truncated"
            )


def read_safetensors(path) -> tuple[OrderedDict[str, np.ndarray], dict[str, str]]:
    """(state dict of NumPy arrays in the file's order, metadata) of a ``.safetensors`` file; refuses a
    damaged file or non-float tensors with ``SafetensorsError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    header = _read_header(path)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except (SafetensorError, ValueError, OSError) as error:
        raise SafetensorsError(f"cannot read {path}: corrupt ({type(error).__name__}: {error})") from None
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    metadata = header.get("__metadata__") or {}
    return OrderedDict((k, arrays[k]) for k in order), {str(k): str(v) for k, v in metadata.items()}


def save_safetensors(state_dict, path, metadata: dict | None = None) -> Path:
    """Write a state dict (name: array) as ``.safetensors``, atomically, with ``metadata`` (its values are
    written as JSON unless they are strings) and ``"format": "pt"`` (the layouts are PyTorch's, so
    ``safetensors.torch.load_file`` reads it too)."""
    from safetensors.numpy import save

    # host arrays (a model trained with CuPy too); np.array, not np.ascontiguousarray, which makes a 0-d
    # value (a BatchNorm's count) 1-d
    arrays = {name: np.array(to_numpy(value), order="C") for name, value in state_dict.items()}
    text = {"format": "pt"}
    for key, value in (metadata or {}).items():
        text[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return write_atomically(path, lambda f: f.write(save(arrays, metadata=text)))
