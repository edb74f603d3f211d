"""The names in a ConvNeXt state dict: the official ones (ours), timm's, and what a file holds.

Our parameters carry the official names (``downsample_layers.1.1.weight``, ``stages.0.2.pwconv1.weight``,
``norm.weight``, ``head.weight``). timm, and so the Hugging Face Hub's ``model.safetensors`` files, name the
same numbers differently; ``TIMM_TO_OFFICIAL`` is the whole mapping (the reverse of timm's
``checkpoint_filter_fn``):

    timm                                      official (ours)
    stem.0 / stem.1                           downsample_layers.0.0 / .1   (patchify conv, its norm)
    stages.1.downsample.0 / .1                downsample_layers.1.0 / .1   (norm, 2x2 conv)
    stages.0.blocks.2.conv_dw                 stages.0.2.dwconv
    stages.0.blocks.2.mlp.fc1 / fc2           stages.0.2.pwconv1 / pwconv2
    head.norm / head.fc                       norm / head

An overlapping stem (timm's ``_ols`` variants) is ``stem.0`` conv, [``stem.1`` GELU,] conv, norm; ours is
``downsample_layers.0.0.conv1``, ``.conv2`` and ``downsample_layers.0.1``. timm builds atto..nano with
``conv_mlp=True``: their ``mlp.fc1``/``fc2`` weights are 1x1 convolutions, (out, in, 1, 1), which are our
Linear weights, (out, in), with two axes of size 1.

``variant_shapes`` derives a variant's names and shapes from its configuration, without building it, so that
``fitting_variants`` can say which variant a state dict belongs to, even for xlarge.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np

TIMM_TO_OFFICIAL = (
    (r"^stages\.(\d+)\.downsample\.(\d+)\.", r"downsample_layers.\1.\2."),
    (r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2."),
    (r"\.conv_dw\.", ".dwconv."),
    (r"\.mlp\.fc(\d)\.", r".pwconv\1."),
    (r"^head\.norm\.", "norm."),
    (r"^head\.fc\.", "head."),
)
# timm's stem, by its last module's index: the patchify stem (conv, norm), the overlapping one (conv, conv,
# norm) and the one with a GELU between its convs (conv, GELU, conv, norm).
TIMM_STEMS = {
    1: {"stem.0.": "downsample_layers.0.0.", "stem.1.": "downsample_layers.0.1."},
    2: {
        "stem.0.": "downsample_layers.0.0.conv1.",
        "stem.1.": "downsample_layers.0.0.conv2.",
        "stem.2.": "downsample_layers.0.1.",
    },
    3: {
        "stem.0.": "downsample_layers.0.0.conv1.",
        "stem.2.": "downsample_layers.0.0.conv2.",
        "stem.3.": "downsample_layers.0.1.",
    },
}


def architecture_of(state_dict) -> str:
    """What a state dict's names say it holds: "ConvNeXt (official names)", "ConvNeXt (timm names)",
    "ResNet", "Vision Transformer", or "unknown"."""
    keys = list(state_dict)
    if any(k.startswith("downsample_layers.") for k in keys):
        return "ConvNeXt (official names)"
    if any(re.match(r"stages\.\d+\.blocks\.\d+\.conv_dw\.", k) for k in keys):
        return "ConvNeXt (timm names)"
    if any(k.startswith(("layer1.", "conv1.")) for k in keys) and "fc.weight" in state_dict:
        return "ResNet"
    if any(k.startswith(("cls_token", "patch_embed.", "pos_embed")) for k in keys):
        return "Vision Transformer"
    return "unknown"


def _timm_stem_table(state_dict) -> dict[str, str]:
    last = max((int(m.group(1)) for k in state_dict if (m := re.match(r"stem\.(\d+)\.", k))), default=1)
    return TIMM_STEMS.get(last, TIMM_STEMS[1])


def to_official_names(state_dict) -> OrderedDict[str, np.ndarray]:
    """A state dict with official names: timm's are renamed (and its 1x1-conv MLP weights reshaped to
    Linear ones); official names pass through unchanged."""
    if architecture_of(state_dict) != "ConvNeXt (timm names)":
        return OrderedDict(state_dict)
    stem = _timm_stem_table(state_dict)
    out = OrderedDict()
    for key, value in state_dict.items():
        name = next((new + key[len(old) :] for old, new in stem.items() if key.startswith(old)), key)
        for pattern, replacement in TIMM_TO_OFFICIAL:
            name = re.sub(pattern, replacement, name)
        if re.search(r"\.pwconv\d\.weight$", name) and value.ndim == 4 and value.shape[2:] == (1, 1):
            value = value.reshape(value.shape[:2])  # conv_mlp: a 1x1 conv is a Linear layer
        out[name] = value
    return out


def _stem_shapes(config: dict, in_chans: int) -> dict[str, tuple]:
    dim, stem_type = config["dims"][0], config.get("stem_type", "patch")
    if stem_type == "patch":
        patch = config.get("patch_size", 4)
        convs = {"downsample_layers.0.0": (dim, in_chans, patch, patch)}
    else:
        mid = config.get("stem_mid") or (dim // 2 if stem_type == "overlap_tiered" else dim)
        convs = {
            "downsample_layers.0.0.conv1": (mid, in_chans, 3, 3),
            "downsample_layers.0.0.conv2": (dim, mid, 3, 3),
        }
    shapes = {}
    for name, shape in convs.items():
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = shape, (shape[0],)
    shapes["downsample_layers.0.1.weight"] = shapes["downsample_layers.0.1.bias"] = (dim,)
    return shapes


def variant_shapes(config: dict, num_classes: int, in_chans: int = 3) -> dict[str, tuple]:
    """{name: shape} of the state dict of a ConvNeXt variant's configuration (``VARIANTS[name]``), built
    from the numbers alone (the paper's LayerNorm and layer scale, a 7x7 depthwise kernel by default)."""
    depths, dims, kernel = config["depths"], config["dims"], config.get("kernel_size", 7)
    shapes = _stem_shapes(config, in_chans)
    for i in range(1, len(dims)):
        shapes[f"downsample_layers.{i}.0.weight"] = shapes[f"downsample_layers.{i}.0.bias"] = (dims[i - 1],)
        shapes[f"downsample_layers.{i}.1.weight"] = (dims[i], dims[i - 1], 2, 2)
        shapes[f"downsample_layers.{i}.1.bias"] = (dims[i],)
    for i, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
        for j in range(depth):
            block = f"stages.{i}.{j}"
            shapes[f"{block}.gamma"] = (dim,)
            shapes[f"{block}.dwconv.weight"], shapes[f"{block}.dwconv.bias"] = (
                (dim, 1, kernel, kernel),
                (dim,),
            )
            shapes[f"{block}.norm.weight"] = shapes[f"{block}.norm.bias"] = (dim,)
            shapes[f"{block}.pwconv1.weight"], shapes[f"{block}.pwconv1.bias"] = (4 * dim, dim), (4 * dim,)
            shapes[f"{block}.pwconv2.weight"], shapes[f"{block}.pwconv2.bias"] = (dim, 4 * dim), (dim,)
    shapes["norm.weight"] = shapes["norm.bias"] = (dims[-1],)
    shapes["head.weight"], shapes["head.bias"] = (num_classes, dims[-1]), (num_classes,)
    return shapes


def fitting_variants(state_dict, variants: dict) -> list[tuple[str, int]]:
    """[(variant, num_classes), ...] of the ConvNeXt variants (name: configuration) whose every name and
    shape the state dict (official names) has, whatever its number of classes and image channels."""
    head, stem = state_dict.get("head.weight"), state_dict.get("downsample_layers.0.0.weight")
    stem = stem if stem is not None else state_dict.get("downsample_layers.0.0.conv1.weight")
    if head is None or stem is None or np.ndim(head) != 2 or np.ndim(stem) != 4:
        return []
    num_classes, in_chans = int(head.shape[0]), int(stem.shape[1])
    found = []
    for name, config in variants.items():
        expected = variant_shapes(config, num_classes, in_chans)
        if len(expected) == len(state_dict) and all(
            tuple(np.shape(state_dict.get(k, ()))) == shape for k, shape in expected.items()
        ):
            found.append((name, num_classes))
    return found
