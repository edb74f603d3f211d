"""The ConvNeXt family, declared as data (as timm does): depths and widths of each named variant.

This file holds the table alone (it imports nothing), so that weight files can be matched against it
without building a model (weights.py); ``variants.create_model`` builds them.

ImageNet variants take 224x224 images (patch-4 stem). tiny..xlarge are the paper's (Section 3.1);
atto..nano are timm's smaller siblings with the paper's block, and their ``_ols`` twins timm's
overlapping stem. The ``cifar`` variants are for 32x32 images: a 2x2 patchify stem (a 16x16 feature map
instead of 8x8), otherwise the same network; ``convnext_cifar_3stage`` also drops the last stage, which
would see only 2x2 pixels.

``RESNET_VARIANTS`` are the ResNet-D baselines (``tinyconvnext.resnet``), timm's ``resnet18d`` and
``resnet34d``: what ConvNeXt is measured against, built by the same ``create_model``.
"""

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
    # timm's "_ols" variants: an overlapping stem (options.OverlapStem) in place of the patchify conv. The
    # tiered stem's first conv is timm's make_divisible(dims[0] // 2, 8) wide, so that timm's weights fit.
    "convnext_atto_ols": dict(
        depths=(2, 2, 6, 2), dims=(40, 80, 160, 320), stem_type="overlap_tiered", stem_mid=24
    ),
    "convnext_femto_ols": dict(
        depths=(2, 2, 6, 2), dims=(48, 96, 192, 384), stem_type="overlap_tiered", stem_mid=24
    ),
    "convnext_pico_ols": dict(
        depths=(2, 2, 6, 2), dims=(64, 128, 256, 512), stem_type="overlap_tiered", stem_mid=32
    ),
    "convnext_nano_ols": dict(depths=(2, 2, 8, 2), dims=(80, 160, 320, 640), stem_type="overlap"),
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
