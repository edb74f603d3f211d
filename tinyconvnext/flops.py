"""Counting a ConvNeXt's multiply-adds (what papers and fvcore call FLOPs) and parameters, stage by stage.

Per image of side s, a block of width d at side r costs r^2 (K^2 d + 8 d^2) multiply-adds: the depthwise
K x K conv (K^2 per channel and pixel) plus the two pointwise Linears (d x 4d and 4d x d). Patchify convs
with patch p from c to d channels cost (r/p)^2 p^2 c d; an overlapping stem's two 3x3 stride-2 convs cost
(s/2)^2 9 c m + (s/4)^2 9 m d (m: its middle width); ResNet-D's deep stem (s/2)^2 9 (c m + m m + m d), all
three convs at half the side. Norms, activations, pooling and additions are not counted, as fvcore.
"""

from __future__ import annotations

from autograd import nn

from .options import DeepStem, OverlapStem


def stage_costs(model, image_size: int) -> list[dict]:
    """One row per part (stem, stage i, downsample i, head): multiply-adds and parameters."""
    rows = []
    c_in, dims = model.in_chans, model.dims
    kernel = model.stages[0][0].dwconv.kernel_size[0]
    for i, (depth, dim) in enumerate(zip(model.depths, dims, strict=False)):
        down = model.downsample_layers[i]
        if i == 0:
            macs, side = _stem_macs(down[0], c_in, dim, image_size)
            rows.append(dict(part="stem", side=side, macs=macs, params=down.num_parameters()))
        else:
            side //= 2
            macs = side * side * dims[i - 1] * 4 * dim
            rows.append(dict(part=f"downsample {i}", side=side, macs=macs, params=down.num_parameters()))
        block_macs = side * side * (kernel * kernel * dim + 8 * dim * dim)
        rows.append(
            dict(
                part=f"stage {i}", side=side, macs=depth * block_macs, params=model.stages[i].num_parameters()
            )
        )
    rows.append(
        dict(
            part="head",
            side=1,
            macs=dims[-1] * model.num_classes,
            params=model.norm.num_parameters() + model.head.num_parameters(),
        )
    )
    return rows


def _stem_macs(first, c_in: int, dim: int, image_size: int) -> tuple[int, int]:
    """The stem's multiply-adds and the side of its output, from its first module: the patchify conv, an
    overlapping stem or the deep stem (two stride-2 steps with padding, each halving the side, rounding
    up)."""
    if isinstance(first, nn.PatchifyConv2dChannelsLast):
        side = image_size // first.patch_size
        return side * side * c_in * first.patch_size**2 * dim, side
    mid = first.conv1.out_channels
    half = -(-image_size // 2)
    side = -(-half // 2)
    if isinstance(first, DeepStem):  # three 3x3 convs at half the side, then the max pool
        return 9 * half * half * (c_in * mid + mid * mid + mid * dim), side
    if isinstance(first, OverlapStem):  # one 3x3 conv at half the side, one at a quarter
        return 9 * (half * half * c_in * mid + side * side * mid * dim), side
    raise TypeError(f"stage_costs: no formula for a stem that starts with {type(first).__name__}")


def count_flops(model, image_size: int) -> int:
    """Multiply-adds of one forward pass on one image_size x image_size image."""
    return sum(row["macs"] for row in stage_costs(model, image_size))


def traced_macs(model, image_size: int, in_chans: int = 3) -> int:
    """Multiply-adds of any model, counted by running one image through it and recording each convolution
    and matrix-product op it calls (the way fvcore traces ops): for an output of P positions (pixels, or
    rows of a linear layer) and a weight of W elements, P * W. Ops are traced rather than modules, so fused
    calls such as ``F.linear_gelu`` count too. For a ConvNeXt it equals ``count_flops``."""
    import numpy as np

    import autograd as ag
    from autograd.nn.functional import conv, fully_connected

    total = 0
    convs = (conv.Conv2dIm2col, conv.PatchifyConv2d, conv.DepthwiseConv2d)  # out (N, O, H, W) or (N, H, W, O)
    linear = (fully_connected.Linear, fully_connected.LinearGELU)  # out (..., out_features)

    def counting(op):
        apply = op.apply

        def wrapped(*inputs, **options):
            nonlocal total
            y = apply(*inputs, **options)
            if op in convs:
                positions = y.shape[1:-1] if options.get("channels_last") else y.shape[2:]
            else:
                positions = y.shape[:-1]
            total += int(np.prod(positions)) * inputs[1].size  # inputs[1]: the weight
            return y

        return staticmethod(wrapped)

    ops = convs + linear
    for op in ops:
        op.apply = counting(op)
    was_training = model.training
    model.eval()
    try:
        with ag.no_grad():
            model(ag.zeros(1, in_chans, image_size, image_size, dtype=next(iter(model.parameters())).dtype))
    finally:
        for op in ops:
            del op.apply  # back to Function.apply
        model.train(was_training)
    return total


def variants_table() -> str:
    """A Markdown table of every variant: parameters and multiply-adds at its native image size."""
    from .model import ConvNeXt
    from .variants import VARIANTS

    lines = [
        "| model | depths | widths | stem | image | classes | parameters | GFLOPs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, config in VARIANTS.items():
        cifar = "cifar" in name
        size, classes = (32, 10) if cifar else (224, 1000)
        model = _structure_only(ConvNeXt, config, classes)
        lines.append(
            f"| `{name}` | {config['depths']} | {config['dims']} | {model.patch_size}x{model.patch_size} | "
            f"{size} | {classes} | {model.num_parameters() / 1e6:.2f}M | "
            f"{count_flops(model, size) / 1e9:.3f} |"
        )
    return "\n".join(lines)


def _structure_only(cls, config, num_classes):
    """Build a model without drawing its random weights (only shapes are needed for counting)."""
    from autograd.nn import init

    saved = init.trunc_normal_, init.uniform_
    init.trunc_normal_ = init.uniform_ = lambda tensor, *args, **kwargs: tensor
    try:
        return cls(num_classes=num_classes, **config)
    finally:
        init.trunc_normal_, init.uniform_ = saved


if __name__ == "__main__":
    print(variants_table())
