"""The paper's modernisation roadmap (Liu et al., 2022, Section 2 and Figure 2), at CIFAR scale.

The paper walks from a ResNet-50 to ConvNeXt-T one design decision at a time. ``roadmap_steps`` lists the
same walk for 32x32 images as a sequence of ``RoadmapConfig``s, each changing one field of the one before,
and ``RoadmapNet`` builds the network any config describes (NCHW activations throughout, so every step is
the same kind of object). The last step is ConvNeXt without layer scale: ``tests/model/test_roadmap.py``
copies its weights into ``tinyconvnext.ConvNeXt`` and gets the same logits.

Every step is also a model name that ``create_model`` and the training program accept (``ROADMAP_MODELS``:
``roadmap_00_baseline`` ... ``roadmap_12_separate_downsampling``), so ``tinyconvnext.train`` trains any of
them with its checkpoints, resume and data-parallel processes (``tinyconvnext.roadmap_walk`` trains the
walk). The blocks have stochastic depth (``drop_path_rate``, rising linearly over the blocks as ConvNeXt's)
but no layer scale: the walk is the paper's architecture changes, and its last step is ConvNeXt without it.

The steps (the paper's Section in parentheses) and what each changes here:

* ResNet-style baseline (2.1): bottleneck blocks (1x1 down, 3x3, 1x1 up), BN and ReLU after every conv,
  3x3 stem + max pool, downsampling by a stride-2 block with a projection shortcut
* stage ratio (2.2): depths (2, 3, 4, 2) -> (2, 2, 6, 2), the paper's 3:4:6:3 -> 3:3:9:3
* "patchify" stem (2.2): 3x3 conv + pool -> a 2x2 stride-2 conv (the paper's 4x4 at 224 px)
* depthwise conv (2.3): the 3x3 conv gets groups = channels
* width up (2.3): all widths x1.5 (the paper's 64 -> 96)
* inverted bottleneck (2.4): the block becomes d -> 4d -> d around the spatial conv
* move up depthwise conv (2.5): spatial conv first, then the two 1x1 convs
* kernel size 3 -> 7 (2.5)
* ReLU -> GELU (2.6)
* fewer activations (2.6): one activation, between the two 1x1 convs
* fewer norms (2.6): one norm, after the spatial conv
* BN -> LN (2.6): LayerNorm over channels
* separate downsampling layers (2.6): LN + 2x2 stride-2 conv between stages; LN after the stem and
  before the head
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

import autograd as ag
from autograd import nn

from .model import _init_weights


@dataclass(frozen=True)
class RoadmapConfig:
    """One point on the roadmap. ``width`` is the inner width of stage 1 (ResNet-50: 64); stage i has
    ``width * 2**i``. A bottleneck block's input and output have 4x its inner width; an inverted one's
    have the inner width and it expands 4x inside."""

    depths: tuple = (2, 3, 4, 2)
    width: int = 32
    stem: str = "resnet"  # "resnet": 3x3 conv, norm, act, 2x2 max pool | "patchify": 2x2 stride-2 conv, norm
    block: str = "bottleneck"  # "bottleneck" | "inverted"
    depthwise: bool = False  # the spatial conv has groups = channels
    spatial_first: bool = False  # the spatial conv comes before the 1x1 convs ("moving up")
    kernel_size: int = 3
    act: str = "relu"  # "relu" | "gelu"
    activations: str = "every"  # "every": after each conv but the last, and after the residual sum | "one"
    norms: str = "every"  # "every": after each conv (and on the projection shortcut) | "one": after the first
    norm: str = "batch"  # "batch" | "layer"
    downsample: str = "in_block"  # "in_block": stride-2 first block + projection | "separate": own layers

    def __post_init__(self):
        choices = dict(
            stem=("resnet", "patchify"),
            block=("bottleneck", "inverted"),
            act=("relu", "gelu"),
            activations=("every", "one"),
            norms=("every", "one"),
            norm=("batch", "layer"),
            downsample=("in_block", "separate"),
        )
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(
                    f"RoadmapConfig.{field} must be one of {allowed}, got {getattr(self, field)!r}"
                )
        if self.kernel_size % 2 != 1:
            raise ValueError(f"RoadmapConfig.kernel_size must be odd (same padding), got {self.kernel_size}")

    def inner_widths(self) -> list[int]:
        return [self.width * 2**i for i in range(len(self.depths))]

    def io_widths(self) -> list[int]:
        """Channels between blocks, per stage."""
        factor = 4 if self.block == "bottleneck" else 1
        return [factor * w for w in self.inner_widths()]


def roadmap_steps(
    width: int = 32, depths=(2, 3, 4, 2), final_depths=(2, 2, 6, 2)
) -> list[tuple[str, RoadmapConfig]]:
    """The walk from a ResNet-style network to ConvNeXt: (name, config) pairs, each one change from the last.

    With the defaults the last step is ``convnext_cifar_femto`` (widths 48-384) without layer scale.
    """
    config = RoadmapConfig(depths=tuple(depths), width=width)
    changes = [
        ("ResNet-style baseline", {}),
        ("stage ratio", dict(depths=tuple(final_depths))),
        ('"patchify" stem', dict(stem="patchify")),
        ("depthwise conv", dict(depthwise=True)),
        ("width x1.5", dict(width=round(1.5 * width))),
        ("inverted bottleneck", dict(block="inverted")),
        ("move up depthwise conv", dict(spatial_first=True)),
        ("kernel size 3 -> 7", dict(kernel_size=7)),
        ("ReLU -> GELU", dict(act="gelu")),
        ("fewer activations", dict(activations="one")),
        ("fewer norms", dict(norms="one")),
        ("BN -> LN", dict(norm="layer")),
        ("separate downsampling", dict(downsample="separate")),
    ]
    steps = []
    for name, change in changes:
        config = dataclasses.replace(config, **change)
        steps.append((name, config))
    return steps


# The model names of the steps, in the walk's order (``roadmap_steps``' order).
STEP_SLUGS = (
    "baseline",
    "stage_ratio",
    "patchify_stem",
    "depthwise_conv",
    "wider",
    "inverted_bottleneck",
    "move_up_depthwise_conv",
    "kernel_7x7",
    "gelu",
    "fewer_activations",
    "fewer_norms",
    "layer_norm",
    "separate_downsampling",
)
ROADMAP_MODELS = tuple(f"roadmap_{index:02d}_{slug}" for index, slug in enumerate(STEP_SLUGS))


def roadmap_step(model_name: str, width: int = 32, depths=None) -> tuple[str, RoadmapConfig]:
    """(step name, config) of a roadmap model name (``ROADMAP_MODELS``). ``depths`` (blocks per stage)
    replaces both the baseline's and the stage ratio's, for small networks in tests and quick looks."""
    if model_name not in ROADMAP_MODELS:
        raise ValueError(
            f"unknown roadmap network {model_name!r}; expected one of {', '.join(ROADMAP_MODELS)}"
        )
    sizes = {} if depths is None else dict(depths=tuple(depths), final_depths=tuple(depths))
    return roadmap_steps(width=width, **sizes)[ROADMAP_MODELS.index(model_name)]


def create_roadmap_model(
    model_name: str, num_classes: int = 10, drop_path_rate: float = 0.0, width: int = 32, depths=None
) -> RoadmapNet:
    """The ``RoadmapNet`` of a roadmap model name, with ``model.variant`` and ``model.step`` set."""
    step, config = roadmap_step(model_name, width, depths)
    model = RoadmapNet(config, num_classes=num_classes, drop_path_rate=drop_path_rate)
    model.variant, model.step = model_name, step
    return model


def _norm(config, channels):
    if config.norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.LayerNorm(channels, eps=1e-6, data_format="channels_first")


def _act(config):
    return nn.ReLU() if config.act == "relu" else nn.GELU()


class RoadmapBlock(nn.Module):
    """A residual block at any point of the roadmap: three convs (one spatial, two 1x1) whose order, groups,
    norms and activations the config sets, plus a projection shortcut when the shape changes."""

    def __init__(self, config: RoadmapConfig, in_channels, out_channels, hidden, stride, drop_path=0.0):
        super().__init__()
        k = config.kernel_size

        def spatial(channels_in, channels_out):
            groups = channels_in if config.depthwise else 1
            if config.depthwise and channels_in != channels_out:
                raise ValueError(f"a depthwise conv keeps its channels, got {channels_in} -> {channels_out}")
            return nn.Conv2d(channels_in, channels_out, k, stride=stride, padding=k // 2, groups=groups)

        if config.spatial_first:  # ConvNeXt: dwconv on the block's input, then 1x1 up and 1x1 down
            convs = [
                spatial(in_channels, in_channels),
                nn.Conv2d(in_channels, hidden, 1),
                nn.Conv2d(hidden, out_channels, 1),
            ]
        else:  # ResNet: 1x1, spatial on the hidden width, 1x1
            convs = [
                nn.Conv2d(in_channels, hidden, 1),
                spatial(hidden, hidden),
                nn.Conv2d(hidden, out_channels, 1),
            ]
        widths = [conv.out_channels for conv in convs]
        self.convs = nn.ModuleList(convs)
        norm_after = [True, True, True] if config.norms == "every" else [True, False, False]
        act_after = [True, True, False] if config.activations == "every" else [False, True, False]
        self.norms = nn.ModuleList(
            [_norm(config, w) if on else nn.Identity() for w, on in zip(widths, norm_after, strict=False)]
        )
        self.acts = nn.ModuleList([_act(config) if on else nn.Identity() for on in act_after])
        self.final_act = _act(config) if config.activations == "every" else nn.Identity()
        if stride != 1 or in_channels != out_channels:
            projection = [nn.Conv2d(in_channels, out_channels, 1, stride=stride)]
            if config.norms == "every":
                projection.append(_norm(config, out_channels))
            self.shortcut = nn.Sequential(*projection)
        else:
            self.shortcut = nn.Identity()
        self.drop_path = nn.DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x):
        y = x
        for conv, norm, act in zip(self.convs, self.norms, self.acts, strict=False):
            y = act(norm(conv(y)))
        return self.final_act(self.shortcut(x) + self.drop_path(y))


class RoadmapNet(nn.Module):
    """The network a ``RoadmapConfig`` describes, for (N, 3, 32, 32) images; ``drop_path_rate``: stochastic
    depth of the last block, the rates rising linearly from 0 over the blocks (as ``ConvNeXt``'s)."""

    def __init__(self, config: RoadmapConfig, num_classes=10, in_chans=3, drop_path_rate=0.0):
        super().__init__()
        self.config = config
        inner, io = config.inner_widths(), config.io_widths()
        hidden = inner if config.block == "bottleneck" else [4 * w for w in inner]
        separate = config.downsample == "separate"
        stem_out = (
            io[0] if separate else inner[0]
        )  # ResNet's stem gives the inner width; ConvNeXt's the block width
        if config.stem == "resnet":
            stem = [
                nn.Conv2d(in_chans, stem_out, 3, padding=1),
                _norm(config, stem_out),
                _act(config),
                nn.MaxPool2d(2),
            ]
        else:
            stem = [nn.Conv2d(in_chans, stem_out, 2, stride=2), _norm(config, stem_out)]
        self.downsample_layers = nn.ModuleList([nn.Sequential(*stem)])
        self.stages = nn.ModuleList()
        channels = stem_out
        rates = iter(np.linspace(0, drop_path_rate, sum(config.depths)).tolist())
        for i, depth in enumerate(config.depths):
            if i > 0:
                if separate:
                    self.downsample_layers.append(
                        nn.Sequential(_norm(config, channels), nn.Conv2d(channels, io[i], 2, stride=2))
                    )
                    channels = io[i]
                else:
                    self.downsample_layers.append(nn.Identity())
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0 and not separate) else 1
                blocks.append(RoadmapBlock(config, channels, io[i], hidden[i], stride, next(rates)))
                channels = io[i]
            self.stages.append(nn.Sequential(*blocks))
        self.norm = nn.LayerNorm(channels, eps=1e-6) if separate else nn.Identity()
        self.head = nn.Linear(channels, num_classes)
        self.num_classes = num_classes
        self.apply(_init_weights)

    def forward(self, x):
        x = ag.tensor(x) if not isinstance(x, ag.Tensor) else x
        if x.ndim != 4 or x.shape[1] != self.downsample_layers[0][0].in_channels:
            raise ValueError(
                f"RoadmapNet expects images of shape (N, {self.downsample_layers[0][0].in_channels}, H, W), "
                f"got shape {x.shape}"
            )
        for downsample, stage in zip(self.downsample_layers, self.stages, strict=False):
            x = stage(downsample(x))
        return self.head(self.norm(x.mean(axis=(2, 3))))

    def fuse(self) -> RoadmapNet:
        """Nothing to fuse (``ConvNeXt.fuse()``'s counterpart, so any model ``create_model`` builds has one).
        Returns self."""
        return self
