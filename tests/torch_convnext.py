"""An independent PyTorch ConvNeXt, written from the paper and the official code's structure, used only as
the reference that our model is compared with (same parameter names, so one state dict drives both)."""

import torch
import torch.nn as tnn


class ChannelsFirstLayerNorm(tnn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = tnn.Parameter(torch.ones(dim))
        self.bias = tnn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x):
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - mean) / torch.sqrt(var + self.eps) + self.bias[:, None, None]


class TorchBlock(tnn.Module):
    def __init__(self, dim, layer_scale=1e-6, kernel_size=7, norm_layer="layer"):
        super().__init__()
        self.dwconv = tnn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = tnn.LayerNorm(dim, eps=1e-6) if norm_layer == "layer" else tnn.BatchNorm2d(dim)
        self.pwconv1 = tnn.Linear(dim, 4 * dim)
        self.act = tnn.GELU()
        self.pwconv2 = tnn.Linear(4 * dim, dim)
        self.gamma = tnn.Parameter(layer_scale * torch.ones(dim)) if layer_scale > 0 else None

    def forward(self, x):
        y = self.dwconv(x)
        if isinstance(self.norm, tnn.BatchNorm2d):  # BatchNorm on NCHW, LayerNorm over the channels-last axis
            y = self.norm(y).permute(0, 2, 3, 1)
        else:
            y = self.norm(y.permute(0, 2, 3, 1))
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.permute(0, 3, 1, 2)


class TorchOverlapStem(tnn.Module):
    """timm's overlapping stems: two 3x3 stride-2 convs (padding 1), a GELU between them for "overlap_act"."""

    def __init__(self, in_chans, dim, stem_type):
        super().__init__()
        mid = dim // 2 if stem_type == "overlap_tiered" else dim
        self.conv1 = tnn.Conv2d(in_chans, mid, 3, stride=2, padding=1)
        self.act = tnn.GELU() if stem_type == "overlap_act" else tnn.Identity()
        self.conv2 = tnn.Conv2d(mid, dim, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv2(self.act(self.conv1(x)))


class TorchDeepStem(tnn.Module):
    """ResNet-D's deep stem: three 3x3 convs (3 -> 32 stride 2, 32 -> 32, 32 -> dim), norm and ReLU after
    each, then a 3x3 max pool of stride 2."""

    def __init__(self, in_chans, dim, norm, width=32):
        super().__init__()
        self.conv1, self.norm1 = tnn.Conv2d(in_chans, width, 3, stride=2, padding=1, bias=False), norm(width)
        self.conv2, self.norm2 = tnn.Conv2d(width, width, 3, padding=1, bias=False), norm(width)
        self.conv3, self.norm3 = tnn.Conv2d(width, dim, 3, padding=1, bias=False), norm(dim)

    def forward(self, x):
        x = torch.relu(self.norm1(self.conv1(x)))
        x = torch.relu(self.norm2(self.conv2(x)))
        x = torch.relu(self.norm3(self.conv3(x)))
        return tnn.functional.max_pool2d(x, 3, stride=2, padding=1)


class TorchConvNeXt(tnn.Module):
    def __init__(
        self,
        in_chans=3,
        num_classes=1000,
        depths=(3, 3, 9, 3),
        dims=(96, 192, 384, 768),
        layer_scale=1e-6,
        patch_size=4,
        kernel_size=7,
        stem_type="patch",
        norm_layer="layer",
        stem_norm_layer=None,
    ):
        super().__init__()
        norms = {"layer": ChannelsFirstLayerNorm, "batch": tnn.BatchNorm2d}
        norm, stem_norm = norms[norm_layer], norms[stem_norm_layer or norm_layer]
        if stem_type == "deep":
            stem = tnn.Sequential(TorchDeepStem(in_chans, dims[0], stem_norm))
        else:
            first = (
                tnn.Conv2d(in_chans, dims[0], patch_size, stride=patch_size)
                if stem_type == "patch"
                else TorchOverlapStem(in_chans, dims[0], stem_type)
            )
            stem = tnn.Sequential(first, stem_norm(dims[0]))
        self.downsample_layers = tnn.ModuleList([stem])
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                tnn.Sequential(norm(dims[i]), tnn.Conv2d(dims[i], dims[i + 1], 2, stride=2))
            )
        self.stages = tnn.ModuleList(
            tnn.Sequential(*[TorchBlock(dim, layer_scale, kernel_size, norm_layer) for _ in range(depth)])
            for depth, dim in zip(depths, dims, strict=False)
        )
        self.norm = tnn.LayerNorm(dims[-1], eps=1e-6)
        self.head = tnn.Linear(dims[-1], num_classes)

    def forward(self, x):
        for downsample, stage in zip(self.downsample_layers, self.stages, strict=False):
            x = stage(downsample(x))
        return self.head(self.norm(x.mean([-2, -1])))


def twin_of(ours, num_classes, layer_scale):
    """The TorchConvNeXt of our ConvNeXt ``ours``: the same architecture (read off ``ours``) and the same
    weights and buffers, in their dtype. ``layer_scale`` only decides whether the blocks have gammas."""
    model = TorchConvNeXt(
        num_classes=num_classes,
        depths=ours.depths,
        dims=ours.dims,
        patch_size=ours.patch_size,
        layer_scale=layer_scale,
        kernel_size=ours.stages[0][0].dwconv.kernel_size[0],
        stem_type=ours.stem_type,
        norm_layer=ours.norm_layer,
        stem_norm_layer=ours.stem_norm_layer,
    )
    state = {k: torch.from_numpy(v) for k, v in ours.state_dict().items()}
    model.to(state["head.weight"].dtype)  # float64 for float64 ones, so nothing is rounded on the way
    model.load_state_dict(state)
    return model


def randomize_(model, seed=0):
    """Random weights everywhere, with a larger layer scale so every block visibly matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape, generator=generator) * 0.5 + 0.1)
            elif p.ndim == 1:
                p.copy_(
                    torch.randn(p.shape, generator=generator) * 0.1
                    + (1.0 if "norm" in name and name.endswith("weight") else 0.0)
                )
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5)
    return model
