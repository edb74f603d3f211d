"""Evaluation with test-time augmentation: the views, their averaged logits, the record and the command."""

import json
from pathlib import Path

import numpy as np
import pytest
from train_helpers import synthetic_cifar, tiny_config

import autograd as ag
from autograd.nn import functional as F
from tinyconvnext import cli
from tinyconvnext.checkpoint import load_checkpoint, save_checkpoint
from tinyconvnext.evaluate import evaluate, evaluate_run, main, tta_views
from tinyconvnext.pipeline import make_loaders
from tinyconvnext.records import load_trained_model
from tinyconvnext.train import train


def _reflect(index, size):
    """numpy's "reflect" padding of one index (the edge pixel itself is not repeated)."""
    return -index if index < 0 else 2 * (size - 1) - index if index >= size else index


def _moved(x, dy, dx):
    """``x`` moved dy pixels down and dx pixels right, written pixel by pixel with reflection at the
    border."""
    height, width = x.shape[2:]
    out = np.empty_like(x)
    for i in range(height):
        for j in range(width):
            out[:, :, i, j] = x[:, :, _reflect(i - dy, height), _reflect(j - dx, width)]
    return out


def test_views_are_the_image_its_shifts_and_their_mirrors():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 6)).astype(np.float32)
    (only,) = tta_views(x)
    np.testing.assert_array_equal(only, x)
    plain, mirror = tta_views(x, flip=True)
    np.testing.assert_array_equal(mirror, x[..., ::-1])
    views = tta_views(x, flip=True, shift=1)
    assert len(views) == 6 and all(v.shape == x.shape and v.flags.c_contiguous for v in views)
    expected = [x, _moved(x, 1, 1), _moved(x, -1, -1)]
    expected += [e[..., ::-1] for e in expected]
    for view, want in zip(views, expected, strict=False):
        np.testing.assert_array_equal(view, want)
    two = tta_views(x, shift=2)
    np.testing.assert_array_equal(two[1], _moved(x, 2, 2))
    np.testing.assert_array_equal(two[2], _moved(x, -2, -2))


def test_views_reject_bad_input():
    x = np.zeros((1, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"shift must be in \[0, 4\).*got 4"):
        tta_views(x, shift=4)
    with pytest.raises(ValueError, match="got -1"):
        tta_views(x, shift=-1)
    with pytest.raises(ValueError, match=r"NCHW batch, got an array of shape \(3, 4, 4\)"):
        tta_views(x[0], flip=True)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A one-epoch run on synthetic data that records flip + 1-pixel-shift TTA after its last epoch."""
    data = synthetic_cifar()
    config = tiny_config(tmp_path_factory.mktemp("tta"), epochs=1, tta=True, tta_shift=1)
    record = train(config, data)
    return config, data, record


def test_shift_tta_averages_the_logits_of_six_views(trained_run):
    config, data, record = trained_run
    model, _ = load_trained_model(config.out)
    _, test_loader, _ = make_loaders(config, data)
    logits, labels = [], []
    with ag.no_grad():
        for x, y in test_loader.epoch(0):
            by_hand = [x, _moved(x, 1, 1), _moved(x, -1, -1)]
            by_hand += [np.ascontiguousarray(v[..., ::-1]) for v in by_hand]
            logits.append(np.mean([model(ag.tensor(v)).numpy() for v in by_hand], axis=0))
            labels.append(y)
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    expected_loss = float(F.cross_entropy(ag.tensor(logits.astype(np.float64)), ag.tensor(labels)).item())
    loss, accuracy = evaluate(model, test_loader, "cpu", flip=True, shift=1)
    assert accuracy == pytest.approx(np.mean(logits.argmax(axis=1) == labels))
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert (record["test_loss_tta"], record["test_acc_tta"]) == pytest.approx((loss, accuracy))
    assert evaluate(model, test_loader, "cpu")[1] == pytest.approx(record["test_acc"])  # plain stays plain


def test_evaluate_run_and_the_command_give_the_run_s_numbers(trained_run, monkeypatch, capsys):
    config, data, record = trained_run
    result = evaluate_run(config.out, flip=True, shift=1, dataset=data)
    assert result["images"] == len(data.test_labels) and result["weights"] == "model"
    assert result["test_acc"] == pytest.approx(record["test_acc"])
    assert (result["test_loss_tta"], result["test_acc_tta"]) == pytest.approx(
        (record["test_loss_tta"], record["test_acc_tta"])
    )
    assert evaluate_run(config.out, ema=True, dataset=data)["test_acc"] == pytest.approx(
        record["test_acc_ema"]
    )

    import tinyconvnext.pipeline

    monkeypatch.setattr(tinyconvnext.pipeline, "load_dataset", lambda config: data)  # reads no files
    assert main([config.out, "--tta", "--tta-shift", "1", "--batch-size", "40"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["tta"] == {"flip": True, "shift": 1}
    assert printed["test_acc_tta"] == pytest.approx(record["test_acc_tta"])
    assert "test_acc_tta" not in evaluate_run(config.out, dataset=data)


def test_evaluate_run_names_a_missing_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere: no such run folder or checkpoint"):
        evaluate_run(tmp_path / "nowhere")


def test_eval_image_size_and_crop_pct_make_the_test_images():
    from tinyconvnext import augment
    from tinyconvnext.config import TrainConfig
    from tinyconvnext.pipeline import make_batch_functions

    rng = np.random.default_rng(0)
    cifar = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    larger = [rng.integers(0, 256, size=(60, 50, 3), dtype=np.uint8) for _ in range(4)]
    labels = np.arange(4)
    mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)

    def test_images(images, **overrides):
        _, eval_batch = make_batch_functions(
            TrainConfig(image_size=32, **overrides), images, labels, images, labels, 4, mean, std
        )
        return eval_batch(np.arange(4), rng)[0]

    np.testing.assert_array_equal(test_images(cifar), augment.to_float_nchw(cifar, mean, std))
    np.testing.assert_array_equal(
        test_images(cifar, eval_image_size=40),  # CIFAR-like: resized whole
        augment.to_float_nchw(augment.resize_images(cifar, 40), mean, std),
    )
    for size, pct in ((32, 0.875), (40, 0.875), (40, 1.0)):
        expected = np.stack([augment.resize_center_crop(im, size, pct) for im in larger])
        np.testing.assert_array_equal(
            test_images(larger, eval_image_size=size, eval_crop_pct=pct),
            augment.to_float_nchw(expected, mean, std),
        )
    assert not np.array_equal(
        test_images(larger, eval_image_size=40), test_images(larger, eval_image_size=40, eval_crop_pct=1.0)
    )
    with pytest.raises(ValueError, match="--eval-crop-pct must be in \\(0, 1\\].*got 1.5"):
        test_images(larger, eval_crop_pct=1.5)


def test_a_run_evaluates_at_its_eval_image_size_on_the_workers_too(tmp_path):
    """Per-epoch evaluation at 48 px of a network trained at 32, in one process and on two workers (whose
    input buffers must hold the larger test images); ``evaluate_run`` reproduces it and can change it."""
    data = synthetic_cifar()
    one = train(tiny_config(tmp_path / "one", epochs=1, eval_image_size=48), data)
    two = train(tiny_config(tmp_path / "two", epochs=1, eval_image_size=48, processes=2), data)
    for record, run in ((one, tmp_path / "one" / "run"), (two, tmp_path / "two" / "run")):
        again = evaluate_run(run, dataset=data)
        assert again["image_size"] == 48 and again["test_acc"] == pytest.approx(record["test_acc"])
    at_32 = evaluate_run(tmp_path / "one" / "run", image_size=32, dataset=data)
    model, config = load_trained_model(tmp_path / "one" / "run")
    _, test_loader, _ = make_loaders(tiny_config(tmp_path / "x", epochs=1), data)
    assert at_32["image_size"] == 32 and at_32["test_acc"] == pytest.approx(
        evaluate(model, test_loader, "cpu")[1]
    )


def test_train_cifar_parses_the_evaluation_options():
    from tinyconvnext.config import TrainConfig, config_from_args

    config = config_from_args(
        TrainConfig(),
        ["--tta", "--tta-shift", "1", "--eval-image-size", "40", "--eval-crop-pct", "1.0"],
        "prog",
    )
    assert (config.tta, config.tta_shift, config.eval_image_size, config.eval_crop_pct) == (True, 1, 40, 1.0)


def test_save_writes_each_image_s_logits_and_paired_compares_them(trained_run, tmp_path, monkeypatch, capsys):
    from tinyconvnext import paired

    config, data, record = trained_run
    result = evaluate_run(config.out, flip=True, shift=1, dataset=data, save=tmp_path / "a.npz")
    with np.load(result["saved"], allow_pickle=False) as saved:
        labels, logits, logits_tta = saved["labels"], saved["logits"], saved["logits_tta"]
    np.testing.assert_array_equal(labels, data.test_labels)  # the test set's own order
    assert logits.shape == logits_tta.shape == (len(labels), 10)
    assert np.mean(logits.argmax(axis=1) == labels) == pytest.approx(record["test_acc"])
    assert np.mean(logits_tta.argmax(axis=1) == labels) == pytest.approx(record["test_acc_tta"])
    # the plain logits are the model's on the unaugmented images
    model, _ = load_trained_model(config.out)
    _, test_loader, _ = make_loaders(config, data)
    with ag.no_grad():
        by_hand = np.concatenate([model(ag.tensor(x)).numpy() for x, _ in test_loader.epoch(0)])
    np.testing.assert_allclose(logits, by_hand, rtol=1e-5, atol=1e-6)

    right_a, right_b = logits.argmax(axis=1) == labels, logits_tta.argmax(axis=1) == labels
    gained, lost = int(np.sum(right_b & ~right_a)), int(np.sum(right_a & ~right_b))
    monkeypatch.chdir(tmp_path)
    assert paired.main(["a.npz", "a.npz:logits_tta"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["gained"], printed["lost"], printed["images"]) == (gained, lost, len(labels))
    assert (printed["acc_a"], printed["acc_b"]) == pytest.approx((record["test_acc"], record["test_acc_tta"]))


def test_paired_counts_gains_losses_and_mcnemar_z():
    from tinyconvnext.paired import compare

    labels = np.array([0, 1, 1, 0, 1, 0, 1, 1])
    one_hot = np.eye(2)
    a = one_hot[[0, 1, 1, 1, 0, 1, 0, 1]]  # right on images 0, 1, 2, 7
    b = one_hot[[0, 0, 1, 0, 1, 0, 1, 1]]  # right on 0, 2, 3, 4, 5, 6, 7: gains 3, 4, 5, 6; loses 1
    result = compare(a, b, labels)
    assert (result["acc_a"], result["acc_b"], result["gained"], result["lost"]) == (0.5, 0.875, 4, 1)
    assert result["z"] == pytest.approx(3 / np.sqrt(5))
    assert compare(a, a, labels)["z"] == 0.0
    with pytest.raises(
        ValueError, match=r"same images and classes: got logits of shapes \(8, 2\) and \(7, 2\)"
    ):
        compare(a, b[:7], labels)


def test_paired_names_a_wrong_file_or_test_set(tmp_path, capsys):
    from tinyconvnext.paired import load_logits, main

    np.savez(tmp_path / "one.npz", labels=np.arange(3), logits=np.zeros((3, 4)))
    np.savez(tmp_path / "other.npz", labels=np.arange(3)[::-1], logits=np.zeros((3, 4)))
    np.savez(tmp_path / "bare.npz", scores=np.zeros(3))
    assert load_logits(str(tmp_path / "one.npz"))[0].shape == (3, 4)
    with pytest.raises(ValueError, match=r"bare.npz holds \['scores'\]; expected 'labels' and 'logits'"):
        load_logits(str(tmp_path / "bare.npz"))
    with pytest.raises(ValueError, match="expected 'labels' and 'logits_tta'"):
        load_logits(f"{tmp_path / 'one.npz'}:logits_tta")
    with pytest.raises(ValueError, match="hold different test sets"):
        main([str(tmp_path / "one.npz"), str(tmp_path / "other.npz")])


def test_precise_bn_at_evaluation_gives_what_the_training_option_gives(
    tmp_path, monkeypatch, capsys, trained_run
):
    from tinyconvnext.checkpoint import load_checkpoint

    data = synthetic_cifar()
    options = dict(
        norm_layer="batch", epochs=2, progressive_size=16, progressive_epochs=1
    )  # the last epoch at 32
    train(tiny_config(tmp_path / "plain", **options), data)
    record = train(tiny_config(tmp_path / "precise", precise_bn_batches=3, **options), data)
    run = tmp_path / "plain" / "run"
    before = load_checkpoint(run / "checkpoint.npz")["model"]
    result = evaluate_run(run, dataset=data, precise_bn_batches=3)
    assert result["precise_bn_batches"] == 3
    assert (result["test_loss"], result["test_acc"]) == pytest.approx(
        (record["test_loss"], record["test_acc"])
    )
    assert evaluate_run(run, dataset=data)["test_acc"] == pytest.approx(record["test_acc_running_stats"])
    after = load_checkpoint(run / "checkpoint.npz")["model"]
    assert all(np.array_equal(before[k], after[k]) for k in before)  # the checkpoint is not changed

    import tinyconvnext.pipeline

    monkeypatch.setattr(tinyconvnext.pipeline, "load_dataset", lambda config: data)
    capsys.readouterr()  # the training runs' records
    assert main([str(run), "--precise-bn-batches", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["test_acc"] == pytest.approx(record["test_acc"])
    layer_norm_run = trained_run[0].out
    with pytest.raises(ValueError, match="has no BatchNorm layer"):
        evaluate_run(layer_norm_run, dataset=data, precise_bn_batches=3)


@pytest.mark.skipif(ag.cupy_available(), reason="CuPy runs here: a CuPy run is evaluated with it")
def test_a_cupy_run_is_evaluated_with_numpy_where_cupy_cannot_run(trained_run, tmp_path, capsys):
    config, data, record = trained_run
    state = load_checkpoint(Path(config.out) / "checkpoint.npz")
    state["config"]["backend"] = "cupy"
    cupy_run = save_checkpoint(tmp_path / "cupy_run" / "checkpoint.npz", state)
    assert evaluate_run(cupy_run, dataset=data)["test_acc"] == pytest.approx(record["test_acc"])
    assert (
        "note: the run was trained with CuPy, which cannot run here: using numpy" in capsys.readouterr().err
    )

    # Asked for by name, the backend that cannot run is the user's error: one line, exit status 2.
    assert cli.run_command(main, [str(cupy_run), "--backend", "cupy"], prog="evaluate") == cli.EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith("evaluate: error: --backend cupy needs CuPy") and len(error.splitlines()) == 1
