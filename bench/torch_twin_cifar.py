"""The PyTorch twin of our training: the same architecture, recipe, data pipeline and batches.

    python bench/torch_twin_cifar.py --data ../shared/data --out runs/torch_twin   # train_cifar.py's recipe
    python bench/torch_twin_cifar.py --model convnext_cifar_pico --lr 2e-3 --epochs 10
    python bench/torch_twin_cifar.py --dataset imagenette --model resnet18d --optimizer sgd ...
                                                                                   # the ResNet-D baseline

It checks our engine at the scale of a whole training run: the same recipe must end within a point of
``train_cifar.py``'s accuracy. (It was meant for fast recipe searches too, but on the 2-core CPU machines
PyTorch is slower per step than our engine for these small models: 202 against 265-280 images/s.) The
batches come from our ``BatchLoader`` and augmentations with the same seed, the model from
``tests/torch_convnext.py`` with our initial weights (a ResNet-D from ``tests/torch_resnet.py``), the
optimizer is torch's AdamW or SGD with the same groups, schedule and clipping (no EMA). Under data
parallelism our BatchNorm normalises each process's slice on its own (as DistributedDataParallel without
SyncBatchNorm), where the twin's one process normalises the whole batch: the same recipe, but not the same
gradient step.
It runs in one process with PyTorch's threads: ``--processes`` (our data parallelism) is ignored, and since
the gradient of a batch is the same either way, the recipe is the same. ``--tta`` is not done here either:
compare the plain test accuracies.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from torch_convnext import twin_of  # noqa: E402
from torch_resnet import TorchResNet  # noqa: E402

from autograd import optim as our_optim  # noqa: E402
from tinyconvnext.config import config_from_args  # noqa: E402
from tinyconvnext.curves import append_metrics, plot_curves  # noqa: E402
from tinyconvnext.pipeline import (  # noqa: E402
    initial_model,
    load_dataset,
    make_loaders,
    progressive_stride,
    train_image_size,
)
from tinyconvnext.variants import RESNET_VARIANTS  # noqa: E402


def main(argv=None):
    import train_cifar  # noqa: F401  (the CIFAR defaults)

    config = config_from_args(train_cifar.CIFAR_DEFAULTS, argv, "python bench/torch_twin_cifar.py")
    torch.manual_seed(config.seed)
    stride = progressive_stride(config)  # checks the ramp, as train.py does
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_dataset(config)
    train_loader, test_loader, num_classes = make_loaders(config, data)  # alternating flips included

    model = build_twin(config, data, num_classes)
    named = list(model.named_parameters())
    decay = [p for n, p in named if p.ndim > 1 and not n.endswith("gamma")]
    no_decay = [p for n, p in named if p.ndim <= 1 or n.endswith("gamma")]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
    steps_per_epoch = len(train_loader)
    total, warmup = config.epochs * steps_per_epoch, int(round(config.warmup_epochs * steps_per_epoch))
    step, started = 0, time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        epoch_start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        side = train_image_size(config, epoch, stride)  # progressive resizing, as train.py
        for x, y in train_loader.epoch(epoch, side=side):
            lr = our_optim.cosine_with_warmup(step, total, warmup, config.lr, config.min_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits = model(torch.from_numpy(x))
            target = torch.from_numpy(y)
            loss = torch.nn.functional.cross_entropy(
                logits, target, label_smoothing=0.0 if y.ndim == 2 else config.label_smoothing
            )
            optimizer.zero_grad()
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            hard = y if y.ndim == 1 else y.argmax(axis=1)
            seen += len(hard)
            loss_sum += loss.item() * len(hard)
            correct += int((logits.argmax(1).numpy() == hard).sum())
        epoch_seconds = time.perf_counter() - epoch_start
        model.eval()
        test_loss, test_correct, count = 0.0, 0, 0
        with torch.no_grad():
            for x, y in test_loader.epoch(0):
                logits = model(torch.from_numpy(x))
                test_loss += float(
                    torch.nn.functional.cross_entropy(logits, torch.from_numpy(y), reduction="sum")
                )
                test_correct += int((logits.argmax(1).numpy() == y).sum())
                count += len(y)
        record = {
            "epoch": epoch + 1,
            "step": step,
            "lr": lr,
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "test_loss": test_loss / count,
            "test_acc": test_correct / count,
            "epoch_seconds": epoch_seconds,
            "images_per_second": seen / epoch_seconds,
            "elapsed_seconds": time.perf_counter() - started,
        }
        if config.progressive_size:
            record["image_size"] = side
        append_metrics(out, record)
        plot_curves(out, f"PyTorch twin of {config.model} on {config.dataset}")
        print(json.dumps(record), flush=True)
        if config.time_budget and record["elapsed_seconds"] > 60 * config.time_budget:
            break


def build_twin(config, data, num_classes):
    """The torch network of ``config`` with our initial weights (the whitened stem's filters included,
    computed from ``data``) and our stochastic depth."""
    ours = initial_model(config, data, num_classes, fused=False)  # the architecture and the initial weights
    if config.model in RESNET_VARIANTS:
        if config.drop_path:
            raise SystemExit(f"the twin of {config.model} has no stochastic depth: pass --drop-path 0")
        model = TorchResNet(
            depths=ours.depths, widths=ours.widths, stem_width=ours.stem_width, num_classes=num_classes
        )
        model.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
        blocks = [b for i in range(len(ours.depths)) for b in getattr(model, f"layer{i + 1}")]
    else:
        model = twin_of(ours, num_classes, config.layer_scale)
        blocks = [b for stage in model.stages for b in stage]
    rates = np.linspace(0, config.drop_path, len(blocks)).tolist()
    for block, rate in zip(blocks, rates, strict=False):
        _add_drop_path(block, rate)
    return model


def _add_drop_path(block, rate):
    """Give a torch block stochastic depth with our semantics (per sample, scaled by 1 / (1 - p))."""
    if rate <= 0:
        return
    forward = block.forward

    def with_drop_path(x):
        y = forward(x) - x  # the residual branch
        if block.training:
            keep = (torch.rand(x.shape[0], 1, 1, 1) >= rate).to(x.dtype) / (1 - rate)
            y = y * keep
        return x + y

    block.forward = with_drop_path


if __name__ == "__main__":
    main()
