"""An independent PyTorch ResNet-D (timm's ``resnet18d`` layout: deep stem, average-pool shortcut), written
from He et al. 2016/2019, used only as the reference that ``tinyconvnext.resnet.ResNet`` is compared with and
as the PyTorch twin of the Imagenette baseline (same parameter names, so one state dict drives both)."""

import torch.nn as tnn


class TorchBasicBlock(tnn.Module):
    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(channels)
        self.act1 = tnn.ReLU()
        self.conv2 = tnn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(channels)
        self.act2 = tnn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != channels:
            pool = (
                tnn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
                if stride != 1
                else tnn.Identity()
            )
            self.downsample = tnn.Sequential(
                pool, tnn.Conv2d(in_channels, channels, 1, bias=False), tnn.BatchNorm2d(channels)
            )

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(shortcut + y)


class TorchResNet(tnn.Module):
    def __init__(
        self, depths=(2, 2, 2, 2), widths=(64, 128, 256, 512), stem_width=32, num_classes=1000, in_chans=3
    ):
        super().__init__()
        self.conv1 = tnn.Sequential(
            tnn.Conv2d(in_chans, stem_width, 3, 2, 1, bias=False),
            tnn.BatchNorm2d(stem_width),
            tnn.ReLU(),
            tnn.Conv2d(stem_width, stem_width, 3, 1, 1, bias=False),
            tnn.BatchNorm2d(stem_width),
            tnn.ReLU(),
            tnn.Conv2d(stem_width, widths[0], 3, 1, 1, bias=False),
        )
        self.bn1 = tnn.BatchNorm2d(widths[0])
        self.act1 = tnn.ReLU()
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        channels = widths[0]
        for i, (depth, width) in enumerate(zip(depths, widths, strict=False)):
            blocks = []
            for j in range(depth):
                blocks.append(TorchBasicBlock(channels, width, 2 if i > 0 and j == 0 else 1))
                channels = width
            setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
        self.num_stages = len(depths)
        self.fc = tnn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, tnn.Conv2d):
                tnn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for i in range(self.num_stages):
            for block in getattr(self, f"layer{i + 1}"):
                tnn.init.zeros_(block.bn2.weight)

    def forward(self, x):
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(x.mean(dim=(2, 3)))
