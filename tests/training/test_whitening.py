"""--stem-init whiten (airbench's first layer): filters that decorrelate the image patches and give them unit
variance, with their negatives, written into the patchify stem's first channels; a stem that is not one
conv on the image is refused in one line."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from train_helpers import synthetic_cifar, tiny_config

import autograd as ag
from tinyconvnext import cli
from tinyconvnext.build import build_model
from tinyconvnext.config import TrainConfig
from tinyconvnext.pipeline import whitening_sample
from tinyconvnext.train import train
from tinyconvnext.whitening import WHITENING_EPS, image_patches, patch_whitening_filters, whiten_stem


@st.composite
def correlated_images(draw):
    """(N, 3, H, W) images with correlated colours and neighbours, and a patch size that fits them, with
    at least twice as many patches as a patch has numbers (a covariance of full rank)."""
    patch = draw(st.integers(1, 3))
    per_side = draw(st.integers(3, 5))
    count = draw(st.integers(8, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    side = patch * per_side + draw(st.integers(0, patch - 1))  # leftover rows the stem leaves out
    noise = rng.standard_normal((count, 3, side + 1, side))
    images = noise[:, :, 1:] + 0.8 * noise[:, :, :-1]  # each row leans on the one above
    images = np.einsum("dc,nchw->ndhw", rng.standard_normal((3, 3)) + 2 * np.eye(3), images)
    return images + rng.normal(size=(1, 3, 1, 1)), patch


@settings(max_examples=30, deadline=None)
@given(correlated_images())
def test_the_positive_filters_turn_the_patches_into_unit_uncorrelated_outputs(case):
    images, patch = case
    dims = 3 * patch * patch
    filters = patch_whitening_filters(images, patch, eps=0.0)
    assert filters.shape == (2 * dims, 3, patch, patch)
    np.testing.assert_array_equal(filters[dims:], -filters[:dims])
    outputs = image_patches(images, patch) @ filters[:dims].reshape(dims, -1).T
    np.testing.assert_allclose(np.cov(outputs, rowvar=False), np.eye(dims), atol=1e-8)


@settings(max_examples=15, deadline=None)
@given(correlated_images())
def test_eps_shrinks_the_weak_directions_most_and_the_strongest_come_first(case):
    images, patch = case
    dims = 3 * patch * patch
    filters = patch_whitening_filters(images, patch, eps=0.5)[:dims].reshape(dims, -1)
    covariance = np.cov(image_patches(images, patch) @ filters.T, rowvar=False)
    variances = np.diag(covariance)  # lambda / (lambda + eps): below 1, growing with lambda
    np.testing.assert_allclose(covariance, np.diag(variances), atol=1e-8)
    assert np.all(variances < 1) and np.all(np.diff(variances) <= 1e-12)


def test_image_patches_are_the_windows_the_stem_conv_sees():
    images = np.random.default_rng(0).standard_normal((4, 3, 9, 8)).astype(np.float32)
    model = build_model(TrainConfig(model="convnext_cifar_3stage"), num_classes=10)
    conv = model.downsample_layers[0][0]
    outputs = conv(ag.tensor(np.ascontiguousarray(images.transpose(0, 2, 3, 1)))).numpy()  # (N, H/2, W/2, C)
    weight = conv.weight.numpy().reshape(conv.out_channels, -1)
    expected = image_patches(images, 2) @ weight.T + conv.bias.numpy()
    np.testing.assert_allclose(outputs.reshape(-1, conv.out_channels), expected, rtol=1e-5, atol=1e-5)


def test_the_stem_gets_the_filters_in_its_first_channels_and_keeps_the_rest():
    images = np.random.default_rng(1).standard_normal((6, 3, 8, 8)).astype(np.float32)
    model = build_model(TrainConfig(model="convnext_cifar_3stage"), num_classes=10)
    conv = model.downsample_layers[0][0]  # 2x2 patches into 48 channels: 24 whitening filters
    weight_before, bias_before = conv.weight.numpy().copy(), conv.bias.numpy().copy()
    whiten_stem(model, images)
    filters = patch_whitening_filters(images, 2, WHITENING_EPS).astype(np.float32)
    np.testing.assert_array_equal(conv.weight.numpy()[:24], filters)
    np.testing.assert_array_equal(conv.bias.numpy()[:24], 0)
    np.testing.assert_array_equal(conv.weight.numpy()[24:], weight_before[24:])
    np.testing.assert_array_equal(conv.bias.numpy()[24:], bias_before[24:])


def test_a_stem_narrower_than_the_filters_takes_the_strongest_ones():
    images = np.random.default_rng(2).standard_normal((6, 3, 8, 8)).astype(np.float32)
    model = build_model(
        TrainConfig(model="convnext_cifar_atto", dims="16,32,64,96", depths="1,1,1,1", patch_size=2), 10
    )
    conv = model.downsample_layers[0][0]
    assert conv.out_channels < 2 * 3 * conv.patch_size**2
    whiten_stem(model, images)
    filters = patch_whitening_filters(images, conv.patch_size).astype(np.float32)
    np.testing.assert_array_equal(conv.weight.numpy(), filters[: conv.out_channels])


@pytest.mark.parametrize(
    "options, found",
    [
        (dict(model="convnext_cifar_atto", stem_type="deep"), "DeepStem"),
        (dict(model="convnext_cifar_atto", stem_type="overlap"), "OverlapStem"),
        (dict(model="resnet18d"), "a ResNet stem"),
    ],
)
def test_a_stem_that_is_not_one_conv_on_the_image_is_refused_in_one_line(options, found):
    model = build_model(TrainConfig(**options), num_classes=10)
    with pytest.raises(cli.UsageError) as refused:
        whiten_stem(model, np.zeros((2, 3, 32, 32), np.float32))
    message = str(refused.value)
    assert "\n" not in message and message.startswith(
        "--stem-init whiten sets the filters of a patchify stem"
    )
    assert message.endswith(f"this model's stem starts with {found}")


def test_a_whitened_run_with_a_deep_stem_stops_before_writing_anything(tmp_path):
    config = tiny_config(tmp_path, stem_type="deep", stem_init="whiten", epochs=1)
    with pytest.raises(cli.UsageError, match="--stem-init whiten"):
        train(config, synthetic_cifar(64, 32))
    assert not (tmp_path / "run").exists()


def test_the_sample_is_normalised_training_images_fixed_by_the_seed(tmp_path):
    data = synthetic_cifar(96, 16)
    sample = whitening_sample(tiny_config(tmp_path, subset=64), data)
    assert sample.shape == (64, 3, 32, 32) and sample.dtype == np.float32
    np.testing.assert_array_equal(sample, whitening_sample(tiny_config(tmp_path, subset=64), data))
    assert abs(float(sample.mean())) < 5  # standardised, not raw 0-255 pixels
