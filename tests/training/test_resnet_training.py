"""Training the ResNet-D baseline: SGD with (Nesterov) momentum, BatchNorm's running statistics under data
parallelism (rank 0's, as DistributedDataParallel's broadcast_buffers), exact resume, and clear errors."""

import functools

import numpy as np
import pytest
from train_helpers import synthetic_cifar, tiny_config

import autograd as ag
from autograd import optim
from autograd.nn import functional as F
from tinyconvnext.build import build_model, build_optimizer
from tinyconvnext.checkpoint import load_checkpoint
from tinyconvnext.config import TrainConfig, config_from_args
from tinyconvnext.parallel import DataParallel
from tinyconvnext.train import train
from tinyconvnext.variants import create_model

small_resnet = functools.partial(
    create_model, "resnet18d", num_classes=10, depths=(1, 1, 1, 1), widths=(8, 16, 24, 32), stem_width=8
)


def resnet_config(tmp_path, **overrides):
    base = dict(
        model="resnet18d",
        depths="1,1,1,1",
        dims="8,16,24,32",
        optimizer="sgd",
        lr=0.05,
        weight_decay=5e-4,
        drop_path=0.0,
        grad_clip=0.0,
    )
    return tiny_config(tmp_path, **{**base, **overrides})


def _slice_gradients_and_statistics(model, x, y, slices):
    """What data parallelism computes: sum over slices of (n_r / B) * grad of the slice's mean loss, each
    slice normalised by its own statistics; the running statistics are those slice 0 leaves."""
    grads, state0 = None, None
    for a, b in slices:
        copy = small_resnet()
        copy.load_state_dict(model.state_dict())
        copy.train()
        F.cross_entropy(copy(ag.tensor(x[a:b])), ag.tensor(y[a:b])).backward()
        part = [p.grad.data * (b - a) / len(x) for p in copy.parameters()]
        grads = part if grads is None else [g + q for g, q in zip(grads, part, strict=False)]
        state0 = state0 or copy.state_dict()
    return grads, state0


def test_data_parallel_batchnorm_follows_rank_0_and_evaluates_with_its_statistics():
    ag.manual_seed(0)
    model = small_resnet()
    reference = small_resnet()
    reference.load_state_dict(model.state_dict())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, size=8)
    with DataParallel(
        model, small_resnet, processes=2, max_batch=8, input_shape=(3, 32, 32), num_classes=10
    ) as dp:
        _, _ = dp.train_step(x, y)
        grads, state0 = _slice_gradients_and_statistics(reference, x, y, [(0, 4), (4, 8)])
        for (name, p), g in zip(model.named_parameters(), grads, strict=False):
            np.testing.assert_allclose(p.grad.data, g, rtol=1e-4, atol=1e-6, err_msg=name)
        state = model.state_dict()
        moved = [name for name in state if "running_mean" in name and np.any(state[name] != 0)]
        assert moved, "the main model's running statistics never changed"
        for name in state0:
            np.testing.assert_allclose(state[name], state0[name], rtol=1e-5, atol=1e-7, err_msg=name)
        reference.load_state_dict(state)
        reference.eval()
        _, logits = dp.eval_step(x, y)
        with ag.no_grad():
            np.testing.assert_allclose(logits, reference(ag.tensor(x)).data, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("processes", [1, 2])
def test_resnet_with_sgd_resumes_exactly(tmp_path, processes):
    data = synthetic_cifar()
    train(resnet_config(tmp_path / "a", processes=processes), data)
    train(resnet_config(tmp_path / "b", processes=processes, stop_after=1), data)
    train(resnet_config(tmp_path / "b", processes=processes, resume=True), data)
    a = load_checkpoint(tmp_path / "a" / "run" / "checkpoint.npz")
    b = load_checkpoint(tmp_path / "b" / "run" / "checkpoint.npz")
    assert any("running_var" in name for name in a["model"])
    for name in a["model"]:
        np.testing.assert_array_equal(a["model"][name], b["model"][name], err_msg=name)
    assert a["optimizer"]["param_groups"][0]["nesterov"] is True
    buffers = [entry["momentum_buffer"] for entry in a["optimizer"]["state"].values()]
    assert buffers and all(np.any(buffer != 0) for buffer in buffers)


def test_resnet_with_sgd_learns_and_its_run_loads_back(tmp_path):
    from tinyconvnext.records import load_trained_model

    record = train(resnet_config(tmp_path, epochs=4, ema_decay=0.0), synthetic_cifar(640, 200))
    assert record["test_acc"] > 0.4  # chance is 0.1; the ConvNeXt runs of test_train_loop ask the same
    model, config = load_trained_model(tmp_path / "run")  # as python -m tinyconvnext.evaluate does
    assert (config.model, model.num_classes, model.widths) == ("resnet18d", 10, (8, 16, 24, 32))


def test_optimizer_option_builds_what_it_names():
    model = small_resnet()
    sgd = build_optimizer(
        TrainConfig(optimizer="sgd", lr=0.1, weight_decay=1e-4, momentum=0.8, nesterov=False), model
    )
    assert isinstance(sgd, optim.SGD)
    decay, no_decay = sgd.param_groups
    assert (decay["momentum"], decay["nesterov"], decay["weight_decay"], no_decay["weight_decay"]) == (
        0.8,
        False,
        1e-4,
        0.0,
    )
    assert all(p.ndim > 1 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert isinstance(build_optimizer(TrainConfig(), model), optim.AdamW)
    with pytest.raises(ValueError, match="--optimizer must be one of adamw, sgd, got 'lamb'"):
        build_optimizer(TrainConfig(optimizer="lamb"), model)
    with pytest.raises(SystemExit):
        config_from_args(TrainConfig(), ["--optimizer", "lamb"], "train")
    config = config_from_args(
        TrainConfig(), ["--model", "resnet18d", "--optimizer", "sgd", "--no-nesterov"], "train"
    )
    assert (config.model, config.optimizer, config.nesterov) == ("resnet18d", "sgd", False)


def test_layer_scale_is_refused_for_a_resnet_only_when_given(capsys):
    import train_cifar

    with pytest.raises(SystemExit):
        config_from_args(TrainConfig(), ["--model", "resnet18d", "--layer-scale", "0.1"], "train")
    assert (
        "--layer-scale sets the init of ConvNeXt's layer-scale gammas; resnet18d is a ResNet"
        in capsys.readouterr().err
    )
    # train_cifar.py's default (0.1) is for its ConvNeXt, and does not stop a ResNet run
    assert (
        config_from_args(train_cifar.CIFAR_DEFAULTS, ["--model", "resnet18d"], "train").model == "resnet18d"
    )
    assert (
        config_from_args(train_cifar.CIFAR_DEFAULTS, [], "train").layer_scale
        == train_cifar.CIFAR_DEFAULTS.layer_scale
    )
    assert config_from_args(TrainConfig(), ["--layer-scale", "0.5"], "train").layer_scale == 0.5


def test_convnext_options_on_a_resnet_are_clear_errors():
    with pytest.raises(ValueError, match="resnet18d is a ResNet: --patch-size, --stem-type"):
        build_model(TrainConfig(model="resnet18d", patch_size=2, stem_type="overlap"), 10)
    with pytest.raises(ValueError, match="resnet18d is a ResNet: --norm-layer set"):
        build_model(TrainConfig(model="resnet18d", norm_layer="batch"), 10)
    model = build_model(
        TrainConfig(model="resnet18d", depths="1,1,1,1", dims="8,16,24,32", drop_path=0.1), 10
    )
    assert model.widths == (8, 16, 24, 32) and model.depths == (1, 1, 1, 1)
