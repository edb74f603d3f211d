"""The training step and the evaluation: ``train_one_epoch`` and ``evaluate``, as the official engine.py.

One step of the paper's recipe (Section 2.1): the learning rate from its schedule, forward and loss,
backward, gradient clipping, the optimizer's step, the EMA of the weights. ``forward_backward`` computes
a step's loss and gradients in this process; ``DataParallel`` (parallel.py) runs the same function in its
worker processes, each on a slice of the batch, and sums their gradients.
"""

from __future__ import annotations

import math
import time

import numpy as np
from tqdm import tqdm

import autograd as ag
from autograd import optim
from autograd.nn import functional as F
from autograd.nn.utils import clip_grad_norm_

from .augment import tta_views


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite: the run stops and keeps its last good checkpoint."""


def forward_backward(model, x, y, device, label_smoothing):
    """One process's step before the optimizer: (mean loss, logits as NumPy), gradients in ``.grad``.
    ``y``: labels, or soft targets (mixup/cutmix) for which label smoothing is already in the targets."""
    logits = model(ag.tensor(x, device=device))
    target = ag.tensor(y, device=device)  # labels or soft targets, on the logits' device
    loss = F.cross_entropy(logits, target, label_smoothing=0.0 if y.ndim == 2 else label_smoothing)
    loss_value = float(loss.item())
    predictions = logits.numpy()  # read now, while the device is idle after .item()
    model.zero_grad()
    if math.isfinite(loss_value):
        loss.backward()
    return loss_value, predictions


def train_one_epoch(
    model, step_fn, optimizer, loader, epoch, side, config, schedule, position, ema=None, deadline=None
):
    """Train on ``loader``'s batches of ``epoch`` (counted from 0) at ``side`` px, from batch
    ``position["batch"]`` on (0, or where a resumed run stopped).

    ``step_fn(x, y, step) -> (mean loss, logits)`` leaves the batch's gradients in the parameters' ``.grad``
    (``forward_backward`` here, or ``DataParallel.train_step``); ``schedule(step)`` is the learning rate.
    ``position["step"]`` (optimizer steps since the run began) and ``position["batch"]`` advance after
    every step, so a checkpoint written at any moment (Ctrl-C) resumes after the last step done. The epoch
    ends early after the first step that ends past ``deadline`` (a ``time.perf_counter()``: the run's time
    budget). Returns the epoch's ``step``, last ``lr``, ``train_loss``, ``train_acc`` and timings.
    """
    started = time.perf_counter()
    seen, loss_sum, correct, lr = 0, 0.0, 0, config.lr
    bar = tqdm(
        loader.epoch(epoch, position["batch"], side=side),
        total=len(loader),
        initial=position["batch"],
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not config.progress,
        leave=False,
    )
    for x, y in bar:
        step = position["step"]
        lr = schedule(step)
        optim.set_lr(optimizer, lr)
        loss, logits = step_fn(x, y, step)
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"the loss became {loss} at epoch {epoch + 1}, step {step}: stopping")
        if config.grad_clip:
            clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        position["step"], position["batch"] = step + 1, position["batch"] + 1
        labels = y if y.ndim == 1 else y.argmax(axis=1)  # soft targets (mixup/cutmix): their top class
        correct += int((logits.argmax(axis=1) == labels).sum())
        seen += len(labels)
        loss_sum += loss * len(labels)
        rate = seen / (time.perf_counter() - started)
        bar.set_postfix(
            loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}", img_s=f"{rate:.0f}", lr=f"{lr:.2e}"
        )
        if deadline is not None and time.perf_counter() > deadline:
            break
    bar.close()
    seconds = time.perf_counter() - started
    return {
        "step": position["step"],
        "lr": lr,
        "train_loss": loss_sum / max(seen, 1),
        "train_acc": correct / max(seen, 1),
        "epoch_seconds": seconds,
        "images_per_second": seen / seconds,
    }


def evaluate(
    model, loader, device, parallel=None, flip: bool = False, shift: int = 0, outputs: list | None = None
) -> tuple[float, float]:
    """Mean loss and accuracy over a data set, in eval mode, without a graph (on the workers of ``parallel``,
    a ``tinyconvnext.parallel.DataParallel``, when given: they hold ``model``'s weights). ``flip`` and
    ``shift`` turn on test-time augmentation: the logits are the mean over ``tta_views``. ``outputs``, when
    given, receives each batch's (logits, labels) as NumPy arrays, in the loader's order."""
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with ag.no_grad():
        for x, y in loader.epoch(0):
            if flip or shift:
                views = tta_views(x, flip, shift)
                logits = sum(_eval_logits(model, view, y, device, parallel) for view in views) / len(views)
                total_loss += float(F.cross_entropy(ag.tensor(logits), ag.tensor(y), reduction="sum").item())
            elif parallel is not None and len(y) >= parallel.processes:
                loss_sum, logits = parallel.eval_step(x, y)
                total_loss += loss_sum
            else:
                logits = model(ag.tensor(x, device=device))
                total_loss += float(
                    F.cross_entropy(logits, ag.tensor(y, device=device), reduction="sum").item()
                )
                logits = logits.numpy()
            correct += int((logits.argmax(axis=1) == y).sum())
            count += len(y)
            if outputs is not None:
                outputs.append((np.asarray(logits), np.asarray(y)))
    model.train()
    return total_loss / count, correct / count


def _eval_logits(model, x, y, device, parallel):
    """Logits of an NCHW batch as a NumPy array (on the workers when there are enough images for them; their
    loss on the labels ``y`` is not needed here, since TTA scores the averaged logits)."""
    if parallel is not None and len(x) >= parallel.processes:
        return parallel.eval_step(x, y)[1]
    return model(ag.tensor(x, device=device)).numpy()
