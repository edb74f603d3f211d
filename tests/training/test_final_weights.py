"""A run that reaches its end (its last epoch, or its time budget) leaves ``model.safetensors`` beside its
checkpoint: the trained weights with official names and, as metadata, what predict needs (the variant, the
classes, the run's preprocessing and configuration); an EMA run its averages too. Loaded back, it is the
checkpoint's model, exactly. Every file a run writes has the permissions a plain open() would give."""

import json
import os
import stat

import numpy as np
import pytest
from PIL import Image
from train_helpers import synthetic_cifar, tiny_config

import autograd as ag
from tinyconvnext import predict
from tinyconvnext.checkpoint import load_checkpoint, write_text_atomically
from tinyconvnext.records import load_trained_model
from tinyconvnext.safetensors_io import read_safetensors
from tinyconvnext.train import train


@pytest.mark.parametrize(
    "overrides", [{}, {"model": "resnet18d", "depths": "", "dims": "", "optimizer": "sgd", "lr": 0.05}]
)
def test_the_last_epoch_writes_the_trained_model_as_safetensors(tmp_path, overrides, capsys):
    config = tiny_config(tmp_path, epochs=2, stop_after=1, subset=64, eval_subset=32, **overrides)
    dataset = synthetic_cifar(n_train=64, n_test=32)
    out = tmp_path / "run"
    train(config, dataset)
    assert not (out / "model.safetensors").exists()  # stopped after epoch 1 of 2: not the trained model
    config.resume, config.stop_after = True, 0
    train(config, dataset)
    state, metadata = read_safetensors(out / "model.safetensors")
    assert json.loads(metadata["num_classes"]) == 10 and metadata["variant"] == config.model
    assert json.loads(metadata["image_size"]) == 32
    assert json.loads(metadata["training_config"])["depths"] == config.depths

    model, _ = load_trained_model(out)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(state[name], np.asarray(value), err_msg=name)

    image = tmp_path / "image.png"
    Image.fromarray(dataset.test_images[0]).save(image)
    loaded, names, preprocessing, _ = predict.load_model(out / "model.safetensors")
    assert names[0] == "airplane" and preprocessing.crop == 32
    x = predict.preprocess(predict.load_rgb(image), preprocessing)[None]
    with ag.no_grad():
        expected = model(ag.tensor(x)).numpy()
    np.testing.assert_allclose(loaded(ag.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_written_files_get_the_permissions_of_open_or_of_the_file_they_replace(tmp_path):
    previous = os.umask(0o027)
    try:
        fresh = write_text_atomically(tmp_path / "fresh.txt", "new")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # 0o666 less the umask, as open() gives
        (tmp_path / "kept.txt").write_text("old")
        os.chmod(tmp_path / "kept.txt", 0o604)
        assert stat.S_IMODE(write_text_atomically(tmp_path / "kept.txt", "new").stat().st_mode) == 0o604
    finally:
        os.umask(previous)


def test_a_spent_time_budget_writes_the_trained_and_ema_weights_readable_by_others(tmp_path, capsys):
    """The budget ends the run after its first of two epochs: its end, so its weights are written, under
    the umask's permissions (not mkstemp's private 0o600), without the machine's paths."""
    previous = os.umask(0o022)
    try:
        config = tiny_config(
            tmp_path, epochs=2, time_budget=1e-6, subset=64, eval_subset=32, data=str(tmp_path)
        )
        train(config, synthetic_cifar(n_train=64, n_test=32))
    finally:
        os.umask(previous)
    out = tmp_path / "run"
    assert json.loads((out / "metrics.jsonl").read_text())["epoch"] == 1
    for name in ("config.json", "model.safetensors", "model_ema.safetensors", "checkpoint.npz", "curves.png"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    trained, metadata = read_safetensors(out / "model.safetensors")
    averaged, ema_metadata = read_safetensors(out / "model_ema.safetensors")
    assert ema_metadata == {**metadata, "weights": "ema"} and "weights" not in metadata
    recorded = json.loads(metadata["training_config"])
    assert recorded["time_budget"] == 1e-6 and not {"data", "out"} & set(recorded)
    state = load_checkpoint(out / "checkpoint.npz")
    for name, value in averaged.items():
        np.testing.assert_array_equal(value, state["ema"][name], err_msg=name)
    assert any(not np.array_equal(averaged[name], trained[name]) for name in trained)

    # A run folder given to predict: its final weights, or with --ema the averaged ones; a folder with only
    # a checkpoint: the checkpoint's.
    assert predict.load_model(out)[3] == f"weights file {out / 'model.safetensors'}"
    assert predict.load_model(out, ema=True)[3] == f"weights file {out / 'model_ema.safetensors'}"
    only_checkpoint = tmp_path / "only_checkpoint"
    only_checkpoint.mkdir()
    os.replace(out / "checkpoint.npz", only_checkpoint / "checkpoint.npz")
    assert "the EMA weights of training checkpoint" in predict.load_model(only_checkpoint, ema=True)[3]
    with pytest.raises(FileNotFoundError, match="without model.safetensors or checkpoint.npz"):
        predict.load_model(tmp_path)  # a folder, but no run's
