"""What the GPU backend of the training program can be checked for on the CPU: a clear refusal without
CuPy before any data is loaded, and the EMA's arithmetic and state (kept on the model's device)."""

import numpy as np
import pytest

import autograd as ag
import tinyconvnext.pipeline
from autograd import nn
from tinyconvnext.build import BackendUnavailable
from tinyconvnext.config import TrainConfig
from tinyconvnext.ema import ModelEma
from tinyconvnext.train import main, train

no_gpu = pytest.mark.skipif(ag.cupy_available(), reason="CuPy sees a GPU here: the refusal cannot happen")


@no_gpu
def test_cupy_backend_without_a_gpu_fails_clearly_before_loading_data(tmp_path, monkeypatch, capsys):
    def no_loading(config):
        raise AssertionError("the data set was loaded before the backend was checked")

    monkeypatch.setattr(tinyconvnext.pipeline, "load_dataset", no_loading)
    out = tmp_path / "run"
    with pytest.raises(BackendUnavailable, match=r"--backend cupy needs CuPy.*pip install cupy-cuda12x"):
        train(TrainConfig(backend="cupy", out=str(out), progress=False))
    assert main(["--backend", "cupy", "--out", str(out), "--no-progress"]) == 2
    assert "error: --backend cupy needs CuPy and an NVIDIA GPU" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ValueError, match="unknown backend 'jax'"):
        train(TrainConfig(backend="jax", out=str(out)))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm2d(2)


def test_ema_update_averages_parameters_and_copies_buffers():
    model = Tiny()
    ema = ModelEma(model, decay=0.9)
    before = {name: p.numpy().copy() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.data = p.data + np.float32(1.0)
    model.bn.running_mean.data = np.array([5.0, 6.0], np.float32)
    ema.update(model)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(
            ema.state[name], 0.9 * before[name] + 0.1 * p.numpy(), rtol=1e-6, atol=1e-6, err_msg=name
        )
    np.testing.assert_array_equal(ema.state["bn.running_mean"], [5.0, 6.0])
    model.bn.running_mean.data[0] = 7.0  # the EMA holds a copy, not the model's array
    assert ema.state["bn.running_mean"][0] == 5.0


def test_ema_state_dict_is_a_numpy_copy_and_loads_back():
    model = Tiny()
    ema = ModelEma(model, decay=0.5)
    saved = ema.state_dict()
    assert all(isinstance(v, np.ndarray) for v in saved.values())
    saved["fc.weight"][...] = 3.0  # changing the saved copy leaves the EMA alone
    assert not np.any(ema.state["fc.weight"] == 3.0)
    other = ModelEma(Tiny(), decay=0.5)
    other.load_state_dict(saved)
    np.testing.assert_array_equal(other.state["fc.weight"], np.full((2, 3), 3.0, np.float32))
    evaluated = Tiny()
    other.copy_to(evaluated)
    np.testing.assert_array_equal(evaluated.fc.weight.numpy(), np.full((2, 3), 3.0, np.float32))
    with pytest.raises(KeyError, match="fc.bias"):
        other.load_state_dict({k: v for k, v in saved.items() if k != "fc.bias"})
