"""ResNet-D, the baseline ConvNeXt is measured against (He et al., 2016, "Deep Residual Learning"; with the
"Bag of Tricks" changes of He et al., 2019, as timm's ``resnet18d`` / ``resnet34d``).

    stem         three 3x3 convs (3 -> 32 stride 2, 32 -> 32, 32 -> 64), BN + ReLU after each (ResNet-C),
                 then a 3x3 stride-2 max pool: the image's side / 4
    4 stages     widths (64, 128, 256, 512); BasicBlocks, the first of stages 2-4 of stride 2:
                   relu(shortcut(x) + bn2(conv3x3(relu(bn1(conv3x3(x))))))
                 shortcut: identity, or, where the shape changes, a 2x2 average pool (stride 2, ceil mode),
                 a 1x1 conv and BN (ResNet-D: the 1x1 conv no longer skips three quarters of the pixels)
    head         global average -> Linear

Initialisation (Goyal et al., 2017, "Accurate, Large Minibatch SGD", Section 5.1; He et al., 2019): every
residual branch's last BN starts with gamma = 0, so each block begins as the identity; convs get He
(Kaiming) normal init for ReLU. Parameter names are timm's (``conv1.0.weight``, ``bn1.running_mean``,
``layer1.0.conv1.weight``, ``layer2.0.downsample.1.weight``, ``fc.weight``), so one state dict serves
both. Activations are NCHW throughout; BatchNorm normalises each channel over (N, H, W).
"""

from __future__ import annotations

import numpy as np

import autograd as ag
from autograd import nn
from autograd.nn import functional as F

from .model import check_image_batch


class ShortcutAvgPool(nn.Module):
    """The ResNet-D shortcut's 2x2 stride-2 average pool over every pixel, odd sides included: PyTorch's
    ``AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)`` (timm's). An odd side gets one zero row
    (column) at its end, and the windows that hang over it are averaged over their real pixels only, so
    the output side is ceil(side / 2), as the stride-2 conv of the block's other branch gives."""

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        if h % 2 == 0 and w % 2 == 0:
            return F.avg_pool2d(x, 2)
        x = ag.pad(x, ((0, 0), (0, 0), (0, h % 2), (0, w % 2)))
        real = np.ones((h, w), dtype=x.dtype)  # how many real pixels each window averages
        counts = (
            np.pad(real, ((0, h % 2), (0, w % 2))).reshape((h + 1) // 2, 2, (w + 1) // 2, 2).sum(axis=(1, 3))
        )
        return F.avg_pool2d(x, 2) * ag.tensor(4.0 / counts, device=x.device)


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN, ReLU between them and after the residual sum; optional stochastic depth on
    the residual branch (as timm's ``drop_path_rate``)."""

    def __init__(self, in_channels, channels, stride=1, drop_path=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.act2 = nn.ReLU()
        if stride != 1 or in_channels != channels:  # ResNet-D shortcut: average, then 1x1 conv + BN
            pool = ShortcutAvgPool() if stride != 1 else nn.Identity()
            self.downsample = nn.Sequential(
                pool, nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels)
            )
        else:
            self.downsample = nn.Identity()
        self.drop_path = nn.DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.drop_path(self.bn2(self.conv2(y)))
        return self.act2(self.downsample(x) + y)


class ResNet(nn.Module):
    """ResNet-D with BasicBlocks for (N, in_chans, H, W) images.

    Args:
        depths: blocks per stage ((2, 2, 2, 2): ResNet-18; (3, 4, 6, 3): ResNet-34).
        widths: channels of the four stages (64, 128, 256, 512).
        stem_width: channels of the stem's first two convs (32); the third gives widths[0].
        drop_path_rate: stochastic depth of the last block; the rates rise linearly from 0 (as ``ConvNeXt``).
        num_classes, in_chans: as ``ConvNeXt``.
    """

    def __init__(
        self,
        depths=(2, 2, 2, 2),
        widths=(64, 128, 256, 512),
        stem_width=32,
        num_classes=1000,
        in_chans=3,
        drop_path_rate=0.0,
    ):
        super().__init__()
        if len(depths) != len(widths):
            raise ValueError(
                f"ResNet: depths {tuple(depths)} and widths {tuple(widths)} must have the same length"
            )
        self.in_chans, self.num_classes = in_chans, num_classes
        self.depths, self.widths, self.stem_width = tuple(depths), tuple(widths), stem_width
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chans, stem_width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(),
            nn.Conv2d(stem_width, stem_width, 3, padding=1, bias=False),
            nn.BatchNorm2d(stem_width),
            nn.ReLU(),
            nn.Conv2d(stem_width, widths[0], 3, padding=1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.act1 = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = widths[0]
        rates = iter(np.linspace(0, drop_path_rate, sum(depths)).tolist())
        for i, (depth, width) in enumerate(zip(depths, widths, strict=False)):
            blocks = []
            for j in range(depth):
                blocks.append(
                    BasicBlock(channels, width, stride=2 if i > 0 and j == 0 else 1, drop_path=next(rates))
                )
                channels = width
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(channels, num_classes)
        self.reset_parameters()

    @property
    def stages(self) -> list:
        return [getattr(self, f"layer{i + 1}") for i in range(len(self.depths))]

    def reset_parameters(self):
        """He normal (fan out, ReLU) for convs, BN to (1, 0) but the residual branches' last BN gamma to 0,
        and PyTorch's default Linear init for the classifier (timm's ResNet init)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
        for stage in self.stages:
            for block in stage:
                nn.init.zeros_(block.bn2.weight)

    @property
    def min_input_size(self) -> int:
        """The smallest side that keeps a pixel through the stem (/4) and each later stage (/2)."""
        return 4 * 2 ** (len(self.depths) - 1)

    def _check_input(self, x):
        check_image_batch(x, "ResNet", self.in_chans, self.min_input_size, f"with {len(self.depths)} stages")

    def forward_features(self, x):
        """(N, C, H, W) images -> (N, widths[-1]) pooled features."""
        x = ag.tensor(x, device=self.fc.weight.device) if not isinstance(x, ag.Tensor) else x
        self._check_input(x)
        if x.dtype != self.fc.weight.dtype:
            x = x.to(dtype=self.fc.weight.dtype)
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for stage in self.stages:
            x = stage(x)
        return x.mean(axis=(2, 3))

    def forward(self, x):
        return self.fc(self.forward_features(x))

    def fuse(self) -> ResNet:
        """Nothing to fuse (``ConvNeXt.fuse()``'s counterpart, so any model ``create_model`` builds has one).
        Returns self."""
        return self
