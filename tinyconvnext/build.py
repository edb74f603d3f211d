"""Building a run's parts from its configuration: the device, the model, the optimizer, the processes.

model = build_model(config, num_classes, config.drop_path)   # the architecture, as the paper writes it
model.fuse()                                                 # the fast fused ops, the same numbers
"""

from __future__ import annotations

import importlib.util
import os

from autograd import optim
from autograd.backend import cupy_available

from . import cli
from .config import OPTIMIZERS
from .roadmap import ROADMAP_MODELS
from .variants import RESNET_VARIANTS, create_model


class BackendUnavailable(cli.UsageError):
    """A backend asked for that this machine cannot run (CuPy missing, or no GPU): the user's choice to
    change, so a command answers it with one line and exit status 2."""


def device_for(backend: str) -> str:
    """The device of a backend ('numpy': 'cpu', 'cupy': 'cuda'), checked before any data is loaded."""
    if backend not in ("numpy", "cupy"):
        raise ValueError(f"unknown backend {backend!r}: expected 'numpy' or 'cupy'")
    if backend == "cupy" and not cupy_available():
        reason = (
            "CuPy is not installed (pip install cupy-cuda12x, for CUDA 12)"
            if importlib.util.find_spec("cupy") is None
            else "CuPy is installed but sees no GPU"
        )
        raise BackendUnavailable(f"--backend cupy needs CuPy and an NVIDIA GPU: {reason}")
    return "cuda" if backend == "cupy" else "cpu"


def resolve_processes(config) -> int:
    """``--processes``, with 0 meaning "auto": one per usable CPU core for the NumPy backend (keeping at least
    16 images per process), 1 for CuPy. A run's numbers depend on its number of processes, as a PyTorch
    run's depend on its world size: pass --processes to reproduce a run on another machine."""
    if config.processes < 0:
        raise ValueError(f"--processes must be at least 1, or 0 for one per CPU core; got {config.processes}")
    if config.processes:
        return config.processes
    if config.backend != "numpy":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, config.batch_size // 16))


def _resnet_overrides(config) -> dict:
    """A ResNet's overrides (depths, and dims as its widths), after refusing the ConvNeXt-only options."""
    convnext_only = [
        flag
        for flag, value in (
            ("--patch-size", config.patch_size),
            ("--kernel-size", config.kernel_size),
            ("--stem-type", config.stem_type != "patch"),
            ("--norm-layer", config.norm_layer != "layer"),
            ("--stem-norm-layer", config.stem_norm_layer),
        )
        if value
    ]
    if convnext_only:
        raise ValueError(f"{config.model} is a ResNet: {', '.join(convnext_only)} set(s) a ConvNeXt option")
    overrides = {}
    if config.depths:
        overrides["depths"] = tuple(int(v) for v in config.depths.split(","))
    if config.dims:
        overrides["widths"] = tuple(int(v) for v in config.dims.split(","))
    return overrides


def _roadmap_overrides(config) -> dict:
    """A roadmap network's overrides: ``--dims`` the baseline's inner widths per stage (its first, the width
    that ``roadmap_steps`` takes, or that number alone; later steps widen it themselves), and
    ``--depths`` the blocks per stage of every step; the ConvNeXt-only options refused (the step sets its
    own stem, kernel and norms, and it has no layer scale: ``--layer-scale`` 0 or its default)."""
    convnext_only = [
        flag
        for flag, value in (
            ("--patch-size", config.patch_size),
            ("--kernel-size", config.kernel_size),
            ("--stem-type", config.stem_type != "patch"),
            ("--norm-layer", config.norm_layer != "layer"),
            ("--stem-norm-layer", config.stem_norm_layer),
            ("--layer-scale", config.layer_scale not in (0, 1e-6)),
        )
        if value
    ]
    if convnext_only:
        raise ValueError(
            f"{config.model} is a step of the roadmap, which sets its own architecture: "
            f"{', '.join(convnext_only)} cannot change it"
        )
    overrides = {}
    if config.depths:
        overrides["depths"] = tuple(int(v) for v in config.depths.split(","))
    if config.dims:
        widths = [int(v) for v in config.dims.split(",")]
        if widths != [widths[0] * 2**i for i in range(len(widths))]:
            raise ValueError(
                f"--dims for {config.model} are the baseline's inner widths per stage, each twice the one "
                f"before (e.g. 16,32,64,128, or 16 alone), got {config.dims!r}"
            )
        overrides["width"] = widths[0]
    return overrides


def _convnext_overrides(config) -> dict:
    """The ConvNeXt options that differ from the variant's own: depths, dims, patch, kernel, stem, norms."""
    overrides = {"layer_scale_init_value": config.layer_scale}
    if config.depths:
        overrides["depths"] = tuple(int(v) for v in config.depths.split(","))
    if config.dims:
        overrides["dims"] = tuple(int(v) for v in config.dims.split(","))
    if config.patch_size:
        overrides["patch_size"] = config.patch_size
    if config.kernel_size:
        overrides["kernel_size"] = config.kernel_size
    if config.stem_type != "patch":
        overrides["stem_type"] = config.stem_type
    if config.norm_layer != "layer":
        overrides["norm_layer"] = config.norm_layer
    if config.stem_norm_layer:
        overrides["stem_norm_layer"] = config.stem_norm_layer
    return overrides


def build_model(config, num_classes, drop_path_rate=0.0):
    """The configured variant, with any depths/dims/patch-size/kernel-size/stem overrides (for a ResNet:
    depths and dims, its widths; for a roadmap network: depths, and dims as its width)."""
    if config.model in RESNET_VARIANTS:
        overrides = _resnet_overrides(config)
    elif config.model in ROADMAP_MODELS:
        overrides = _roadmap_overrides(config)
    else:
        overrides = _convnext_overrides(config)
    return create_model(config.model, num_classes=num_classes, drop_path_rate=drop_path_rate, **overrides)


def build_fused_model(config, num_classes, drop_path_rate=0.0):
    """``build_model``, then ``model.fuse()``: the model a run trains and evaluates, with its fast fused ops
    (Linear+GELU in ConvNeXt's blocks) swapped in. The same parameters, the same numbers; the data-parallel
    workers build theirs with it too."""
    model = build_model(config, num_classes, drop_path_rate)
    model.fuse()
    return model


def build_optimizer(config, model):
    """AdamW (PyTorch's semantics) or SGD with momentum; either way no weight decay on biases, norm weights
    and layer-scale gammas (``optim.weight_decay_groups``)."""
    groups = optim.weight_decay_groups(model.named_parameters(), config.weight_decay)
    if config.optimizer == "adamw":
        return optim.AdamW(groups, lr=config.lr)
    if config.optimizer == "sgd":
        return optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")
