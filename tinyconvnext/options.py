"""The options beyond the paper, as modules that plug into ``ConvNeXt(stem=..., norm_layer=...)``.

    overlapping stems   timm's ``_ols`` stems: two 3x3 stride-2 convs instead of the 4x4 patchify conv
                        (``OverlapStem``; stem types "overlap", "overlap_tiered", "overlap_act")
    deep stem           ResNet-D's stem: three 3x3 convs with norm and ReLU, then a max pool
                        (``DeepStem``; stem type "deep")
    BatchNorm           BatchNorm over (N, H, W) per channel wherever the paper has a LayerNorm over the
                        channels: in the blocks, the stem and the downsampling layers (norm layer "batch");
                        the head keeps its LayerNorm over the pooled features
    a separate stem norm  the stem's norm(s) differ from the blocks' (``stem_norm_layer``), e.g. a
                        BatchNorm deep stem in front of LayerNorm blocks

``convnext_options`` turns the names the command line and ``create_model`` use (``stem_type``,
``norm_layer``, ``stem_norm_layer``) into the ``stem`` and ``norm_layer`` arguments of ``ConvNeXt``.
Every stem takes and returns channels-last activations, (N, H, W, C), as the rest of the model, and
keeps the parameter names the options have always had (``downsample_layers.0.0.conv1.weight`` ...).
"""

from __future__ import annotations

from functools import partial

from autograd import nn

NORM_LAYERS = ("layer", "batch")
OVERLAP_STEM_TYPES = ("overlap", "overlap_tiered", "overlap_act")
STEM_TYPES = ("patch", *OVERLAP_STEM_TYPES, "deep")


def norm_factory(norm_layer: str, data_format: str = "channels_last"):
    """A factory ``dim -> module`` for the norm over the channels of (N, H, W, C) activations (or of
    (N, C, H, W) ones, for the stems' NCHW convs): the paper's LayerNorm (eps 1e-6, as the official code),
    or BatchNorm with PyTorch's defaults (per channel over N, H and W)."""
    if norm_layer == "layer":
        return partial(nn.LayerNorm, eps=1e-6, data_format=data_format)
    if norm_layer == "batch":
        return partial(nn.BatchNorm2d, data_format=data_format)
    raise ValueError(f"ConvNeXt: norm_layer must be one of {NORM_LAYERS}, got {norm_layer!r}")


class Stem(nn.Sequential):
    """The modules that take the image to the first stage (``downsample_layers[0]``), with the factor
    ``stride`` by which they shrink its side (``ConvNeXt.min_input_size`` and the FLOP count need it)."""

    def __init__(self, *modules: nn.Module, stride: int):
        super().__init__(*modules)
        self.stride = stride

    def reset_parameters(self):
        """Apply the initialisation of a part that brings its own (the deep stem's); after the model's."""
        for module in self:
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()


class OverlapStem(nn.Module):
    """timm's overlapping ConvNeXt stems (its ``_ols`` variants): two 3x3 stride-2 convs with padding 1, so
    neighbouring output pixels see overlapping 7x7 windows of the image, where the paper's patchify stem
    cuts it into disjoint 4x4 patches. Both reduce the side 4x (to ceil(H/4)).

        "overlap"         conv(in -> dim), conv(dim -> dim)
        "overlap_tiered"  conv(in -> dim // 2), conv(dim // 2 -> dim)
                          (timm rounds dim // 2 up to a multiple of 8: pass that as ``mid``, as the
                          ``_ols`` variants do, for timm's exact stem)
        "overlap_act"     conv(in -> dim), GELU, conv(dim -> dim)

    Without the GELU the two convs compose to one linear 7x7 stride-4 filter. Input and output are
    channels-last, (N, H, W, C), as the rest of the model; the convs run on NCHW in between."""

    def __init__(self, in_chans, dim, stem_type="overlap", mid=None):
        super().__init__()
        if stem_type not in OVERLAP_STEM_TYPES:
            raise ValueError(f"OverlapStem: stem_type must be one of {OVERLAP_STEM_TYPES}, got {stem_type!r}")
        mid = mid or (dim // 2 if stem_type == "overlap_tiered" else dim)
        self.conv1 = nn.Conv2d(in_chans, mid, 3, stride=2, padding=1)
        self.act = nn.GELU() if stem_type == "overlap_act" else nn.Identity()
        self.conv2 = nn.Conv2d(mid, dim, 3, stride=2, padding=1)

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW for the convs (3 channels: cheap)
        x = self.conv2(self.act(self.conv1(x)))
        return x.permute(0, 2, 3, 1)  # back to channels-last


class DeepStem(nn.Module):
    """ResNet-D's deep stem (He et al., 2019, "Bag of Tricks", Section 4.1; timm's ``stem_type="deep"``), the
    stem of ``resnet18d``: three 3x3 convs, 3 -> 32 (stride 2), 32 -> 32, 32 -> dim, each followed by a norm
    and ReLU, then a 3x3 max pool of stride 2. Stride 4 as the patchify stem, but the convs are dense and
    overlap, and run at half resolution first. The norms are ``norm_layer``'s, over NCHW channels; the convs
    have no bias (a norm follows each) and He-normal weights (fan out, ReLU), as in the ResNet.
    Input and output are channels-last, (N, H, W, C), as the rest of the model."""

    def __init__(self, in_chans, dim, norm_layer="batch", width=32):
        super().__init__()
        norm = norm_factory(norm_layer, data_format="channels_first")
        self.conv1, self.norm1 = nn.Conv2d(in_chans, width, 3, stride=2, padding=1, bias=False), norm(width)
        self.conv2, self.norm2 = nn.Conv2d(width, width, 3, padding=1, bias=False), norm(width)
        self.conv3, self.norm3 = nn.Conv2d(width, dim, 3, padding=1, bias=False), norm(dim)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)

    def reset_parameters(self):
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out")

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW for the dense convs
        x = self.act(self.norm1(self.conv1(x)))
        x = self.act(self.norm2(self.conv2(x)))
        x = self.act(self.norm3(self.conv3(x)))
        return self.pool(x).permute(0, 2, 3, 1)  # back to channels-last


def make_stem(
    stem_type: str, in_chans: int, dim: int, patch_size: int, norm_layer: str, stem_mid: int | None = None
) -> Stem:
    """The stem named ``stem_type``, with its norm(s) of kind ``norm_layer``: the patchify conv or an
    overlapping stem (its first conv ``stem_mid`` wide, if given) followed by a norm, or the deep stem
    (normalised inside, before its ReLUs)."""
    if stem_type == "deep":
        return Stem(DeepStem(in_chans, dim, norm_layer), stride=4)
    norm = norm_factory(norm_layer)
    if stem_type == "patch":
        return Stem(nn.PatchifyConv2dChannelsLast(in_chans, dim, patch_size), norm(dim), stride=patch_size)
    if stem_type in OVERLAP_STEM_TYPES:
        return Stem(OverlapStem(in_chans, dim, stem_type, stem_mid), norm(dim), stride=4)
    raise ValueError(f"ConvNeXt: stem_type must be one of {STEM_TYPES}, got {stem_type!r}")


def convnext_options(
    stem_type="patch",
    norm_layer="layer",
    stem_norm_layer=None,
    in_chans=3,
    dim=96,
    patch_size=4,
    stem_mid=None,
) -> dict:
    """``ConvNeXt``'s ``stem`` and ``norm_layer`` arguments for the named options.

    Args:
        stem_type: "patch" (the paper's patchify stem, of ``patch_size``), one of timm's overlapping stems
            ("overlap", "overlap_tiered", "overlap_act"; stride 4), or ResNet-D's "deep" stem (stride 4).
        norm_layer: "layer" (the paper) or "batch" (BatchNorm in the blocks, stem and downsampling layers).
        stem_norm_layer: the stem's norm(s) when they differ from ``norm_layer`` (None: the same).
        in_chans, dim, patch_size: the image's channels, the first stage's width, the patchify stem's patch.
        stem_mid: the width of an overlapping stem's first conv (None: ``OverlapStem``'s own choice).
    Returns:
        {"stem": a ``Stem``, or None for the paper's stem; "norm_layer": a factory ``dim -> module``}.
    """
    if stem_type not in STEM_TYPES:
        raise ValueError(f"ConvNeXt: stem_type must be one of {STEM_TYPES}, got {stem_type!r}")
    for name, value in (("norm_layer", norm_layer), ("stem_norm_layer", stem_norm_layer or norm_layer)):
        if value not in NORM_LAYERS:
            raise ValueError(f"ConvNeXt: {name} must be one of {NORM_LAYERS}, got {value!r}")
    paper_stem = stem_type == "patch" and (stem_norm_layer or norm_layer) == norm_layer
    stem = (
        None
        if paper_stem
        else make_stem(stem_type, in_chans, dim, patch_size, stem_norm_layer or norm_layer, stem_mid)
    )
    return {"stem": stem, "norm_layer": norm_factory(norm_layer)}
