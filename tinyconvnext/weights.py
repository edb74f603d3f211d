"""Loading and saving ConvNeXt weights: ``.safetensors`` (ours and timm's), official ``.pth``, our ``.npz``.

* ``.safetensors`` (safetensors_io.py): read with NumPy, no PyTorch, no code execution. Our files carry the
  official names and, as metadata, the variant, the number of classes and the preprocessing; timm's (the
  Hugging Face Hub's ``model.safetensors``) carry timm's names, which are renamed on reading
  (weight_names.py). ``save_safetensors`` writes ours; training runs save ``model.safetensors`` with it.
* Official checkpoints (``convnext_tiny_1k_224_ema.pth`` ...) hold ``{"model": state_dict}``; a bare state
  dict and keys prefixed ``module.`` (DataParallel) or ``_orig_mod.`` (torch.compile) are accepted too.
  They are read with ``torch.load(path, map_location="cpu", weights_only=True)``, which refuses to run
  pickled code. PyTorch is needed only here.
* ``.npz``: a plain archive of float arrays by name, read with ``allow_pickle=False``; a training run's
  ``checkpoint.npz`` (checkpoint.py) is recognised, and its model (or EMA) weights are taken from it.
* ``python -m tinyconvnext.convert IN OUT.safetensors`` converts any of them once.

Loading is all or nothing: the whole file is read and checked against the model before any parameter
changes; a mismatch is one error with the counts of missing, unexpected and mis-shaped keys, the first few
of each, and the variant (and number of classes) that the file fits, where one does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .augment import CIFAR10_MEAN, CIFAR10_STD
from .checkpoint import META_KEY, load_checkpoint, write_npz_atomically
from .images import IMAGENET_EVAL, Preprocessing
from .safetensors_io import SafetensorsError, read_safetensors
from .safetensors_io import save_safetensors as _write_safetensors
from .variant_table import VARIANTS
from .weight_names import TIMM_STEMS as TIMM_STEMS  # the name table, for lesson 09
from .weight_names import TIMM_TO_OFFICIAL as TIMM_TO_OFFICIAL
from .weight_names import architecture_of, fitting_variants, to_official_names

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
    """The state dict of an official ``.pth`` file as NumPy arrays by name: floating tensors (bfloat16 and
    float16 too, which NumPy lacks or computes slowly) as float32, integer buffers as they are."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading the PyTorch checkpoint {path} needs PyTorch: "
            "pip install torch==2.13.0 (CPU is enough), or convert it once on a machine that has it: "
            "python -m tinyconvnext.convert IN.pth OUT.safetensors"
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
    return OrderedDict(
        (k, (v.float() if v.is_floating_point() else v).detach().cpu().numpy())
        for k, v in _strip_prefixes(checkpoint).items()
    )


def read_npz(path) -> OrderedDict[str, np.ndarray]:
    """An ``.npz`` archive's arrays by name, read without unpickling anything."""
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


@dataclasses.dataclass
class WeightsFile:
    """What a weights file holds: the state dict (official names) and what the file says about it.

    variant, num_classes, preprocessing: as recorded in the file (safetensors metadata, or a training run's
        configuration); ``variant`` and ``preprocessing`` are None where the file does not say.
    training_config: a training run's configuration (its ``checkpoint.npz`` or ``model.safetensors``), with
        which the exact model of the run is rebuilt; None for other files.
    description: which weights these are, for messages ("the EMA weights of training checkpoint ...").
    """

    state_dict: OrderedDict[str, np.ndarray]
    variant: str | None
    num_classes: int
    preprocessing: Preprocessing | None
    training_config: dict | None
    description: str


def run_preprocessing(config: dict) -> Preprocessing:
    """The evaluation preprocessing of a training run (its configuration as a dict): CIFAR images resized
    whole to the test size with CIFAR's mean and std; ImageNet-style images resized to the test size over
    ``eval_crop_pct`` and centre-cropped, with ImageNet's."""
    crop = int(config.get("eval_image_size") or config.get("image_size") or 32)
    if config.get("dataset", "cifar10") == "cifar10":
        return Preprocessing(crop, crop, tuple(CIFAR10_MEAN.tolist()), tuple(CIFAR10_STD.tolist()))
    return dataclasses.replace(
        IMAGENET_EVAL, resize=math.floor(crop / config.get("eval_crop_pct", 0.875)), crop=crop
    )


def default_preprocessing(variant: str | None) -> Preprocessing:
    """Where a file records none: CIFAR's for the ``cifar`` variants (32 px), else the official one."""
    if variant and "cifar" in variant:
        return run_preprocessing({"dataset": "cifar10", "image_size": 32})
    return IMAGENET_EVAL


def weights_metadata(
    variant, num_classes: int, preprocessing: Preprocessing | None = None, config=None
) -> dict:
    """The metadata that ``save_safetensors`` records: the variant, the number of classes, the preprocessing
    (``resize``, ``image_size``: the crop, ``mean``, ``std``) and, for a training run, its configuration."""
    p = preprocessing or default_preprocessing(variant)
    metadata = {"num_classes": num_classes, "resize": p.resize, "image_size": p.crop}
    if variant is not None:
        metadata["variant"] = variant
    metadata.update(mean=[round(float(v), 6) for v in p.mean], std=[round(float(v), 6) for v in p.std])
    if config is not None:
        metadata["training_config"] = config if isinstance(config, dict) else dataclasses.asdict(config)
    return metadata


RECORDED = ("num_classes", "resize", "image_size", "mean", "std", "training_config")  # JSON, in metadata


def _from_metadata(state_dict, metadata: dict, path) -> WeightsFile:
    try:
        values = {k: json.loads(v) for k, v in metadata.items() if k in RECORDED}
        preprocessing = None
        if "image_size" in values:
            preprocessing = Preprocessing(
                int(values.get("resize", values["image_size"])),
                int(values["image_size"]),
                tuple(float(v) for v in values.get("mean", IMAGENET_EVAL.mean)),
                tuple(float(v) for v in values.get("std", IMAGENET_EVAL.std)),
            )
        num_classes = int(values.get("num_classes", 0))  # 0: counted from the head, once names are official
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: unreadable metadata ({error})") from None
    return WeightsFile(
        state_dict,
        metadata.get("variant"),
        num_classes,
        preprocessing,
        values.get("training_config"),
        f"weights file {path}",
    )


def _is_training_checkpoint(path) -> bool:
    """Whether an ``.npz`` is a training run's checkpoint (it has ``__meta__``), from its names alone."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return META_KEY in archive.files
    except (ValueError, OSError, zipfile.BadZipFile, EOFError):
        return False  # read_npz names the problem


def _from_training_checkpoint(path, ema: bool) -> WeightsFile:
    try:
        state = load_checkpoint(path)
    except ValueError as error:
        raise CheckpointError(str(error)) from None
    if ema and not state.get("ema"):
        raise CheckpointError(
            f"{path} holds no EMA weights (the run was trained without --ema-decay): leave out --ema"
        )
    try:
        weights = OrderedDict(state["ema" if ema else "model"])
        config = state["config"]
    except KeyError as error:
        raise CheckpointError(f"{path} is not a whole training checkpoint: it has no {error} entry") from None
    which = "EMA weights" if ema else "model weights"
    return WeightsFile(
        weights,
        config.get("model"),
        num_classes_of(weights),
        run_preprocessing(config),
        config,
        f"the {which} of training checkpoint {path} (epoch {state.get('epoch', '?')})",
    )


def read_weights_file(path, ema: bool = False) -> WeightsFile:
    """Read any weights file we know, by its suffix: ``.safetensors`` (ours or timm's), ``.npz`` (ours, or a
    training run's ``checkpoint.npz``: its model weights, or with ``ema=True`` its EMA weights),
    ``.pth``/``.pt``/``.bin``/``.ckpt`` (official PyTorch). Names are made official (timm's renamed)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        if _is_training_checkpoint(path):
            return _from_training_checkpoint(path, ema)
        loaded = WeightsFile(_strip_prefixes(read_npz(path)), None, 0, None, None, f"weights file {path}")
    elif suffix == ".safetensors":
        try:
            state_dict, metadata = read_safetensors(path)
        except SafetensorsError as error:
            raise CheckpointError(str(error)) from None
        loaded = _from_metadata(_strip_prefixes(state_dict), metadata, path)
    elif suffix in (".pth", ".pt", ".bin", ".ckpt"):
        loaded = WeightsFile(read_official_checkpoint(path), None, 0, None, None, f"checkpoint {path}")
    else:
        raise CheckpointError(
            f"unknown weights format {suffix!r} for {path}: "
            "expected .safetensors, .npz (ours) or .pth (official)"
        )
    if ema:
        raise CheckpointError(
            f"--ema takes the EMA weights of a training checkpoint; {path} is a weights file"
        )
    loaded.state_dict = to_official_names(loaded.state_dict)
    loaded.num_classes = loaded.num_classes or num_classes_of(loaded.state_dict)
    return loaded


def read_weights(path) -> OrderedDict[str, np.ndarray]:
    """The state dict (official names) of any weights file ``read_weights_file`` reads."""
    return read_weights_file(path).state_dict


def num_classes_of(state_dict, default: int = 1000) -> int:
    """The number of classes of a checkpoint's classifier (ConvNeXt's ``head.weight`` or ResNet's
    ``fc.weight``, of shape (num_classes, width))."""
    head = state_dict.get("head.weight", state_dict.get("fc.weight"))
    return int(head.shape[0]) if head is not None else default


def _first_few(keys, count: int = 5) -> str:
    shown = ", ".join(keys[:count])
    return shown + (f", and {len(keys) - count} more" if len(keys) > count else "")


def variants_that_fit(state_dict) -> list[tuple[str, int]]:
    """[(variant, num_classes), ...]: the ConvNeXt variants whose names and shapes a state dict (official
    names) has, told from ``VARIANTS`` alone, without building a model."""
    return fitting_variants(state_dict, VARIANTS)


def _fitting_hint(model, state_dict) -> str:
    """Which variant and head the weights fit, where one does ("" otherwise)."""
    for name, classes in variants_that_fit(state_dict):
        head = f"{classes} classes" + (" (an ImageNet-22k head)" if classes == 21841 else "")
        if name == getattr(model, "variant", None):
            return f"the file has a head of {head}: create the model with num_classes={classes}"
        return f"the file holds {name} weights with {head}"
    name = "fc" if hasattr(model, "fc") else "head"  # the classifier: ResNet's fc, ConvNeXt's head
    head = state_dict.get(f"{name}.weight")
    classifier = getattr(model, name)
    if (
        head is not None
        and tuple(head.shape[1:]) == classifier.weight.shape[1:]
        and head.shape[0] != model.num_classes
    ):
        return (
            f"the checkpoint's head has {head.shape[0]} classes but the model has {model.num_classes}: "
            f"create the model with num_classes={head.shape[0]}"
        )
    return ""


def _foreign_architecture(model, state_dict) -> str:
    """What the weights are when they are not the model's kind of network ("" when they are, or unknown)."""
    kind = architecture_of(state_dict)
    model_kind = "ResNet" if hasattr(model, "fc") else "ConvNeXt"
    if kind == "unknown":
        return f"its names are not a {model_kind}'s (the first: {_first_few(list(state_dict), 3)})"
    return "" if kind.startswith(model_kind) else f"it holds {kind} weights, not a {model_kind}'s"


def mismatch(model, state_dict) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped) keys of a state dict against a model's parameters and buffers."""
    own = OrderedDict((k, tuple(t.shape)) for k, t in [*model.named_parameters(), *model.named_buffers()])
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mis_shaped = [
        f"{k}: checkpoint {tuple(np.shape(state_dict[k]))}, model {own[k]}"
        for k in own
        if k in state_dict and tuple(np.shape(state_dict[k])) != own[k]
    ]
    return missing, unexpected, mis_shaped


def load_state(model, state_dict, source="state dict") -> None:
    """Load a full state dict strictly, or raise one ``CheckpointError`` (nothing loaded) that says what the
    weights are where they are not the model's: another architecture, another variant or another head;
    then the counts and the first few missing, unexpected and mis-shaped keys."""
    missing, unexpected, mis_shaped = mismatch(model, state_dict)
    if not (missing or unexpected or mis_shaped):
        model.load_state_dict(state_dict, strict=True)
        return
    target = getattr(model, "variant", type(model).__name__)
    foreign = _foreign_architecture(model, state_dict)
    if foreign:
        raise CheckpointError(f"{source} does not fit {target}: {foreign}; nothing was loaded")
    parts = [
        f"{len(keys)} {kind} keys ({_first_few(keys)})"
        for kind, keys in (("missing", missing), ("unexpected", unexpected))
        if keys
    ]
    if mis_shaped:
        more = "; ..." if len(mis_shaped) > 5 else ""
        parts.append(f"{len(mis_shaped)} mis-shaped keys ({'; '.join(mis_shaped[:5])}{more})")
    hint = _fitting_hint(model, state_dict)
    raise CheckpointError(
        f"{source} does not fit {target}{f' ({hint})' if hint else ''}, nothing was loaded: "
        + "; ".join(parts)
    )


def load_official(model, path) -> None:
    """Load an official ConvNeXt ``.pth`` checkpoint into ``model`` (all or nothing)."""
    load_state(model, to_official_names(read_official_checkpoint(path)), source=f"checkpoint {path}")


def load_weights(model, path) -> None:
    """Load any weights file ``read_weights_file`` reads into ``model`` (all or nothing)."""
    loaded = read_weights_file(path)
    load_state(model, loaded.state_dict, source=loaded.description)


def _state_dict_of(state_dict_or_model) -> dict:
    if hasattr(state_dict_or_model, "state_dict"):
        return state_dict_or_model.state_dict()
    return state_dict_or_model


def save_npz(state_dict_or_model, path) -> Path:
    """Write weights as ``.npz``, atomically: a temporary file in the same folder, then a rename."""
    return write_npz_atomically(
        path, {k: np.asarray(v) for k, v in _state_dict_of(state_dict_or_model).items()}
    )


def save_safetensors(state_dict_or_model, path, metadata: dict | None = None) -> Path:
    """Write weights as ``.safetensors`` with official names, atomically. ``metadata`` (``weights_metadata``)
    defaults, for a model, to its variant, its number of classes and the variant's default preprocessing."""
    state_dict = to_official_names(_state_dict_of(state_dict_or_model))
    if metadata is None and hasattr(state_dict_or_model, "state_dict"):
        model = state_dict_or_model
        variant = getattr(model, "variant", None)
        metadata = weights_metadata(variant, num_classes_of(state_dict), default_preprocessing(variant))
    return _write_safetensors(state_dict, path, metadata)
