"""ConvNeXt (Liu et al., 2022, "A ConvNet for the 2020s"), as the official ``models/convnext.py`` defines it.

    stem         4x4 conv, stride 4 ("patchify", Section 2.2) -> LayerNorm
    4 stages     depths (3, 3, 9, 3) for ConvNeXt-T, widths (96, 192, 384, 768) (Section 2.2, 2.4)
                 each block (Section 2.3-2.6, Figure 4):
                   x + drop_path(gamma * pwconv2(GELU(pwconv1(LayerNorm(dwconv7x7(x))))))
                 dwconv: depthwise 7x7 (Section 2.5); pwconv1/2: Linear 4x wider and back (the inverted
                 bottleneck, Section 2.4); gamma: layer scale (init 1e-6); one GELU, one LayerNorm.
    downsampling LayerNorm -> 2x2 conv, stride 2, between stages (Section 2.6)
    head         global average -> LayerNorm -> Linear

Parameter names and shapes are the official checkpoint's (``downsample_layers.0.0.weight``,
``stages.0.0.dwconv.weight``, ``stages.0.0.gamma``, ``norm.weight``, ``head.weight`` ...), so an official
state dict loads one to one. Other stems and norms plug in as modules (``stem=``, ``norm_layer=``); the
ones this project uses are in ``tinyconvnext/options.py``.

One difference of layout, not of numbers: activations flow channels-last, (N, H, W, C), from the stem to
the head. The official code keeps NCHW and permutes inside every block; here LayerNorm and both Linears
act on the last axis directly, the depthwise conv has a channels-last kernel, and the downsampling
"channels_first" LayerNorm is, on NHWC data, an ordinary LayerNorm over the last axis. The model's input
and output are PyTorch's: an (N, 3, H, W) batch in, (N, num_classes) logits out.

``model.fuse()`` is a separate, explicit step (as PyTorch's ``fuse_modules``): it swaps every ``Block``
for a ``FusedBlock`` with the same modules and parameters, whose forward computes ``act(pwconv1(x))`` and
``input + drop_path(gamma * x)`` as one op each (``F.linear_gelu``, ``F.residual_add``): the same math in
fewer passes over memory. The training and prediction code fuse the models they build.
"""

from __future__ import annotations

from functools import partial

import numpy as np

import autograd as ag
from autograd import nn
from autograd.nn import functional as F

from .options import OverlapStem, Stem

LayerNorm = partial(nn.LayerNorm, eps=1e-6)  # the paper's norm over the channels of (N, H, W, C) activations


class Block(nn.Module):
    """One ConvNeXt block on channels-last activations (N, H, W, dim), the official ``Block``.

    norm_layer: a factory ``dim -> module`` for the norm after the depthwise conv (the paper's LayerNorm)."""

    def __init__(self, dim, drop_path=0.0, layer_scale_init_value=1e-6, kernel_size=7, norm_layer=LayerNorm):
        super().__init__()
        self.dwconv = nn.DepthwiseConv2dChannelsLast(dim, kernel_size, padding=kernel_size // 2)
        self.norm = norm_layer(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)  # pointwise/1x1 convs, implemented with linear layers
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(ag.full((dim,), layer_scale_init_value)) if layer_scale_init_value > 0 else None
        )
        self.drop_path = nn.DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x):
        input = x
        x = self.dwconv(x)
        # x stays (N, H, W, C): no permute here, where the official code turns NCHW to NHWC (and back below)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        x = input + self.drop_path(x)
        return x


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
        stem: the module that takes the (N, H, W, in_chans) image to the first stage's (N, H/s, W/s, dims[0])
            input, with its factor s as ``stem.stride``; None for the paper's stem (patchify conv, norm).
        norm_layer: a factory ``dim -> module`` for the norms in the blocks, the paper's stem and the
            downsampling layers (the paper's LayerNorm; the head's norm is always a LayerNorm).
        stem_type, stem_mid: where ``stem`` is None, one of timm's overlapping stems by name ("overlap",
            "overlap_tiered", "overlap_act"; ``options.OverlapStem``, its first conv ``stem_mid`` wide) with a
            ``norm_layer`` norm, as the ``_ols`` variants declare it; "patch" is the paper's stem.
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
        stem=None,
        norm_layer=LayerNorm,
        stem_type="patch",
        stem_mid=None,
    ):
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(
                f"ConvNeXt: depths {tuple(depths)} and dims {tuple(dims)} must have the same length"
            )
        self.in_chans, self.num_classes, self.patch_size = in_chans, num_classes, patch_size
        self.depths, self.dims = tuple(depths), tuple(dims)
        if stem is None and stem_type != "patch":
            stem = Stem(OverlapStem(in_chans, dims[0], stem_type, stem_mid), norm_layer(dims[0]), stride=4)
        if stem is None:
            stem = nn.Sequential(
                nn.PatchifyConv2dChannelsLast(in_chans, dims[0], patch_size), norm_layer(dims[0])
            )
            stem.stride = patch_size
        self.stem_stride = stem.stride
        self.downsample_layers = nn.ModuleList([stem])  # stem and 3 intermediate downsampling conv layers
        for i in range(len(dims) - 1):
            downsample_layer = nn.Sequential(
                norm_layer(dims[i]), nn.PatchifyConv2dChannelsLast(dims[i], dims[i + 1], 2)
            )
            self.downsample_layers.append(downsample_layer)

        self.stages = nn.ModuleList()  # 4 feature resolution stages, each consisting of multiple blocks
        dp_rates = np.linspace(0, drop_path_rate, sum(depths)).tolist()
        cur = 0
        for depth, dim in zip(depths, dims, strict=True):
            blocks = [
                Block(dim, dp_rates[cur + j], layer_scale_init_value, kernel_size, norm_layer)
                for j in range(depth)
            ]
            self.stages.append(nn.Sequential(*blocks))
            cur += depth

        self.norm = LayerNorm(dims[-1])  # final norm layer
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(_init_weights)
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
        if not isinstance(x, ag.Tensor):
            x = ag.tensor(x, device=self.head.weight.device)  # raw arrays: to the model
        self._check_input(x)
        if x.dtype != self.head.weight.dtype:
            x = x.to(dtype=self.head.weight.dtype)
        x = x.permute(0, 2, 3, 1)  # NCHW -> NHWC, once
        for downsample, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(downsample(x))
        return self.norm(x.mean(axis=(1, 2)))  # global average pooling, (N, H, W, C) -> (N, C)

    def forward(self, x):
        return self.head(self.forward_features(x))

    def fuse(self) -> ConvNeXt:
        """Swap every ``Block`` for a ``FusedBlock`` of the same modules and parameters, in place (as
        PyTorch's ``fuse_modules``). The state dict is unchanged; calling it again changes nothing.
        Returns self."""
        for stage in self.stages:
            for name, block in stage._modules.items():
                if isinstance(block, Block):
                    fused = FusedBlock(block)
                    stage._modules[name] = fused  # the same place in the stage (setattr would append)
                    object.__setattr__(stage, name, fused)
        return self


class FusedBlock(nn.Module):
    """A ``Block`` after ``ConvNeXt.fuse()``: the same modules and parameter objects under the same names,
    so the same state dict, and a forward with two fused ops where ``Block.forward`` chains modules:
    ``F.linear_gelu`` for ``act(pwconv1(x))`` and ``F.residual_add`` for ``input + drop_path(gamma * x)``.
    The same math in fewer passes over memory."""

    def __init__(self, block: Block):
        super().__init__()
        self.dwconv = block.dwconv
        self.norm = block.norm
        self.pwconv1 = block.pwconv1
        self.act = block.act
        self.pwconv2 = block.pwconv2
        self.gamma = block.gamma
        self.drop_path = block.drop_path
        self.train(block.training)

    @property
    def drop_rate(self) -> float:
        """The drop path's rate (0 where the block has none: an ``Identity``)."""
        return self.drop_path.p if isinstance(self.drop_path, nn.DropPath) else 0.0

    def forward(self, x):
        input = x
        x = self.dwconv(x)
        x = self.norm(x)
        x = F.linear_gelu(x, self.pwconv1.weight, self.pwconv1.bias, self.act.approximate)
        x = self.pwconv2(x)
        return F.residual_add(input, x, self.gamma, self.drop_rate, self.training)


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
