"""Augmentations and the batch loader: shapes, exact semantics, soft targets that sum to 1, determinism."""

import numpy as np
import pytest

from tinyconvnext import augment
from tinyconvnext.config import TrainConfig
from tinyconvnext.loader import BatchLoader
from tinyconvnext.pipeline import ImageDataset
from tinyconvnext.train import train

RNG = np.random.default_rng(0)


def test_random_crop_flip_is_a_shifted_possibly_mirrored_window():
    images = RNG.integers(0, 255, size=(64, 32, 32, 3), dtype=np.uint8)
    out = augment.random_crop_flip(images, np.random.default_rng(1))
    assert out.shape == images.shape and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    for i in range(64):  # every output is some 32x32 window of the padded image, maybe mirrored
        windows = [padded[i, top : top + 32, left : left + 32] for top in range(9) for left in range(9)]
        assert any(np.array_equal(out[i], w) or np.array_equal(out[i], w[:, ::-1]) for w in windows)


def test_random_crop_flip_to_a_smaller_side_keeps_the_scale():
    """RandomCrop(24, padding=4): every output is a 24x24 window of the padded image, pixels unscaled, and
    the windows cover every offset 0..16."""
    images = RNG.integers(0, 255, size=(200, 32, 32, 3), dtype=np.uint8)
    out = augment.random_crop_flip(images, np.random.default_rng(2), size=24)
    assert out.shape == (200, 24, 24, 3) and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    offsets = set()
    for i in range(200):
        found = [
            (top, left)
            for top in range(17)
            for left in range(17)
            if np.array_equal(out[i], padded[i, top : top + 24, left : left + 24])
            or np.array_equal(out[i], padded[i, top : top + 24, left : left + 24][:, ::-1])
        ]
        assert found, f"image {i} is not a window of its padded image"
        offsets.update(top for top, _ in found)
    assert offsets == set(range(17))


def test_random_crop_flip_keeps_non_square_images_whole_sized():
    images = RNG.integers(0, 255, size=(8, 20, 28, 3), dtype=np.uint8)
    assert augment.random_crop_flip(images, np.random.default_rng(0)).shape == (8, 20, 28, 3)
    assert augment.random_crop_flip(images, np.random.default_rng(0), size=16).shape == (8, 16, 16, 3)


@pytest.mark.parametrize("size", [0, 41])
def test_random_crop_flip_rejects_a_crop_larger_than_the_padded_image(size):
    images = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match=f"crop side must be in 1..40 \\(the padded image\\), got {size}"):
        augment.random_crop_flip(images, np.random.default_rng(0), size=size)


def test_random_resized_crop_and_eval_transform_shapes():
    image = RNG.integers(0, 255, size=(160, 213, 3), dtype=np.uint8)
    assert augment.random_resized_crop(image, 128, np.random.default_rng(0)).shape == (128, 128, 3)
    assert augment.resize_center_crop(image, 128).shape == (128, 128, 3)


def test_rand_augment_keeps_shape_and_changes_images():
    images = RNG.integers(0, 255, size=(20, 32, 32, 3), dtype=np.uint8)
    rng = np.random.default_rng(3)
    out = [augment.rand_augment(im, rng, num_ops=2, magnitude=9) for im in images]
    assert all(o.shape == (32, 32, 3) and o.dtype == np.uint8 for o in out)
    assert sum(not np.array_equal(o, im) for o, im in zip(out, images, strict=False)) >= 10


def test_random_erasing_erases_about_the_asked_fraction():
    batch = np.zeros((400, 3, 32, 32), np.float32)
    augment.random_erasing(batch, np.random.default_rng(0), probability=0.25)
    erased = (batch != 0).any(axis=(1, 2, 3)).mean()
    assert 0.18 < erased < 0.32


@pytest.mark.parametrize("mixup, cutmix", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)])
def test_mixup_cutmix_targets_sum_to_one_and_mix_the_reversed_batch(mixup, cutmix):
    x = RNG.standard_normal((16, 3, 8, 8)).astype(np.float32)
    labels = np.arange(16) % 10
    for seed in range(5):
        mixed, targets = augment.mixup_cutmix(
            x, labels, 10, np.random.default_rng(seed), mixup, cutmix, smoothing=0.1
        )
        assert mixed.shape == x.shape and targets.shape == (16, 10)
        np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
        # The weight on sample i's own label (and on its partner's) comes from one lambda for the batch.
        own = targets[np.arange(16), labels]
        assert own.min() > 0.01 and (targets >= 0).all()


def test_smooth_one_hot():
    t = augment.smooth_one_hot(np.array([2, 0]), 4, 0.1)
    np.testing.assert_allclose(t[0], [0.025, 0.025, 0.925, 0.025])


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_batches_depend_only_on_seed_epoch_and_index(prefetch):
    def make(indices, rng):
        return indices.copy(), rng.random()

    loader = BatchLoader(103, make, batch_size=10, shuffle=True, drop_last=True, seed=5, prefetch=prefetch)
    first = list(loader.epoch(3))
    again = list(BatchLoader(103, make, 10, True, True, seed=5, prefetch=2 - prefetch).epoch(3))
    assert len(first) == len(loader) == 10
    for (a, ra), (b, rb) in zip(first, again, strict=False):
        np.testing.assert_array_equal(a, b)
        assert ra == rb
    resumed = list(loader.epoch(3, start_batch=4))
    assert [r for _, r in resumed] == [r for _, r in first[4:]]
    assert not np.array_equal(
        np.concatenate([a for a, _ in first]), np.concatenate([a for a, _ in loader.epoch(4)])
    )


def test_loader_passes_worker_errors_on():
    def broken(indices, rng):
        raise RuntimeError("decoding failed for batch")

    with pytest.raises(RuntimeError, match="decoding failed"):
        list(BatchLoader(10, broken, 5, prefetch=2).epoch(0))


def test_variable_size_images_train_with_every_augmentation(tmp_path):
    rng = np.random.default_rng(0)
    images = [
        rng.integers(0, 255, size=(rng.integers(36, 60), rng.integers(36, 60), 3), dtype=np.uint8)
        for _ in range(48)
    ]
    labels = rng.integers(0, 4, size=48)
    data = ImageDataset(images, labels, images[:16], labels[:16], ["a", "b", "c", "d"])
    config = TrainConfig(
        dataset="imagenette",
        model="convnext_atto",
        depths="1,1,1,1",
        dims="8,16,32,64",
        image_size=32,
        epochs=1,
        batch_size=16,
        rand_augment=9,
        random_erasing=0.25,
        mixup=0.8,
        cutmix=1.0,
        out=str(tmp_path / "run"),
        progress=False,
    )
    record = train(config, data)
    assert np.isfinite(record["train_loss"]) and record["epoch"] == 1


def test_crop_scale_sets_the_smallest_area_a_random_resized_crop_keeps():
    from tinyconvnext.pipeline import make_batch_functions

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size=(40, 40, 3), dtype=np.uint8) for _ in range(16)]
    labels = np.arange(16) % 4
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)

    def train_batch(crop_scale):
        config = TrainConfig(dataset="imagenette", image_size=24, crop_scale=crop_scale)
        train_fn, _ = make_batch_functions(config, images, labels, images, labels, 4, mean, std)
        return train_fn(np.arange(16), np.random.default_rng(1))[0]

    # crop_scale 1: every crop keeps the whole (square) image, so each sample is the evaluation view of
    # the whole image, or its mirror; with 0.08 most crops are smaller windows.
    whole = augment.to_float_nchw(
        np.stack(
            [
                augment.random_resized_crop(im, 24, np.random.default_rng(2), scale=(1, 1), flip=False)
                for im in images
            ]
        ),
        mean,
        std,
    )
    full = train_batch(1.0)
    assert all(
        np.allclose(full[i], whole[i]) or np.allclose(full[i], whole[i][:, :, ::-1]) for i in range(16)
    )
    small = train_batch(0.08)
    assert (
        sum(np.allclose(small[i], whole[i]) or np.allclose(small[i], whole[i][:, :, ::-1]) for i in range(16))
        < 4
    )
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="--crop-scale must be in"):
            train_batch(bad)


def test_resize_images_matches_torch_antialiased_bilinear():
    torch = pytest.importorskip("torch")
    images = np.random.default_rng(1).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
    small = augment.resize_images(images, 24)
    assert small.shape == (5, 24, 24, 3) and small.dtype == np.uint8
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2).double(),
        size=(24, 24),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    expected = expected.permute(0, 2, 3, 1).numpy()
    assert np.abs(small - expected).max() <= 1.0  # PIL rounds to uint8 (and its fixed-point weights)
    assert augment.resize_images(images, 32) is images  # already the size: untouched
    with pytest.raises(ValueError, match=r"\(B, H, W, C\) uint8"):
        augment.resize_images(images.astype(np.float32), 24)


def test_loader_gives_each_batch_the_epoch_s_options():
    def make(indices, rng, size=32):
        return size

    loader = BatchLoader(20, make, batch_size=5, prefetch=2)
    assert list(loader.epoch(0, size=24)) == [24] * 4
    assert list(loader.epoch(1, 2)) == [32] * 2
