"""The ResNet-D baseline against an independent PyTorch ResNet-D (tests/torch_resnet.py), and its errors."""

import numpy as np
import pytest
import torch
from torch_resnet import TorchResNet

import autograd as ag
from autograd.nn import functional as F
from tinyconvnext import RESNET_VARIANTS, ResNet, available_models, create_model

SMALL = dict(widths=(8, 16, 24, 32), stem_width=8, num_classes=5)


def twins(depths=(2, 2, 2, 2), seed=0):
    """Our small ResNet-D and PyTorch's with the same weights; BN gammas drawn away from the zero init, so
    that no residual branch is silent."""
    torch.manual_seed(seed)
    reference = TorchResNet(depths=depths, **SMALL)
    with torch.no_grad():
        for name, p in reference.named_parameters():
            if p.ndim == 1 and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
    ours = ResNet(depths=depths, **SMALL)
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    return ours, reference


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_forward_backward_and_running_statistics_match_pytorch(training):
    ours, reference = twins()
    ours.train(training)
    reference.train(training)
    x = np.random.default_rng(0).standard_normal((4, 3, 40, 48)).astype(np.float32)
    labels = np.array([0, 1, 2, 3])
    logits = ours(ag.tensor(x))
    expected = reference(torch.from_numpy(x))
    np.testing.assert_allclose(logits.data, expected.detach().numpy(), rtol=1e-4, atol=1e-4)
    F.cross_entropy(logits, labels).backward()
    torch.nn.functional.cross_entropy(expected, torch.from_numpy(labels)).backward()
    grads = dict(ours.named_parameters())
    for name, p in reference.named_parameters():
        scale = p.grad.abs().max().item() + 1e-6
        np.testing.assert_allclose(
            grads[name].grad.data / scale, p.grad.numpy() / scale, atol=2e-4, err_msg=name
        )
    state = ours.state_dict()
    for name, value in reference.state_dict().items():  # running means and variances, batch counts
        np.testing.assert_allclose(state[name], value.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_names_and_parameter_count_are_timm_s():
    model = create_model("resnet18d")
    reference = TorchResNet()
    assert sorted(model.state_dict()) == sorted(reference.state_dict())
    assert model.num_parameters() == sum(p.numel() for p in reference.parameters()) == 11_708_744
    assert "layer2.0.downsample.2.running_var" in model.state_dict()  # the ResNet-D shortcut: pool, conv, BN
    assert create_model("resnet34d", num_classes=10).depths == (3, 4, 6, 3)
    assert {"resnet18d", "resnet34d"} <= set(available_models()) and set(RESNET_VARIANTS) == {
        "resnet18d",
        "resnet34d",
    }


def test_every_block_starts_as_the_identity():
    """Goyal et al. 2017: the last BN of each residual branch starts at gamma = 0, so a block at
    initialisation outputs relu(shortcut(x))."""
    model = ResNet(**SMALL)
    block = model.layer1[0]
    assert np.all(block.bn2.weight.data == 0)
    x = ag.tensor(np.random.default_rng(1).standard_normal((2, 8, 8, 8)).astype(np.float32))
    np.testing.assert_array_equal(block(x).data, np.maximum(x.data, 0))


def test_drop_path_rates_rise_over_the_blocks_and_vanish_in_evaluation():
    model = ResNet(drop_path_rate=0.3, **SMALL)
    rates = [getattr(block.drop_path, "p", 0.0) for stage in model.stages for block in stage]
    np.testing.assert_allclose(rates, np.linspace(0, 0.3, 8))
    model.eval()
    x = np.random.default_rng(2).standard_normal((2, 3, 32, 32)).astype(np.float32)
    plain = ResNet(**SMALL)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    np.testing.assert_array_equal(model(x).data, plain(x).data)


def test_bad_input_and_convnext_only_options_are_clear_errors():
    model = ResNet(**SMALL)
    with pytest.raises(ValueError, match=r"shape \(N, 3, H, W\)"):
        model(np.zeros((2, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="at least 32x32"):
        model(np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="floating-point"):
        model(np.zeros((2, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="layer_scale_init_value=0.1 is a ConvNeXt option"):
        create_model("resnet18d", layer_scale_init_value=0.1)
    with pytest.raises(ValueError, match="unknown option.*patch_size"):
        create_model("resnet18d", patch_size=2)
    with pytest.raises(ValueError, match="same length"):
        ResNet(depths=(2, 2), widths=(8, 16, 32))
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        create_model("resnet50")


def test_multiply_adds_are_resnet18d_s():
    """traced_macs (every conv and matmul the forward runs): 2.05 G at 224 px, timm's 2.1 GMACs for
    resnet18d."""
    from tinyconvnext.flops import traced_macs

    assert round(traced_macs(create_model("resnet18d"), 224) / 1e9, 2) == 2.05


def test_a_timm_format_checkpoint_loads_and_a_wrong_head_is_explained(tmp_path):
    """timm's resnet18d state dict, saved by PyTorch, loads by name; a head of other classes is named."""
    reference = TorchResNet(num_classes=5, **{k: v for k, v in SMALL.items() if k != "num_classes"})
    path = tmp_path / "resnet18d_small.pth"
    torch.save(reference.state_dict(), path)
    model = create_model("resnet18d", num_classes=5, widths=SMALL["widths"], stem_width=8, weights=path)
    np.testing.assert_array_equal(
        model.state_dict()["layer4.1.conv2.weight"], reference.state_dict()["layer4.1.conv2.weight"].numpy()
    )
    with pytest.raises(ValueError, match="head has 5 classes but the model has 7"):
        create_model("resnet18d", num_classes=7, widths=SMALL["widths"], stem_width=8, weights=path)
