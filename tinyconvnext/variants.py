"""Building the ConvNeXt family, the ResNet-D baselines and the networks of the modernisation roadmap by name
(``create_model``); the table of variants, declared as data (as timm does), is in variant_table.py, the
roadmap's steps in roadmap.py.
"""

from __future__ import annotations

from .model import ConvNeXt
from .options import convnext_options
from .resnet import ResNet
from .roadmap import ROADMAP_MODELS, create_roadmap_model
from .variant_table import RESNET_VARIANTS, VARIANTS

RESNET_OPTIONS = ("depths", "widths", "stem_width", "in_chans")
ROADMAP_OPTIONS = ("width", "depths")


def available_models() -> list[str]:
    """ConvNeXt variants, then the ResNet-D baselines, then the roadmap's steps in the walk's order."""
    return sorted(VARIANTS) + sorted(RESNET_VARIANTS) + list(ROADMAP_MODELS)


def check_recorded_variant(variant: str | None, source: str) -> None:
    """Refuse a variant that a weights file records (``source`` names the file) but that is not one of
    ``available_models()``: a file of another library, or edited; the commands then ask for ``--model``."""
    if variant is not None and variant not in available_models():
        raise ValueError(
            f"{source} records variant {variant!r}, which is not one of ours: name one with --model"
        )


def _refuse_convnext_options(name, kind, layer_scale_init_value, head_init_scale, overrides, accepted):
    """A clear error for a ConvNeXt-only argument given to a network of another ``kind``, or an override
    that is not one of ``accepted``."""
    convnext_only = {
        "layer_scale_init_value": (layer_scale_init_value, 1e-6),
        "head_init_scale": (head_init_scale, 1.0),
    }
    for option, (value, default) in convnext_only.items():
        if value != default:
            raise ValueError(
                f"{name} is {kind}: {option}={value} is a ConvNeXt option (leave it at {default})"
            )
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ValueError(
            f"{name} is {kind}: unknown option(s) {', '.join(unknown)}; it takes {', '.join(accepted)}"
        )


def _create_resnet(name, num_classes, drop_path_rate, layer_scale_init_value, head_init_scale, overrides):
    """A ResNet-D variant; the ConvNeXt-only arguments must keep their defaults (a clear error otherwise)."""
    _refuse_convnext_options(
        name, "a ResNet", layer_scale_init_value, head_init_scale, overrides, RESNET_OPTIONS
    )
    return ResNet(
        num_classes=num_classes, drop_path_rate=drop_path_rate, **{**RESNET_VARIANTS[name], **overrides}
    )


def _create_convnext(stem_type="patch", norm_layer="layer", stem_norm_layer=None, stem_mid=None, **arguments):
    """A ConvNeXt with the named options built into its ``stem`` and ``norm_layer``; the names are kept on the
    model (``model.stem_type`` ...) for the run's records and the PyTorch twin."""
    in_chans, patch_size = arguments.get("in_chans", 3), arguments.get("patch_size", 4)
    options = convnext_options(
        stem_type, norm_layer, stem_norm_layer, in_chans, arguments["dims"][0], patch_size, stem_mid
    )
    model = ConvNeXt(**arguments, **options)
    if options["stem"] is not None:
        options["stem"].reset_parameters()  # after the model's init: the deep stem's own (the ResNet's)
    model.stem_type, model.norm_layer, model.stem_norm_layer = (
        stem_type,
        norm_layer,
        stem_norm_layer or norm_layer,
    )
    return model


def _convnext_config(name: str, overrides: dict) -> dict:
    """The variant's configuration with the overrides; an ``_ols`` variant's stem width is its own stem's,
    so it goes with it when another ``stem_type`` replaces that stem."""
    config = {**VARIANTS[name], **overrides}
    if "stem_mid" not in overrides and config.get("stem_type") != VARIANTS[name].get("stem_type"):
        config.pop("stem_mid", None)
    return config


def create_model(
    name: str,
    num_classes: int = 1000,
    drop_path_rate: float = 0.0,
    layer_scale_init_value: float = 1e-6,
    head_init_scale: float = 1.0,
    weights=None,
    **overrides,
):
    """Build a named ConvNeXt variant, or a ResNet-D baseline (``available_models()`` lists them).

    Args:
        name: e.g. "convnext_tiny", "convnext_cifar_pico", "resnet18d" or "roadmap_05_inverted_bottleneck".
        num_classes, drop_path_rate, layer_scale_init_value, head_init_scale: as ``ConvNeXt``.
        weights: path to weights, loaded strictly: ``.safetensors`` (ours, or timm's ``model.safetensors``),
            an official ``.pth`` checkpoint, our ``.npz``, or a training run's ``checkpoint.npz``.
        overrides: any other ``ConvNeXt`` argument (depths, dims, patch_size, kernel_size, in_chans), the
            options by name (``stem_type``, ``norm_layer``, ``stem_norm_layer``, as
            ``options.convnext_options`` takes them), for a ResNet one of ``RESNET_OPTIONS``, for a roadmap
            network one of ``ROADMAP_OPTIONS`` (``roadmap.create_roadmap_model``'s; it has no layer scale,
            so ``layer_scale_init_value`` must keep its default or be 0).
    """
    if name in RESNET_VARIANTS:
        model = _create_resnet(
            name, num_classes, drop_path_rate, layer_scale_init_value, head_init_scale, overrides
        )
    elif name in ROADMAP_MODELS:
        # It has no layer scale: 0 (none) is accepted, as is the default that every caller passes.
        layer_scale = 1e-6 if layer_scale_init_value == 0 else layer_scale_init_value
        _refuse_convnext_options(
            name, "a roadmap network", layer_scale, head_init_scale, overrides, ROADMAP_OPTIONS
        )
        model = create_roadmap_model(name, num_classes, drop_path_rate, **overrides)
    elif name in VARIANTS:
        model = _create_convnext(
            num_classes=num_classes,
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=layer_scale_init_value,
            head_init_scale=head_init_scale,
            **_convnext_config(name, overrides),
        )
    else:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(available_models())}")
    model.variant = name
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights)
    return model
