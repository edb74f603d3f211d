"""The roadmap networks (tinyconvnext.roadmap): each step one change, every step trains, the last is
ConvNeXt."""

import dataclasses

import numpy as np
import pytest

import autograd as ag
from autograd import nn
from tinyconvnext import available_models, create_model
from tinyconvnext.flops import count_flops, traced_macs
from tinyconvnext.roadmap import ROADMAP_MODELS, RoadmapConfig, RoadmapNet, roadmap_step, roadmap_steps


def _changed_fields(a, b):
    return [f.name for f in dataclasses.fields(RoadmapConfig) if getattr(a, f.name) != getattr(b, f.name)]


def test_each_step_changes_exactly_one_thing():
    steps = roadmap_steps()
    assert len(steps) == 13
    for (_, before), (name, after) in zip(steps, steps[1:], strict=False):
        assert len(_changed_fields(before, after)) == 1, f"{name}: changed {_changed_fields(before, after)}"
    first, last = steps[0][1], steps[-1][1]
    assert (first.block, first.stem, first.norm, first.act, first.kernel_size) == (
        "bottleneck",
        "resnet",
        "batch",
        "relu",
        3,
    )
    assert (last.block, last.stem, last.norm, last.act, last.kernel_size) == (
        "inverted",
        "patchify",
        "layer",
        "gelu",
        7,
    )


@pytest.mark.parametrize("index", range(13))
def test_every_step_runs_forward_and_backward(index):
    name, config = roadmap_steps(width=4, depths=(1, 1, 2, 1), final_depths=(1, 1, 3, 1))[index]
    ag.manual_seed(index)
    model = RoadmapNet(config, num_classes=10)
    x = ag.tensor(np.random.default_rng(index).standard_normal((2, 3, 32, 32)).astype(np.float32))
    logits = model(x)
    assert logits.shape == (2, 10), name
    logits.sum().backward()
    missing = [key for key, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}: no gradient for {missing}"
    assert all(np.isfinite(p.grad.numpy()).all() for p in model.parameters()), name


def test_resnet_baseline_downsamples_inside_its_blocks():
    model = RoadmapNet(roadmap_steps()[0][1])
    first = model.stages[1][0]
    assert first.convs[1].stride == 2 and first.convs[1].kernel_size == (3, 3) and first.convs[1].groups == 1
    assert isinstance(first.shortcut, nn.Sequential) and first.shortcut[0].stride == 2
    assert [stage[0].convs[2].out_channels for stage in model.stages] == [128, 256, 512, 1024]
    assert isinstance(model.downsample_layers[0][3], nn.MaxPool2d)


def test_last_step_is_convnext_without_layer_scale():
    """Copy the last step's weights into tinyconvnext.ConvNeXt: the logits agree."""
    ag.manual_seed(0)
    roadmap = RoadmapNet(roadmap_steps()[-1][1], num_classes=10).to(dtype=np.float64)
    convnext = create_model("convnext_cifar_femto", num_classes=10, layer_scale_init_value=0).to(
        dtype=np.float64
    )
    renames = {"convs.0": "dwconv", "norms.0": "norm", "convs.1": "pwconv1", "convs.2": "pwconv2"}
    state, wanted = {}, convnext.state_dict()
    for key, value in roadmap.state_dict().items():
        for old, new in renames.items():
            key = key.replace(f".{old}.", f".{new}.")
        state[key] = value.reshape(wanted[key].shape)  # 1x1 convs -> Linear weights
    convnext.load_state_dict(state)
    assert roadmap.num_parameters() == convnext.num_parameters()
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32))
    roadmap.eval(), convnext.eval()
    np.testing.assert_allclose(
        roadmap(ag.tensor(x)).numpy(), convnext(ag.tensor(x)).numpy(), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize(
    "name, size", [("convnext_atto", 64), ("convnext_cifar_femto", 32), ("convnext_tiny", 224)]
)
def test_traced_macs_equal_the_formula_for_convnext(name, size):
    model = create_model(name, num_classes=10)
    assert traced_macs(model, size) == count_flops(model, size)


def test_traced_macs_of_a_small_known_network():
    model = RoadmapNet(RoadmapConfig(depths=(1,), width=2), num_classes=3)
    # stem 3x3: 32*32*3*9*2; block at 16x16: 1x1 2->2, 3x3 2->2, 1x1 2->8, projection 2->8; head 8*3
    expected = 32 * 32 * 3 * 9 * 2 + 16 * 16 * (2 * 2 + 2 * 2 * 9 + 2 * 8 + 2 * 8) + 8 * 3
    assert traced_macs(model, 32) == expected
    assert model.training  # counting leaves the mode as it was


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="norm must be one of"):
        RoadmapConfig(norm="group")
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        RoadmapConfig(kernel_size=4)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, H, W\)"):
        RoadmapNet(RoadmapConfig(depths=(1,), width=2))(ag.zeros(1, 1, 32, 32))


def test_every_step_is_a_model_name_in_the_walks_order():
    assert len(ROADMAP_MODELS) == 13 and ROADMAP_MODELS[0] == "roadmap_00_baseline"
    assert ROADMAP_MODELS[-1] == "roadmap_12_separate_downsampling"
    assert available_models()[-13:] == list(ROADMAP_MODELS)
    for (step, config), name in zip(roadmap_steps(width=8), ROADMAP_MODELS, strict=True):
        model = create_model(name, num_classes=10, width=8)
        assert (model.step, model.config, model.variant) == (step, config, name)
        assert model.fuse() is model  # nothing to fuse: the trainer's build_fused_model takes it as it is


def test_roadmap_names_refuse_options_they_do_not_have():
    with pytest.raises(ValueError, match="is a roadmap network: layer_scale_init_value=0.1"):
        create_model("roadmap_00_baseline", layer_scale_init_value=0.1)
    with pytest.raises(ValueError, match="unknown option"):
        create_model("roadmap_00_baseline", patch_size=4)
    with pytest.raises(ValueError, match="unknown roadmap network"):
        roadmap_step("roadmap_13_nothing")
    assert create_model("roadmap_00_baseline", layer_scale_init_value=0, width=4).variant  # 0: none, as built


def test_drop_path_rises_linearly_to_the_last_block():
    model = create_model("roadmap_12_separate_downsampling", drop_path_rate=0.3, width=4, depths=(1, 1, 1, 1))
    rates = [getattr(block.drop_path, "p", 0.0) for stage in model.stages for block in stage]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])
    x = ag.tensor(np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32))
    ag.manual_seed(0)
    assert not np.allclose(model(x).numpy(), model(x).numpy())  # training: blocks dropped at random
    model.eval()
    np.testing.assert_allclose(model(x).numpy(), model(x).numpy())  # evaluation: every block, every time
