"""Our whole training step against PyTorch's, in float64: the CIFAR model with train_cifar.py's recipe
(AdamW with its no-decay group, cosine schedule with warmup set per step, label smoothing, gradient clipping),
the same initial weights and batches. With the same math the two agree to rounding over many steps; any
difference in the recipe (a parameter decayed on one side only, a schedule off by a step, a different clipping
norm) shows up at once, far above 1e-9. The PyTorch twin of a whole run (bench/torch_twin_cifar.py) compares
float32 accuracies, which differ by seed-sized amounts; this test pins down that the recipe is the same."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import autograd as ag  # noqa: E402
from autograd import optim  # noqa: E402
from autograd.nn.utils import clip_grad_norm_  # noqa: E402
from tinyconvnext.build import build_model  # noqa: E402
from tinyconvnext.engine import forward_backward  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from torch_convnext import twin_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import train_cifar  # noqa: E402


def _torch_twin(ours, config, num_classes):
    model = twin_of(ours, num_classes, config.layer_scale)  # float64, as ours
    named = list(model.named_parameters())
    optimizer = torch.optim.AdamW(
        [
            {
                "params": [p for n, p in named if p.ndim > 1 and not n.endswith("gamma")],
                "weight_decay": config.weight_decay,
            },
            {"params": [p for n, p in named if p.ndim <= 1 or n.endswith("gamma")], "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    return model, optimizer


def _max_relative_difference(ours, theirs, skip=()):
    mine = ours.state_dict()
    return max(
        float(np.max(np.abs(mine[k] - v.detach().numpy())) / max(float(np.max(np.abs(mine[k]))), 1e-300))
        for k, v in theirs.state_dict().items()
        if k not in skip
    )


def _step_both(ours, opt, theirs, torch_opt, x, y, label_smoothing):
    """One training step of each model on the same batch; the losses agree to rounding."""
    loss, _ = forward_backward(ours, x, y, "cpu", label_smoothing)
    opt.step()
    torch_opt.zero_grad()
    torch_loss = torch.nn.functional.cross_entropy(
        theirs(torch.from_numpy(x)), torch.from_numpy(y), label_smoothing=label_smoothing
    )
    torch_loss.backward()
    torch_opt.step()
    assert loss == pytest.approx(torch_loss.item(), rel=1e-12, abs=0)


def test_training_steps_match_pytorch_in_float64():
    config = dataclasses.replace(
        train_cifar.CIFAR_DEFAULTS, norm_layer="layer", drop_path=0.0, grad_clip=11.0, lr=4e-3
    )
    num_classes, steps, batch, side = 10, 8, 6, 16
    ag.manual_seed(0)
    ours = build_model(config, num_classes, 0.0).to(dtype=np.float64)
    opt = optim.AdamW(optim.weight_decay_groups(ours.named_parameters(), config.weight_decay), lr=config.lr)
    theirs, torch_opt = _torch_twin(ours, config, num_classes)
    initial = {k: v.copy() for k, v in ours.state_dict().items()}
    rng = np.random.default_rng(0)
    clipped = 0
    for step in range(steps):
        x = rng.standard_normal((batch, 3, side, side))
        y = rng.integers(0, num_classes, batch)
        lr = optim.cosine_with_warmup(step, steps, 3, config.lr, config.min_lr)  # warmup, then cosine
        optim.set_lr(opt, lr)
        for group in torch_opt.param_groups:
            group["lr"] = lr

        loss, _ = forward_backward(ours, x, y, "cpu", config.label_smoothing)
        norm = float(clip_grad_norm_(ours.parameters(), config.grad_clip))
        opt.step()

        torch_opt.zero_grad()
        torch_loss = torch.nn.functional.cross_entropy(
            theirs(torch.from_numpy(x)), torch.from_numpy(y), label_smoothing=config.label_smoothing
        )
        torch_loss.backward()
        torch_norm = float(torch.nn.utils.clip_grad_norm_(theirs.parameters(), config.grad_clip))
        torch_opt.step()

        clipped += norm > config.grad_clip
        assert loss == pytest.approx(torch_loss.item(), rel=1e-12, abs=0)
        assert norm == pytest.approx(torch_norm, rel=1e-10)
        assert _max_relative_difference(ours, theirs) < 1e-9, f"weights differ after step {step + 1}"
    assert 0 < clipped < steps  # both branches of the clipping were exercised
    moved = max(float(np.max(np.abs(v - initial[k]))) for k, v in ours.state_dict().items())
    assert moved > 1e-3  # the steps changed the weights


def test_resnet_sgd_steps_match_pytorch_in_float64():
    """The ResNet-D baseline's recipe: SGD with Nesterov momentum and coupled (L2) weight decay on the conv
    and linear weights only, BatchNorm in training mode with its running statistics, label smoothing."""
    from torch_resnet import TorchResNet

    from tinyconvnext.build import build_optimizer
    from tinyconvnext.config import TrainConfig

    config = TrainConfig(
        model="resnet18d",
        depths="1,1,1,1",
        dims="8,16,24,32",
        optimizer="sgd",
        lr=0.2,
        weight_decay=5e-3,
        drop_path=0.0,
    )
    num_classes, steps, batch, side = 10, 6, 6, 32
    ag.manual_seed(0)
    ours = build_model(config, num_classes, 0.0).to(dtype=np.float64)
    opt = build_optimizer(config, ours)
    theirs = TorchResNet(
        depths=ours.depths, widths=ours.widths, stem_width=ours.stem_width, num_classes=num_classes
    ).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    named = list(theirs.named_parameters())
    torch_opt = torch.optim.SGD(
        [
            {"params": [p for _, p in named if p.ndim > 1], "weight_decay": config.weight_decay},
            {"params": [p for _, p in named if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=config.lr,
        momentum=0.9,
        nesterov=True,
    )
    rng = np.random.default_rng(0)
    for step in range(steps):
        x = rng.standard_normal((batch, 3, side, side))
        y = rng.integers(0, num_classes, batch)
        _step_both(ours, opt, theirs, torch_opt, x, y, config.label_smoothing)
        assert _max_relative_difference(ours, theirs) < 1e-9, (
            f"weights or running statistics differ after step {step + 1}"
        )
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((4, 3, side, side))
    with ag.no_grad():
        np.testing.assert_allclose(
            ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-9, atol=1e-12
        )


def test_batchnorm_convnext_adamw_steps_match_pytorch_in_float64():
    """``--norm-layer batch``: AdamW steps on a ConvNeXt whose norms are BatchNorm (running statistics
    compared too, as state-dict buffers), then evaluation with those statistics."""
    config = dataclasses.replace(
        train_cifar.CIFAR_DEFAULTS,
        norm_layer="batch",
        depths="1,2",
        dims="8,16",
        drop_path=0.0,
        grad_clip=0.0,
        lr=4e-3,
    )
    num_classes, steps, batch, side = 10, 5, 6, 16
    ag.manual_seed(0)
    ours = build_model(config, num_classes, 0.0).to(dtype=np.float64)
    assert ours.norm_layer == "batch"
    opt = optim.AdamW(optim.weight_decay_groups(ours.named_parameters(), config.weight_decay), lr=config.lr)
    theirs, torch_opt = _torch_twin(ours, config, num_classes)
    rng = np.random.default_rng(0)
    for step in range(steps):
        x = rng.standard_normal((batch, 3, side, side))
        y = rng.integers(0, num_classes, batch)
        _step_both(ours, opt, theirs, torch_opt, x, y, config.label_smoothing)
        # A bias whose per-channel shift a later BatchNorm subtracts again (the stem conv's, each dwconv's,
        # and stage 1's last pwconv2 here) has a zero gradient up to rounding, ~1e-17. AdamW turns that noise
        # into steps of ~lr * 1e-17 / eps, so those biases stay near 0 on both sides, too small to compare
        # relatively. Their ~1e-10 differences reach the other weights at ~1e-8 relative; a recipe difference
        # would be ~1e-3.
        if step == 0:
            before_batch_norm = [name for name, p in theirs.named_parameters() if p.grad.abs().max() < 1e-15]
            assert (
                "downsample_layers.0.0.bias" in before_batch_norm
                and "stages.1.1.dwconv.bias" in before_batch_norm
            )
        for name in before_batch_norm:
            assert np.abs(ours.state_dict()[name]).max() < 1e-8, name
        assert _max_relative_difference(ours, theirs, skip=before_batch_norm) < 1e-6, (
            f"weights or running statistics differ after step {step + 1}"
        )
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((4, 3, side, side))
    with ag.no_grad():
        np.testing.assert_allclose(
            ours(x).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-6, atol=1e-9
        )
