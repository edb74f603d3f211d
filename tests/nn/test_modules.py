"""Modules: registration order, state dicts with one error per bad key, modes, devices, layers vs torch.nn."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import autograd as ag
from autograd import nn


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.norm = nn.BatchNorm2d(4)
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Identity()])
        self.scale = nn.Parameter(ag.ones(4))


def test_names_follow_registration_order_like_pytorch():
    model = TwoLayers()
    assert [n for n, _ in model.named_parameters()] == [
        "scale",
        "first.weight",
        "first.bias",
        "norm.weight",
        "norm.bias",
        "blocks.0.weight",
        "blocks.0.bias",
    ]
    assert [n for n, _ in model.named_buffers()] == [
        "norm.running_mean",
        "norm.running_var",
        "norm.num_batches_tracked",
    ]
    assert model.num_parameters() == 4 + 12 + 4 + 4 + 4 + 16 + 4


def test_load_state_dict_reports_every_problem_at_once_and_loads_nothing():
    model = TwoLayers()
    state = model.state_dict()
    before = {k: v.copy() for k, v in state.items()}
    bad = dict(state)
    del bad["first.bias"]
    bad["extra.weight"] = np.zeros(2)
    bad["blocks.0.weight"] = np.zeros((5, 4))
    bad["scale"] = np.full(4, 7.0)
    with pytest.raises(KeyError) as info:
        model.load_state_dict(bad)
    message = str(info.value)
    assert "missing keys (1): first.bias" in message and "unexpected keys (1): extra.weight" in message
    assert "blocks.0.weight: checkpoint (5, 4), model (4, 4)" in message
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    missing, unexpected = model.load_state_dict({**state, "extra": np.zeros(1)}, strict=False)
    assert missing == [] and unexpected == ["extra"]


def test_train_eval_and_zero_grad():
    model = nn.Sequential(nn.Linear(3, 3), nn.DropPath(0.5), nn.Dropout(0.5))
    model.eval()
    assert not any(m.training for m in model.modules())
    x = ag.ones(4, 3)
    np.testing.assert_array_equal(model(x).numpy(), model[0](x).numpy())
    model.train()
    model(x).sum().backward()
    assert model[0].weight.grad is not None
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_to_dtype_casts_parameters_and_buffers():
    model = TwoLayers().to(dtype=np.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.norm.running_mean.dtype == np.float64
    assert model.norm.num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype


def test_batchnorm2d_matches_torch_over_steps():
    ours, theirs = nn.BatchNorm2d(3, momentum=0.2), torch.nn.BatchNorm2d(3, momentum=0.2)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
        np.testing.assert_allclose(
            ours(x).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5
        )
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours(x).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5
    )
    assert ours.num_batches_tracked.item() == 3
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_batchnorm2d_momentum_none_is_the_cumulative_average_as_torch():
    ours, theirs = nn.BatchNorm2d(3, momentum=None), torch.nn.BatchNorm2d(3, momentum=None)
    rng = np.random.default_rng(1)
    for _ in range(4):
        x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 3 - 1
        np.testing.assert_allclose(
            ours(x).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5
        )
    np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-5, atol=1e-6)
    assert "momentum=None" in repr(ours)


@pytest.mark.parametrize(
    "make, make_torch",
    [
        (
            lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
            lambda: torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
        ),
        (lambda: nn.Linear(5, 7), lambda: torch.nn.Linear(5, 7)),
        (lambda: nn.LayerNorm(5), lambda: torch.nn.LayerNorm(5, eps=1e-6)),
    ],
)
def test_layers_have_torch_parameter_names_and_shapes(make, make_torch):
    ours, theirs = make(), make_torch()
    assert {n: p.shape for n, p in ours.named_parameters()} == {
        n: tuple(p.shape) for n, p in theirs.named_parameters()
    }
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    shape = (2, 4, 7, 7) if isinstance(ours, nn.Conv2d) else (3, 5)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    np.testing.assert_allclose(
        ours(x).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5
    )


def test_default_init_scale_matches_pytorch():
    ag.manual_seed(0)
    w = nn.Linear(400, 300).weight.numpy()
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound and w.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)


@pytest.mark.parametrize("mode, fan", [("fan_in", 16 * 9), ("fan_out", 32 * 9)])
def test_kaiming_normal_has_pytorchs_std_for_relu(mode, fan):
    w = nn.Conv2d(16, 32, 3).weight
    nn.init.kaiming_normal_(w, mode=mode, generator=ag.Generator(0))
    assert w.numpy().mean() == pytest.approx(0.0, abs=0.01)
    assert w.numpy().std() == pytest.approx(np.sqrt(2 / fan), rel=0.05)
    assert nn.init.fan_out(w) == 32 * 9 and nn.init.fan_out(nn.Linear(5, 7).weight) == 7
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        nn.init.kaiming_normal_(w, mode="fan_avg")


def test_reference_kernels_can_be_forced_from_the_environment():
    code = (
        "import autograd as ag; from autograd.nn import functional as F; "
        "print(getattr(F.gelu(ag.ones(3, requires_grad=True)).grad_fn.kernels, '__name__', 'the op body'))"
    )
    for value, expected in (("reference", "the op body"), ("fast", "autograd.kernels.cpu.gelu")):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "AUTOGRAD_KERNELS": value},
        )
        assert out.stdout.strip() == expected
