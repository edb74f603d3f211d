"""The ConvNeXt family, declared as data (as timm does): depths and widths of each named variant.

ImageNet variants take 224x224 images (patch-4 stem). tiny..xlarge are the paper's (Section 3.1);
atto..nano are timm's smaller siblings with the paper's block. The ``cifar`` variants are for 32x32
images: a 2x2 patchify stem (a 16x16 feature map instead of 8x8), otherwise the same network;
``convnext_cifar_3stage`` also drops the last stage, which would see only 2x2 pixels.

``RESNET_VARIANTS`` are the ResNet-D baselines (``tinyconvnext.resnet``), timm's ``resnet18d`` and
``resnet34d``: what ConvNeXt is measured against, built by the same ``create_model``.
"""

from __future__ import annotations

from .model import ConvNeXt
from .options import convnext_options
from .resnet import ResNet

VARIANTS = {
    "convnext_atto": dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)),
    "convnext_femto": dict(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384)),
    "convnext_pico": dict(depths=(2, 2, 6, 2), dims=(64, 128, 256, 512)),
    "convnext_nano": dict(depths=(2, 2, 8, 2), dims=(80, 160, 320, 640)),
    "convnext_tiny": dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)),
    "convnext_small": dict(depths=(3, 3, 27, 3), dims=(96, 192, 384, 768)),
    "convnext_base": dict(depths=(3, 3, 27, 3), dims=(128, 256, 512, 1024)),
    "convnext_large": dict(depths=(3, 3, 27, 3), dims=(192, 384, 768, 1536)),
    "convnext_xlarge": dict(depths=(3, 3, 27, 3), dims=(256, 512, 1024, 2048)),
    # 32x32 inputs (CIFAR): 2x2 stem -> 16, 8, 4, 2 pixels per side in the four stages.
    "convnext_cifar_atto": dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320), patch_size=2),
    "convnext_cifar_femto": dict(depths=(2, 2, 6, 2), dims=(48, 96, 192, 384), patch_size=2),
    "convnext_cifar_pico": dict(depths=(2, 2, 6, 2), dims=(64, 128, 256, 512), patch_size=2),
    "convnext_cifar_nano": dict(depths=(2, 2, 8, 2), dims=(80, 160, 320, 640), patch_size=2),
    # Three stages (16, 8, 4 pixels per side), no 2x2 stage; blocks of equal cost in every stage. 43M
    # multiply-adds per image (convnext_cifar_atto: 44M) with 1.1M parameters (3.4M); learns faster on CIFAR.
    "convnext_cifar_3stage": dict(depths=(2, 4, 2), dims=(48, 96, 192), patch_size=2),
}


RESNET_VARIANTS = {
    "resnet18d": dict(depths=(2, 2, 2, 2), widths=(64, 128, 256, 512)),
    "resnet34d": dict(depths=(3, 4, 6, 3), widths=(64, 128, 256, 512)),
}
RESNET_OPTIONS = ("depths", "widths", "stem_width", "in_chans")


def available_models() -> list[str]:
    return sorted(VARIANTS) + sorted(RESNET_VARIANTS)


def _create_resnet(name, num_classes, drop_path_rate, layer_scale_init_value, head_init_scale, overrides):
    """A ResNet-D variant; the ConvNeXt-only arguments must keep their defaults (a clear error otherwise)."""
    convnext_only = {
        "layer_scale_init_value": (layer_scale_init_value, 1e-6),
        "head_init_scale": (head_init_scale, 1.0),
    }
    for option, (value, default) in convnext_only.items():
        if value != default:
            raise ValueError(
                f"{name} is a ResNet: {option}={value} is a ConvNeXt option (leave it at {default})"
            )
    unknown = sorted(set(overrides) - set(RESNET_OPTIONS))
    if unknown:
        raise ValueError(
            f"{name} is a ResNet: unknown option(s) {', '.join(unknown)}; "
            f"it takes {', '.join(RESNET_OPTIONS)}"
        )
    return ResNet(
        num_classes=num_classes, drop_path_rate=drop_path_rate, **{**RESNET_VARIANTS[name], **overrides}
    )


def _create_convnext(stem_type="patch", norm_layer="layer", stem_norm_layer=None, **arguments):
    """A ConvNeXt with the named options built into its ``stem`` and ``norm_layer``; the names are kept on the
    model (``model.stem_type`` ...) for the run's records and the PyTorch twin."""
    in_chans, patch_size = arguments.get("in_chans", 3), arguments.get("patch_size", 4)
    options = convnext_options(
        stem_type, norm_layer, stem_norm_layer, in_chans, arguments["dims"][0], patch_size
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
        name: e.g. "convnext_tiny", "convnext_cifar_pico" or "resnet18d".
        num_classes, drop_path_rate, layer_scale_init_value, head_init_scale: as ``ConvNeXt``.
        weights: path to an official ``.pth`` checkpoint or our ``.npz``; loaded strictly.
        overrides: any other ``ConvNeXt`` argument (depths, dims, patch_size, kernel_size, in_chans), the
            options by name (``stem_type``, ``norm_layer``, ``stem_norm_layer``, as
            ``options.convnext_options`` takes them), or for a ResNet one of ``RESNET_OPTIONS``.
    """
    if name in RESNET_VARIANTS:
        model = _create_resnet(
            name, num_classes, drop_path_rate, layer_scale_init_value, head_init_scale, overrides
        )
    elif name in VARIANTS:
        model = _create_convnext(
            num_classes=num_classes,
            drop_path_rate=drop_path_rate,
            layer_scale_init_value=layer_scale_init_value,
            head_init_scale=head_init_scale,
            **{**VARIANTS[name], **overrides},
        )
    else:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(available_models())}")
    model.variant = name
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights)
    return model
