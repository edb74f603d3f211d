"""The model's structure: variants, parameter counts, names, initialisation, input checks, the options."""

import hashlib
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
import tinyconvnext
from autograd import nn
from tinyconvnext.flops import _structure_only, count_flops, traced_macs
from tinyconvnext.options import OverlapStem, Stem

# Recorded from the model before the options moved out of it (tinyconvnext/options.py): for every option
# combination on a small network, the parameter and buffer names and shapes, a digest of the initial
# weights after ag.manual_seed(0), and the multiply-adds at 32x32; for every variant, a digest of its
# names and shapes. Saved runs and official checkpoints load only while these stay the same.
RECORDED = json.loads((Path(__file__).parent / "convnext_parameters.json").read_text())

OFFICIAL_PARAMETERS = {
    "convnext_tiny": 28.59,
    "convnext_small": 50.22,
    "convnext_base": 88.59,
    "convnext_large": 197.77,
    "convnext_xlarge": 350.20,
}


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMETERS))
def test_parameter_counts_match_the_paper(name):
    params = _structure_only(tinyconvnext.ConvNeXt, tinyconvnext.VARIANTS[name], 1000).num_parameters()
    assert round(params / 1e6, 2) == OFFICIAL_PARAMETERS[name]


def test_parameter_names_and_order_are_the_official_ones():
    from torch_convnext import TorchConvNeXt

    ours = tinyconvnext.create_model("convnext_atto")
    theirs = TorchConvNeXt(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    shapes = {n: p.shape for n, p in ours.named_parameters()}
    assert shapes == {n: tuple(t.shape) for n, t in theirs.state_dict().items()}
    assert shapes["stages.0.0.dwconv.weight"] == (40, 1, 7, 7)
    assert shapes["downsample_layers.0.0.weight"] == (40, 3, 4, 4)


def test_initialisation_follows_the_official_code():
    ag.manual_seed(0)
    model = tinyconvnext.create_model(
        "convnext_tiny", head_init_scale=0.5, layer_scale_init_value=1e-6, drop_path_rate=0.3
    )
    w = model.stages[2][0].pwconv1.weight.numpy()
    assert abs(w.std() - 0.02) < 0.001 and np.abs(w).max() <= 2.0
    assert not model.stages[2][0].pwconv1.bias.numpy().any()
    np.testing.assert_allclose(model.stages[0][0].gamma.numpy(), 1e-6)
    assert abs(model.head.weight.numpy().std() - 0.01) < 0.001  # 0.02 * head_init_scale
    rates = [b.drop_path.p if hasattr(b.drop_path, "p") else 0.0 for s in model.stages for b in s]
    np.testing.assert_allclose(rates, np.linspace(0, 0.3, 18))


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(
        ValueError, match=r"unknown model 'convnext_huge'; known models: .*convnext_atto.*convnext_tiny"
    ):
        tinyconvnext.create_model("convnext_huge")


@pytest.mark.parametrize(
    "shape, pattern",
    [
        ((2, 1, 32, 32), r"expects a float batch of shape \(N, 3, H, W\), got shape \(2, 1, 32, 32\)"),
        ((3, 32, 32), r"got shape \(3, 32, 32\)"),
        ((1, 3, 16, 16), r"needs images of at least 32x32, got 16x16"),
    ],
)
def test_wrong_input_shape_says_what_was_expected(shape, pattern):
    model = tinyconvnext.create_model("convnext_atto", num_classes=10)
    with pytest.raises(ValueError, match=pattern):
        model(np.zeros(shape, np.float32))


def test_integer_images_are_refused():
    model = tinyconvnext.create_model("convnext_cifar_atto", num_classes=10)
    with pytest.raises(ValueError, match="floating-point images, got dtype uint8"):
        model(np.zeros((1, 3, 32, 32), np.uint8))


def test_cifar_variant_runs_on_32x32_and_trains_one_step():
    ag.manual_seed(0)
    model = tinyconvnext.create_model("convnext_cifar_atto", num_classes=10, drop_path_rate=0.1)
    x = ag.randn(4, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_flops_of_convnext_tiny_match_the_paper():
    # The paper's Table 1 / timm: ConvNeXt-T has 4.5 GFLOPs (multiply-adds) at 224x224.
    assert (
        round(count_flops(tinyconvnext.ConvNeXt(**tinyconvnext.VARIANTS["convnext_tiny"]), 224) / 1e9, 1)
        == 4.5
    )


@pytest.mark.parametrize("stem_type, mid", [("overlap", 24), ("overlap_tiered", 12), ("overlap_act", 24)])
def test_overlapping_stem_shapes_flops_and_names(stem_type, mid):
    model = tinyconvnext.create_model(
        "convnext_atto", num_classes=10, depths=(1, 1, 1), dims=(24, 48, 96), stem_type=stem_type
    )
    names = [name for name, _ in model.named_parameters()][:6]
    assert names == [
        "downsample_layers.0.0.conv1.weight",
        "downsample_layers.0.0.conv1.bias",
        "downsample_layers.0.0.conv2.weight",
        "downsample_layers.0.0.conv2.bias",
        "downsample_layers.0.1.weight",
        "downsample_layers.0.1.bias",
    ]
    assert model.downsample_layers[0][0].conv1.weight.shape == (mid, 3, 3, 3)
    assert model.min_input_size == 16  # stride 4, then two 2x downsamplings
    assert model(np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 10)
    for size in (64, 40):
        assert count_flops(model, size) == traced_macs(model, size)


@pytest.mark.parametrize("norm_layer", ["batch", "layer"])
def test_deep_stem_shapes_flops_names_and_init(norm_layer):
    # ResNet-D's stem: 3 -> 32 (stride 2) -> 32 -> dims[0], a norm and ReLU after each conv, a stride-2
    # max pool
    model = tinyconvnext.create_model(
        "convnext_atto",
        num_classes=10,
        depths=(1, 1, 1),
        dims=(24, 48, 96),
        stem_type="deep",
        norm_layer=norm_layer,
    )
    stem = model.downsample_layers[0][0]
    assert len(model.downsample_layers[0]) == 1  # no second norm after the stem's own
    assert [name for name, _ in model.named_parameters()][:3] == [
        "downsample_layers.0.0.conv1.weight",
        "downsample_layers.0.0.norm1.weight",
        "downsample_layers.0.0.norm1.bias",
    ]
    assert [c.weight.shape for c in (stem.conv1, stem.conv2, stem.conv3)] == [
        (32, 3, 3, 3),
        (32, 32, 3, 3),
        (24, 32, 3, 3),
    ]
    assert stem.conv1.bias is None
    assert model.min_input_size == 16
    assert model(np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 10)
    for size in (64, 40, 37):
        assert count_flops(model, size) == traced_macs(model, size)
    # He normal (fan out) as the ResNet, not ConvNeXt's trunc normal 0.02
    assert np.std(stem.conv2.weight.numpy()) == pytest.approx(np.sqrt(2 / (32 * 9)), rel=0.1)


def test_unknown_stem_type_names_the_known_ones():
    with pytest.raises(ValueError, match=r"stem_type must be one of .*'overlap_tiered'.*got 'conv'"):
        tinyconvnext.create_model("convnext_atto", stem_type="conv")


def _digest(state_dict):
    digest = hashlib.sha256()
    for name, value in state_dict.items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("combination", sorted(RECORDED["options"]))
def test_every_option_keeps_its_parameter_names_shapes_and_initial_weights(combination):
    recorded = RECORDED["options"][combination]
    arch = RECORDED["arch"]
    ag.manual_seed(0)
    model = tinyconvnext.create_model(
        "convnext_atto",
        num_classes=arch["num_classes"],
        depths=tuple(arch["depths"]),
        dims=tuple(arch["dims"]),
        **recorded["options"],
    )
    state = model.state_dict()
    assert [f"{name} {tuple(value.shape)}" for name, value in state.items()] == recorded["parameters"]
    assert _digest(state) == recorded["init_sha256"]
    assert count_flops(model, 32) == traced_macs(model, 32) == recorded["flops32"]


@pytest.mark.parametrize("name", sorted(RECORDED["variants"]))
def test_every_variant_keeps_its_parameter_names_and_shapes(name):
    model = _structure_only(tinyconvnext.ConvNeXt, tinyconvnext.VARIANTS[name], 1000)
    lines = "\n".join(f"{key} {tuple(p.shape)}" for key, p in model.named_parameters())
    recorded = RECORDED["variants"][name]
    assert model.num_parameters() == recorded["count"]
    assert hashlib.sha256(lines.encode()).hexdigest() == recorded["sha256"]


def test_stem_and_norm_plug_in_as_modules():
    # The paper's model takes any stem and norm by composition; create_model builds them from names.
    batch_norm = partial(nn.BatchNorm2d, data_format="channels_last")
    stem = Stem(OverlapStem(3, 8, "overlap_act"), batch_norm(8), stride=4)
    model = tinyconvnext.ConvNeXt(
        num_classes=10, depths=(1, 1), dims=(8, 16), stem=stem, norm_layer=batch_norm
    )
    assert model.downsample_layers[0] is stem and model.min_input_size == 8
    assert isinstance(model.stages[1][0].norm, nn.BatchNorm2d) and isinstance(model.norm, nn.LayerNorm)
    assert model(np.zeros((2, 3, 16, 16), np.float32)).shape == (2, 10)
    assert count_flops(model, 16) == traced_macs(model, 16)
    named = tinyconvnext.create_model("convnext_atto", depths=(1, 1), dims=(8, 16), stem_type="overlap_act")
    assert (named.stem_type, named.norm_layer, named.stem_norm_layer) == ("overlap_act", "layer", "layer")
