"""The evaluations after an epoch's training: the test set, and at the end of a run precise BatchNorm
statistics, the EMA weights and test-time augmentation."""

from __future__ import annotations

import itertools

from autograd import nn

from .engine import evaluate
from .parallel import batch_slices


def evaluates_ema(config, epoch: int) -> bool:
    """Whether the EMA weights are evaluated after ``epoch`` (numbered from 1): every ``ema_eval_every``
    epochs and after the last (an evaluation of the whole test set costs a share of an epoch)."""
    every = config.ema_eval_every
    return epoch == config.epochs or (every > 0 and epoch % every == 0)


def precise_batchnorm(config, model, train_loader, side: int, device: str) -> int:
    """Recompute ``model``'s BatchNorm statistics with its final weights (``autograd.nn.precise_bn``) over
    ``--precise-bn-batches`` training batches (augmented as in training, at the last epoch's ``side``, drawn
    as one more epoch), each split into the slices that the data-parallel workers normalise separately in
    training. Returns the number of slices used."""
    bounds = batch_slices(config.batch_size, config.processes)

    def slices():
        for x, _ in itertools.islice(train_loader.epoch(config.epochs, side=side), config.precise_bn_batches):
            for a, b in bounds:
                yield x[a:b]

    return nn.recompute_batchnorm_statistics(model, slices(), device)


def evaluate_after_epoch(run, epoch: int, side: int, finished: bool) -> dict:
    """The test fields of epoch ``epoch``'s record (counted from 0) for ``run`` (a ``train.Run``):
    ``test_loss`` and ``test_acc``; after the last epoch, when ``finished`` (not stopped by the time
    budget inside it), with --precise-bn-batches the numbers with recomputed statistics (the running
    averages' beside them) and with --tta the test-time augmented ones; ``test_acc_ema`` when the EMA
    weights are evaluated."""
    config, device, parallel = run.config, run.device, run.parallel
    test_loss, test_acc = evaluate(run.model, run.test_loader, device, parallel)
    record = {"test_loss": test_loss, "test_acc": test_acc}
    last = epoch + 1 == config.epochs
    precise_bn = bool(config.precise_bn_batches) and last and finished
    if precise_bn:  # the numbers with the running averages are kept beside the recomputed ones
        record["test_loss_running_stats"], record["test_acc_running_stats"] = test_loss, test_acc
        precise_batchnorm(config, run.model, run.train_loader, side, device)
        if parallel is not None:
            parallel.share_buffers()  # the workers evaluate with the recomputed statistics
        record["test_loss"], record["test_acc"] = evaluate(run.model, run.test_loader, device, parallel)
    if run.ema is not None and evaluates_ema(config, epoch + 1):
        run.ema.copy_to(run.ema_model)
        if precise_bn:  # the averaged weights get statistics of their own
            precise_batchnorm(config, run.ema_model, run.train_loader, side, device)
            run.ema.copy_buffers(run.ema_model)
        record["test_acc_ema"] = evaluate(run.ema_model, run.test_loader, device)[1]
    if config.tta and last:
        record["test_loss_tta"], record["test_acc_tta"] = evaluate(
            run.model, run.test_loader, device, parallel, flip=True, shift=config.tta_shift
        )
    return record
