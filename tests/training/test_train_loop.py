"""The training loop on a small synthetic data set: learning, exact resume, the NaN guard, records."""

import csv
import json

import numpy as np
import pytest
from train_helpers import synthetic_cifar, tiny_config

from tinyconvnext.checkpoint import load_checkpoint, save_checkpoint
from tinyconvnext.config import TrainConfig
from tinyconvnext.engine import NonFiniteLoss
from tinyconvnext.pipeline import model_stride, train_image_size
from tinyconvnext.train import train


def _weights(path):
    return load_checkpoint(path)["model"]


def test_two_epochs_straight_equal_one_plus_resume_one(tmp_path):
    data = synthetic_cifar()
    train(tiny_config(tmp_path / "a"), data)
    train(tiny_config(tmp_path / "b", stop_after=1), data)  # the same 2-epoch run, stopped after epoch 1
    record = train(tiny_config(tmp_path / "b", resume=True), data)
    a, b = (
        _weights(tmp_path / "a" / "run" / "checkpoint.npz"),
        _weights(tmp_path / "b" / "run" / "checkpoint.npz"),
    )
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    ema_a = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.npz")["ema"]
    ema_b = load_checkpoint(tmp_path / "b" / "run" / "checkpoint.npz")["ema"]
    for name in ema_a:
        np.testing.assert_array_equal(ema_a[name], ema_b[name], err_msg=name)
    assert record["epoch"] == 2
    rows = [json.loads(line) for line in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_resume_inside_an_epoch_matches_too(tmp_path):
    data = synthetic_cifar()
    train(tiny_config(tmp_path / "a", epochs=1), data)
    # Simulate an interruption after 3 of 8 batches: run with a checkpoint rewritten to batch 3 ...
    config = tiny_config(tmp_path / "b", epochs=1, time_budget=1e-9)  # stops after the first batch
    train(config, data)
    state = load_checkpoint(tmp_path / "b" / "run" / "checkpoint.npz")
    assert (state["epoch"], state["batch"], state["step"]) == (0, 1, 1)  # 5 batches an epoch
    train(tiny_config(tmp_path / "b", epochs=1, resume=True), data)
    a, b = (
        _weights(tmp_path / "a" / "run" / "checkpoint.npz"),
        _weights(tmp_path / "b" / "run" / "checkpoint.npz"),
    )
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_learns_and_writes_records_and_curves(tmp_path):
    record = train(tiny_config(tmp_path, epochs=4, lr=4e-3, drop_path=0.0), synthetic_cifar(640, 200))
    run = tmp_path / "run"
    assert record["test_acc"] > 0.4  # chance is 0.1
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4] and rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert "test_acc_ema" in rows[-1]
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,step,lr,train_loss")
    from PIL import Image

    with Image.open(run / "curves.png") as png:
        assert png.size[0] > 500 and png.size[1] > 200
    assert json.loads((run / "config.json").read_text())["model"] == "convnext_cifar_atto"


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    """One step at a huge learning rate, checkpointed (the time budget ends the epoch after it); the resumed
    run's next step diverges and stops, naming the checkpoint it left as it was."""
    data = synthetic_cifar()
    diverging = dict(epochs=1, lr=1e30, warmup_epochs=0.0, grad_clip=0.0)
    train(tiny_config(tmp_path, time_budget=1e-9, **diverging), data)
    good = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    with pytest.raises(NonFiniteLoss, match=r"the loss became (nan|inf).*last good checkpoint"):
        train(tiny_config(tmp_path, resume=True, **diverging), data)  # a resume may change --time-budget
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == good


def test_existing_run_needs_resume(tmp_path):
    data = synthetic_cifar(64, 32)
    train(tiny_config(tmp_path, epochs=1), data)
    with pytest.raises(FileExistsError, match="pass --resume"):
        train(tiny_config(tmp_path, epochs=1), data)


def test_checkpoints_are_atomic_and_damage_is_reported(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"model": {"w": np.ones(3)}, "epoch": 1, "rng": {"state": 2**100}})
    state = load_checkpoint(path)
    assert (
        state["epoch"] == 1 and state["rng"]["state"] == 2**100 and state["model"]["w"].tolist() == [1, 1, 1]
    )
    assert not list(tmp_path.glob(".*.tmp"))
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="c.npz: truncated or corrupt"):
        load_checkpoint(path)


def test_load_trained_model_gives_the_run_s_model(tmp_path):
    from tinyconvnext.engine import evaluate
    from tinyconvnext.pipeline import make_loaders
    from tinyconvnext.records import load_trained_model

    data = synthetic_cifar()
    config = tiny_config(tmp_path, epochs=1)
    record = train(config, data)
    model, loaded_config = load_trained_model(tmp_path / "run")
    assert not model.training and loaded_config.dims == config.dims and model.dims == (16, 32, 64, 96)
    _, test_loader, _ = make_loaders(config, data)
    assert evaluate(model, test_loader, "cpu")[1] == pytest.approx(record["test_acc"])
    ema_model, _ = load_trained_model(tmp_path / "run" / "checkpoint.npz", ema=True)
    assert evaluate(ema_model, test_loader, "cpu")[1] == pytest.approx(record["test_acc_ema"])
    with pytest.raises(FileNotFoundError, match="nowhere: no such run folder or checkpoint"):
        load_trained_model(tmp_path / "nowhere")
    train(tiny_config(tmp_path / "plain", epochs=1, ema_decay=0.0), data)
    with pytest.raises(ValueError, match="no EMA weights"):
        load_trained_model(tmp_path / "plain" / "run", ema=True)


def test_flip_tta_averages_the_logits_of_the_image_and_its_mirror(tmp_path):
    import autograd as ag
    from autograd.nn import functional as F
    from tinyconvnext.engine import evaluate
    from tinyconvnext.pipeline import make_loaders
    from tinyconvnext.records import load_trained_model

    data = synthetic_cifar()
    config = tiny_config(tmp_path, epochs=1, tta=True)
    record = train(config, data)
    model, _ = load_trained_model(tmp_path / "run")
    _, test_loader, _ = make_loaders(config, data)
    logits, labels = [], []
    with ag.no_grad():
        for x, y in test_loader.epoch(0):
            plain, mirrored = model(ag.tensor(x)), model(ag.tensor(np.ascontiguousarray(x[..., ::-1])))
            logits.append(0.5 * (plain.numpy() + mirrored.numpy()))
            labels.append(y)
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    expected_loss = float(F.cross_entropy(ag.tensor(logits.astype(np.float64)), ag.tensor(labels)).item())
    loss, accuracy = evaluate(model, test_loader, "cpu", flip=True)
    assert accuracy == pytest.approx(np.mean(logits.argmax(axis=1) == labels))
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert (record["test_loss_tta"], record["test_acc_tta"]) == pytest.approx((loss, accuracy))
    assert evaluate(model, test_loader, "cpu")[1] == pytest.approx(record["test_acc"])  # plain stays plain


def test_boolean_options_take_a_no_form():
    from tinyconvnext.config import config_from_args

    assert config_from_args(TrainConfig(), ["--tta"], "prog").tta is True
    assert config_from_args(TrainConfig(tta=True), ["--no-tta"], "prog").tta is False
    assert config_from_args(TrainConfig(tta=True), [], "prog").tta is True


def test_progressive_resizing_ramps_the_training_images_to_the_image_size():
    config = TrainConfig(model="convnext_cifar_3stage", progressive_size=16, progressive_epochs=4)
    assert model_stride(config) == 8  # a 2x2 stem, then two 2x2 downsamplings
    assert [train_image_size(config, epoch, 8) for epoch in range(6)] == [16, 16, 24, 24, 32, 32]
    config = TrainConfig(model="convnext_cifar_3stage", progressive_size=24, progressive_epochs=10)
    assert [train_image_size(config, epoch, 8) for epoch in (0, 9, 10, 30)] == [24, 24, 32, 32]
    assert train_image_size(TrainConfig(model="convnext_atto", image_size=128), 0, 32) == 128  # off
    off = TrainConfig(model="convnext_atto", image_size=128, progressive_size=0, progressive_epochs=15)
    assert train_image_size(off, 0, 32) == 128  # --progressive-size 0 turns train_cifar.py's ramp off
    config = TrainConfig(
        dataset="imagenette", model="convnext_atto", image_size=128, progressive_size=96, progressive_epochs=2
    )
    assert model_stride(config) == 32
    assert [train_image_size(config, epoch, 32) for epoch in range(3)] == [96, 96, 128]
    config = TrainConfig(
        image_size=152, progressive_size=8, progressive_epochs=3.6
    )  # 8 + 144 * 3 / 3.6 = 128
    assert train_image_size(config, 3, 8) == 128  # not 120: the float product is 127.99999...


def test_train_batch_makes_images_of_the_epoch_s_side():
    from tinyconvnext.pipeline import make_batch_functions

    rng = np.random.default_rng(0)
    cifar = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    larger = [rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8) for _ in range(8)]
    labels = np.arange(8) % 4
    mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
    for images in (cifar, larger):
        train_batch, eval_batch = make_batch_functions(
            TrainConfig(image_size=32), images, labels, images, labels, 4, mean, std
        )
        assert train_batch(np.arange(4), rng, side=16)[0].shape == (4, 3, 16, 16)
        assert train_batch(np.arange(4), rng)[0].shape == (4, 3, 32, 32)
        assert eval_batch(np.arange(4), rng)[0].shape == (4, 3, 32, 32)


def test_progressive_crop_mode_crops_at_full_scale_and_resize_mode_scales_down():
    """--progressive-mode crop: the smaller training images are windows of the (padded) 32x32 images, at
    their scale; resize: the whole augmented image scaled down. Evaluation is at 32x32 either way."""
    from tinyconvnext.config import config_from_args
    from tinyconvnext.pipeline import make_batch_functions

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(8) % 4
    mean, std = np.zeros(3, np.float32), np.full(3, 1 / 255, np.float32)  # inputs are the uint8 values
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4), (0, 0)))
    for mode in ("crop", "resize"):
        train_batch, eval_batch = make_batch_functions(
            TrainConfig(progressive_mode=mode), images, labels, images, labels, 4, mean, std
        )
        x, _ = train_batch(np.arange(8), np.random.default_rng(5), side=24)
        assert x.shape == (8, 3, 24, 24) and eval_batch(np.arange(8), rng)[0].shape == (8, 3, 32, 32)
        crops = np.rint(x.transpose(0, 2, 3, 1)).astype(np.uint8)
        is_window = [
            any(
                np.array_equal(crops[i], w) or np.array_equal(crops[i], w[:, ::-1])
                for w in (
                    padded[i, top : top + 24, left : left + 24] for top in range(17) for left in range(17)
                )
            )
            for i in range(8)
        ]
        assert all(is_window) if mode == "crop" else not any(is_window)
    with pytest.raises(ValueError, match="--progressive-mode must be one of resize, crop, got 'zoom'"):
        make_batch_functions(
            TrainConfig(progressive_mode="zoom"), images, labels, images, labels, 4, mean, std
        )
    assert config_from_args(TrainConfig(), ["--progressive-mode", "crop"], "prog").progressive_mode == "crop"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(progressive_size=20, progressive_epochs=2), "multiple of the network's stride \\(16"),
        (dict(progressive_size=48, progressive_epochs=2), "between 16 and --image-size 32"),
        (dict(progressive_size=16, progressive_epochs=0), "--progressive-epochs > 0"),
        (
            dict(progressive_size=16, progressive_epochs=2, image_size=40),
            "--image-size, which must then be a multiple",
        ),
    ],
)
def test_progressive_resizing_rejects_sizes_the_network_cannot_take(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        train(tiny_config(tmp_path, **overrides), synthetic_cifar())


def test_progressive_resizing_records_the_size_and_resumes_exactly(tmp_path):
    """Epoch 1 at 16x16, epoch 2 at 32x32 (the tiny network's stride is 16); the resumed run takes up the
    ramp where it stopped."""
    data = synthetic_cifar()
    ramp = dict(progressive_size=16, progressive_epochs=1)
    train(tiny_config(tmp_path / "a", **ramp), data)
    train(tiny_config(tmp_path / "b", stop_after=1, **ramp), data)
    train(tiny_config(tmp_path / "b", resume=True, **ramp), data)
    rows = [json.loads(line) for line in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["image_size"] for r in rows] == [16, 32]
    with open(tmp_path / "b" / "run" / "metrics.csv", newline="") as f:
        assert [r["image_size"] for r in csv.DictReader(f)] == ["16", "32"]
    a, b = (
        _weights(tmp_path / "a" / "run" / "checkpoint.npz"),
        _weights(tmp_path / "b" / "run" / "checkpoint.npz"),
    )
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_stem_and_kernel_options_build_what_they_name_and_unknown_stems_are_refused(capsys):
    from tinyconvnext.build import build_model
    from tinyconvnext.config import config_from_args

    config = config_from_args(
        TrainConfig(),
        [
            "--model",
            "convnext_atto",
            "--stem-type",
            "overlap_tiered",
            "--depths",
            "1,1,1",
            "--dims",
            "16,32,64",
        ],
        "prog",
    )
    model = build_model(config, num_classes=10)
    assert model.stem_type == "overlap_tiered" and model.downsample_layers[0][0].conv1.out_channels == 8
    assert model_stride(config) == 16
    assert build_model(TrainConfig(), num_classes=10).stem_type == "patch"
    assert build_model(TrainConfig(kernel_size=3), num_classes=10).stages[0][0].dwconv.kernel_size == (3, 3)
    with pytest.raises(SystemExit):
        config_from_args(TrainConfig(), ["--stem-type", "conv"], "prog")
    assert "invalid choice: 'conv'" in capsys.readouterr().err


def test_norm_layer_option_builds_a_batchnorm_convnext(capsys):
    from autograd import nn
    from tinyconvnext.build import build_model
    from tinyconvnext.config import config_from_args

    config = config_from_args(
        TrainConfig(), ["--norm-layer", "batch", "--depths", "1,1", "--dims", "8,16"], "prog"
    )
    model = build_model(config, num_classes=10)
    assert model.norm_layer == "batch" and isinstance(model.stages[1][0].norm, nn.BatchNorm2d)
    assert isinstance(model.downsample_layers[1][0], nn.BatchNorm2d) and isinstance(model.norm, nn.LayerNorm)
    assert isinstance(build_model(TrainConfig(), num_classes=10).stages[0][0].norm, nn.LayerNorm)
    with pytest.raises(SystemExit):
        config_from_args(TrainConfig(), ["--norm-layer", "group"], "prog")
    assert "invalid choice: 'group'" in capsys.readouterr().err


def test_stem_norm_layer_option_puts_batchnorm_in_the_deep_stem_only():
    from autograd import nn
    from tinyconvnext.build import build_model
    from tinyconvnext.config import config_from_args

    config = config_from_args(
        TrainConfig(),
        ["--stem-type", "deep", "--stem-norm-layer", "batch", "--depths", "1,1", "--dims", "8,16"],
        "prog",
    )
    model = build_model(config, num_classes=10)
    stem = model.downsample_layers[0][0]
    assert (model.norm_layer, model.stem_norm_layer) == ("layer", "batch")
    assert all(isinstance(n, nn.BatchNorm2d) for n in (stem.norm1, stem.norm2, stem.norm3))
    assert isinstance(model.downsample_layers[1][0], nn.LayerNorm) and isinstance(
        model.stages[1][0].norm, nn.LayerNorm
    )
    assert build_model(TrainConfig(stem_type="deep", norm_layer="batch"), 10).stem_norm_layer == "batch"
    with pytest.raises(ValueError, match="resnet18d is a ResNet: --stem-norm-layer set"):
        build_model(TrainConfig(model="resnet18d", stem_norm_layer="batch"), 10)


@pytest.mark.parametrize("every, evaluated", [(0, [3]), (2, [2, 3]), (1, [1, 2, 3])])
def test_ema_is_evaluated_every_n_epochs_and_after_the_last(tmp_path, every, evaluated):
    data = synthetic_cifar()
    train(tiny_config(tmp_path, epochs=3, ema_eval_every=every), data)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows if "test_acc_ema" in r] == evaluated
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    with pytest.raises(ValueError, match="--ema-eval-every: expected a whole number of at least 0"):
        train(tiny_config(tmp_path / "bad", ema_eval_every=-1), data)


@pytest.mark.parametrize("processes", [1, 2])
def test_precise_bn_recomputes_the_statistics_after_the_last_epoch_only(tmp_path, processes):
    from tinyconvnext.after_epoch import precise_batchnorm
    from tinyconvnext.build import build_model
    from tinyconvnext.engine import evaluate
    from tinyconvnext.pipeline import make_loaders
    from tinyconvnext.records import load_trained_model

    data = synthetic_cifar()
    options = dict(norm_layer="batch", epochs=2, processes=processes, tta=True)
    train(tiny_config(tmp_path / "a", **options), data)
    config = tiny_config(tmp_path / "b", precise_bn_batches=3, **options)
    record = train(config, data)
    plain, precise = (
        load_checkpoint(tmp_path / "a" / "run" / "checkpoint.npz"),
        load_checkpoint(tmp_path / "b" / "run" / "checkpoint.npz"),
    )
    rows_a = [
        json.loads(line) for line in (tmp_path / "a" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    rows_b = [
        json.loads(line) for line in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert rows_a[0]["test_acc"] == rows_b[0]["test_acc"] and "test_acc_running_stats" not in rows_b[0]
    assert record["test_acc_running_stats"] == rows_a[1]["test_acc"]  # the same training, then new statistics
    train_loader, test_loader, _ = make_loaders(config, data)
    for weights in ("model", "ema"):
        for name, value in plain[weights].items():
            if "running" not in name and "num_batches" not in name:
                np.testing.assert_array_equal(precise[weights][name], value, err_msg=name)
        # The saved statistics are those of 3 training batches (split as the workers split them) run
        # through the final weights.
        model = build_model(config, 10)
        model.load_state_dict(plain[weights])
        assert precise_batchnorm(config, model, train_loader, 32, "cpu") == 3 * processes
        for name, value in model.state_dict().items():
            np.testing.assert_allclose(precise[weights][name], value, rtol=1e-6, atol=1e-7, err_msg=name)
        assert not np.allclose(
            precise[weights]["stages.0.0.norm.running_var"], plain[weights]["stages.0.0.norm.running_var"]
        )
    model, _ = load_trained_model(tmp_path / "b" / "run")
    assert evaluate(model, test_loader, "cpu") == pytest.approx((record["test_loss"], record["test_acc"]))
    assert evaluate(model, test_loader, "cpu", flip=True) == pytest.approx(
        (record["test_loss_tta"], record["test_acc_tta"])
    )
    ema_model, _ = load_trained_model(tmp_path / "b" / "run", ema=True)
    assert evaluate(ema_model, test_loader, "cpu")[1] == pytest.approx(record["test_acc_ema"])


def test_precise_bn_needs_batchnorm_and_a_count_of_at_least_zero(tmp_path):
    data = synthetic_cifar()
    with pytest.raises(ValueError, match="no BatchNorm layer"):
        train(tiny_config(tmp_path / "a", precise_bn_batches=2), data)
    with pytest.raises(ValueError, match="--precise-bn-batches: expected a whole number of at least 0"):
        train(tiny_config(tmp_path / "b", norm_layer="batch", precise_bn_batches=-1), data)
