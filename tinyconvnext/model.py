"""ConvNeXt (Liu et al., 2022, "A ConvNet for the 2020s"), as the official ``models/convnext.py`` defines it.

    stem         4x4 conv, stride 4 ("patchify", Section 2.2)  -> LayerNorm
                 (or, as options, timm's overlapping stems: two 3x3 stride-2 convs -> LayerNorm;
                 or ResNet-D's deep stem: three 3x3 convs with norm and ReLU -> max pool)
    4 stages     depths (3, 3, 9, 3) for ConvNeXt-T, widths (96, 192, 384, 768) (Section 2.2, 2.4)
                 each block (Section 2.3-2.6, Figure 4):
                   x + drop_path(gamma * pwconv2(GELU(pwconv1(LayerNorm(dwconv7x7(x))))))
                 dwconv: depthwise 7x7 (Section 2.5); pwconv1/2: Linear 4x wider and back (the inverted
                 bottleneck, Section 2.4); gamma: layer scale (init 1e-6); one GELU, one LayerNorm.
    downsampling LayerNorm -> 2x2 conv, stride 2, between stages (Section 2.6)
    head         global average -> LayerNorm -> Linear

``norm_layer="batch"`` walks the roadmap's "BN -> LN" step back (Section 2.6): BatchNorm in the blocks, the
stem and the downsampling layers (the head keeps its LayerNorm over the pooled features). The paper found
LN slightly better (81.5% against 81.4% after 300 ImageNet epochs). On Imagenette, BN alone did not make
the first epochs of a small ConvNeXt learn faster (docs/results.md, the screens after the ResNet baseline).

Parameter names and shapes are the official checkpoint's (``downsample_layers.0.0.weight``,
``stages.0.0.dwconv.weight``, ``stages.0.0.gamma``, ``norm.weight``, ``head.weight`` ...), so an official
state dict loads one to one.

One difference of layout, not of numbers: activations flow channels-last, (N, H, W, C), from the stem to
the head. The official code keeps NCHW and permutes inside every block; here LayerNorm and both Linears
act on the last axis directly, the depthwise conv has a channels-last kernel, and the downsampling
"channels_first" LayerNorm is, on NHWC data, an ordinary LayerNorm over the last axis. The model's input
and output are PyTorch's: an (N, 3, H, W) batch in, (N, num_classes) logits out.
"""

from __future__ import annotations

import numpy as np

import autograd as ag
from autograd import nn
from autograd.nn import functional as F


class Block(nn.Module):
    """One ConvNeXt block on channels-last activations (N, H, W, dim).

    The modules are the official ones (so are the parameter names), but ``forward`` calls two fused ops
    where the official code chains modules: ``F.linear_gelu`` for ``act(pwconv1(x))`` and
    ``F.residual_add`` for ``shortcut + drop_path(gamma * x)``; the same math in fewer passes over memory."""

    def __init__(self, dim, drop_path=0.0, layer_scale_init_value=1e-6, kernel_size=7, norm_layer="layer"):
        super().__init__()
        self.dwconv = nn.DepthwiseConv2dChannelsLast(dim, kernel_size, padding=kernel_size // 2)
        self.norm = make_norm(norm_layer, dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(ag.full((dim,), layer_scale_init_value)) if layer_scale_init_value > 0 else None
        )
        self.drop_path = nn.DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x)
        x = self.norm(x)
        x = F.linear_gelu(
            x, self.pwconv1.weight, self.pwconv1.bias, self.act.approximate
        )  # self.act(self.pwconv1(x))
        x = self.pwconv2(x)
        # shortcut + self.drop_path(self.gamma * x), fused into one pass each way
        # (autograd/kernels/cpu/residual.py)
        return F.residual_add(shortcut, x, self.gamma, getattr(self.drop_path, "p", 0.0), self.training)


NORM_LAYERS = ("layer", "batch")


def make_norm(norm_layer: str, dim: int, data_format: str = "channels_last") -> nn.Module:
    """The norm over the channels of (N, H, W, C) activations (or of (N, C, H, W) ones, for the stems' NCHW
    convs): the paper's LayerNorm (eps 1e-6, as the official code), or BatchNorm with PyTorch's defaults
    (per channel over N, H and W)."""
    if norm_layer == "layer":
        return nn.LayerNorm(dim, eps=1e-6, data_format=data_format)
    if norm_layer == "batch":
        return nn.BatchNorm2d(dim, data_format=data_format)
    raise ValueError(f"ConvNeXt: norm_layer must be one of {NORM_LAYERS}, got {norm_layer!r}")


OVERLAP_STEM_TYPES = ("overlap", "overlap_tiered", "overlap_act")
STEM_TYPES = ("patch", *OVERLAP_STEM_TYPES, "deep")


class OverlapStem(nn.Module):
    """timm's overlapping ConvNeXt stems (its ``_ols`` variants): two 3x3 stride-2 convs with padding 1, so
    neighbouring output pixels see overlapping 7x7 windows of the image, where the paper's patchify stem
    cuts it into disjoint 4x4 patches. Both reduce the side 4x (to ceil(H/4)).

        "overlap"         conv(in -> dim), conv(dim -> dim)
        "overlap_tiered"  conv(in -> dim // 2), conv(dim // 2 -> dim)
                          (timm rounds dim // 2 to a multiple of 8)
        "overlap_act"     conv(in -> dim), GELU, conv(dim -> dim)

    Without the GELU the two convs compose to one linear 7x7 stride-4 filter. Input and output are
    channels-last, (N, H, W, C), as the rest of the model; the convs run on NCHW in between."""

    def __init__(self, in_chans, dim, stem_type="overlap"):
        super().__init__()
        if stem_type not in OVERLAP_STEM_TYPES:
            raise ValueError(f"OverlapStem: stem_type must be one of {OVERLAP_STEM_TYPES}, got {stem_type!r}")
        mid = dim // 2 if stem_type == "overlap_tiered" else dim
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

        def norm(channels):
            return make_norm(norm_layer, channels, data_format="channels_first")

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


class ConvNeXt(nn.Module):
    """ConvNeXt for (N, in_chans, H, W) images.

    Args:
        in_chans: input channels (3).
        num_classes: size of the classifier head (1000 for ImageNet-1k, 21841 for 22k, 10 for CIFAR-10).
        depths, dims: blocks and channels of the four stages.
        drop_path_rate: stochastic depth of the last block; the rates rise linearly from 0 over the blocks.
        layer_scale_init_value: initial gamma (0 disables layer scale).
        head_init_scale: multiplies the head's initial weights and bias.
        patch_size: the stem's kernel and stride (4 in the paper; 1 or 2 suit 32x32 images).
        kernel_size: the depthwise kernel of every block (7 in the paper).
        stem_type: "patch" (the paper's patchify stem, of patch_size) or one of timm's overlapping stems,
            "overlap", "overlap_tiered" or "overlap_act" (``OverlapStem``: stride 4, patch_size unused), or
            ResNet-D's "deep" stem (``DeepStem``: stride 4, ending in its own norm, ReLU and max pool).
        norm_layer: "layer" (the paper) or "batch" (BatchNorm in the blocks, stem and downsampling layers).
        stem_norm_layer: the stem's norm(s), when they should differ from ``norm_layer`` (None: the same),
            e.g. a BatchNorm deep stem in front of LayerNorm blocks.
    """

    def __init__(
        self,
        in_chans=3,
        num_classes=1000,
        depths=(3, 3, 9, 3),
        dims=(96, 192, 384, 768),
        drop_path_rate=0.0,
        layer_scale_init_value=1e-6,
        head_init_scale=1.0,
        patch_size=4,
        kernel_size=7,
        stem_type="patch",
        norm_layer="layer",
        stem_norm_layer=None,
    ):
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(
                f"ConvNeXt: depths {tuple(depths)} and dims {tuple(dims)} must have the same length"
            )
        if stem_type not in STEM_TYPES:
            raise ValueError(f"ConvNeXt: stem_type must be one of {STEM_TYPES}, got {stem_type!r}")
        for name, value in (("norm_layer", norm_layer), ("stem_norm_layer", stem_norm_layer or norm_layer)):
            if value not in NORM_LAYERS:
                raise ValueError(f"ConvNeXt: {name} must be one of {NORM_LAYERS}, got {value!r}")
        self.norm_layer, self.stem_norm_layer = norm_layer, stem_norm_layer or norm_layer
        self.in_chans, self.num_classes, self.patch_size, self.stem_type = (
            in_chans,
            num_classes,
            patch_size,
            stem_type,
        )
        self.depths, self.dims = tuple(depths), tuple(dims)
        self.stem_stride = patch_size if stem_type == "patch" else 4
        if stem_type == "deep":
            stem = nn.Sequential(
                DeepStem(in_chans, dims[0], self.stem_norm_layer)
            )  # normalised inside, before its ReLUs
        else:
            first = (
                nn.PatchifyConv2dChannelsLast(in_chans, dims[0], patch_size)
                if stem_type == "patch"
                else OverlapStem(in_chans, dims[0], stem_type)
            )
            stem = nn.Sequential(first, make_norm(self.stem_norm_layer, dims[0]))
        self.downsample_layers = nn.ModuleList([stem])
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(
                    make_norm(norm_layer, dims[i]), nn.PatchifyConv2dChannelsLast(dims[i], dims[i + 1], 2)
                )
            )
        rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        start = 0
        for depth, dim in zip(depths, dims, strict=False):
            self.stages.append(
                nn.Sequential(
                    *[
                        Block(dim, rates[start + j], layer_scale_init_value, kernel_size, norm_layer)
                        for j in range(depth)
                    ]
                )
            )
            start += depth
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(_init_weights)
        if stem_type == "deep":
            self.downsample_layers[0][0].reset_parameters()  # the ResNet's init for its stem
        self.head.weight.data *= head_init_scale
        self.head.bias.data *= head_init_scale

    @property
    def min_input_size(self) -> int:
        """The smallest height and width that keeps at least one pixel after every downsampling."""
        return self.stem_stride * 2 ** (len(self.dims) - 1)

    def _check_input(self, x):
        check_image_batch(
            x,
            "ConvNeXt",
            self.in_chans,
            self.min_input_size,
            f"with a stem of stride {self.stem_stride} and {len(self.dims)} stages",
        )

    def forward_features(self, x):
        """(N, C, H, W) images -> (N, dims[-1]) pooled, normalised features."""
        x = (
            ag.tensor(x, device=self.head.weight.device) if not isinstance(x, ag.Tensor) else x
        )  # raw arrays: to the model
        self._check_input(x)
        if x.dtype != self.head.weight.dtype:
            x = x.to(dtype=self.head.weight.dtype)
        x = x.permute(0, 2, 3, 1)  # NCHW -> NHWC, once
        for downsample, stage in zip(self.downsample_layers, self.stages, strict=False):
            x = stage(downsample(x))
        return self.norm(x.mean(axis=(1, 2)))  # global average pooling over H and W

    def forward(self, x):
        return self.head(self.forward_features(x))


def check_image_batch(x, model: str, in_chans: int, min_size: int, structure: str) -> None:
    """Clear errors for what a classifier cannot take: not (N, in_chans, H, W), smaller than ``min_size``
    (``structure`` says why, e.g. "with 4 stages"), or integer pixels that were never normalised."""
    if x.ndim != 4 or x.shape[1] != in_chans:
        raise ValueError(f"{model} expects a float batch of shape (N, {in_chans}, H, W), got shape {x.shape}")
    if min(x.shape[2:]) < min_size:
        raise ValueError(
            f"{model} {structure} needs images of at least {min_size}x{min_size}, "
            f"got {x.shape[2]}x{x.shape[3]}"
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{model} expects floating-point images, got dtype {x.dtype} (normalise them first)")


def _init_weights(module):
    """Truncated normal (std 0.02) for every conv and linear weight, zero biases (the official init)."""
    if isinstance(
        module, (nn.Conv2d, nn.Linear, nn.DepthwiseConv2dChannelsLast, nn.PatchifyConv2dChannelsLast)
    ):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
