"""Loading and saving ConvNeXt weights: official PyTorch ``.pth`` checkpoints and our ``.npz`` format.

* Official checkpoints (``convnext_tiny_1k_224_ema.pth`` ...) hold ``{"model": state_dict}``; a bare state
  dict and keys prefixed ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile) are accepted too.
  They are read with ``torch.load(path, map_location="cpu", weights_only=True)``, which refuses to run
  pickled code. PyTorch is needed only here.
* Our format is a plain ``.npz`` of float arrays by parameter name, read with ``allow_pickle=False``: no
  PyTorch, no code execution. ``python -m tinyconvnext.convert IN.pth OUT.npz`` converts once.

Loading is all or nothing: the whole checkpoint is read and checked against the model (every missing,
unexpected or mis-shaped key is reported at once) before any parameter changes.
"""

from __future__ import annotations

import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .checkpoint import write_npz_atomically

OFFICIAL_URLS = {
    "convnext_tiny_1k": "https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth",
    "convnext_small_1k": "https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224_ema.pth",
    "convnext_base_1k": "https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224_ema.pth",
    "convnext_large_1k": "https://dl.fbaipublicfiles.com/convnext/convnext_large_1k_224_ema.pth",
    "convnext_tiny_22k": "https://dl.fbaipublicfiles.com/convnext/convnext_tiny_22k_224.pth",
    "convnext_small_22k": "https://dl.fbaipublicfiles.com/convnext/convnext_small_22k_224.pth",
    "convnext_base_22k": "https://dl.fbaipublicfiles.com/convnext/convnext_base_22k_224.pth",
    "convnext_large_22k": "https://dl.fbaipublicfiles.com/convnext/convnext_large_22k_224.pth",
    "convnext_xlarge_22k": "https://dl.fbaipublicfiles.com/convnext/convnext_xlarge_22k_224.pth",
}

_PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the model."""


def _strip_prefixes(state_dict) -> OrderedDict[str, object]:
    out = OrderedDict()
    for key, value in state_dict.items():
        changed = True
        while changed:
            changed = False
            for prefix in _PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def read_official_checkpoint(path) -> OrderedDict[str, np.ndarray]:
    """The state dict of an official ``.pth`` file, as float32 NumPy arrays by name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading the PyTorch checkpoint {path} needs PyTorch: "
            "pip install torch==2.13.0 (CPU is enough), "
            "or convert it once on a machine that has it: python -m tinyconvnext.convert IN.pth OUT.npz"
        ) from None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle, refused object ...
        raise CheckpointError(
            f"cannot read checkpoint {path}: it is truncated, corrupt or not a PyTorch file "
            f"({type(error).__name__}: {error})"
        ) from None
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        checkpoint = checkpoint["model"]
    elif isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(hasattr(v, "shape") for v in checkpoint.values()):
        raise CheckpointError(
            f"checkpoint {path} holds no state dict (expected {{'model': state_dict}} or a state dict)"
        )
    return OrderedDict((k, v.detach().cpu().numpy()) for k, v in _strip_prefixes(checkpoint).items())


def read_npz(path) -> OrderedDict[str, np.ndarray]:
    """Our ``.npz`` format, read without unpickling anything."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return OrderedDict((name, archive[name]) for name in archive.files)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(
            f"cannot read weights file {path}: truncated or corrupt ({type(error).__name__}: {error})"
        ) from None


def read_weights(path) -> OrderedDict[str, np.ndarray]:
    """Read ``.npz`` (ours) or ``.pth``/``.pt``/``.bin`` (official PyTorch) by the file's suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return _strip_prefixes(read_npz(path))
    if suffix in (".pth", ".pt", ".bin", ".ckpt"):
        return read_official_checkpoint(path)
    raise CheckpointError(
        f"unknown weights format {suffix!r} for {path}: expected .npz (ours) or .pth (official)"
    )


def num_classes_of(state_dict, default: int = 1000) -> int:
    """The number of classes of a checkpoint's classifier (ConvNeXt's ``head.weight`` or ResNet's
    ``fc.weight``, of shape (num_classes, width))."""
    head = state_dict.get("head.weight", state_dict.get("fc.weight"))
    return int(head.shape[0]) if head is not None else default


def _explain_head_mismatch(model, state_dict) -> str:
    name = "fc" if hasattr(model, "fc") else "head"  # the classifier: ResNet's fc, ConvNeXt's head
    head = state_dict.get(f"{name}.weight")
    if (
        head is not None
        and tuple(head.shape[1:]) == getattr(model, name).weight.shape[1:]
        and head.shape[0] != model.num_classes
    ):
        return (
            f"\n  the checkpoint's head has {head.shape[0]} classes but the model has {model.num_classes}: "
            f"create the model with num_classes={head.shape[0]}"
        )
    return ""


def load_state(model, state_dict, source="state dict") -> None:
    """Load a full state dict strictly; on mismatch raise ``CheckpointError`` listing every bad key."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except KeyError as error:
        message = error.args[0]
        raise CheckpointError(
            f"{source} does not fit {getattr(model, 'variant', type(model).__name__)}: {message}"
            + _explain_head_mismatch(model, state_dict)
        ) from None


def load_official(model, path) -> None:
    """Load an official ConvNeXt ``.pth`` checkpoint into ``model`` (all or nothing)."""
    load_state(model, read_official_checkpoint(path), source=f"checkpoint {path}")


def load_weights(model, path) -> None:
    """Load ``.npz`` (ours) or ``.pth`` (official) weights into ``model`` (all or nothing)."""
    load_state(model, read_weights(path), source=f"weights file {path}")


def save_npz(state_dict_or_model, path) -> Path:
    """Write weights as ``.npz``, atomically: a temporary file in the same folder, then a rename."""
    state_dict = (
        state_dict_or_model.state_dict()
        if hasattr(state_dict_or_model, "state_dict")
        else state_dict_or_model
    )
    return write_npz_atomically(path, {k: np.asarray(v) for k, v in state_dict.items()})
