"""A run that reaches its last epoch leaves ``model.safetensors`` beside its checkpoint: the trained weights
with official names and, as metadata, what predict needs (the variant, the classes, the run's preprocessing
and configuration). Loaded back, it is the checkpoint's model, exactly."""

import json

import numpy as np
import pytest
from PIL import Image
from train_helpers import synthetic_cifar, tiny_config

import autograd as ag
from tinyconvnext import predict
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
