"""--flip alternate (airbench's alternating flips): every two consecutive epochs show each training image once
mirrored and once not, from the seed and the epoch alone (the same after a resume); --flip random stays the
coin per image it always was, draw for draw."""

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from train_helpers import synthetic_cifar, tiny_config

from tinyconvnext import augment, cli
from tinyconvnext.config import TrainConfig, check_values
from tinyconvnext.pipeline import ImageDataset, make_batch_functions, make_loaders
from tinyconvnext.records import resume_changes
from tinyconvnext.train import train


def _column_ramp(n, side=32):
    """Images whose pixels brighten from left to right: a mirrored crop darkens instead."""
    ramp = (10 + 5 * np.arange(side)).astype(np.uint8)
    return np.broadcast_to(ramp[None, None, :, None], (n, side, side, 3)).copy()


def _mirrored(x):
    """Which images of a normalised (B, 3, H, W) batch of ``_column_ramp`` crops are mirrored (the middle
    of a row, away from the zero padding, darkens to the right)."""
    middle = x[:, 0, x.shape[2] // 2, 8:-8]
    slopes = np.sign(np.diff(middle, axis=1))
    assert np.all(slopes == slopes[:, :1])  # every crop runs one way
    return slopes[:, 0] < 0


def _flips_by_image(loader, epoch):
    flips = {}
    for indices, (x, _) in zip(loader.batch_indices(epoch), loader.epoch(epoch), strict=True):
        flips.update(zip(indices.tolist(), _mirrored(x).tolist(), strict=True))
    return flips


def _ramp_loaders(tmp_path, flip, progressive_mode="resize", seed=4):
    images, labels = _column_ramp(48), np.arange(48) % 10
    data = ImageDataset(images, labels, images[:16], labels[:16], [str(k) for k in range(10)])
    config = tiny_config(tmp_path, flip=flip, batch_size=8, progressive_mode=progressive_mode, seed=seed)
    return make_loaders(config, data)[0]


@pytest.mark.parametrize("progressive_mode", ["resize", "crop"])
def test_every_two_epochs_show_each_image_once_mirrored_and_once_not(tmp_path, progressive_mode):
    loader = _ramp_loaders(tmp_path, "alternate", progressive_mode)
    epochs = [_flips_by_image(loader, epoch) for epoch in range(4)]
    assert all(len(flips) == 48 for flips in epochs)
    for before, after in itertools.pairwise(epochs):
        assert all(before[i] != after[i] for i in range(48))
    assert 0 < sum(epochs[0].values()) < 48  # a coin per image, not one for all


def test_random_flips_draw_a_fresh_coin_per_image_and_epoch(tmp_path):
    loader = _ramp_loaders(tmp_path, "random")
    first, second = _flips_by_image(loader, 0), _flips_by_image(loader, 1)
    assert any(first[i] == second[i] for i in range(48))  # some image seen the same way twice


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), epoch=st.integers(0, 1000), size=st.integers(1, 300))
def test_alternating_flips_follow_the_seed_and_the_epoch_only(seed, epoch, size):
    first = augment.first_epoch_flips(size, seed)
    indices = np.random.default_rng(epoch).permutation(size)
    flips = augment.alternating_flips(first, indices, epoch)
    again = augment.alternating_flips(augment.first_epoch_flips(size, seed), indices, epoch)
    np.testing.assert_array_equal(flips, again)
    np.testing.assert_array_equal(flips, first[indices] ^ (epoch % 2 == 1))
    np.testing.assert_array_equal(augment.alternating_flips(first, indices, epoch + 1), ~flips)


def test_the_same_seed_and_epoch_give_the_same_alternate_batches(tmp_path):
    one, two = _ramp_loaders(tmp_path, "alternate"), _ramp_loaders(tmp_path, "alternate")
    for (x, y), (x2, y2) in zip(one.epoch(3, start_batch=2), two.epoch(3, start_batch=2), strict=True):
        np.testing.assert_array_equal(x, x2)
        np.testing.assert_array_equal(y, y2)
    assert _flips_by_image(_ramp_loaders(tmp_path, "alternate", seed=5), 0) != _flips_by_image(one, 0)


def _crop_flip_as_before(images, rng, padding=4, size=None):
    """random_crop_flip as it was before --flip existed (a coin per image after the crop offsets)."""
    b, height, width, _ = images.shape
    h, w = (size, size) if size is not None else (height, width)
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    top = rng.integers(0, height + 2 * padding - h + 1, size=b)
    left = rng.integers(0, width + 2 * padding - w + 1, size=b)
    rows = top[:, None] + np.arange(h)
    cols = left[:, None] + np.arange(w)
    mirrored = rng.random(b) < 0.5
    cols[mirrored] = cols[mirrored, ::-1]
    return padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]


@pytest.mark.parametrize("side", [32, 24])
def test_random_flips_are_the_batches_of_before_bit_for_bit(side):
    images = np.random.default_rng(0).integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(20) % 10
    config = TrainConfig(progressive_mode="crop", random_erasing=0.5)
    mean, std = augment.CIFAR10_MEAN, augment.CIFAR10_STD
    train_batch, _ = make_batch_functions(config, images, labels, images, labels, 10, mean, std)
    indices = np.array([3, 17, 0, 9, 12, 5])
    for epoch in (0, 1):
        x, _ = train_batch(indices, np.random.default_rng([0, epoch, 2, 1]), side=side, epoch=epoch)
        rng = np.random.default_rng([0, epoch, 2, 1])
        expected = augment.to_float_nchw(_crop_flip_as_before(images[indices], rng, size=side), mean, std)
        augment.random_erasing(expected, rng, 0.5)
        np.testing.assert_array_equal(x, expected)


def test_alternate_flips_mirror_imagenet_style_crops_too():
    images = _column_ramp(16, side=48)  # larger than --image-size: random-resized crops
    labels = np.arange(16) % 10
    config = TrainConfig(flip="alternate", image_size=32, crop_scale=0.5, seed=2)
    mean, std = augment.CIFAR10_MEAN, augment.CIFAR10_STD
    train_batch, _ = make_batch_functions(config, images, labels, images, labels, 10, mean, std)
    indices = np.arange(16)
    expected = augment.alternating_flips(augment.first_epoch_flips(16, 2), indices, 1)
    x, _ = train_batch(indices, np.random.default_rng(0), epoch=1)
    np.testing.assert_array_equal(_mirrored(x), expected)


def test_a_flip_mode_that_does_not_exist_is_refused_in_one_line():
    with pytest.raises(cli.UsageError, match=r"^--flip: expected one of random, alternate, got 'sideways'$"):
        check_values(TrainConfig(flip="sideways"))


def test_a_resume_refuses_another_flip_and_an_old_record_reads_as_random(tmp_path):
    config = TrainConfig(flip="alternate")
    with pytest.raises(cli.UsageError, match="--flip alternate contradicts the recorded --flip random"):
        resume_changes({"flip": "random"}, config, tmp_path)
    assert resume_changes({}, TrainConfig(), tmp_path) == []  # a run recorded before --flip existed


def test_a_resumed_alternate_flip_run_repeats_the_uninterrupted_one(tmp_path):
    data = synthetic_cifar(64, 32)
    options = dict(flip="alternate", stem_init="whiten", epochs=2, subset=64, ema_decay=0.0)
    train(tiny_config(tmp_path / "whole", **options), data)
    train(tiny_config(tmp_path / "halves", stop_after=1, **options), data)
    train(tiny_config(tmp_path / "halves", resume=True, **options), data)

    def losses(folder):
        lines = (folder / "run" / "metrics.jsonl").read_text().splitlines()
        return [(record["train_loss"], record["test_acc"]) for record in map(json.loads, lines)]

    assert losses(tmp_path / "halves") == losses(tmp_path / "whole")
