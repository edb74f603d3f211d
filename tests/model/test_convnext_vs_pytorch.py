"""Our ConvNeXt, as built and after ``fuse()``, against an independent PyTorch ConvNeXt on checkpoints in the
official format."""

import copy

import numpy as np
import pytest
import torch
from torch_convnext import TorchConvNeXt, randomize_

import autograd as ag
import tinyconvnext
from autograd.nn import functional as F
from tinyconvnext.weights import load_official

OFFICIAL_LIKE = {
    # name: (variant, torch architecture kwargs, num_classes, batch)
    "tiny-1k": ("convnext_tiny", dict(depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)), 1000, 2),
    "atto-1k": ("convnext_atto", dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)), 1000, 2),
    "atto-22k": ("convnext_atto", dict(depths=(2, 2, 6, 2), dims=(40, 80, 160, 320)), 21841, 2),
}


@pytest.fixture(scope="module", params=sorted(OFFICIAL_LIKE))
def official_pair(request, tmp_path_factory):
    variant, arch, num_classes, batch = OFFICIAL_LIKE[request.param]
    torch.manual_seed(0)
    reference = randomize_(TorchConvNeXt(num_classes=num_classes, **arch), seed=1)
    path = tmp_path_factory.mktemp("ckpt") / f"{request.param}.pth"
    torch.save({"model": reference.state_dict()}, path)  # the official checkpoints' layout
    ours = tinyconvnext.create_model(variant, num_classes=num_classes)
    load_official(ours, path)
    images = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    return ours, reference, images


def test_logits_match_pytorch_at_224(official_pair):
    ours, reference, images = official_pair
    ours.eval(), reference.eval()
    with torch.no_grad():
        torch_logits = reference(torch.from_numpy(images)).numpy()
    with ag.no_grad():
        our_logits = ours(images).numpy()
        fused_logits = copy.deepcopy(ours).fuse()(images).numpy()
    assert our_logits.shape == torch_logits.shape
    assert np.abs(our_logits).max() > 0.1  # the comparison is not between two near-zero outputs
    assert np.abs(our_logits - torch_logits).max() <= 1e-4
    assert np.abs(fused_logits - torch_logits).max() <= 1e-4


def test_every_parameter_gradient_matches_pytorch(official_pair):
    ours, reference, images = official_pair
    ours.train(), reference.train()  # drop path is off (rate 0): training mode is deterministic
    labels = np.arange(images.shape[0]) % 7
    loss = F.cross_entropy(ours(images), labels)
    ours.zero_grad()
    loss.backward()
    reference.zero_grad()
    torch.nn.functional.cross_entropy(
        reference(torch.from_numpy(images)), torch.from_numpy(labels)
    ).backward()
    ours_params = dict(ours.named_parameters())
    theirs = dict(reference.named_parameters())
    assert ours_params.keys() == theirs.keys()
    for name, p in theirs.items():
        g_ours, g_theirs = ours_params[name].grad.numpy(), p.grad.numpy()
        scale = np.abs(g_theirs).max()
        assert scale > 0, name
        assert np.abs(g_ours - g_theirs).max() <= 1e-3 * scale, f"{name}: gradients differ"


def _backward_both(ours, reference, images, labels):
    """Cross-entropy forward and backward through both models; the losses match. Our named parameters."""
    loss = F.cross_entropy(ours(images), labels)
    ours.zero_grad()
    loss.backward()
    torch_loss = torch.nn.functional.cross_entropy(
        reference(torch.from_numpy(images)), torch.from_numpy(labels)
    )
    reference.zero_grad()
    torch_loss.backward()
    assert abs(loss.item() - torch_loss.item()) <= 1e-5
    return dict(ours.named_parameters())


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused"])
@pytest.mark.parametrize("stem_type", ["overlap", "overlap_tiered", "overlap_act", "deep"])
def test_overlapping_stems_match_pytorch_forward_and_backward(stem_type, fused):
    # timm's "_ols" stems (two 3x3 stride-2 convs): a small 3-stage network on 36x36 images, so the
    # padded convs round the sides up (36 -> 18 -> 9) and the later downsamplings floor them (9 -> 4 -> 2).
    arch = dict(depths=(1, 2, 1), dims=(16, 32, 48), kernel_size=7)
    torch.manual_seed(0)
    reference = randomize_(TorchConvNeXt(num_classes=10, stem_type=stem_type, **arch), seed=2)
    ours = tinyconvnext.create_model("convnext_atto", num_classes=10, stem_type=stem_type, **arch)
    if fused:
        ours.fuse()
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    images = np.random.default_rng(1).standard_normal((3, 3, 36, 36)).astype(np.float32)
    labels = np.array([1, 4, 9])
    ours_params = _backward_both(ours, reference, images, labels)
    assert ours_params.keys() == dict(reference.named_parameters()).keys()
    for name, p in reference.named_parameters():
        g_ours, g_theirs = ours_params[name].grad.numpy(), p.grad.numpy()
        assert np.abs(g_ours - g_theirs).max() <= 1e-3 * np.abs(g_theirs).max(), f"{name}: gradients differ"


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused"])
@pytest.mark.parametrize(
    "stem_type, norm_layer", [("overlap_act", "batch"), ("deep", "batch"), ("deep", "layer")]
)
def test_batchnorm_convnext_matches_pytorch_in_training_and_evaluation(stem_type, norm_layer, fused):
    # norm_layer="batch" (the roadmap's BN -> LN step undone): a training step's loss, every gradient and the
    # running statistics, then evaluation with those statistics, against BatchNorm2d on NCHW in PyTorch.
    # With ResNet-D's deep stem too (its convs at half the side, then a max pool); and that stem with
    # BatchNorm in front of LayerNorm blocks (stem_norm_layer="batch").
    arch = dict(
        depths=(1, 2, 1),
        dims=(16, 32, 48),
        kernel_size=7,
        stem_type=stem_type,
        norm_layer=norm_layer,
        stem_norm_layer="batch",
    )
    torch.manual_seed(0)
    reference = randomize_(TorchConvNeXt(num_classes=10, **arch), seed=3)
    ours = tinyconvnext.create_model("convnext_atto", num_classes=10, **arch)
    if fused:
        ours.fuse()
    ours.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    stem_norm = "downsample_layers.0.0.norm3" if stem_type == "deep" else "downsample_layers.0.1"
    assert stem_norm + ".running_var" in dict(ours.named_buffers())
    assert ("stages.1.0.norm.running_var" in dict(ours.named_buffers())) == (norm_layer == "batch")
    images = np.random.default_rng(1).standard_normal((4, 3, 36, 36)).astype(np.float32)
    labels = np.array([1, 4, 9, 0])
    ours.train(), reference.train()
    ours_params = _backward_both(ours, reference, images, labels)
    scale = max(p.grad.abs().max().item() for p in reference.parameters())
    for name, p in reference.named_parameters():
        g_ours, g_theirs = ours_params[name].grad.numpy(), p.grad.numpy()
        # biases whose per-channel shift a later BatchNorm's batch mean subtracts (the dwconv's, stage 1's)
        # have zero gradient up to rounding: hence the absolute term, on the scale of the largest gradient
        assert np.abs(g_ours - g_theirs).max() <= 1e-3 * np.abs(g_theirs).max() + 1e-5 * scale, (
            f"{name}: gradients differ"
        )
    ours_buffers = dict(ours.named_buffers())
    for name, b in reference.named_buffers():
        np.testing.assert_allclose(ours_buffers[name].numpy(), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    ours.eval(), reference.eval()
    with torch.no_grad():
        expected = reference(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(ours(images).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_unknown_norm_layer_is_a_clear_error():
    with pytest.raises(ValueError, match="norm_layer must be one of"):
        tinyconvnext.create_model("convnext_atto", depths=(1,), dims=(8,), norm_layer="group")
    with pytest.raises(ValueError, match="stem_norm_layer must be one of .*, got 'group'"):
        tinyconvnext.create_model("convnext_atto", depths=(1,), dims=(8,), stem_norm_layer="group")
    from autograd import nn

    with pytest.raises(
        ValueError, match="data_format must be 'channels_last' or 'channels_first', got 'nhwc'"
    ):
        nn.BatchNorm2d(8, data_format="nhwc")
