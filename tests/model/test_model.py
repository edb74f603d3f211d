"""The model's structure: variants, parameter counts, names, initialisation, input checks."""

import numpy as np
import pytest

import autograd as ag
import tinyconvnext
from tinyconvnext.flops import count_flops, traced_macs

OFFICIAL_PARAMETERS = {
    "convnext_tiny": 28.59,
    "convnext_small": 50.22,
    "convnext_base": 88.59,
    "convnext_large": 197.77,
    "convnext_xlarge": 350.20,
}


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMETERS))
def test_parameter_counts_match_the_paper(name):
    from tinyconvnext.flops import _structure_only

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
    model = tinyconvnext.ConvNeXt(num_classes=10, depths=(1, 1, 1), dims=(24, 48, 96), stem_type=stem_type)
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
    model = tinyconvnext.ConvNeXt(
        num_classes=10, depths=(1, 1, 1), dims=(24, 48, 96), stem_type="deep", norm_layer=norm_layer
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
        tinyconvnext.ConvNeXt(stem_type="conv")
