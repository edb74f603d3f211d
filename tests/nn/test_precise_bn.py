"""Recomputing BatchNorm statistics with the final weights (autograd.nn.precise_bn), against the definition
and against PyTorch's ``torch.optim.swa_utils.update_bn``."""

import numpy as np
import pytest
import torch

import autograd as ag
from autograd import nn


class ConvBN(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.norm = nn.BatchNorm2d(4)
        self.norm2 = nn.BatchNorm2d(4, data_format="channels_first")

    def forward(self, x):
        return self.norm2(self.norm(self.drop(self.conv(x))) * 2.0)


def _batches(n=5, size=6, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 3, 5, 5)) * 1.5 + 0.5).astype(np.float32) for _ in range(n)]


def _torch_twin(model):
    twin = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4))
    twin.load_state_dict(
        {
            "0.weight": torch.from_numpy(model.conv.weight.numpy()),
            "0.bias": torch.from_numpy(model.conv.bias.numpy()),
            **{f"1.{k}": torch.from_numpy(np.asarray(v)) for k, v in model.norm.state_dict().items()},
        }
    )
    return twin


def test_statistics_are_the_mean_of_the_batch_statistics():
    ag.manual_seed(0)
    model = ConvBN()
    batches = _batches()
    assert nn.recompute_batchnorm_statistics(model, batches) == len(batches)
    with ag.no_grad():
        features = [model.conv(ag.tensor(x)).numpy().astype(np.float64) for x in batches]
    means = [f.mean(axis=(0, 2, 3)) for f in features]
    variances = [f.var(axis=(0, 2, 3), ddof=1) for f in features]  # unbiased, as PyTorch's running_var
    np.testing.assert_allclose(model.norm.running_mean.numpy(), np.mean(means, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        model.norm.running_var.numpy(), np.mean(variances, axis=0), rtol=1e-5, atol=1e-6
    )


def test_matches_pytorch_update_bn():
    ag.manual_seed(1)
    model = ConvBN()
    twin = _torch_twin(model)
    batches = _batches(seed=1)
    nn.recompute_batchnorm_statistics(model, batches)
    torch.optim.swa_utils.update_bn([torch.from_numpy(x) for x in batches], twin)
    np.testing.assert_allclose(
        model.norm.running_mean.numpy(), twin[1].running_mean.numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        model.norm.running_var.numpy(), twin[1].running_var.numpy(), rtol=1e-5, atol=1e-6
    )
    x = torch.from_numpy(_batches(1, seed=9)[0])
    model.eval(), twin.eval()
    with ag.no_grad():
        ours = model.norm(model.conv(ag.tensor(x.numpy()))).numpy()
    np.testing.assert_allclose(ours, twin(x).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_weights_modes_momenta_and_counters_are_restored_and_dropout_stays_off():
    ag.manual_seed(2)
    model = ConvBN(dropout=0.5)
    model.norm.momentum = 0.2
    model.eval()
    model.norm2.train()  # a mixed state comes back as it was
    weights = {k: np.array(v, copy=True) for k, v in model.state_dict().items() if "running" not in k}
    nn.recompute_batchnorm_statistics(model, _batches())
    assert not model.training and not model.norm.training and model.norm2.training and not model.drop.training
    assert (model.norm.momentum, model.norm2.momentum) == (0.2, 0.1)
    assert model.norm.num_batches_tracked.item() == 0
    for k, v in weights.items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    # Dropout was off: the statistics equal those of the same model without dropout.
    plain = ConvBN()
    plain.load_state_dict(model.state_dict())
    nn.recompute_batchnorm_statistics(plain, _batches())
    np.testing.assert_allclose(model.norm.running_var.numpy(), plain.norm.running_var.numpy(), rtol=1e-6)


def test_no_batches_or_a_failure_part_way_keeps_the_old_statistics():
    ag.manual_seed(3)
    model = ConvBN()
    before = {k: np.array(v, copy=True) for k, v in model.state_dict().items()}

    def failing():
        yield _batches(1)[0]
        raise KeyboardInterrupt

    assert nn.recompute_batchnorm_statistics(model, []) == 0
    with pytest.raises(KeyboardInterrupt):
        nn.recompute_batchnorm_statistics(model, failing())
    for k, v in before.items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert model.training and model.norm.momentum == 0.1


def test_a_model_without_batchnorm_is_left_alone():
    assert (
        nn.recompute_batchnorm_statistics(nn.Sequential(nn.Linear(3, 2)), [np.ones((2, 3), np.float32)]) == 0
    )
